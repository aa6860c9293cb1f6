"""``lipobench plot RESULTS``: the figures of a results folder, as PNG and/or SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lipobench.cli._app import app


@app.command("plot")
def plot_command(
    results: Path = typer.Argument(..., help="Results folder written by `lipobench run`."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the figures "
                                       "(default: RESULTS/plots)."),
    fmt: str = typer.Option("both", "--format", help="png, svg or both."),
) -> int:
    """Plot precision/recall vs IoU, score curves, recall by size, overlays, plugins' figures."""
    import matplotlib

    matplotlib.use("Agg")
    from lipobench.choices import choose
    from lipobench.fsutil import check_output_dir
    from lipobench.plugins import get_plugin_manager, load_registry
    from lipobench.report.make import PlotFormat, make_plots

    chosen = choose(PlotFormat, fmt, key="--format", what="format")
    if out is not None or results.is_dir():
        check_output_dir(out if out is not None else results / "plots", key="--out")
    plugins = get_plugin_manager()
    written, notes = make_plots(results, out=out, formats=chosen, plugins=plugins,
                                registry=load_registry(plugin_manager=plugins))
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    for path in written:
        typer.echo(str(path))
    return 0
