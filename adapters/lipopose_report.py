"""LipoPose's part of the report: its Fig. 8 and the legend names of its own parameters.

A plugin module like any third-party one: :func:`lipobench_figures` implements the hook of
that name (:mod:`lipobench.hookspecs`), and the built-in plugin
(:mod:`lipobench.adapters.builtin`) registers LipoPose with :data:`LEGEND_ABBREVIATIONS`.
Nothing in lipobench's core names LipoPose; this module may, being LipoPose's. Importing it
is cheap (the plugin manager imports it): numpy, pandas and matplotlib come in when a figure
is drawn.

Fig. 8 of the LipoPose study: the pipeline's precision and recall at each merge threshold
(bars, with 95 % bootstrap error bars and one dot per fold) against the Cellpose
configurations it builds on (lines with bands), written as ``lipopose_merge_thresholds``
when both ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from lipobench.hookspecs import hookimpl

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ADAPTER", "BASELINE", "LEGEND_ABBREVIATIONS", "FIGURE", "merge_parameter",
           "merge_threshold_frames", "merge_threshold_figure", "lipobench_figures"]

#: The adapter whose configurations are the bars, and the one whose are the baselines.
ADAPTER, BASELINE = "lipopose", "cellpose"

#: Legend names of LipoPose's own parameters (its Cellpose ones carry theirs in their schema).
LEGEND_ABBREVIATIONS = {"until": "t", "diameter_start": "dmin", "diameter_stop": "dmax",
                        "diameter_step": "dstep", "confidence": "conf"}

#: The file stem of Fig. 8.
FIGURE = "lipopose_merge_thresholds"

#: The merge-threshold parameter when the registry cannot say (``threshold``: older tables).
_MERGE_PARAMETERS = ("until", "threshold")


def merge_parameter(folder) -> str:
    """The merge-threshold parameter: LipoPose's one SELECT parameter, as registered."""
    from lipobench.adapters.base import Stage

    registry = folder.registry
    if ADAPTER in registry:
        parameters = registry.entry(ADAPTER).adapter_cls.parameters
        select = sorted(k for k, p in parameters.items() if p.stage is Stage.SELECT)
        if len(select) == 1:
            return select[0]
    present = set(folder.parameters.loc[folder.parameters["adapter"] == ADAPTER, "parameter"])
    return next((k for k in _MERGE_PARAMETERS if k in present), _MERGE_PARAMETERS[0])


def merge_threshold_frames(folder, *, threshold_parameter: str, pipeline_adapter: str = ADAPTER,
                           baseline_adapter: str = BASELINE, iou_threshold: float = 0.5):
    """The pipeline's rates by merge threshold, each baseline configuration's, and per fold.

    The pipeline's configurations are grouped by everything but ``threshold_parameter``; the
    group with the best F1 over all test micrographs is shown. Rates and their intervals come
    from the folder's summary. Returns ``(pipeline, baselines, folds)`` frames for
    :func:`merge_threshold_figure`, or ``None`` when either method is absent.
    """
    import numpy as np

    from lipobench.report.aggregate import fold_rates, nearest_threshold

    table, values = folder.table, folder.parameters
    pipe = table[(table["adapter"] == pipeline_adapter) & (table["status"] == "ok")]
    base = table[(table["adapter"] == baseline_adapter) & (table["status"] == "ok")]
    merge = values[(values["adapter"] == pipeline_adapter)
                   & (values["parameter"] == threshold_parameter)]
    if pipe.empty or base.empty or merge.empty:
        return None
    summary = folder.summary
    summary = summary[summary["status"] == "ok"]
    at = nearest_threshold(summary["iou_threshold"], iou_threshold)
    summary = summary[np.isclose(summary["iou_threshold"].astype(float), at)]
    specs = pipe.drop_duplicates("config_id")
    group_of = {}
    for cid, spec in zip(specs["config_id"], specs["param_spec"], strict=True):
        rest = {k: v for k, v in json.loads(spec).items() if k != threshold_parameter}
        group_of[cid] = json.dumps(rest, sort_keys=True)
    pipe_rates = summary[summary["config_id"].isin(group_of)].assign(
        group=lambda f: f["config_id"].map(group_of))
    # Ties go to the first group in sorted order, so the choice is reproducible.
    best_group = pipe_rates.groupby("group")["f1"].mean().sort_index().idxmax()
    chosen = pipe_rates[pipe_rates["group"] == best_group]
    # The value of the first fold each configuration ran in, as the results table lists it.
    first = merge.sort_values(["config_id", "fold"], kind="stable").drop_duplicates("config_id")
    thresholds = first.set_index("config_id")["number"].astype(float)
    intervals = [c for c in summary.columns if c.endswith(("_ci_low", "_ci_high"))]
    pipeline = chosen.assign(threshold=chosen["config_id"].map(thresholds))
    baselines = summary[summary["config_id"].isin(set(base["config_id"]))]
    baselines = baselines.assign(label=baselines["config_id"].map(folder.labels))
    rates = fold_rates(table)
    per_fold = rates[rates["config_id"].isin(set(chosen["config_id"]))
                     & np.isclose(rates["iou_threshold"], at)]
    per_fold = per_fold.assign(threshold=per_fold["config_id"].map(thresholds))
    return (pipeline[["method", "threshold", "precision", "recall", *intervals]],
            baselines[["method", "label", "precision", "recall", *intervals]],
            per_fold[["threshold", "fold", "precision", "recall"]])


