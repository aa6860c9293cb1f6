"""The figures of a results folder: read what ``lipobench run`` wrote, compute, plot, save.

This module does the reading and the scoring; :mod:`lipobench.plots` and
:mod:`lipobench.overlays` do the drawing. What the results table does not hold (score sweeps,
sizes, which region was matched) is recomputed from the cached per-image prediction files
and the dataset's ground truth with :mod:`lipobench.metrics`, exactly as the runner scored
them (:func:`lipobench.runner.scoring_shape`).

Files written under ``OUT`` (default ``RESULTS/plots``), each as PNG and/or SVG:

``precision_recall_vs_iou``   precision and recall against IoU, one line per configuration,
                              bands for the 95 % bootstrap intervals of ``summary.csv``
``precision_recall_vs_iou_A_vs_B``  the same for two methods A and B, for every pair when
                              three or more methods ran (the study's Figs. 4-7: Cellpose
                              against crYOLO, Cellpose against Topaz)
``score_precision_recall``    precision-recall over score at IoU 0.5, AUC in the legend
``recall_by_size``            recall by ground-truth diameter, best configuration per method
``overlays``                  TP/FP/FN on the first test image, best configuration per method
``lipopose_merge_thresholds`` LipoPose's Fig. 8 (when LipoPose and Cellpose both ran): bars
                              with 95 % bootstrap error bars, one dot per fold, baselines
                              as lines with bands
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lipobench.errors import UserError

__all__ = [
    "PlotFormat",
    "ResultsFolder",
    "open_results",
    "config_labels",
    "fold_rates",
    "best_configurations",
    "score_curves",
    "size_strata",
    "overlay_panels",
    "merge_threshold_frames",
    "method_pairs",
    "make_plots",
    "SCORE_IOU",
]

#: The IoU threshold of the score sweeps, size strata, overlays and "best" choice (the paper's).
SCORE_IOU = 0.5

#: Short names of common parameters in legends ("cellpose d=31", "topaz r=12/ex=14").
ABBREVIATIONS = {
    "diameter": "d", "radius": "r", "extraction_radius": "ex", "threshold": "t",
    "box_size": "box", "confidence": "conf", "min_sigma": "σmin", "max_sigma": "σmax",
    "num_sigma": "nσ", "downsample": "bin", "n_epochs": "ep", "nb_epoch": "ep",
    "learning_rate": "lr", "flow_threshold": "flow", "cellprob_threshold": "cellprob",
    "until": "t", "extract_radius": "ex", "min_score": "score", "diameter_step": "dstep",
    "diameter_start": "dmin", "diameter_stop": "dmax",
}

#: The merge-threshold parameter of LipoPose when the registry cannot say (adapter missing).
_MERGE_PARAMETERS = ("until", "threshold")

_REQUIRED = ("method", "adapter", "region_kind", "config_id", "param_spec", "fold", "image",
             "iou_threshold", "tp", "fp", "fn", "n_pred", "status", "prediction_file")


class PlotFormat(str, enum.Enum):
    """The file formats of ``lipobench plot --format``."""

    PNG = "png"
    SVG = "svg"
    BOTH = "both"

    def suffixes(self) -> list[str]:
        """The file suffixes to write, without the dot."""
        return ["png", "svg"] if self is PlotFormat.BOTH else [self.value]


@dataclass
class ResultsFolder:
    """A results folder written by ``lipobench run``: its table and its run record."""

    root: Path
    table: pd.DataFrame
    run: dict[str, Any]
    _micrographs: dict[str, Any] = field(default_factory=dict, repr=False)
    _dataset: Any = field(default=None, repr=False)

    @property
    def ok(self) -> pd.DataFrame:
        """The rows of configurations that ran."""
        return self.table[self.table["status"] == "ok"]

    @property
    def first_test_image(self) -> str | None:
        folds = self.run.get("folds") or []
        tests = folds[0].get("test", []) if folds else []
        return tests[0] if tests else None

    def micrograph(self, name: str):
        """One micrograph of the run's dataset, loaded once."""
        if name not in self._micrographs:
            if self._dataset is None:
                from lipobench.data import load_dataset

                where = self.run.get("dataset")
                if not where or not Path(where).exists():
                    raise UserError(f"{self.root / 'run.json'}: dataset {where!r} no longer "
                                    "exists; restore it there to plot sizes, score curves "
                                    "and overlays")
                self._dataset = load_dataset(where)
            self._micrographs[name] = self._dataset.micrograph(name)
        return self._micrographs[name]

    def predictions(self, relative: str):
        """A prediction file of the run (see :func:`lipobench.runner.prediction_file`)."""
        from lipobench.cache import load_regions

        path = self.root / relative
        try:
            return load_regions(path)
        except (OSError, KeyError, ValueError) as exc:
            raise UserError(f"{path}: cannot read the prediction file ({exc}); rerun "
                            f"`lipobench run` to rewrite it") from None


