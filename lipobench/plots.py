"""Plots of a benchmark's results: tidy DataFrames in, matplotlib Figures out.

Every function here is pure: it reads the frame it is given, builds a new
:class:`matplotlib.figure.Figure` (no pyplot, so no global state and nothing to close) and
returns it. :mod:`lipobench.figures` computes the frames from a results folder and writes the
files with :func:`save_figure`.

Colours follow the method (:func:`method_colors`), so one method has one hue in every figure;
the configurations of a method differ by shade and line style.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lipobench.fsutil import atomic_path

__all__ = [
    "method_colors",
    "iou_curves_figure",
    "score_curves_figure",
    "size_recall_figure",
    "merge_threshold_figure",
    "save_figure",
]

_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def method_colors(methods: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """One colour-blind-safe colour per method, in sorted order of the method names.

    >>> colors = method_colors(["topaz", "cellpose", "topaz"])
    >>> sorted(colors), len(set(colors.values()))
    (['cellpose', 'topaz'], 2)
    """
    import seaborn as sns

    names = sorted(set(methods))
    palette = sns.color_palette("colorblind", n_colors=max(len(names), 1))
    return {name: tuple(palette[k % len(palette)]) for k, name in enumerate(names)}


def _shade(color, k: int, n: int):
    """The k-th of n shades of ``color``, darkest first, so configurations stay apart."""
    if n <= 1:
        return color
    mix = 0.55 * k / (n - 1)
    return tuple(c + (1.0 - c) * mix for c in color)


def _new_figure(rows: int, cols: int, *, width: float, height: float):
    import seaborn as sns
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _legend(fig, axes, *, title: str | None = None, entries: int) -> None:
    """One legend for the figure, outside the panels, in as many columns as it needs."""
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if not handles:
        return
    ncol = 1 if entries <= 14 else 2 if entries <= 30 else 3
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", ncol=ncol,
               title=title, frameon=False)


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: the frame lacks columns {missing}")


def _configurations(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, label) pairs in a stable order: by method, then label."""
    pairs = frame[["method", "label"]].drop_duplicates()
    return sorted(zip(pairs["method"], pairs["label"]))


def iou_curves_figure(rates: pd.DataFrame, *, title: str | None = None):
    """Precision and recall against the IoU threshold, one line per configuration.

    Parameters
    ----------
    rates : pandas.DataFrame
        Columns ``method``, ``label`` (one per configuration, shown in the legend),
        ``iou_threshold``, ``precision``, ``recall`` and optionally ``fold``. With several
        folds a line is the mean over folds and a band shows one standard deviation.
    title : str, keyword-only
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, precision (left) and recall (right); each panel has exactly one line
        per configuration.

    Examples
    --------
    >>> rates = pd.DataFrame({"method": "log", "label": ["log t=1"] * 2 + ["log t=3"] * 2,
    ...                       "iou_threshold": [0.5, 0.75] * 2,
    ...                       "precision": [0.9, 0.5, 1.0, 0.8], "recall": [0.8, 0.4, 0.6, 0.5]})
    >>> fig = iou_curves_figure(rates)
    >>> [len(ax.lines) for ax in fig.axes[:2]]
    [2, 2]
    """
    _check_columns(rates, ["method", "label", "iou_threshold", "precision", "recall"],
                   "iou_curves_figure")
    fig, axes = _new_figure(1, 2, width=11.5, height=4.2)
    configs = _configurations(rates)
    colors = method_colors(m for m, _ in configs)
    per_method = {m: [lab for mm, lab in configs if mm == m] for m in colors}
    folds = rates["fold"].nunique() if "fold" in rates.columns else 1
    for (method, label) in configs:
        rows = rates[(rates["method"] == method) & (rates["label"] == label)]
        stats = rows.groupby("iou_threshold")[["precision", "recall"]].agg(["mean", "std"])
        k = per_method[method].index(label)
        color = _shade(colors[method], k, len(per_method[method]))
        style = dict(color=color, linestyle=_LINESTYLES[k % len(_LINESTYLES)],
                     marker=_MARKERS[k % len(_MARKERS)], markersize=4, linewidth=1.6)
        x = stats.index.to_numpy(dtype=float)
        for ax, metric in zip(axes[0], ("precision", "recall")):
            mean = stats[(metric, "mean")].to_numpy()
            ax.plot(x, mean, label=label, **style)
            spread = stats[(metric, "std")].fillna(0.0).to_numpy()
            if folds > 1 and np.any(spread > 0):
                ax.fill_between(x, mean - spread, mean + spread, color=color, alpha=0.15,
                                linewidth=0)
    suffix = f" (mean ± sd over {folds} folds)" if folds > 1 else ""
    for ax, metric in zip(axes[0], ("Precision", "Recall")):
        ax.set_xlabel("IoU threshold")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs IoU threshold{suffix}", fontsize="medium")
        ax.set_ylim(-0.02, 1.02)
    _legend(fig, axes, title="configuration", entries=len(configs))
    if title:
        fig.suptitle(title)
    return fig


