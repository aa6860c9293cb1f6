"""Executors: where the runner's tasks run. The same jobs, the same cache, the same results.

- :class:`LocalExecutor` runs every job in this process, each predict job right after the
  training it needs.
- :class:`DaskExecutor` submits them to a ``dask.distributed`` cluster: a ``LocalCluster``
  of ``workers`` processes with one thread each, or an existing scheduler (``tcp://...``),
  which covers dask-jobqueue clusters on HPC (start the cluster there, pass its address).

A job is a module-level function and picklable arguments (the runner's tasks, listed by
:func:`lipobench.runner.jobs_for`); its dependencies' outcomes are passed after them. Jobs
never raise for a failing tool: they return an :class:`Outcome` with status ``failed``. The
runner imports this module, never the other way round.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lipobench.errors import UserError, raise_if_interrupted
from lipobench.experiment import ExecutorConfig, ExecutorKind

__all__ = ["Job", "Outcome", "Status", "LocalExecutor", "DaskExecutor", "from_config",
           "Progress"]


Status = str  # "ok" | "failed" | "unavailable"


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


class Progress:
    """A rich progress bar counting tasks done, cached and failed, plus one-line notes."""

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self._counts = {"done": 0, "cached": 0, "failed": 0}
        self._bar = None
        self._task = None

    def start(self, total: int) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                   TextColumn, TimeElapsedColumn)

        # Off a terminal (a log, a pipe) a bar is only its last frame printed at the end,
        # noise that would stand in front of an error line; the counts line says it all.
        self._bar = RichProgress(TextColumn("tasks"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                 console=self.console, transient=False,
                                 disable=not self.console.is_terminal)
        self._task = self._bar.add_task("tasks", total=total, status=self._status())
        self._bar.start()

    def _status(self) -> str:
        c = self._counts
        return f"done {c['done']}  cached {c['cached']}  failed {c['failed']}"

    def advance(self, label: str, outcome) -> None:
        for note in getattr(outcome, "notes", ()):
            self.note(note)
        self._counts["done"] += 1
        if outcome.cached:
            self._counts["cached"] += 1
        if outcome.status != "ok":
            self._counts["failed"] += 1
            self.note(f"failed {label}: {outcome.error}"
                      + (f" (log: {outcome.log_file})" if outcome.log_file else ""))
        if self._bar is not None:
            self._bar.update(self._task, advance=1, status=self._status())

    def stop(self) -> None:
        if self._bar is not None:
            if sys.exc_info()[0] is not None:
                # Ending in an error or Ctrl-C: clear the bar so the one line saying what
                # happened is all that is left on the screen.
                self._bar.live.transient = True
            self._bar.stop()
            self._bar = None

    def note(self, text: str) -> None:
        # markup=False: tool messages hold brackets such as "[tools.cryolo]".
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)


class LocalExecutor:
    """Run jobs one after another in this process."""

    def run(self, jobs: Sequence[Job], progress: Progress) -> dict[str, Any]:
        outcomes: dict[str, Any] = {}
        progress.start(len(jobs))
        try:
            for job in jobs:
                raise_if_interrupted()
                outcome = job.fn(*job.args, *(outcomes[d] for d in job.deps))
                # A library may have swallowed the Ctrl-C and carried on: stop here.
                raise_if_interrupted()
                outcomes[job.key] = outcome
                progress.advance(job.label, outcome)
        finally:
            progress.stop()
        return outcomes


class DaskExecutor:
    """Run jobs on a dask.distributed cluster: a new LocalCluster, or ``scheduler``'s."""

    def __init__(self, *, workers: int = 2, scheduler: str | None = None,
                 connect_timeout: str = "30s"):
        self.workers = workers
        self.scheduler = scheduler
        self.connect_timeout = connect_timeout

    def _client(self):
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                return Client(self.scheduler, timeout=self.connect_timeout), None
            except (OSError, TimeoutError) as exc:
                raise UserError(f"--scheduler {self.scheduler}: cannot reach the Dask scheduler "
                                f"({exc}); check the address or start the cluster") from None
        cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster

    def run(self, jobs: Sequence[Job], progress: Progress) -> dict[str, Any]:
        from distributed import as_completed

        client, cluster = self._client()
        try:
            futures = {}
            labels = {}
            for job in jobs:
                deps = [futures[d] for d in job.deps]
                future = client.submit(job.fn, *job.args, *deps, key=f"{job.label}-{job.key}",
                                       pure=False)
                futures[job.key] = future
                labels[future.key] = (job.key, job.label)
            progress.start(len(jobs))
            outcomes = {}
            try:
                for future in as_completed(list(futures.values())):
                    key, label = labels[future.key]
                    try:
                        outcomes[key] = future.result()
                    except Exception as exc:  # a worker died (memory, node lost): not ours
                        from lipobench.fsutil import is_disk_full

                        if is_disk_full(exc):  # the task stopped the run, as in process
                            raise

                        outcomes[key] = Outcome(label, "failed",
                                                error=f"{type(exc).__name__}: {exc}")
                    progress.advance(label, outcomes[key])
            finally:
                progress.stop()
            return outcomes
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def from_config(config: ExecutorConfig, *, kind: ExecutorKind | None = None,
                workers: int | None = None, scheduler: str | None = None):
    """The executor an experiment's ``[executor]`` table asks for, command-line flags first."""
    kind = ExecutorKind(kind or (ExecutorKind.DASK if scheduler else config.kind))
    if kind is ExecutorKind.LOCAL:
        return LocalExecutor()
    return DaskExecutor(workers=workers or config.workers,
                        scheduler=scheduler or config.scheduler)