def open_results(path: str | Path) -> ResultsFolder:
    """Open and check a results folder; a folder that is not one raises one UserError line."""
    root = Path(path)
    hint = "give the output folder of `lipobench run` (it holds results.parquet and run.json)"
    if not root.is_dir():
        raise UserError(f"{root}: no such results folder; {hint}")
    parquet, record = root / "results.parquet", root / "run.json"
    for needed in (parquet, record):
        if not needed.is_file():
            raise UserError(f"{root}: not a lipobench results folder (no {needed.name}); {hint}")
    try:
        table = pd.read_parquet(parquet)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{parquet}: cannot read the results table ({type(exc).__name__}); "
                        "rerun `lipobench run` to rewrite it") from None
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise UserError(f"{parquet}: not a lipobench results table (no column {missing[0]!r}); "
                        "rerun `lipobench run` to rewrite it")
    try:
        run = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{record}: cannot read the run record ({exc}); rerun "
                        "`lipobench run` to rewrite it") from None
    if not isinstance(run, dict):
        raise UserError(f"{record}: not a lipobench run record; rerun `lipobench run`")
    return ResultsFolder(root, table, run)


# ----------------------------------------------------------------------------- labels


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):.3g}"  # legends need 3 digits, not 72.6995
    return str(value)


def _spec_text(table: pd.DataFrame, config_id: str, key: str, spec_value: Any) -> str:
    """A parameter's value for a legend: the resolved value when every fold agrees on it."""
    if isinstance(spec_value, Mapping):
        column = f"param.{key}"
        if column in table.columns:
            values = table.loc[table["config_id"] == config_id, column].dropna().unique()
            if len(values) == 1:
                return _value_text(values[0])
        from lipobench.experiment import Derived

        return Derived.model_validate(spec_value).label()
    return _value_text(spec_value)


def config_labels(table: pd.DataFrame, *, exclude: Mapping[str, Sequence[str]] | None = None
                  ) -> dict[str, str]:
    """A short legend label per configuration: the method and the parameters that vary.

    Parameters
    ----------
    table : pandas.DataFrame
        The results table (columns ``config_id``, ``method``, ``adapter``, ``param_spec``).
    exclude : mapping, keyword-only
        Parameter names to leave out, per adapter (e.g. SELECT parameters of a score sweep).

    Examples
    --------
    >>> table = pd.DataFrame({"config_id": ["a", "b", "c"], "method": ["cp", "cp", "topaz"],
    ...     "adapter": ["cellpose", "cellpose", "topaz"],
    ...     "param_spec": ['{"diameter": 31, "seed": 0}', '{"diameter": 40.5, "seed": 0}',
    ...                    '{"radius": 12}']})
    >>> config_labels(table)
    {'a': 'cp d=31', 'b': 'cp d=40.5', 'c': 'topaz'}
    """
    exclude = exclude or {}
    configs = table.drop_duplicates("config_id")
    labels: dict[str, str] = {}
    for method, group in configs.groupby("method", sort=True):
        specs = {cid: json.loads(spec) for cid, spec in zip(group["config_id"],
                                                             group["param_spec"])}
        adapters = dict(zip(group["config_id"], group["adapter"]))
        keys = sorted(set().union(*(s.keys() for s in specs.values())))
        varying = [k for k in keys
                   if len({json.dumps(s.get(k), sort_keys=True) for s in specs.values()}) > 1]
        for cid, spec in specs.items():
            skip = set(exclude.get(adapters[cid], ()))
            parts = [f"{ABBREVIATIONS.get(k, k)}={_spec_text(table, cid, k, spec.get(k))}"
                     for k in varying if k not in skip]
            labels[cid] = f"{method} {'/'.join(parts)}" if parts else str(method)
    return labels


# ----------------------------------------------------------------------------- rates


