"""Running an experiment: check, lock the output folder, plan, execute, write the results.

The top of :mod:`lipobench.run`: it imports the rest of the package, which never imports it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipobench.errors import Interrupted, UserError
from lipobench.experiment import Experiment, expand_configurations
from lipobench.fsutil import (
    atomic_write_text,
    check_name,
    check_output_dir,
    folder_lock,
    is_disk_full,
    os_error_message,
    remove_stale_temporaries,
)
from lipobench.run.context import RunContext
from lipobench.run.dataset import check_dataset_source, prepare_dataset
from lipobench.run.executors import from_config
from lipobench.run.plan import plan_run
from lipobench.run.progress import Progress
from lipobench.run.record import check_same_experiment, run_record
from lipobench.run.work import jobs_for

__all__ = ["RunSummary", "run_experiment"]


@dataclass
class RunSummary:
    """What :func:`run_experiment` did and where it wrote it."""

    out: Path
    table: Any
    summary: Any
    counts: dict[str, int]


def run_experiment(
    experiment: Experiment,
    *,
    out: str | Path | None = None,
    executor=None,
    registry=None,
    registry_factory: Callable[[], Any] | None = None,
    fresh: bool = False,
    console=None,
    keep_other_methods: bool = False,
) -> RunSummary:
    """Run every configuration of ``experiment`` and write the results under ``out``.

    ``executor`` defaults to the one the experiment names (:mod:`lipobench.run.executors`).
    ``registry_factory`` (picklable) builds the adapter registry in each worker; by default
    workers reuse ``registry`` (its adapter classes must then be importable there) or, when
    neither is given, load the installed plugins. ``fresh`` deletes the cache first, so every
    task reruns. ``keep_other_methods`` (``lipobench run --only``) keeps the rows of the
    methods this run leaves out from the results already in ``out``, instead of replacing
    the table.

    Everything the user can get wrong is checked before the output folder is touched; the
    run holds an exclusive lock on it (:func:`lipobench.fsutil.folder_lock`).
    """
    if registry is None:
        registry = registry_factory() if registry_factory is not None else _load_registry()
    elif registry_factory is None:
        # In-process tasks can share the caller's registry; remote workers build their own.
        registry_factory = _SameRegistry(registry)
    where = str(experiment.source or "experiment")
    if out is not None:
        key = "--out"
    elif experiment.output is not None:
        key = f"{where}: output"
    else:
        key = f"{where}: name"
        check_name(experiment.label, where=key, what="experiment")
    out = Path(out if out is not None else
               (experiment.output or Path("results") / experiment.label)).resolve()
    if executor is None:
        executor = from_config(experiment.executor)
    # Check cheap things before drawing data or touching the output folder.
    expand_configurations(experiment, registry)
    check_dataset_source(experiment)
    check_output_dir(out, key=key)
    check_same_experiment(out, experiment, key)
    from lipobench.data import load_dataset

    dataset_path, plan = experiment.dataset_path(), None
    if dataset_path is not None:  # a dataset on disk is checked before OUT is touched
        dataset_path = dataset_path.resolve()
        plan = plan_run(experiment, registry, load_dataset(dataset_path))
    with folder_lock(out, what=f"lipobench run {where}", key=key):
        try:
            return _run_locked(experiment, out, executor, registry, registry_factory, fresh,
                               console, keep_other_methods, dataset_path, plan)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise UserError(os_error_message(exc, exc.filename or out) + "; finished tasks "
                            "are cached: run the same command again to resume") from None


def _run_locked(experiment, out, executor, registry, registry_factory, fresh, console,
                keep_other_methods, dataset_path, plan) -> RunSummary:
    from lipobench.data import load_dataset
    from lipobench.report import results

    jobs: list = []
    progress = Progress(console=console)
    started = time.time()
    try:
        remove_stale_temporaries(out)  # what a killed run was writing; we hold the lock
        if fresh and (out / "cache").exists():
            shutil.rmtree(out / "cache")
        if plan is None:
            dataset_path = prepare_dataset(experiment, out)
            plan = plan_run(experiment, registry, load_dataset(dataset_path))
        context = RunContext(str(dataset_path), str(out), registry_factory)
        for adapter_name, reason in sorted(plan.unavailable.items()):
            progress.note(f"{adapter_name}: unavailable: {reason}")
        jobs = jobs_for(plan, context)
        outcomes = executor.run(jobs, progress)
        table = results.build_table(experiment, plan, outcomes, registry)
        previous = None
        if keep_other_methods:
            table, previous = results.keep_other_methods(out, table, experiment.methods,
                                                         registry)
        summary = results.summarize(table)
        results.write_results(out, table, summary, registry=registry)
        labels = dict(zip(table["config_id"], table["config_label"], strict=True))
        atomic_write_text(out / "run.json", run_record(experiment, plan, dataset_path,
                                                       previous, started=started,
                                                       labels=labels))
    except Interrupted:
        if not jobs:
            raise Interrupted("interrupted before any task ran: run the same command "
                              "again to start") from None
        done = progress.counts()["done"]
        raise Interrupted(f"interrupted after {done} of {len(jobs)} tasks; finished tasks "
                          f"are kept in {out / 'cache'}: run the same command again to "
                          "resume") from None
    counts = progress.counts()
    progress.note(f"wrote {out / 'results.parquet'} and {out / 'summary.csv'}")
    return RunSummary(out, table, summary, counts)


class _SameRegistry:
    """A registry factory returning one registry (pickles by value: classes by reference)."""

    def __init__(self, registry):
        self.registry = registry

    def __call__(self):
        return self.registry


def _load_registry():
    from lipobench.plugins import load_registry

    return load_registry()
