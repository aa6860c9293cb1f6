"""Scoring a predict task's output: each configuration's selection against the ground truth.

Ground truth is scored in the shape the method predicts (:func:`scoring_shape`, as the paper
does); each selected prediction is written under OUT (:func:`prediction_file`) so a figure or
a reader can see exactly what was scored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lipobench.cache import save_regions
from lipobench.errors import UserError
from lipobench.fsutil import inside
from lipobench.regions import RegionKind, RegionSet
from lipobench.run.context import RunContext
from lipobench.run.tasks import PredictTask

__all__ = ["scoring_shape", "prediction_file", "score_predictions"]


def scoring_shape(truth: RegionSet, kind: RegionKind) -> RegionSet:
    """Ground truth in the shape a method is scored against, as the paper does."""
    if kind is RegionKind.BOX:
        return truth.to_boxes()
    if kind is RegionKind.CIRCLE:
        return truth.to_circles()
    return truth


def prediction_file(config_id: str, fold: int, image: str) -> str:
    """The path, relative to OUT, of one configuration's selected prediction of one image.

    >>> prediction_file("log-0a1b", 2, "m0")
    'predictions/log-0a1b/fold-2/m0.npz'
    """
    return f"predictions/{config_id}/fold-{fold}/{image}.npz"


def score_predictions(task: PredictTask, context: RunContext, adapter, micrographs,
                      predictions) -> list[dict[str, Any]]:
    """One row per (configuration, test image): its counts at every IoU threshold."""
    from lipobench.metrics import match

    rows = []
    thresholds = list(task.iou_thresholds)
    for micrograph, raw in zip(micrographs, predictions, strict=False):  # lengths checked
        if raw.kind is not adapter.region_kind:
            raise RuntimeError(f"{task.adapter}.predict returned {raw.kind.value} regions for "
                               f"{micrograph.name}; its region_kind is "
                               f"{adapter.region_kind.value}")
        truth = micrograph.truth
        if truth is None:
            raise UserError(f"{micrograph.name}: a test micrograph has no ground truth; "
                            "label it or move it out of the test images")
        truth = scoring_shape(truth, adapter.region_kind)
        for scoring in task.scorings:
            selected = adapter.select(raw, dict(scoring.select)) if scoring.select else raw
            relative = prediction_file(scoring.config_id, task.fold, micrograph.name)
            # Rewritten on every run, so the files always match this run's table.
            save_regions(inside(context.out, relative), selected)
            result = match(truth, selected, thresholds)
            rows.append({
                "config_id": scoring.config_id, "image": micrograph.name,
                "prediction_file": relative,
                "iou_threshold": np.asarray(result.thresholds, float).tolist(),
                "tp": np.asarray(result.tp).tolist(), "fp": np.asarray(result.fp).tolist(),
                "fn": np.asarray(result.fn).tolist(),
                "n_true": int(result.n_true), "n_pred": int(result.n_pred),
            })
    return rows
