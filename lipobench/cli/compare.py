"""``lipobench compare RESULTS A B``: does configuration A beat B on the same micrographs?

The difference A - B of a metric at one IoU threshold, with its 95 % interval from a paired
bootstrap over the test micrographs both were scored on (the same resampled micrographs for
both, :func:`lipobench.report.intervals.compare`), and a verdict: ``A better``, ``B better`` or
``no significant difference at 95 %``. Writes nothing.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer

from lipobench.choices import choose
from lipobench.cli._app import app
from lipobench.errors import UserError

#: Below this many micrographs the percentile bootstrap is clearly too narrow
#: (tests/metrics/test_uncertainty.py: 5 micrographs cover about 83 % for a nominal 95 %).
FEW_MICROGRAPHS = 10


@app.command("compare")
def compare_command(
    results: Path = typer.Argument(..., help="Results folder written by `lipobench run`."),
    first: str = typer.Argument(..., metavar="A", help="A config id or label from "
                                "results.csv (or a unique prefix, or a method with one "
                                "configuration)."),
    second: str = typer.Argument(..., metavar="B", help="The configuration to compare A with."),
    iou: float = typer.Option(0.5, "--iou", help="IoU threshold (one the run scored)."),
    metric: str = typer.Option("f1", "--metric", help="f1, precision or recall."),
    resamples: int = typer.Option(2000, "--resamples", min=100,
                                  help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the resampled micrographs."),
) -> int:
    """Paired bootstrap comparison of two configurations of one run, on the same micrographs."""
    from lipobench.metrics.uncertainty import (
        DEFAULT_CONFIDENCE,
        Metric,
        MicrographCounts,
        bootstrap_rates,
    )
    from lipobench.report.folder import open_results
    from lipobench.report.intervals import compare, micrograph_counts, resolve_configuration

    # f1 first: it is the default, and the help lists it so.
    chosen = Metric(choose(["f1", "precision", "recall"], metric, key="--metric",
                           what="metric"))
    if not (math.isfinite(iou) and 0.0 < iou < 1.0):
        raise UserError(f"--iou {iou:g}: an IoU threshold lies strictly between 0 and 1; "
                        "use one the run scored, e.g. 0.5")
    table = open_results(results).table
    a = resolve_configuration(table, first, what="A")
    b = resolve_configuration(table, second, what="B")
    result = compare(table, a, b, iou_threshold=iou, metric=chosen, n_resamples=resamples,
                     seed=seed)
    labels = table.drop_duplicates("config_id").set_index("config_id")["config_label"]
    name = "F1" if chosen is Metric.F1 else chosen.value
    percent = f"{DEFAULT_CONFIDENCE * 100:g} %"
    for what, config_id in (("A", a), ("B", b)):
        counts = micrograph_counts(table, config_id, iou_threshold=iou)
        alone = bootstrap_rates(MicrographCounts(*(counts[c].astype(float).to_numpy()
                                                   for c in ("tp", "fp", "fn"))),
                                n_resamples=resamples, seed=seed)
        typer.echo(f"{what}: {config_id} ({labels.get(config_id, '')}): {name} "
                   f"{float(alone[chosen.value]):.3f}, {percent} interval "
                   f"{float(alone[f'{chosen.value}_ci_low']):.3f} to "
                   f"{float(alone[f'{chosen.value}_ci_high']):.3f} "
                   f"({len(counts)} micrographs)")
    typer.echo(f"A - B: {name} {result.difference:+.3f}, {percent} interval "
               f"{result.ci_low:+.3f} to {result.ci_high:+.3f} (paired bootstrap over "
               f"{result.n_micrographs} shared test micrographs, {result.n_resamples} "
               f"resamples, seed {result.seed}, IoU > {iou:g})")
    typer.echo(f"verdict: {result.verdict.text(confidence=result.confidence)}")
    if result.n_micrographs < FEW_MICROGRAPHS:
        typer.echo(f"note: with {result.n_micrographs} micrographs the bootstrap interval "
                   f"is too narrow (it covers less than {percent}); test on more "
                   "micrographs before trusting a difference", err=True)
    return 0
