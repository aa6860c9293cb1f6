"""Executors: where a run's jobs run. The same jobs, the same cache, the same results.

- :class:`LocalExecutor` runs every job in this process, each predict job right after the
  training it needs.
- :class:`DaskExecutor` submits them to a ``dask.distributed`` cluster: a ``LocalCluster``
  of ``workers`` processes with one thread each, or an existing scheduler (``tcp://...``),
  which covers dask-jobqueue clusters on HPC (start the cluster there, pass its address).

A job (:class:`~lipobench.run.tasks.Job`) is a module-level function and picklable arguments
(a plan's tasks, listed by :func:`lipobench.run.work.jobs_for`); its dependencies' outcomes
are passed after them. Jobs never raise for a failing tool: they return an
:class:`~lipobench.run.tasks.Outcome` with status ``failed``. An executor knows jobs, not
what they do: this module imports only :mod:`lipobench.run.tasks` and
:mod:`lipobench.run.progress` of this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lipobench.errors import UserError, raise_if_interrupted
from lipobench.experiment import ExecutorConfig, ExecutorKind
from lipobench.run.progress import Progress
from lipobench.run.tasks import Job, Outcome, Status

__all__ = ["LocalExecutor", "DaskExecutor", "from_config"]


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

                        outcomes[key] = Outcome(label, Status.FAILED,
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
