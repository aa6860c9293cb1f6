"""Every figure of a results folder, as files: the built-in ones and the plugins'.

Files written under ``OUT`` (default ``RESULTS/plots``), each as PNG and/or SVG:

``precision_recall_vs_iou``   precision and recall against IoU, one line per configuration,
                              bands for the 95 % bootstrap intervals of ``summary.csv``
``precision_recall_vs_iou_A_vs_B``  the same for two methods A and B, for every pair when
                              three or more methods ran (the study's Figs. 4-7: Cellpose
                              against crYOLO, Cellpose against Topaz)
``score_precision_recall``    precision-recall over score at IoU 0.5, AUC in the legend
``recall_by_size``            recall by ground-truth diameter, best configuration per method
``overlays``                  TP/FP/FN on the first test image, best configuration per method

and what the plugins' ``lipobench_figures`` hook returns (:mod:`lipobench.hookspecs`; the
built-in LipoPose plugin adds its Fig. 8, ``lipopose_merge_thresholds``, when LipoPose and
Cellpose both ran: :mod:`lipobench.adapters.lipopose_report`). Every figure of one folder
colours a method the same (:attr:`lipobench.report.folder.ResultsFolder.colors`).
"""

from __future__ import annotations

import enum
import re
from pathlib import Path

from lipobench.errors import UserError
from lipobench.report.aggregate import SCORE_IOU, best_configurations
from lipobench.report.folder import ResultsFolder, RunFilesMissing, open_results
from lipobench.report.style import save_figure

__all__ = ["PlotFormat", "make_plots"]

_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class PlotFormat(str, enum.Enum):
    """The file formats of ``lipobench plot --format``."""

    PNG = "png"
    SVG = "svg"
    BOTH = "both"

    def suffixes(self) -> list[str]:
        """The file suffixes to write, without the dot."""
        return ["png", "svg"] if self is PlotFormat.BOTH else [self.value]


def _truth_figures(folder: ResultsFolder, out: Path, suffixes: list[str], written: list[Path],
                   notes: list[str]) -> None:
    """Score curves, recall by size and overlays: they need the predictions and the dataset.

    Each file is added to ``written`` as it is saved.
    """
    from lipobench.report import plots
    from lipobench.report.figures import (
        overlay_panels,
        score_curves,
        select_parameters,
        size_strata,
    )
    from lipobench.report.overlays import overlay_figure

    name, colors = folder.name, folder.colors
    select = select_parameters(folder.registry, sorted(set(folder.table["adapter"])))
    best = best_configurations(folder.table)
    curves = score_curves(folder, select=select)
    if curves.empty:
        notes.append("no scored predictions: skipped score_precision_recall")
    else:
        written += save_figure(plots.score_curves_figure(curves, title=name, colors=colors),
                               out, "score_precision_recall", suffixes)
    strata = size_strata(folder, best)
    if not strata.empty:
        written += save_figure(plots.size_recall_figure(strata, title=name, colors=colors),
                               out, "recall_by_size", suffixes)
    image = folder.first_test_image
    if image is not None:
        micrograph, panels = overlay_panels(folder, best, image)
        if panels:
            fig = overlay_figure(micrograph.image, panels,
                                 title=f"{name}: {image}\nbest configuration per "
                                       f"method, IoU > {SCORE_IOU:g}")
            written += save_figure(fig, out, "overlays", suffixes)


def _plugin_figures(folder: ResultsFolder, out: Path, suffixes: list[str], plugins
                    ) -> list[Path]:
    """What the plugins' ``lipobench_figures`` return, saved in the order of their stems."""
    if plugins is None:
        from lipobench.plugins import get_plugin_manager

        plugins = get_plugin_manager()
    written = []
    for extra in plugins.hook.lipobench_figures(folder=folder):
        for stem, figure in sorted((extra or {}).items()):
            if not _STEM.fullmatch(stem):
                raise UserError(f"a lipobench plugin returned the figure name {stem!r}; "
                                "lipobench_figures names each figure by a plain file stem "
                                "(letters, digits, '.', '_', '-')")
            written += save_figure(figure, out, stem, suffixes)
    return written


def make_plots(results: str | Path, *, out: str | Path | None = None,
               formats: PlotFormat | str = PlotFormat.BOTH, registry=None,
               plugins=None) -> tuple[list[Path], list[str]]:
    """Draw every figure of a results folder; return the files written and notes on skips.

    The folder is checked before anything is drawn; figures that need ground truth or the
    predictions are skipped, with a note, when the run's dataset or its prediction files are
    gone (published results keep the tables only). ``registry`` (the adapters) and
    ``plugins`` (a pluggy PluginManager, whose ``lipobench_figures`` add figures) default
    to the installed plugins'.
    """
    folder = open_results(results, registry=registry)
    try:
        formats = PlotFormat(formats)
    except ValueError:
        raise UserError(f"--format {formats}: unknown format; use png, svg or both") from None
    out = Path(out) if out is not None else folder.root / "plots"
    suffixes = formats.suffixes()
    if folder.ok.empty:
        raise UserError(f"{folder.root}: no configuration ran successfully, nothing to plot; "
                        "see the status and error columns of results.csv")
    from lipobench.report import plots
    from lipobench.report.figures import method_pairs

    written: list[Path] = []
    notes: list[str] = []
    name, colors = folder.name, folder.colors
    summary = folder.summary
    rates = summary[summary["status"] == "ok"].assign(
        label=lambda f: f["config_id"].map(folder.labels))
    written += save_figure(plots.iou_curves_figure(rates, title=name, colors=colors), out,
                           "precision_recall_vs_iou", suffixes)
    # The study's Figs. 4-7 set two methods side by side; with three or more methods in one
    # figure, 20-odd lines hide each other.
    for first, second in method_pairs(rates["method"]):
        pair = rates[rates["method"].isin([first, second])]
        figure = plots.iou_curves_figure(pair, title=f"{name}: {first} vs {second}",
                                         colors=colors)
        written += save_figure(figure, out, f"precision_recall_vs_iou_{first}_vs_{second}",
                               suffixes)
    try:
        _truth_figures(folder, out, suffixes, written, notes)
    except RunFilesMissing as exc:
        notes.append(f"{exc}; skipped the figures that need it")
    written += _plugin_figures(folder, out, suffixes, plugins)
    return written, notes