def score_curves_figure(curves: pd.DataFrame, *, iou_threshold: float = 0.5,
                        title: str | None = None):
    """Precision against recall as the score cutoff sweeps, one line per configuration.

    Parameters
    ----------
    curves : pandas.DataFrame
        Columns ``method``, ``label``, ``auc`` (area under the curve, shown in the legend),
        ``recall`` and ``precision``, one row per score cutoff, highest cutoff first.
    iou_threshold : float, keyword-only
        The IoU threshold the curves were computed at, for the axis title.

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
    _check_columns(curves, ["method", "label", "auc", "recall", "precision"],
                   "score_curves_figure")
    fig, axes = _new_figure(1, 1, width=8.5, height=5.0)
    ax = axes[0, 0]
    configs = _configurations(curves)
    colors = method_colors(m for m, _ in configs)
    per_method = {m: [lab for mm, lab in configs if mm == m] for m in colors}
    for method, label in configs:
        rows = curves[(curves["method"] == method) & (curves["label"] == label)]
        k = per_method[method].index(label)
        auc = float(rows["auc"].iloc[0])
        # Start each curve at recall 0 with its first precision, as the step area assumes.
        recall = np.concatenate([[0.0], rows["recall"].to_numpy(dtype=float)])
        precision = rows["precision"].to_numpy(dtype=float)
        precision = np.concatenate([precision[:1], precision])
        ax.step(recall, precision, where="pre", label=f"{label} (AUC {auc:.3f})",
                color=_shade(colors[method], k, len(per_method[method])),
                linestyle=_LINESTYLES[k % len(_LINESTYLES)], linewidth=1.6)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Precision-recall over score at IoU > {iou_threshold:g}", fontsize="medium")
    _legend(fig, axes, title="configuration (area under curve)", entries=len(configs))
    if title:
        fig.suptitle(title)
    return fig


def _bin_text(low: float, high: float, unit: str) -> str:
    return f"{low:.3g}–{high:.3g} {unit}"


def size_recall_figure(strata: pd.DataFrame, *, iou_threshold: float = 0.5,
                       title: str | None = None):
    """Recall by ground-truth particle size, grouped bars, one bar per configuration and bin.

    Parameters
    ----------
    strata : pandas.DataFrame
        Columns ``method``, ``label``, ``bin_low``, ``bin_high``, ``unit`` (``nm`` or ``px``),
        ``n_true`` (true particles in the bin) and ``recall`` (NaN for an empty bin).

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
    _check_columns(strata, ["method", "label", "bin_low", "bin_high", "unit", "n_true",
                            "recall"], "size_recall_figure")
    configs = _configurations(strata)
    bins = strata[["bin_low", "bin_high", "unit"]].drop_duplicates().sort_values("bin_low")
    counts = strata.drop_duplicates(["bin_low", "bin_high"]).set_index("bin_low")["n_true"]
    fig, axes = _new_figure(1, 1, width=max(7.0, 1.1 * len(bins) + 4.0), height=4.5)
    ax = axes[0, 0]
    colors = method_colors(m for m, _ in configs)
    per_method = {m: [lab for mm, lab in configs if mm == m] for m in colors}
    width = 0.8 / max(len(configs), 1)
    x = np.arange(len(bins))
    for j, (method, label) in enumerate(configs):
        rows = strata[(strata["method"] == method) & (strata["label"] == label)]
        recall = rows.set_index("bin_low")["recall"].reindex(bins["bin_low"]).to_numpy()
        k = per_method[method].index(label)
        # An empty bin has no recall: draw no bar there rather than a misleading 0.
        drawn = ~np.isnan(recall)
        ax.bar((x - 0.4 + width * (j + 0.5))[drawn], recall[drawn], width=width,
               label=label, color=_shade(colors[method], k, len(per_method[method])),
               edgecolor="white", linewidth=0.5)
    ax.set_xticks(x, [f"{_bin_text(lo, hi, unit)}\nn={int(counts.get(lo, 0))}"
                      for lo, hi, unit in bins.itertuples(index=False)], fontsize="small")
    unit = bins["unit"].iloc[0] if len(bins) else "px"
    ax.set_xlabel(f"Ground-truth equivalent diameter ({unit})")
    ax.set_ylabel(f"Recall (IoU > {iou_threshold:g})")
    ax.set_ylim(0, 1.05)
    ax.set_title("Recall by particle size (best configuration of each method)",
                 fontsize="medium")
    _legend(fig, axes, title="configuration", entries=len(configs))
    if title:
        fig.suptitle(title)
    return fig


