"""Figures of a benchmark's results: tidy DataFrames in, matplotlib Figures out.

Every function here is pure: it reads the frame it is given, builds a new
:class:`matplotlib.figure.Figure` (no pyplot, so no global state and nothing to close) and
returns it. :mod:`lipobench.report.figures` computes the frames from a results folder and
:mod:`lipobench.report.make` writes the files (:func:`lipobench.report.style.save_figure`).

Colours follow the method: give each function the results folder's colour map (``colors=``,
:attr:`lipobench.report.folder.ResultsFolder.colors`), so one method has one hue in every
figure; the configurations of a method differ by shade and line style.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from lipobench.report.style import (
    LINESTYLES,
    MARKERS,
    Color,
    check_columns,
    colors_for,
    configurations,
    figure_legend,
    interval,
    new_figure,
    shade,
)

__all__ = ["iou_curves_figure", "score_curves_figure", "size_recall_figure"]


def iou_curves_figure(rates: pd.DataFrame, *, title: str | None = None,
                      confidence: float = 0.95,
                      colors: Mapping[str, Color] | None = None):
    """Precision and recall against the IoU threshold, one line per configuration.

    Parameters
    ----------
    rates : pandas.DataFrame
        One row per configuration and threshold (the ``ok`` rows of ``summary.csv``):
        columns ``method``, ``label`` (one per configuration, shown in the legend),
        ``iou_threshold``, ``precision``, ``recall`` and optionally ``precision_ci_low``,
        ``precision_ci_high``, ``recall_ci_low``, ``recall_ci_high``, drawn as bands.
    title : str, keyword-only
        Figure title.
    confidence : float, keyword-only
        The level of the intervals, for the panel titles.
    colors : mapping, keyword-only
        Each method's colour; default :func:`~lipobench.report.style.method_colors` of the
        methods in ``rates``. Give the results folder's so that a figure of two of its
        methods colours them as the figure of all of them does.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, precision (left) and recall (right); each panel has exactly one line
        per configuration and, with intervals, one band (a collection) per configuration.

    Examples
    --------
    >>> rates = pd.DataFrame({"method": "log", "label": ["log t=1"] * 2 + ["log t=3"] * 2,
    ...                       "iou_threshold": [0.5, 0.75] * 2,
    ...                       "precision": [0.9, 0.5, 1.0, 0.8], "recall": [0.8, 0.4, 0.6, 0.5]})
    >>> fig = iou_curves_figure(rates)
    >>> [len(ax.lines) for ax in fig.axes[:2]], len(fig.axes[0].collections)
    ([2, 2], 0)
    >>> banded = rates.assign(precision_ci_low=rates["precision"] - 0.1,
    ...                       precision_ci_high=rates["precision"] + 0.05)
    >>> len(iou_curves_figure(banded).axes[0].collections)
    2
    """
    check_columns(rates, ["method", "label", "iou_threshold", "precision", "recall"],
                   "iou_curves_figure")
    if rates.duplicated(["method", "label", "iou_threshold"]).any():
        raise ValueError("iou_curves_figure: give one row per configuration and threshold "
                         "(summary.csv's rows, not per fold or image)")
    fig, axes = new_figure(1, 2, width=11.5, height=4.2)
    configs = configurations(rates)
    colors = colors_for((m for m, _ in configs), colors)
    per_method = {m: [lab for mm, lab in configs if mm == m] for m, _ in configs}
    banded = False
    for (method, label) in configs:
        rows = rates[(rates["method"] == method) & (rates["label"] == label)]
        rows = rows.sort_values("iou_threshold")
        k = per_method[method].index(label)
        color = shade(colors[method], k, len(per_method[method]))
        style = dict(color=color, linestyle=LINESTYLES[k % len(LINESTYLES)],
                     marker=MARKERS[k % len(MARKERS)], markersize=4, linewidth=1.6)
        x = rows["iou_threshold"].to_numpy(dtype=float)
        for ax, metric in zip(axes[0], ("precision", "recall"), strict=True):
            ax.plot(x, rows[metric].to_numpy(dtype=float), label=label, **style)
            band = interval(rows, metric)
            if band is not None:
                # Light bands: with 20-odd configurations darker ones hide the lines.
                ax.fill_between(x, *band, color=color, alpha=0.12, linewidth=0)
                banded = True
    suffix = (f"\n(bands: {confidence * 100:g} % bootstrap intervals over micrographs)"
              if banded else "")
    for ax, metric in zip(axes[0], ("Precision", "Recall"), strict=True):
        ax.set_xlabel("IoU threshold")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs IoU threshold{suffix}", fontsize="medium")
        ax.set_ylim(-0.02, 1.02)
    figure_legend(fig, axes, title="configuration", entries=len(configs))
    if title:
        fig.suptitle(title)
    return fig


def score_curves_figure(curves: pd.DataFrame, *, iou_threshold: float = 0.5,
                        title: str | None = None, colors: Mapping[str, Color] | None = None):
    """Precision against recall as the score cutoff sweeps, one line per configuration.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``method``, ``label``, ``auc`` (area under the curve, shown in the legend),
        ``recall`` and ``precision``, one row per score cutoff, highest cutoff first.
    iou_threshold : float, keyword-only
        The IoU threshold the curves were computed at, for the axis title.
    colors : mapping, keyword-only
        Each method's colour (see :func:`iou_curves_figure`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> curves = pd.DataFrame({"method": "topaz", "label": "topaz r=12", "auc": 0.61,
    ...                        "recall": [0.2, 0.5, 0.8], "precision": [1.0, 0.8, 0.6]})
    >>> fig = score_curves_figure(curves)
    >>> fig.axes[0].get_legend_handles_labels()[1]
    ['topaz r=12 (AUC 0.610)']
    """
    check_columns(curves, ["method", "label", "auc", "recall", "precision"],
                   "score_curves_figure")
    fig, axes = new_figure(1, 1, width=8.5, height=5.0)
    ax = axes[0, 0]
    configs = configurations(curves)
    colors = colors_for((m for m, _ in configs), colors)
    per_method = {m: [lab for mm, lab in configs if mm == m] for m, _ in configs}
    for method, label in configs:
        rows = curves[(curves["method"] == method) & (curves["label"] == label)]
        k = per_method[method].index(label)
        auc = float(rows["auc"].iloc[0])
        # Start each curve at recall 0 with its first precision, as the step area assumes.
        recall = np.concatenate([[0.0], rows["recall"].to_numpy(dtype=float)])
        precision = rows["precision"].to_numpy(dtype=float)
        precision = np.concatenate([precision[:1], precision])
        ax.step(recall, precision, where="pre", label=f"{label} (AUC {auc:.3f})",
                color=shade(colors[method], k, len(per_method[method])),
                linestyle=LINESTYLES[k % len(LINESTYLES)], linewidth=1.6)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Precision-recall over score at IoU > {iou_threshold:g}", fontsize="medium")
    figure_legend(fig, axes, title="configuration (area under curve)", entries=len(configs))
    if title:
        fig.suptitle(title)
    return fig


def _bin_text(low: float, high: float, unit: str) -> str:
    return f"{low:.3g}–{high:.3g} {unit}"


def size_recall_figure(strata: pd.DataFrame, *, iou_threshold: float = 0.5,
                       title: str | None = None, colors: Mapping[str, Color] | None = None):
    """Recall by ground-truth particle size, grouped bars, one bar per configuration and bin.

    Parameters
    ----------
    strata : pandas.DataFrame
        Columns ``method``, ``label``, ``bin_low``, ``bin_high``, ``unit`` (``nm`` or ``px``),
        ``n_true`` (true particles in the bin) and ``recall`` (NaN for an empty bin).
    colors : mapping, keyword-only
        Each method's colour (see :func:`iou_curves_figure`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> strata = pd.DataFrame({"method": "log", "label": "log", "bin_low": [10.0, 20.0],
    ...                        "bin_high": [20.0, 30.0], "unit": "nm", "n_true": [4, 2],
    ...                        "recall": [0.5, 1.0]})
    >>> fig = size_recall_figure(strata)
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [0.5, 1.0]
    """
    check_columns(strata, ["method", "label", "bin_low", "bin_high", "unit", "n_true",
                            "recall"], "size_recall_figure")
    configs = configurations(strata)
    bins = strata[["bin_low", "bin_high", "unit"]].drop_duplicates().sort_values("bin_low")
    counts = strata.drop_duplicates(["bin_low", "bin_high"]).set_index("bin_low")["n_true"]
    fig, axes = new_figure(1, 1, width=max(7.0, 1.1 * len(bins) + 4.0), height=4.5)
    ax = axes[0, 0]
    colors = colors_for((m for m, _ in configs), colors)
    per_method = {m: [lab for mm, lab in configs if mm == m] for m, _ in configs}
    width = 0.8 / max(len(configs), 1)
    x = np.arange(len(bins))
    for j, (method, label) in enumerate(configs):
        rows = strata[(strata["method"] == method) & (strata["label"] == label)]
        recall = rows.set_index("bin_low")["recall"].reindex(bins["bin_low"]).to_numpy()
        k = per_method[method].index(label)
        # An empty bin has no recall: draw no bar there rather than a misleading 0.
        drawn = ~np.isnan(recall)
        ax.bar((x - 0.4 + width * (j + 0.5))[drawn], recall[drawn], width=width,
               label=label, color=shade(colors[method], k, len(per_method[method])),
               edgecolor="white", linewidth=0.5)
    ax.set_xticks(x, [f"{_bin_text(lo, hi, unit)}\nn={int(counts.get(lo, 0))}"
                      for lo, hi, unit in bins.itertuples(index=False)], fontsize="small")
    unit = bins["unit"].iloc[0] if len(bins) else "px"
    ax.set_xlabel(f"Ground-truth equivalent diameter ({unit})")
    ax.set_ylabel(f"Recall (IoU > {iou_threshold:g})")
    ax.set_ylim(0, 1.05)
    ax.set_title("Recall by particle size (best configuration of each method)",
                 fontsize="medium")
    figure_legend(fig, axes, title="configuration", entries=len(configs))
    if title:
        fig.suptitle(title)
    return fig