def merge_threshold_figure(pipeline: pd.DataFrame, baselines: pd.DataFrame, *,
                           folds: pd.DataFrame | None = None, iou_threshold: float = 0.5,
                           confidence: float = 0.95, title: str | None = None,
                           colors: Mapping[str, tuple[float, ...]] | None = None):
    """LipoPose's Fig. 8: pipeline precision and recall by merge threshold, with baselines.

    Parameters
    ----------
    pipeline : pandas.DataFrame
        One row per merge threshold: ``threshold`` (%), ``precision``, ``recall`` (over all
        test micrographs) and optionally ``precision_ci_low``, ``precision_ci_high``,
        ``recall_ci_low``, ``recall_ci_high``, drawn as error bars, and ``method``.
    baselines : pandas.DataFrame
        One row per ``label`` (e.g. ``cellpose d=31``) with ``precision``, ``recall``,
        optionally their interval columns and ``method``: a horizontal line each, and a
        light band for its interval.
    folds : pandas.DataFrame, keyword-only, optional
        ``threshold``, ``fold``, ``precision``, ``recall`` per fold: drawn as dots over the
        bars, the spread over folds.
    colors : mapping, keyword-only
        Each method's colour (the results folder's); the bars take the pipeline's method's,
        each baseline a shade of its method's. Default: one colour each, as
        :func:`lipobench.report.style.method_colors` gives them.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels, precision and recall; the bars (highest threshold first) are the
        panels' patches and each baseline is one labelled horizontal line in each panel.

    Examples
    --------
    >>> import pandas as pd
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
    import numpy as np

    from lipobench.report.style import (
        LINESTYLES,
        check_columns,
        colors_for,
        figure_legend,
        interval,
        new_figure,
        shade,
    )

    check_columns(pipeline, ["threshold", "precision", "recall"], "merge_threshold_figure")
    check_columns(baselines, ["label", "precision", "recall"], "merge_threshold_figure")
    if pipeline["threshold"].duplicated().any():
        raise ValueError("merge_threshold_figure: give one pipeline row per threshold; "
                         "per-fold values go in folds=")
    fig, axes = new_figure(1, 2, width=12.0, height=4.3)
    pipeline = pipeline.sort_values("threshold", ascending=False)  # the study's order
    x = np.arange(len(pipeline))
    position = dict(zip(pipeline["threshold"], x, strict=True))
    baselines = baselines.sort_values("label", key=lambda s: s.astype(str), kind="stable")
    # Without method columns, the pipeline and each baseline are a "method" of their own.
    pipe_method = str(pipeline["method"].iloc[0]) if "method" in pipeline and len(pipeline) \
        else "LipoPose pipeline"
    base_methods = (baselines["method"] if "method" in baselines else baselines["label"]
                    ).astype(str).tolist()
    colors = colors_for([pipe_method, *base_methods], colors)
    line_colors = [shade(colors[m], base_methods[:k].count(m), base_methods.count(m))
                   for k, m in enumerate(base_methods)]
    n_folds = folds["fold"].nunique() if folds is not None and len(folds) else 0
    for ax, metric in zip(axes[0], ("precision", "recall"), strict=True):
        height = pipeline[metric].to_numpy(dtype=float)
        band = interval(pipeline, metric)
        # Error bars from the interval around the bar: asymmetric, as intervals of rates are.
        yerr = None if band is None else np.vstack(
            [np.clip(height - band[0], 0, None), np.clip(band[1] - height, 0, None)])
        ax.bar(x, height, yerr=yerr, capsize=3, color=colors[pipe_method], alpha=0.85,
               label="LipoPose pipeline")
        if folds is not None and n_folds > 1:
            dots = folds[folds["threshold"].isin(position)]
            ax.scatter(dots["threshold"].map(position).to_numpy(dtype=float),
                       dots[metric].to_numpy(dtype=float), s=10, color="black", alpha=0.6,
                       zorder=3, label=f"one fold (of {n_folds})")
        for k, row in enumerate(baselines.itertuples(index=False)):
            ax.axhline(float(getattr(row, metric)), color=line_colors[k],
                       linestyle=LINESTYLES[k % len(LINESTYLES)], linewidth=1.4,
                       label=str(row.label))
            spread = interval(baselines.iloc[[k]], metric)
            if spread is not None:
                # A collection across the panel (axes x, data y), not a patch: the bars
                # stay the only patches.
                ax.fill_between([0.0, 1.0], float(spread[0][0]), float(spread[1][0]),
                                transform=ax.get_yaxis_transform(), color=line_colors[k],
                                alpha=0.08, linewidth=0)
        ax.set_xticks(x, [f"{t:g}" for t in pipeline["threshold"]])
        ax.set_xlabel("Merge threshold (%)")
        ax.set_ylabel(f"{metric.capitalize()} (IoU > {iou_threshold:g})")
        ax.set_ylim(0, 1.05)
        shown = (f"\n(error bars and bands: {confidence * 100:g} % bootstrap intervals)"
                 if band is not None else "")
        ax.set_title(f"{metric.capitalize()} by merge threshold{shown}", fontsize="medium")
    figure_legend(fig, axes, entries=1 + len(baselines) + (n_folds > 1))
    if title:
        fig.suptitle(title)
    return fig


@hookimpl
def lipobench_figures(folder):
    """Fig. 8 (``lipopose_merge_thresholds``) when the folder holds LipoPose and Cellpose."""
    if ADAPTER not in set(folder.table["adapter"]):
        return None
    frames = merge_threshold_frames(folder, threshold_parameter=merge_parameter(folder))
    if frames is None:
        return None
    pipeline, baselines, per_fold = frames
    return {FIGURE: merge_threshold_figure(pipeline, baselines, folds=per_fold,
                                           title=folder.name, colors=folder.colors)}