def merge_threshold_figure(pipeline: pd.DataFrame, baselines: pd.DataFrame, *,
                           iou_threshold: float = 0.5, title: str | None = None):
    """LipoPose's Fig. 8: pipeline precision and recall by merge threshold, with baselines.

    Parameters
    ----------
    pipeline : pandas.DataFrame
        Columns ``threshold`` (the merge threshold, %), ``precision``, ``recall`` and
        optionally ``fold``: bars show the mean over folds, error bars one standard deviation.
    baselines : pandas.DataFrame
        Columns ``label`` (e.g. ``cellpose d=31``), ``precision``, ``recall`` and optionally
        ``fold``: one horizontal line per label at its mean over folds.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, precision and recall; the bars (highest threshold first) are the
        panels' patches and each baseline is one labelled horizontal line in each panel.

    Examples
    --------
    >>> pipeline = pd.DataFrame({"threshold": [20, 10, 20, 10], "fold": [0, 0, 1, 1],
    ...                          "precision": [0.9, 0.8, 0.7, 0.6], "recall": [0.5, 0.7, 0.5, 0.9]})
    >>> baselines = pd.DataFrame({"label": ["cellpose d=30"], "precision": [0.7], "recall": [0.6]})
    >>> fig = merge_threshold_figure(pipeline, baselines)
    >>> [round(float(p.get_height()), 2) for p in fig.axes[0].patches]
    [0.8, 0.7]
    >>> sorted(fig.axes[0].get_legend_handles_labels()[1])
    ['LipoPose pipeline', 'cellpose d=30']
    """
    _check_columns(pipeline, ["threshold", "precision", "recall"], "merge_threshold_figure")
    _check_columns(baselines, ["label", "precision", "recall"], "merge_threshold_figure")
    fig, axes = _new_figure(1, 2, width=12.0, height=4.3)
    stats = pipeline.groupby("threshold")[["precision", "recall"]].agg(["mean", "std"])
    stats = stats.sort_index(ascending=False)  # the study orders thresholds highest first
    x = np.arange(len(stats))
    bar_color = method_colors(["lipopose"])["lipopose"]
    import seaborn as sns

    line_colors = sns.color_palette("dark", n_colors=max(baselines["label"].nunique(), 1))
    folds = pipeline["fold"].nunique() if "fold" in pipeline.columns else 1
    for ax, metric in zip(axes[0], ("precision", "recall")):
        spread = stats[(metric, "std")].fillna(0.0).to_numpy() if folds > 1 else None
        ax.bar(x, stats[(metric, "mean")].to_numpy(), yerr=spread, capsize=3,
               color=bar_color, alpha=0.85, label="LipoPose pipeline")
        for k, (label, rows) in enumerate(sorted(baselines.groupby("label"),
                                                 key=lambda item: str(item[0]))):
            ax.axhline(float(rows[metric].mean()), color=line_colors[k % len(line_colors)],
                       linestyle=_LINESTYLES[k % len(_LINESTYLES)], linewidth=1.4, label=label)
        ax.set_xticks(x, [f"{t:g}" for t in stats.index])
        ax.set_xlabel("Merge threshold (%)")
        ax.set_ylabel(f"{metric.capitalize()} (IoU > {iou_threshold:g})")
        ax.set_ylim(0, 1.05)
        averaged = f", mean ± sd over {folds} folds" if folds > 1 else ""
        ax.set_title(f"{metric.capitalize()} by merge threshold{averaged}", fontsize="medium")
    _legend(fig, axes, entries=1 + baselines["label"].nunique())
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig, out_dir: str | Path, stem: str, formats: Sequence[str]) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<format>`` for each format, atomically.

    >>> import tempfile
    >>> fig = merge_threshold_figure(pd.DataFrame({"threshold": [5], "precision": [1.0],
    ...     "recall": [0.5]}), pd.DataFrame({"label": [], "precision": [], "recall": []}))
    >>> [p.suffix for p in save_figure(fig, tempfile.mkdtemp(), "x", ["png", "svg"])]
    ['.png', '.svg']
    """
    written = []
    for fmt in formats:
        target = Path(out_dir) / f"{stem}.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
        written.append(target)
    return written
