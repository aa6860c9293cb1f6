"""Precision-recall curves over prediction score at a fixed IoU threshold.

Predictions with scores (Topaz log-likelihoods, crYOLO confidences, LipoPose thresholds) are
kept when their score is at or above a cutoff; every distinct score is a cutoff, from the
highest down.

The counts are exact: at every cutoff the one-to-one matching is the optimal one of
:func:`lipobench.metrics.match` for the kept predictions, not a greedy-by-score assignment
(COCO's rule, which can miss matches). Removing predictions only changes the matching inside
the connected components of the graph of pairs that pass the IoU threshold, so each component
of a single pair adds one true positive at its prediction's score, and every larger component
is rematched once per distinct score of its own predictions (components are small: a few
neighbouring particles).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lipobench.metrics._inputs import as_image_pairs
from lipobench.metrics.errors import MetricInputError
from lipobench.metrics.iou import overlaps
from lipobench.metrics.matching import as_thresholds, check_pair, components, rates, solve_component

__all__ = ["Interpolation", "PRCurve", "precision_recall_curve"]


class Interpolation(str, enum.Enum):
    """How :meth:`PRCurve.area` integrates precision over recall."""

    #: No interpolation: ``sum_k (R_k - R_{k-1}) P_k`` with ``R_0 = 0`` (scikit-learn's
    #: ``average_precision_score``).
    STEP = "step"
    #: All-point interpolation of Pascal VOC 2010+: each precision is replaced by the highest
    #: precision at any equal or higher recall before summing the same steps.
    ENVELOPE = "envelope"


@dataclass(frozen=True, eq=False)
class PRCurve:
    """Counts at each score cutoff, highest cutoff first.

    Attributes
    ----------
    score_thresholds : ndarray of float
        Distinct prediction scores, descending; a prediction counts when score >= cutoff.
    tp, fp, fn : ndarray of int
        Counts over all images at each cutoff.
    n_true : int
        Number of true regions over all images.
    iou_threshold : float
    inclusive : bool
    """

    score_thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    n_true: int
    iou_threshold: float
    inclusive: bool

    @property
    def n_pred(self) -> np.ndarray:
        """Predictions kept at each cutoff."""
        return self.tp + self.fp

    @property
    def precision(self) -> np.ndarray:
        """Precision at each cutoff (see :func:`lipobench.metrics.rates`)."""
        return rates(self.tp, self.n_true, self.n_pred)[0]

    @property
    def recall(self) -> np.ndarray:
        """Recall at each cutoff; non-decreasing as the cutoff falls."""
        return rates(self.tp, self.n_true, self.n_pred)[1]

    def area(self, *, interpolation: Interpolation | str = Interpolation.STEP) -> float:
        """Area under the curve (average precision), integrated as :class:`Interpolation` says.

        With no predictions at all the area is 1 when there is no truth either, else 0.
        """
        try:
            interpolation = Interpolation(interpolation)
        except ValueError as exc:
            raise MetricInputError(
                f"unknown interpolation {interpolation!r}: use one of "
                f"{[i.value for i in Interpolation]}"
            ) from exc
        if len(self.score_thresholds) == 0:
            return 1.0 if self.n_true == 0 else 0.0
        precision, recall = self.precision, self.recall
        if interpolation is Interpolation.ENVELOPE:
            precision = np.maximum.accumulate(precision[::-1])[::-1]
        steps = np.diff(np.concatenate([[0.0], recall]))
        return float(np.sum(steps * precision))

    @property
    def average_precision(self) -> float:
        """:meth:`area` with step integration (no interpolation)."""
        return self.area()

    def to_frame(self) -> pd.DataFrame:
        """One row per cutoff: score_threshold, tp, fp, fn, n_pred, precision, recall."""
        return pd.DataFrame({
            "score_threshold": self.score_thresholds, "tp": self.tp, "fp": self.fp,
            "fn": self.fn, "n_pred": self.n_pred, "precision": self.precision,
            "recall": self.recall,
        })


def precision_recall_curve(truth, pred, *, iou_threshold: float = 0.5,
                           inclusive: bool = False) -> PRCurve:
    """Precision and recall as the score cutoff sweeps over scored predictions.

    Parameters
    ----------
    truth, pred : RegionSet or sequence of RegionSet
        One image, or equally long lists (the counts are summed over images: micro).
        Every prediction set needs scores.
    iou_threshold : float, keyword-only
        The IoU a pair must exceed (``>=`` with ``inclusive=True``), in (0, 1).

    Returns
    -------
    PRCurve
        Exact optimal-matching counts at every distinct score; ``.area()`` integrates the
        curve (step rule by default, see :class:`Interpolation`).

    Examples
    --------
    >>> from lipobench.regions import RegionSet
    >>> truth = RegionSet.from_circles([[10, 10, 5], [40, 40, 5]], image_shape=(64, 64))
    >>> pred = RegionSet.from_circles([[10, 10, 5], [20, 50, 5], [40, 41, 5]],
    ...                               image_shape=(64, 64), scores=[0.9, 0.8, 0.3])
    >>> curve = precision_recall_curve(truth, pred)
    >>> curve.score_thresholds.tolist(), curve.tp.tolist(), curve.fp.tolist()
    ([0.9, 0.8, 0.3], [1, 1, 2], [0, 1, 1])
    >>> curve.precision.round(3).tolist(), curve.recall.tolist()
    ([1.0, 0.5, 0.667], [0.5, 0.5, 1.0])
    >>> round(curve.area(), 4), round(curve.area(interpolation="envelope"), 4)
    (0.8333, 0.8333)
    """
    threshold = float(as_thresholds(iou_threshold)[0])
    if np.size(iou_threshold) != 1:
        raise MetricInputError(
            f"a precision-recall curve takes one IoU threshold, got {iou_threshold!r}"
        )
    pairs = as_image_pairs(truth, pred)
    all_scores, event_scores, event_gains = [], [], []
    n_true = 0
    for k, (t, p) in enumerate(pairs):
        check_pair(t, p)
        if p.scores is None:
            raise MetricInputError(
                f"prediction {k} has no scores: a precision-recall curve sweeps over scores; "
                "read predictions with their score column or use match() instead"
            )
        found = overlaps(t, p)
        n_true += len(found.truth_ids)
        scores = p.scores
        all_scores.append(scores)
        passing = found.iou >= threshold if inclusive else found.iou > threshold
        ti, pj, iou = found.truth_idx[passing], found.pred_idx[passing], found.iou[passing]
        lone, groups = components(ti, pj)
        event_scores.append(scores[pj[lone]])
        event_gains.append(np.ones(len(lone), dtype=np.int64))
        for group in groups:
            cut_scores, gains = _component_steps(ti[group], pj[group], iou[group], scores)
            event_scores.append(cut_scores)
            event_gains.append(gains)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    cutoffs = np.unique(scores)[::-1]
    kept = _count_at_or_above(np.sort(scores), np.ones(len(scores), np.int64), cutoffs)
    ev_scores = np.concatenate(event_scores) if event_scores else np.zeros(0)
    ev_gains = np.concatenate(event_gains) if event_gains else np.zeros(0, np.int64)
    order = np.argsort(ev_scores, kind="stable")
    tp = _count_at_or_above(ev_scores[order], ev_gains[order], cutoffs)
    return PRCurve(score_thresholds=cutoffs, tp=tp, fp=kept - tp, fn=n_true - tp,
                   n_true=n_true, iou_threshold=threshold, inclusive=bool(inclusive))


def _count_at_or_above(sorted_values, weights, cutoffs) -> np.ndarray:
    """Sum of ``weights`` whose value is >= each cutoff (``sorted_values`` ascending)."""
    tail = np.concatenate([np.cumsum(weights[::-1])[::-1], [0]])
    return tail[np.searchsorted(sorted_values, cutoffs, side="left")].astype(np.int64)


def _component_steps(ti, pj, iou, scores):
    """Cutoffs inside one component and the true positives each one adds (exact rematch)."""
    edge_scores = scores[pj]
    cuts = np.unique(edge_scores)[::-1]
    matched, gains = 0, []
    for cut in cuts:
        keep = np.flatnonzero(edge_scores >= cut)
        now = len(solve_component(ti[keep], pj[keep], iou[keep], keep))
        gains.append(now - matched)
        matched = now
    return cuts, np.asarray(gains, dtype=np.int64)
