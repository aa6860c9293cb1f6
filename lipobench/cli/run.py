"""``lipobench run EXPERIMENT``: run an experiment file, resumably, and write its results."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lipobench.cli._app import app
from lipobench.errors import UserError


@app.command("run")
def run_command(
    experiment: Path = typer.Argument(..., help="Experiment file (TOML), e.g. experiments/quick.toml."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: the "
                                       "experiment's output, else results/<name>)."),
    executor: Optional[str] = typer.Option(None, "--executor",
                                           help="local (default) or dask."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1,
                                          help="Dask LocalCluster worker processes."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="Address of a running Dask scheduler."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only this method "
                                             "(an experiment table name); repeatable."),
    fresh: bool = typer.Option(False, "--fresh", help="Delete the cache first: rerun everything."),
) -> int:
    """Run every configuration of EXPERIMENT; finished tasks are reused from the cache."""
    from lipobench.executors import from_config
    from lipobench.experiment import ExecutorKind, load_experiment
    from lipobench.plugins import load_registry
    from lipobench.runner import run_experiment

    kind = None
    if executor is not None:
        try:
            kind = ExecutorKind(executor)
        except ValueError:
            raise UserError(f"--executor {executor}: unknown executor; use local or dask") \
                from None
    if kind is ExecutorKind.LOCAL and (workers or scheduler):
        raise UserError("--workers and --scheduler need --executor dask; add it or drop them")
    if workers and scheduler:
        raise UserError("--workers starts a local cluster and --scheduler joins one; "
                        "give only one of them")
    registry = load_registry()
    spec = load_experiment(experiment, registry, only=only)
    chosen = from_config(spec.executor, kind=kind, workers=workers, scheduler=scheduler)
    # Workers (Dask processes, remote nodes) build their own registry from the plugins.
    result = run_experiment(spec, out=out, executor=chosen, registry=registry,
                            registry_factory=load_registry, fresh=fresh)
    counts = result.counts
    _print_best(result.summary)
    typer.echo(f"{counts['done']} tasks ({counts['cached']} cached, {counts['failed']} failed); "
               f"results in {result.out}")
    return 1 if counts["failed"] else 0


def _print_best(summary) -> None:
    """One line a method: its best configuration by F1 at IoU 0.5, or why it did not run."""
    from rich.console import Console
    from rich.table import Table

    from lipobench.results import best_per_method

    table = Table(title="best configuration per method (IoU > 0.5, micro-averaged)")
    for column in ("method", "configuration", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column in ("method", "configuration")
                         else "right")
    for row in best_per_method(summary).itertuples():
        if row.status == "ok":
            table.add_row(row.method, row.config_label, f"{row.precision:.3f}",
                          f"{row.recall:.3f}", f"{row.f1:.3f}")
        else:
            table.add_row(row.method, str(row.status), "", "", "")
    Console(stderr=False).print(table)