def fold_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Micro-averaged precision, recall and F1 per configuration, fold and IoU threshold.

    >>> table = pd.DataFrame({"method": "m", "config_id": "a", "fold": [0, 0, 1],
    ...     "iou_threshold": 0.5, "status": "ok", "tp": [1, 2, 0], "fp": [1, 0, 0],
    ...     "fn": [0, 1, 2]})
    >>> fold_rates(table)[["fold", "precision", "recall"]].values.tolist()
    [[0.0, 0.75, 0.75], [1.0, 1.0, 0.0]]
    """
    from lipobench.results import precision_recall_f1

    ok = table[table["status"] == "ok"]
    sums = ok.groupby(["method", "config_id", "fold", "iou_threshold"], sort=True).agg(
        tp=("tp", "sum"), fp=("fp", "sum"), fn=("fn", "sum")).reset_index()
    precision, recall, f1 = precision_recall_f1(sums["tp"].astype(float),
                                                sums["fp"].astype(float),
                                                sums["fn"].astype(float))
    return sums.assign(precision=precision, recall=recall, f1=f1)


def _nearest_threshold(values, target: float) -> float:
    values = np.unique(np.asarray(values, dtype=float))
    return float(values[np.argmin(np.abs(values - target))])


def best_configurations(table: pd.DataFrame, *, iou_threshold: float = SCORE_IOU
                        ) -> dict[str, str]:
    """The configuration of each method with the highest micro F1 at ``iou_threshold``.

    The nearest scored threshold is used when ``iou_threshold`` itself was not scored; ties go
    to the first configuration id.

    >>> table = pd.DataFrame({"method": "m", "config_id": ["a", "b"], "fold": 0,
    ...     "iou_threshold": 0.5, "status": "ok", "tp": [1, 3], "fp": [0, 0], "fn": [3, 1]})
    >>> best_configurations(table)
    {'m': 'b'}
    """
    rates = fold_rates(table)
    if rates.empty:
        return {}
    at = _nearest_threshold(rates["iou_threshold"], iou_threshold)
    sums = rates[np.isclose(rates["iou_threshold"], at)].groupby(
        ["method", "config_id"], sort=True)[["tp", "fp", "fn"]].sum().reset_index()
    from lipobench.results import precision_recall_f1

    sums["f1"] = precision_recall_f1(sums["tp"].astype(float), sums["fp"].astype(float),
                                     sums["fn"].astype(float))[2]
    best = {}
    for method, group in sums.groupby("method", sort=True):
        best[str(method)] = str(group.loc[group["f1"].idxmax(), "config_id"])
    return best


# ----------------------------------------------------------------------------- truth


def _truth_shaped(folder: ResultsFolder, image: str, kind: str):
    from lipobench.regions import RegionKind
    from lipobench.runner import scoring_shape

    micrograph = folder.micrograph(image)
    if micrograph.truth is None:
        raise UserError(f"{image}: the run's dataset has no ground truth for this test image; "
                        "label it to plot sizes, score curves and overlays")
    return micrograph, scoring_shape(micrograph.truth, RegionKind(kind))


def _prediction_rows(folder: ResultsFolder, config_id: str) -> pd.DataFrame:
    rows = folder.ok[folder.ok["config_id"] == config_id]
    return rows.drop_duplicates(["fold", "image"]).sort_values(["fold", "image"])


def select_parameters(registry, adapters: Sequence[str]) -> dict[str, list[str]]:
    """The SELECT-stage parameter names of each adapter the registry knows."""
    from lipobench.adapters.base import Stage

    found = {}
    for name in adapters:
        if registry is None or name not in registry:
            continue
        parameters = registry.entry(name).adapter_cls.parameters
        found[name] = sorted(k for k, p in parameters.items() if p.stage is Stage.SELECT)
    return found


def score_curves(folder: ResultsFolder, *, select: Mapping[str, Sequence[str]] | None = None,
                 iou_threshold: float = SCORE_IOU) -> pd.DataFrame:
    """Precision-recall over prediction score for every scored configuration.

    Configurations that differ only in SELECT parameters (score cutoffs applied offline)
    share one tool output, so each such group gives one curve, computed from the predictions
    of its loosest member (the most predictions kept) pooled over every test image of every
    fold. Unscored predictions give no curve.

    Returns
    -------
    pandas.DataFrame
        ``method, label, config_id, auc, score_threshold, precision, recall`` per cutoff.
    """
    from lipobench.metrics import precision_recall_curve

    select = select or {}
    ok = folder.ok
    if ok.empty:
        return pd.DataFrame()
    labels = config_labels(folder.table, exclude=select)
    kept = ok.drop_duplicates(["config_id", "fold", "image"]).groupby(
        "config_id")["n_pred"].sum()
    frames = []
    configs = ok.drop_duplicates("config_id")
    groups: dict[tuple[str, str], list[str]] = {}
    for row in configs.itertuples(index=False):
        spec = json.loads(row.param_spec)
        key = json.dumps({k: v for k, v in spec.items()
                          if k not in set(select.get(row.adapter, ()))}, sort_keys=True)
        groups.setdefault((row.method, key), []).append(row.config_id)
    for (method, _), members in sorted(groups.items()):
        loosest = max(members, key=lambda cid: (int(kept.get(cid, 0)), cid))
        rows = _prediction_rows(folder, loosest)
        kind = str(rows["region_kind"].iloc[0])
        preds = [folder.predictions(p) for p in rows["prediction_file"]]
        if not preds or any(p.scores is None for p in preds):
            continue
        truths = [_truth_shaped(folder, image, kind)[1] for image in rows["image"]]
        curve = precision_recall_curve(truths, preds, iou_threshold=iou_threshold)
        frame = curve.to_frame()
        if frame.empty:
            continue
        frames.append(frame.assign(method=method, label=labels[loosest], config_id=loosest,
                                   auc=curve.area()))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _size_edges(diameters: np.ndarray, *, bins: int) -> np.ndarray:
    if diameters.size == 0:
        return np.array([0.0, 1.0])
    low, high = float(diameters.min()), float(diameters.max())
    if math.isclose(low, high):
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def size_strata(folder: ResultsFolder, config_ids: Mapping[str, str], *, bins: int = 6,
                iou_threshold: float = SCORE_IOU) -> pd.DataFrame:
    """Recall by ground-truth particle size for the given configurations (method -> id).

    Every method is binned by the same sizes: the equivalent diameter of each ground-truth
    *mask* (nm when the dataset's pixel size is known, else px), whatever shape the method is
    scored against, so the bins of a box method and a mask method hold the same particles.

    Returns
    -------
    pandas.DataFrame
        ``method, label, bin_low, bin_high, unit, n_true, matched, recall`` per bin.
    """
    from lipobench.metrics import match

    labels = config_labels(folder.table)
    per_config = {}
    for method, cid in sorted(config_ids.items()):
        rows = _prediction_rows(folder, cid)
        diameters, hits, scales = [], [], []
        for kind, image, relative in zip(rows["region_kind"], rows["image"],
                                         rows["prediction_file"]):
            micrograph, truth = _truth_shaped(folder, image, kind)
            result = match(truth, folder.predictions(relative), [iou_threshold])
            hit = np.zeros(result.n_true, dtype=bool)
            hit[result.pairs(result.thresholds[0])[0]] = True
            diameters.append(micrograph.truth.equivalent_diameters())
            hits.append(hit)
            scales.append(micrograph.pixel_size_nm)
        if diameters:
            per_config[method] = (cid, diameters, np.concatenate(hits), scales)
    if not per_config:
        return pd.DataFrame()
    # nm only when every image's pixel size is known, so all bars share one unit
    nm = all(s is not None and s > 0 for *_, scales in per_config.values() for s in scales)
    unit = "nm" if nm else "px"
    per_config = {method: (cid, np.concatenate([d * (s if nm else 1.0)
                                                 for d, s in zip(diameters, scales)]), hit)
                  for method, (cid, diameters, hit, scales) in per_config.items()}
    edges = _size_edges(np.concatenate([d for _, d, _ in per_config.values()]), bins=bins)
    frames = []
    for method, (cid, diameter, hit) in per_config.items():
        where = np.clip(np.searchsorted(edges, diameter, side="right") - 1, 0, bins - 1)
        n_true = np.bincount(where, minlength=bins)
        matched = np.bincount(where, weights=hit.astype(float), minlength=bins).astype(int)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(n_true > 0, matched / np.maximum(n_true, 1), np.nan)
        frames.append(pd.DataFrame({
            "method": method, "label": labels[cid], "bin_low": edges[:-1],
            "bin_high": edges[1:], "unit": unit, "n_true": n_true, "matched": matched,
            "recall": recall}))
    return pd.concat(frames, ignore_index=True)


def overlay_panels(folder: ResultsFolder, config_ids: Mapping[str, str], image: str, *,
                   iou_threshold: float = SCORE_IOU):
    """One :class:`~lipobench.overlays.OverlayPanel` per method on ``image`` (fold 0 first)."""
    from lipobench.metrics import match
    from lipobench.overlays import OverlayPanel

    labels = config_labels(folder.table)
    panels = []
    micrograph = None
    for method, cid in sorted(config_ids.items()):
        rows = _prediction_rows(folder, cid)
        rows = rows[rows["image"] == image]
        if rows.empty:
            continue
        row = rows.iloc[0]
        micrograph, truth = _truth_shaped(folder, image, row["region_kind"])
        pred = folder.predictions(row["prediction_file"])
        result = match(truth, pred, [iou_threshold])
        t_idx, p_idx, _ = result.pairs(result.thresholds[0])
        truth_hit = np.zeros(result.n_true, dtype=bool)
        truth_hit[t_idx] = True
        pred_hit = np.zeros(result.n_pred, dtype=bool)
        pred_hit[p_idx] = True
        panels.append(OverlayPanel(labels[cid], truth, pred, truth_hit, pred_hit))
    return micrograph, panels


def merge_threshold_frames(folder: ResultsFolder, *, threshold_parameter: str,
                           pipeline_adapter: str = "lipopose", baseline_adapter: str = "cellpose",
                           iou_threshold: float = SCORE_IOU, summary: pd.DataFrame | None = None):
    """The pipeline's rates by merge threshold, each baseline configuration's, and per fold.

    The pipeline's configurations are grouped by everything but ``threshold_parameter``; the
    group with the best F1 over all test micrographs is shown. Rates and their intervals come
    from ``summary`` (:func:`lipobench.results.summarize` of the table when not given).
    Returns ``(pipeline, baselines, folds)`` frames for
    :func:`lipobench.plots.merge_threshold_figure`, or ``None`` when either method is absent.
    """
    from lipobench.results import summarize

    table = folder.table
    column = f"param.{threshold_parameter}"
    pipe = table[(table["adapter"] == pipeline_adapter) & (table["status"] == "ok")]
    base = table[(table["adapter"] == baseline_adapter) & (table["status"] == "ok")]
    if pipe.empty or base.empty or column not in table.columns:
        return None
    summary = summarize(table) if summary is None else summary
    summary = summary[summary["status"] == "ok"]
    at = _nearest_threshold(summary["iou_threshold"], iou_threshold)
    summary = summary[np.isclose(summary["iou_threshold"].astype(float), at)]
    specs = pipe.drop_duplicates("config_id")
    group_of = {}
    for cid, spec in zip(specs["config_id"], specs["param_spec"]):
        rest = {k: v for k, v in json.loads(spec).items() if k != threshold_parameter}
        group_of[cid] = json.dumps(rest, sort_keys=True)
    pipe_rates = summary[summary["config_id"].isin(group_of)].assign(
        group=lambda f: f["config_id"].map(group_of))
    # Ties go to the first group in sorted order, so the choice is reproducible.
    best_group = pipe_rates.groupby("group")["f1"].mean().sort_index().idxmax()
    chosen = pipe_rates[pipe_rates["group"] == best_group]
    thresholds = specs.set_index("config_id")[column].astype(float)
    interval_columns = [c for c in summary.columns if c.endswith(("_ci_low", "_ci_high"))]
    pipeline = chosen.assign(threshold=chosen["config_id"].map(thresholds))
    labels = config_labels(table)
    baselines = summary[summary["config_id"].isin(set(base["config_id"]))]
    baselines = baselines.assign(label=baselines["config_id"].map(labels))
    rates = fold_rates(table)
    per_fold = rates[rates["config_id"].isin(set(chosen["config_id"]))
                     & np.isclose(rates["iou_threshold"], at)]
    per_fold = per_fold.assign(threshold=per_fold["config_id"].map(thresholds))
    return (pipeline[["threshold", "precision", "recall", *interval_columns]],
            baselines[["label", "precision", "recall", *interval_columns]],
            per_fold[["threshold", "fold", "precision", "recall"]])


# ----------------------------------------------------------------------------- all


def method_pairs(methods: Sequence[str] | pd.Series) -> list[tuple[str, str]]:
    """The pairs of methods drawn side by side: every pair, when there are three or more.

    With two methods or one, the figure of all configurations already is the comparison.

    >>> method_pairs(["topaz", "cellpose", "cryolo", "cellpose"])
    [('cellpose', 'cryolo'), ('cellpose', 'topaz'), ('cryolo', 'topaz')]
    >>> method_pairs(["cellpose", "topaz"])
    []
    """
    import itertools

    names = sorted(set(methods))
    return list(itertools.combinations(names, 2)) if len(names) >= 3 else []


def make_plots(results: str | Path, *, out: str | Path | None = None,
               formats: PlotFormat | str = PlotFormat.BOTH, registry=None) -> tuple[list[Path],
                                                                                    list[str]]:
    """Draw every figure of a results folder; return the files written and notes on skips.

    The folder is checked before anything is drawn; figures that need ground truth are
    skipped, with a note, when the run's dataset is gone.
    """
    from lipobench import plots
    from lipobench.overlays import overlay_figure

    folder = open_results(results)
    try:
        formats = PlotFormat(formats)
    except ValueError:
        raise UserError(f"--format {formats}: unknown format; use png, svg or both") from None
    out = Path(out) if out is not None else folder.root / "plots"
    suffixes = formats.suffixes()
    name = folder.run.get("experiment") or folder.root.name
    written: list[Path] = []
    notes: list[str] = []
    ok = folder.ok
    if ok.empty:
        raise UserError(f"{folder.root}: no configuration ran successfully, nothing to plot; "
                        "see the status and error columns of results.csv")
    from lipobench.results import summarize

    labels = config_labels(folder.table)
    # The summary's rates and intervals, recomputed: a summary.csv of an older version
    # may lack the intervals, and the table is the record.
    summary = summarize(folder.table)
    rates = summary[summary["status"] == "ok"].assign(
        label=lambda f: f["config_id"].map(labels))
    written += plots.save_figure(plots.iou_curves_figure(rates, title=name), out,
                                 "precision_recall_vs_iou", suffixes)
    # The study's Figs. 4-7 set two methods side by side; with three or more methods in one
    # figure, 20-odd lines hide each other.
    colors = plots.method_colors(rates["method"])
    for first, second in method_pairs(rates["method"]):
        pair = rates[rates["method"].isin([first, second])]
        figure = plots.iou_curves_figure(pair, title=f"{name}: {first} vs {second}",
                                         colors=colors)
        written += plots.save_figure(figure, out, f"precision_recall_vs_iou_{first}_vs_{second}",
                                     suffixes)
    select = select_parameters(registry, sorted(set(folder.table["adapter"])))
    best = best_configurations(folder.table)
    try:
        curves = score_curves(folder, select=select)
        if curves.empty:
            notes.append("no scored predictions: skipped score_precision_recall")
        else:
            written += plots.save_figure(plots.score_curves_figure(curves, title=name), out,
                                         "score_precision_recall", suffixes)
        strata = size_strata(folder, best)
        if not strata.empty:
            written += plots.save_figure(plots.size_recall_figure(strata, title=name), out,
                                         "recall_by_size", suffixes)
        image = folder.first_test_image
        if image is not None:
            micrograph, panels = overlay_panels(folder, best, image)
            if panels:
                fig = overlay_figure(micrograph.image, panels,
                                     title=f"{name}: {image}\nbest configuration per "
                                           f"method, IoU > {SCORE_IOU:g}")
                written += plots.save_figure(fig, out, "overlays", suffixes)
    except UserError as exc:
        if "no longer exists" not in str(exc):
            raise
        notes.append(f"{exc}; skipped the figures that need it")
    lipopose_select = select.get("lipopose", [])
    threshold_parameter = lipopose_select[0] if len(lipopose_select) == 1 else next(
        (k for k in _MERGE_PARAMETERS if f"param.{k}" in folder.table.columns), "until")
    frames = merge_threshold_frames(folder, threshold_parameter=threshold_parameter,
                                    summary=summary)
    if frames is not None:
        pipeline, baselines, per_fold = frames
        figure = plots.merge_threshold_figure(pipeline, baselines, folds=per_fold, title=name)
        written += plots.save_figure(figure, out, "lipopose_merge_thresholds", suffixes)
    return written, notes
