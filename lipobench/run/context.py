"""What every task needs besides its own fields: the dataset, the output folder, the registry.

The registry and the dataset are built once per process and run, not once per task
(building the registry costs ~0.1 s): :class:`RunContext` is picklable and each process
that runs a task (this one, a Dask worker) builds them on first use and keeps them for the
rest of the run. Imports nothing else of :mod:`lipobench.run`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lipobench.cache import Cache

__all__ = ["RunContext"]


@dataclass(frozen=True)
class RunContext:
    """What every task needs besides its own fields, all picklable.

    The registry and the dataset are built once per process and run (not once per task:
    building the registry costs ~0.1 s), keyed by ``run_token`` so that a later run in the
    same process sees its own plugins.
    """

    dataset_path: str
    out: str
    #: Builds the adapter registry in the worker; None means lipobench.plugins.load_registry.
    registry_factory: Callable[[], Any] | None = None
    run_token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def cache(self) -> Cache:
        return Cache(Path(self.out) / "cache")

    def registry(self):
        return _per_process(self, "registry", self._build_registry)

    def dataset(self):
        return _per_process(self, "dataset", self._load_dataset)

    def _build_registry(self):
        if self.registry_factory is not None:
            return self.registry_factory()
        from lipobench.plugins import load_registry

        return load_registry()

    def _load_dataset(self):
        from lipobench.data import load_dataset

        return load_dataset(self.dataset_path)


#: The objects of the latest run seen by this process, see :class:`RunContext`.
_PROCESS_MEMO: dict[tuple[str, str], Any] = {}


def _per_process(context: RunContext, what: str, build: Callable[[], Any]):
    key = (context.run_token, what)
    if key not in _PROCESS_MEMO:
        for old in [k for k in _PROCESS_MEMO if k[0] != context.run_token]:
            del _PROCESS_MEMO[old]
        _PROCESS_MEMO[key] = build()
    return _PROCESS_MEMO[key]
