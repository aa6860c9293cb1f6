"""What a run is made of: its tasks, the jobs that run them, and what each reports back.

Everything here is a plain picklable value naming adapters, images and keys (never a live
registry or dataset), so the in-process and the Dask executors run the very same tasks. This
module imports nothing else of :mod:`lipobench.run`; every other module of it may import it.

A task's status is a :class:`Status`, a string enum: ``Status.OK == "ok"``, and it prints,
formats and serializes (JSON, CSV, Parquet) as the bare value, as the plain strings it
replaces did.

>>> Status.FAILED == "failed", f"{Status.UNAVAILABLE}", str(Status.OK)
(True, 'unavailable', 'ok')
>>> Outcome("train-x", "ok").status is Status.OK
True
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Status", "Outcome", "Job", "Fold", "TrainTask", "Scoring", "PredictTask"]


class Status(enum.StrEnum):
    """How a task or a configuration ended.

    A ``StrEnum`` rather than ``(str, Enum)``: its ``str()`` and ``format()`` are the value,
    so a status reaching a results table, a message or a printed summary reads ``ok``, never
    ``Status.OK``.
    """

    #: Ran (or was read back from the cache) and was scored.
    OK = "ok"
    #: The tool raised (or its training failed); its log is kept under OUT/logs.
    FAILED = "failed"
    #: The adapter's tool is not installed here (its availability() said why).
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Job:
    """``fn(*args, *outcomes of deps)``, identified by ``key``."""

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    deps: tuple[str, ...] = ()
    label: str = ""


@dataclass
class Outcome:
    """What a task reports back: status, timing, and for predict tasks the scored rows."""

    task_id: str
    status: Status
    cached: bool = False
    seconds: float = 0.0
    error: str = ""
    log_file: str = ""
    #: Per scored (config_id, image): list of per-threshold count dicts.
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: One-line remarks for the user (a damaged cache entry that was recomputed).
    notes: list[str] = field(default_factory=list)
    #: For train tasks: what the adapter says about the model (Adapter.model_info).
    model_info: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # "ok" given as a plain string is Status.OK


@dataclass(frozen=True)
class Fold:
    """One train/test partition of the dataset's images."""

    index: int
    train: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True)
class TrainTask:
    """Train one adapter with one set of TRAIN parameters on one fold's training images."""

    key: str
    adapter: str
    options: Mapping[str, Any]
    params: Mapping[str, Any]
    train_names: tuple[str, ...]

    @property
    def task_id(self) -> str:
        return f"train-{self.adapter}-{self.key[:12]}"


@dataclass(frozen=True)
class Scoring:
    """One configuration scored on the output of one predict task."""

    config_id: str
    select: Mapping[str, Any]


@dataclass(frozen=True)
class PredictTask:
    """Predict one fold's test images with one trained model, then score its configurations."""

    key: str
    train_key: str
    adapter: str
    options: Mapping[str, Any]
    params: Mapping[str, Any]
    fold: int
    test_names: tuple[str, ...]
    workdir_key: str
    scorings: tuple[Scoring, ...]
    iou_thresholds: tuple[float, ...]

    @property
    def task_id(self) -> str:
        return f"predict-{self.adapter}-{self.key[:12]}"
