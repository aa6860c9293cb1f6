"""Plots of a benchmark's results: tidy DataFrames in, matplotlib Figures out.

Every function here is pure: it reads the frame it is given, builds a new
:class:`matplotlib.figure.Figure` (no pyplot, so no global state and nothing to close) and
returns it. :mod:`lipobench.figures` computes the frames from a results folder and writes the
files with :func:`save_figure`.

Colours follow the method (:func:`method_colors`), so one method has one hue in every figure;
the configurations of a method differ by shade and line style.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


def _interval(rows: pd.DataFrame, metric: str):
    """The (low, high) interval columns of ``metric`` when the frame has them, else None."""
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low not in rows.columns or high not in rows.columns:
        return None
    values = rows[[low, high]].to_numpy(dtype=float)
    return None if np.all(np.isnan(values)) else (values[:, 0], values[:, 1])


def iou_curves_figure(rates: pd.DataFrame, *, title: str | None = None,
                      confidence: float = 0.95,
                      colors: Mapping[str, tuple[float, float, float]] | None = None):
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
        Each method's colour; default :func:`method_colors` of the methods in ``rates``. Give
        the whole run's so that a figure of two of its methods colours them as the figure of
        all of them does.

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
    _check_columns(rates, ["method", "label", "iou_threshold", "precision", "recall"],
                   "iou_curves_figure")
    if rates.duplicated(["method", "label", "iou_threshold"]).any():
        raise ValueError("iou_curves_figure: give one row per configuration and threshold "
                         "(summary.csv's rows, not per fold or image)")
    fig, axes = _new_figure(1, 2, width=11.5, height=4.2)
    configs = _configurations(rates)
    if colors is None:
        colors = method_colors(m for m, _ in configs)
    per_method = {m: [lab for mm, lab in configs if mm == m] for m, _ in configs}
    banded = False
    for (method, label) in configs:
        rows = rates[(rates["method"] == method) & (rates["label"] == label)]
        rows = rows.sort_values("iou_threshold")
        k = per_method[method].index(label)
        color = _shade(colors[method], k, len(per_method[method]))
        style = dict(color=color, linestyle=_LINESTYLES[k % len(_LINESTYLES)],
                     marker=_MARKERS[k % len(_MARKERS)], markersize=4, linewidth=1.6)
        x = rows["iou_threshold"].to_numpy(dtype=float)
        for ax, metric in zip(axes[0], ("precision", "recall")):
            ax.plot(x, rows[metric].to_numpy(dtype=float), label=label, **style)
            interval = _interval(rows, metric)
            if interval is not None:
                # Light bands: with 20-odd configurations darker ones hide the lines.
                ax.fill_between(x, *interval, color=color, alpha=0.12, linewidth=0)
                banded = True
    suffix = (f"\n(bands: {confidence * 100:g} % bootstrap intervals over micrographs)"
              if banded else "")
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
                           folds: pd.DataFrame | None = None, iou_threshold: float = 0.5,
                           confidence: float = 0.95, title: str | None = None):
    """LipoPose's Fig. 8: pipeline precision and recall by merge threshold, with baselines.

    Parameters
    ----------
    pipeline : pandas.DataFrame
        One row per merge threshold: ``threshold`` (%), ``precision``, ``recall`` (over all
        test micrographs) and optionally ``precision_ci_low``, ``precision_ci_high``,
        ``recall_ci_low``, ``recall_ci_high``, drawn as error bars.
    baselines : pandas.DataFrame
        One row per ``label`` (e.g. ``cellpose d=31``) with ``precision``, ``recall`` and
        optionally their interval columns: a horizontal line each, and a light band for
        its interval.
    folds : pandas.DataFrame, keyword-only, optional
        ``threshold``, ``fold``, ``precision``, ``recall`` per fold: drawn as dots over the
        bars, the spread over folds.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, precision and recall; the bars (highest threshold first) are the
        panels' patches and each baseline is one labelled horizontal line in each panel.

    Examples
    --------
    >>> pipeline = pd.DataFrame({"threshold": [20, 10], "precision": [0.8, 0.7],
    ...                          "recall": [0.5, 0.8], "precision_ci_low": [0.7, 0.6],
    ...                          "precision_ci_high": [0.9, 0.75]})
    >>> baselines = pd.DataFrame({"label": ["cellpose d=30"], "precision": [0.7], "recall": [0.6]})
    >>> fig = merge_threshold_figure(pipeline, baselines)
    >>> [round(float(p.get_height()), 2) for p in fig.axes[0].patches]
    [0.8, 0.7]
    >>> sorted(fig.axes[0].get_legend_handles_labels()[1])
    ['LipoPose pipeline', 'cellpose d=30']
    """
    _check_columns(pipeline, ["threshold", "precision", "recall"], "merge_threshold_figure")
    _check_columns(baselines, ["label", "precision", "recall"], "merge_threshold_figure")
    if pipeline["threshold"].duplicated().any():
        raise ValueError("merge_threshold_figure: give one pipeline row per threshold; "
                         "per-fold values go in folds=")
    fig, axes = _new_figure(1, 2, width=12.0, height=4.3)
    pipeline = pipeline.sort_values("threshold", ascending=False)  # the study's order
    x = np.arange(len(pipeline))
    position = dict(zip(pipeline["threshold"], x))
    bar_color = method_colors(["lipopose"])["lipopose"]
    import seaborn as sns

    baselines = baselines.sort_values("label", key=lambda s: s.astype(str), kind="stable")
    line_colors = sns.color_palette("dark", n_colors=max(len(baselines), 1))
    n_folds = folds["fold"].nunique() if folds is not None and len(folds) else 0
    for ax, metric in zip(axes[0], ("precision", "recall")):
        height = pipeline[metric].to_numpy(dtype=float)
        interval = _interval(pipeline, metric)
        # Error bars from the interval around the bar: asymmetric, as intervals of rates are.
        yerr = None if interval is None else np.vstack(
            [np.clip(height - interval[0], 0, None), np.clip(interval[1] - height, 0, None)])
        ax.bar(x, height, yerr=yerr, capsize=3, color=bar_color, alpha=0.85,
               label="LipoPose pipeline")
        if n_folds > 1:
            dots = folds[folds["threshold"].isin(position)]
            ax.scatter(dots["threshold"].map(position).to_numpy(dtype=float),
                       dots[metric].to_numpy(dtype=float), s=10, color="black", alpha=0.6,
                       zorder=3, label=f"one fold (of {n_folds})")
        for k, row in enumerate(baselines.itertuples(index=False)):
            color = line_colors[k % len(line_colors)]
            ax.axhline(float(getattr(row, metric)), color=color,
                       linestyle=_LINESTYLES[k % len(_LINESTYLES)], linewidth=1.4,
                       label=str(row.label))
            band = _interval(baselines.iloc[[k]], metric)
            if band is not None:
                # A collection across the panel (axes x, data y), not a patch: the bars
                # stay the only patches.
                ax.fill_between([0.0, 1.0], float(band[0][0]), float(band[1][0]),
                                transform=ax.get_yaxis_transform(), color=color,
                                alpha=0.08, linewidth=0)
        ax.set_xticks(x, [f"{t:g}" for t in pipeline["threshold"]])
        ax.set_xlabel("Merge threshold (%)")
        ax.set_ylabel(f"{metric.capitalize()} (IoU > {iou_threshold:g})")
        ax.set_ylim(0, 1.05)
        shown = (f"\n(error bars and bands: {confidence * 100:g} % bootstrap intervals)"
                 if interval is not None else "")
        ax.set_title(f"{metric.capitalize()} by merge threshold{shown}", fontsize="medium")
    _legend(fig, axes, entries=1 + len(baselines) + (n_folds > 1))
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
