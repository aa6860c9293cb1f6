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
    allow_tool_paths: bool = typer.Option(
        False, "--allow-tool-paths", help="Let the experiment's [tools.<name>] tables name "
        "programs to run (e.g. crYOLO's bin_dir): only for experiment files you trust."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the figures into "
                               "OUT/plots at the end (`lipobench plot OUT` redraws them)."),
) -> int:
    """Run every configuration of EXPERIMENT; finished tasks are reused from the cache.

    With --only, the other methods' rows of an earlier run in the same folder are kept.
    Ctrl-C stops it cleanly (exit 130); running the same command again resumes.
    """
    from lipobench.choices import choose
    from lipobench.experiment import ExecutorKind, load_experiment
    from lipobench.plugins import load_registry
    from lipobench.run import run_experiment
    from lipobench.run.executors import from_config

    kind = None
    if executor is not None:
        kind = choose(ExecutorKind, executor, key="--executor", what="executor")
    if kind is ExecutorKind.LOCAL and (workers or scheduler):
        raise UserError("--workers and --scheduler need --executor dask; add it or drop them")
    if workers and scheduler:
        raise UserError("--workers starts a local cluster and --scheduler joins one; "
                        "give only one of them")
    registry = load_registry()
    spec = load_experiment(experiment, registry, only=only, allow_tool_paths=allow_tool_paths)
    chosen = from_config(spec.executor, kind=kind, workers=workers, scheduler=scheduler)
    # Workers (Dask processes, remote nodes) build their own registry from the plugins.
    result = run_experiment(spec, out=out, executor=chosen, registry=registry,
                            registry_factory=load_registry, fresh=fresh,
                            keep_other_methods=bool(only))
    counts = result.counts
    _print_best(result.summary)
    _print_comparisons(result.table, result.summary)
    for line in _model_notes(result.table):
        typer.echo(line)
    typer.echo(f"{counts['done']} tasks ({counts['cached']} cached, {counts['failed']} failed); "
               f"results in {result.out}")
    if plots:
        _write_plots(result.out, registry)
    return 1 if counts["failed"] else 0


def _write_plots(out: Path, registry) -> None:
    """The figures of the finished run; a figure that cannot be drawn is a note, not a failure
    of the run, whose results are already written."""
    import time

    import matplotlib

    matplotlib.use("Agg")
    from lipobench.report.make import make_plots

    started = time.perf_counter()
    try:
        written, notes = make_plots(out, registry=registry)
    except UserError as exc:
        typer.echo(f"note: no plots: {exc}", err=True)
        return
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"{len(written)} figure files in {out / 'plots'} "
               f"({time.perf_counter() - started:.0f} s)")


def _print_comparisons(table, summary) -> None:
    """The paired comparisons of comparisons.csv, F1 only: is each best really better?"""
    from lipobench.report.intervals import best_versus_best

    comparisons = best_versus_best(table, summary)
    f1 = comparisons[comparisons["metric"] == "f1"]
    if f1.empty:
        return
    typer.echo(f"paired comparisons of the best configurations (F1 at IoU > "
               f"{f1['iou_threshold'].iloc[0]:g}, 95 % paired bootstrap over "
               f"{int(f1['n_micrographs'].iloc[0])} test micrographs; all metrics in "
               "comparisons.csv):")
    for row in f1.itertuples(index=False):
        verdict = {"A better": f"{row.a_method} better",
                   "B better": f"{row.b_method} better"}.get(row.verdict, row.verdict)
        typer.echo(f"  {row.a_method} vs {row.b_method}: {row.difference:+.3f} "
                   f"({row.ci_low:+.3f} to {row.ci_high:+.3f}): {verdict}")


def _model_notes(table) -> list[str]:
    """A line a method whose adapter recorded how its models started (``model.*`` columns):
    a reader must know that a crYOLO row comes from random weights and a few CPU minutes."""
    columns = [c for c in table.columns if c.startswith("model.")]
    lines = []
    for method, rows in table[table["status"] == "ok"].groupby("method", sort=True):
        facts = {c.removeprefix("model."): sorted(rows[c].dropna().astype(str).unique())
                 for c in columns}
        facts = {k: v for k, v in facts.items() if v}
        if not facts:
            continue
        lines.append(f"{method} models: " + "; ".join(f"{k} {', '.join(v)}"
                                                      for k, v in facts.items())
                     + f"; training {rows['train_seconds'].max():.0f} s")
    return lines


def _print_best(summary) -> None:
    """One line a method: its best configuration by F1 at IoU 0.5, or why it did not run."""
    from rich.console import Console
    from rich.table import Table

    from lipobench.cli.compare import FEW_MICROGRAPHS
    from lipobench.report.aggregate import best_per_method

    best = best_per_method(summary)
    images = best.loc[best["status"] == "ok", "images"]
    n_images = int(images.max()) if len(images) else 0
    over = f" over {n_images} test micrographs" if n_images else ""
    caption = (f"with {n_images} micrographs the intervals are too narrow (they cover less "
               "than 95 %)" if 0 < n_images < FEW_MICROGRAPHS else None)
    table = Table(title="best configuration per method (IoU > 0.5, micro-averaged; "
                        f"95 % bootstrap intervals{over})", caption=caption)
    for column in ("method", "configuration", "precision", "recall", "F1"):
        # Fold long labels rather than cut them: the label is what the reader reruns.
        table.add_column(column, justify="left" if column in ("method", "configuration")
                         else "right", overflow="fold")

    def rate(row, metric: str) -> str:
        low, high = getattr(row, f"{metric}_ci_low", None), getattr(row, f"{metric}_ci_high",
                                                                   None)
        value = f"{getattr(row, metric):.3f}"
        if low is None or high is None or low != low or high != high:  # NaN: 1 micrograph
            return value
        # Two lines a cell, so the table keeps its layout in 80 columns.
        return f"{value}\n({low:.3f}–{high:.3f})"

    for row in best.itertuples():
        if row.status == "ok":
            table.add_row(row.method, row.config_label, rate(row, "precision"),
                          rate(row, "recall"), rate(row, "f1"))
        else:
            table.add_row(row.method, str(row.status), "", "", "")
    Console(stderr=False).print(table)
