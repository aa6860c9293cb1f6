"""The frames the figures of a results folder draw, computed from what ``lipobench run`` wrote.

Rates come from the table (:mod:`lipobench.report.aggregate`); what the table does not hold
(score sweeps, sizes, which region was matched) is recomputed from the cached per-image
prediction files and the dataset's ground truth with :mod:`lipobench.metrics`, exactly as the
runner scored them (:func:`lipobench.run.scoring.scoring_shape`). The figures themselves are
drawn by :mod:`lipobench.report.plots` and :mod:`lipobench.report.overlays`, and written by
:mod:`lipobench.report.make`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lipobench.errors import UserError
from lipobench.report.aggregate import SCORE_IOU
from lipobench.report.folder import ResultsFolder
from lipobench.report.labels import config_labels

__all__ = ["select_parameters", "score_curves", "size_strata", "overlay_panels",
           "method_pairs"]


def _truth_shaped(folder: ResultsFolder, image: str, kind: str):
    from lipobench.regions import RegionKind
    from lipobench.run.scoring import scoring_shape

    micrograph = folder.micrograph(image)
    if micrograph.truth is None:
        raise UserError(f"{image}: the run's dataset has no ground truth for this test image; "
                        "label it to plot sizes, score curves and overlays")
    return micrograph, scoring_shape(micrograph.truth, RegionKind(kind))


def _prediction_rows(folder: ResultsFolder, config_id: str) -> pd.DataFrame:
    rows = folder.ok[folder.ok["config_id"] == config_id]
    return rows.drop_duplicates(["fold", "image"]).sort_values(["fold", "image"])


def select_parameters(registry, adapters: Sequence[str]) -> dict[str, list[str]]:
    """The SELECT-stage parameter names of each adapter the registry knows.

    >>> from lipobench.plugins import load_registry
    >>> select_parameters(load_registry(disable_plugins=True), ["log", "gone"])
    {'log': ['threshold']}
    """
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
    labels = config_labels(folder.table, registry=folder.registry, exclude=select)
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

    :func:`lipobench.metrics.stratify_by_size` with the same bins for every method: the
    equivalent diameter of each ground-truth *mask* (nm when the dataset's pixel size is
    known, else px), whatever shape the method is scored against, so the bins of a box method
    and a mask method hold the same particles.

    Returns
    -------
    pandas.DataFrame
        ``method, label, bin_low, bin_high, unit, n_true, matched, recall`` per bin.
    """
    from lipobench.metrics import stratify_by_size

    per_config = {}
    for method, cid in sorted(config_ids.items()):
        rows = _prediction_rows(folder, cid)
        truths, preds, diameters, scales = [], [], [], []
        for kind, image, relative in zip(rows["region_kind"], rows["image"],
                                         rows["prediction_file"], strict=True):
            micrograph, truth = _truth_shaped(folder, image, kind)
            truths.append(truth)
            preds.append(folder.predictions(relative))
            diameters.append(micrograph.truth.equivalent_diameters())
            scales.append(micrograph.pixel_size_nm)
        if truths:
            per_config[method] = (cid, truths, preds, diameters, scales)
    if not per_config:
        return pd.DataFrame()
    # nm only when every image's pixel size is known, so all bars share one unit
    nm = all(s is not None and s > 0 for *_, scales in per_config.values() for s in scales)
    sizes = [d * (s if nm else 1.0) for *_, diameters, scales in per_config.values()
             for d, s in zip(diameters, scales, strict=True)]
    edges = _size_edges(np.concatenate(sizes), bins=bins)
    frames = []
    for method, (cid, truths, preds, diameters, scales) in per_config.items():
        strata = stratify_by_size(truths, preds, bins=edges.tolist(),
                                  iou_threshold=iou_threshold,
                                  pixel_size_nm=scales if nm else None,
                                  true_diameters=diameters)
        strata = strata[np.isfinite(strata["bin_low"]) & np.isfinite(strata["bin_high"])]
        frames.append(pd.DataFrame({
            "method": method, "label": folder.labels[cid],
            "bin_low": strata["bin_low"].to_numpy(), "bin_high": strata["bin_high"].to_numpy(),
            "unit": strata["unit"].to_numpy(), "n_true": strata["n_true"].to_numpy(),
            "matched": strata["matched_true"].to_numpy(),
            "recall": strata["recall"].to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def overlay_panels(folder: ResultsFolder, config_ids: Mapping[str, str], image: str, *,
                   iou_threshold: float = SCORE_IOU):
    """One :class:`~lipobench.report.overlays.OverlayPanel` per method on ``image``."""
    from lipobench.metrics import match
    from lipobench.report.overlays import OverlayPanel

    panels = []
    micrograph = None
    for _, cid in sorted(config_ids.items()):
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
        panels.append(OverlayPanel(folder.labels[cid], truth, pred, truth_hit, pred_hit))
    return micrograph, panels


def method_pairs(methods: Sequence[str] | pd.Series) -> list[tuple[str, str]]:
    """The pairs of methods drawn side by side: every pair, when there are three or more.

    With two methods or one, the figure of all configurations already is the comparison.

    >>> method_pairs(["topaz", "cellpose", "cryolo", "cellpose"])
    [('cellpose', 'cryolo'), ('cellpose', 'topaz'), ('cryolo', 'topaz')]
    >>> method_pairs(["cellpose", "topaz"])
    []
    """
    names = sorted(set(methods))
    return list(itertools.combinations(names, 2)) if len(names) >= 3 else []
