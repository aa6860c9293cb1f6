"""One-to-one matching of predicted to true regions, and the counts that follow from it.

The rules, as in the LipoPose paper: a prediction is a true positive when its IoU with the
true region it is assigned to is *strictly greater* than the threshold ("more than 50 %");
``inclusive=True`` gives the ``>=`` rule of cellpose and stardist. The assignment is one-to-one
and optimal: first the most matches, then the highest total IoU among those
(:func:`scipy.optimize.linear_sum_assignment`, solved per connected component of the graph of
pairs that pass the threshold, so 1,000 against 1,000 regions takes milliseconds).
:func:`match_centres` matches by centre distance instead (the particle pickers' convention:
a pick within ``max_distance`` pixels of a true centre), one-to-one and optimal the same way.

Empty sets never divide by zero. Precision is ``tp / n_pred`` and is 1 when there are no
predictions (nothing claimed, nothing wrong); recall is ``tp / n_true`` and is 1 when there is
no truth (nothing to find); F1 is ``2 tp / (n_true + n_pred)`` and is 1 when both are empty.

Why one module of this length: the matching rule, its per-component assignment and the counts
built on it are one definition; half of the lines are the numpydoc and doctests each public
function carries.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lipobench.metrics.errors import MetricInputError
from lipobench.metrics.iou import Overlaps, overlaps
from lipobench.regions import RegionKind, RegionSet

__all__ = ["Aggregation", "CentreMatchResult", "MatchResult", "aggregate", "match",
           "match_centres", "micro_rates", "rates"]

#: The columns of :meth:`MatchResult.to_frame`, in order.
FRAME_COLUMNS = ("iou_threshold", "tp", "fp", "fn", "n_true", "n_pred", "precision", "recall",
                 "f1")


class Aggregation(str, enum.Enum):
    """How per-image results are combined by :func:`aggregate`."""

    #: Sum tp, fp and fn over images, then divide: every particle weighs the same.
    MICRO = "micro"
    #: Mean of the per-image precision, recall and F1: every image weighs the same.
    MACRO = "macro"


def rates(tp, n_true, n_pred):
    """Precision, recall and F1 from counts, with the empty-set conventions of this module.

    >>> [float(x) for x in rates(3, 4, 6)]
    [0.5, 0.75, 0.6]
    >>> [float(x) for x in rates(0, 0, 0)]  # nothing to find and nothing found
    [1.0, 1.0, 1.0]
    >>> [float(x) for x in rates(0, 5, 0)]
    [1.0, 0.0, 0.0]
    """
    tp = np.asarray(tp, dtype=np.float64)
    n_true = np.asarray(n_true, dtype=np.float64)
    n_pred = np.asarray(n_pred, dtype=np.float64)
    precision = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), 1.0)
    recall = np.where(n_true > 0, tp / np.maximum(n_true, 1), 1.0)
    both = n_true + n_pred
    f1 = np.where(both > 0, 2 * tp / np.maximum(both, 1), 1.0)
    return precision, recall, f1


def micro_rates(tp, fp, fn):
    """Micro-averaged precision, recall and F1: :func:`rates` of counts summed over images.

    The one micro-average: :func:`aggregate` and the results tables
    (``lipobench.report.aggregate``) both give their sums to it.

    >>> [round(float(x), 3) for x in micro_rates(3, 1, 3)]
    [0.75, 0.5, 0.6]
    """
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    return rates(tp, tp + fn, tp + fp)


@dataclass(frozen=True, eq=False)
class MatchResult:
    """Counts and matched pairs of one image at each IoU threshold.

    Attributes
    ----------
    thresholds : ndarray of float
        The IoU thresholds, in the order given.
    tp, fp, fn : ndarray of int
        True positives, false positives and false negatives, one per threshold.
    n_true, n_pred : int
        Number of true and predicted regions.
    inclusive : bool
        Whether a pair counted at IoU equal to the threshold (``>=``) or only above it (``>``).
    kind : RegionKind
        The kind of regions matched.
    truth_ids, pred_ids : ndarray of int
        Label values (masks) or row numbers (boxes, circles) of the regions, by index.
    truth_areas, pred_areas : ndarray of float
        Region areas in pixels, by index.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    n_true: int
    n_pred: int
    inclusive: bool
    kind: RegionKind
    truth_ids: np.ndarray = field(repr=False)
    pred_ids: np.ndarray = field(repr=False)
    truth_areas: np.ndarray = field(repr=False)
    pred_areas: np.ndarray = field(repr=False)
    _pairs: tuple = field(repr=False, default=())

    @property
    def precision(self) -> np.ndarray:
        """``tp / n_pred`` per threshold (1 when there are no predictions)."""
        return rates(self.tp, self.n_true, self.n_pred)[0]

    @property
    def recall(self) -> np.ndarray:
        """``tp / n_true`` per threshold (1 when there is no truth)."""
        return rates(self.tp, self.n_true, self.n_pred)[1]

    @property
    def f1(self) -> np.ndarray:
        """``2 tp / (n_true + n_pred)`` per threshold (1 when both are empty)."""
        return rates(self.tp, self.n_true, self.n_pred)[2]

    def pairs(self, threshold: float):
        """The matched pairs at one of :attr:`thresholds`.

        Returns
        -------
        truth_idx, pred_idx : ndarray of int
            Region indices (positions in ``ids`` order for masks, rows for boxes and circles).
        iou : ndarray of float
            IoU of each matched pair; every value passes the threshold.
        """
        hits = np.flatnonzero(np.isclose(self.thresholds, float(threshold), rtol=0, atol=1e-9))
        if hits.size == 0:
            raise MetricInputError(
                f"IoU threshold {threshold} was not scored; "
                f"use one of {self.thresholds.tolist()} or match again with it"
            )
        return self._pairs[int(hits[0])]

    def to_frame(self) -> pd.DataFrame:
        """One row per threshold with the columns in :data:`FRAME_COLUMNS`."""
        precision, recall, f1 = rates(self.tp, self.n_true, self.n_pred)
        return pd.DataFrame({
            "iou_threshold": self.thresholds,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "n_true": np.full(len(self.thresholds), self.n_true, dtype=np.int64),
            "n_pred": np.full(len(self.thresholds), self.n_pred, dtype=np.int64),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        })


def as_thresholds(iou_thresholds) -> np.ndarray:
    """Validate IoU thresholds: one float or a sequence, each strictly between 0 and 1.

    >>> as_thresholds(0.5).tolist()
    [0.5]
    >>> as_thresholds([1.0])
    Traceback (most recent call last):
    ...
    lipobench.metrics.errors.MetricInputError: IoU threshold 1.0 is outside (0, 1): ...
    """
    try:
        values = np.atleast_1d(np.asarray(iou_thresholds, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise MetricInputError(
            f"IoU thresholds must be numbers, got {iou_thresholds!r}; pass e.g. (0.5, 0.75)"
        ) from exc
    if values.ndim != 1 or values.size == 0:
        raise MetricInputError(
            f"IoU thresholds must be a flat, non-empty list, got {iou_thresholds!r}; "
            "pass e.g. (0.5, 0.75)"
        )
    for value in values:
        if not (math.isfinite(value) and 0.0 < value < 1.0):
            raise MetricInputError(
                f"IoU threshold {value} is outside (0, 1): use values such as 0.5 or 0.75"
            )
    if len(np.unique(values)) != len(values):
        raise MetricInputError(
            f"IoU thresholds {values.tolist()} repeat a value: list each threshold once"
        )
    return values


_PLURAL = {RegionKind.MASK: "masks", RegionKind.BOX: "boxes", RegionKind.CIRCLE: "circles"}
_CONVERT = {
    RegionKind.BOX: ("to_boxes()", "box"),
    RegionKind.CIRCLE: ("to_circles()", "circle"),
}


def check_pair(truth, pred, *, same_kind: bool = True) -> None:
    """Raise :class:`MetricInputError` unless ``truth`` and ``pred`` can be matched.

    ``same_kind=False`` (centre matching) accepts regions of different kinds.
    """
    for name, regions in (("truth", truth), ("prediction", pred)):
        if not isinstance(regions, RegionSet):
            raise MetricInputError(
                f"the {name} must be a lipobench RegionSet, got {type(regions).__name__}; "
                "build one with RegionSet.from_labels, from_boxes or from_circles"
            )
    if same_kind and truth.kind is not pred.kind:
        if truth.kind is RegionKind.MASK:
            method, option = _CONVERT[pred.kind]
            fix = f"convert the truth with truth.{method} (command line: --truth-shape {option})"
        elif pred.kind is RegionKind.MASK:
            method, _ = _CONVERT[truth.kind]
            fix = f"convert the prediction with pred.{method}"
        else:
            method, _ = _CONVERT[pred.kind]
            fix = f"convert one side, e.g. truth.{method}"
        raise MetricInputError(
            f"the truth holds {_PLURAL[truth.kind]} but the prediction holds "
            f"{_PLURAL[pred.kind]}: "
            f"{fix}"
        )
    if tuple(truth.image_shape) != tuple(pred.image_shape):
        raise MetricInputError(
            f"the truth is for an image of {truth.image_shape[0]}x{truth.image_shape[1]} px but "
            f"the prediction for {pred.image_shape[0]}x{pred.image_shape[1]} px: score "
            "predictions made on the same micrograph at the same scale (rescale coordinates "
            "first)"
        )
    for name, regions in (("truth", truth), ("prediction", pred)):
        _check_sizes(name, regions)


def _check_sizes(name: str, regions: RegionSet) -> None:
    # RegionSet's constructors validate too; this guards sets built around them.
    if regions.kind is RegionKind.MASK:
        return
    table = regions.boxes if regions.kind is RegionKind.BOX else regions.circles
    table = np.asarray(table, dtype=np.float64)
    if table.size and not np.all(np.isfinite(table)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(table), axis=1))[0])
        raise MetricInputError(
            f"{name} region {bad} has a non-finite coordinate {table[bad].tolist()}: "
            "drop or fix it before scoring"
        )
    if regions.kind is RegionKind.BOX:
        sizes = np.minimum(table[:, 2] - table[:, 0], table[:, 3] - table[:, 1])
        what = "box with row1 <= row0 or col1 <= col0"
    else:
        sizes = table[:, 2]
        what = "circle with radius <= 0"
    if (sizes <= 0).any():
        bad = int(np.flatnonzero(sizes <= 0)[0])
        raise MetricInputError(
            f"{name} region {bad} is a {what} {table[bad].tolist()}: sizes must be positive"
        )


def match(truth: RegionSet, pred: RegionSet, iou_thresholds=(0.5, 0.75, 0.9), *,
          inclusive: bool = False) -> MatchResult:
    """Match predicted to true regions one-to-one and count hits at each IoU threshold.

    Parameters
    ----------
    truth, pred : RegionSet
        Regions of the same kind (masks, boxes or circles) on the same image shape.
    iou_thresholds : float or sequence of float
        Each strictly between 0 and 1.
    inclusive : bool, keyword-only
        False (default, the paper's rule): a pair counts when IoU > threshold.
        True: when IoU >= threshold (cellpose's and stardist's rule).

    Returns
    -------
    MatchResult
        tp, fp, fn, precision, recall and F1 per threshold, and the matched pairs.

    Raises
    ------
    MetricInputError
        Kinds or image shapes differ, a size is not positive or finite, or a threshold is
        outside (0, 1).

    Notes
    -----
    For each threshold the matching is optimal: it has the most pairs whose IoU passes the
    threshold and, among those, the highest total IoU. With no predictions precision is 1;
    with no truth recall is 1; F1 is ``2 tp / (n_true + n_pred)``, 1 when both are empty.

    Examples
    --------
    >>> truth = RegionSet.from_circles([[10, 10, 5], [30, 30, 5]], image_shape=(64, 64))
    >>> pred = RegionSet.from_circles([[10, 11, 5], [50, 50, 4]], image_shape=(64, 64))
    >>> res = match(truth, pred, (0.5, 0.9))
    >>> res.tp.tolist(), res.fp.tolist(), res.fn.tolist()
    ([1, 0], [1, 2], [1, 2])
    >>> res.precision.tolist(), res.recall.tolist()
    ([0.5, 0.0], [0.5, 0.0])
    >>> t_idx, p_idx, iou = res.pairs(0.5)
    >>> t_idx.tolist(), p_idx.tolist(), iou.round(3).tolist()
    ([0], [0], [0.774])
    >>> res.to_frame().columns.tolist()
    ['iou_threshold', 'tp', 'fp', 'fn', 'n_true', 'n_pred', 'precision', 'recall', 'f1']
    """
    thresholds = as_thresholds(iou_thresholds)
    check_pair(truth, pred)
    found = overlaps(truth, pred)
    return _result(found, thresholds, inclusive=bool(inclusive), kind=truth.kind)


def _result(found: Overlaps, thresholds: np.ndarray, *, inclusive: bool,
            kind: RegionKind) -> MatchResult:
    n_true, n_pred = len(found.truth_ids), len(found.pred_ids)
    tp = np.zeros(len(thresholds), dtype=np.int64)
    pairs = []
    for k, threshold in enumerate(thresholds):
        passing = found.iou >= threshold if inclusive else found.iou > threshold
        edges = np.flatnonzero(passing)
        chosen = edges[optimal_matching(found.truth_idx[edges], found.pred_idx[edges],
                                        found.iou[edges])]
        order = np.argsort(found.truth_idx[chosen], kind="stable")
        chosen = chosen[order]
        tp[k] = len(chosen)
        pairs.append((found.truth_idx[chosen], found.pred_idx[chosen], found.iou[chosen]))
    return MatchResult(
        thresholds=thresholds, tp=tp, fp=n_pred - tp, fn=n_true - tp,
        n_true=n_true, n_pred=n_pred, inclusive=inclusive, kind=kind,
        truth_ids=found.truth_ids, pred_ids=found.pred_ids,
        truth_areas=found.truth_areas, pred_areas=found.pred_areas, _pairs=tuple(pairs),
    )


def components(ti: np.ndarray, pj: np.ndarray):
    """Split the bipartite graph of edges ``(ti[e], pj[e])`` into connected components.

    Returns the edges that form components of their own (one truth, one prediction, one
    edge) and a list with the edge indices of every larger component.

    >>> lone, groups = components(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]))
    >>> lone.tolist(), [g.tolist() for g in groups]
    ([0], [[1, 2, 3]])
    """
    ti = np.asarray(ti, dtype=np.int64)
    pj = np.asarray(pj, dtype=np.int64)
    if len(ti) == 0:
        return np.zeros(0, dtype=np.int64), []
    lone = (np.bincount(ti)[ti] == 1) & (np.bincount(pj)[pj] == 1)
    rest = np.flatnonzero(~lone)
    if rest.size == 0:
        return np.flatnonzero(lone), []
    # Prediction nodes follow the truth nodes in one numbering.
    label = _connected(ti[rest], pj[rest] + int(ti.max()) + 1)
    order = np.argsort(label, kind="stable")
    bounds = np.flatnonzero(np.diff(label[order])) + 1
    return np.flatnonzero(lone), np.split(rest[order], bounds)


#: Up to this many edges a union-find in Python beats scipy's connected_components, whose
#: input validation alone costs about a millisecond.
_SMALL_GRAPH = 512


def _connected(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A component label for each edge ``(a[e], b[e])`` of an undirected graph."""
    if len(a) <= _SMALL_GRAPH:
        parent: dict[int, int] = {}

        def root(node: int) -> int:
            parent.setdefault(node, node)
            while parent[node] != node:
                parent[node] = parent[parent[node]]
                node = parent[node]
            return node

        for u, v in zip(a.tolist(), b.tolist(), strict=True):
            ru, rv = root(u), root(v)
            if ru != rv:
                parent[ru] = rv
        return np.array([root(u) for u in a.tolist()], dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    size = int(max(a.max(), b.max())) + 1
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(size, size))
    return connected_components(graph, directed=False)[1][a]


def optimal_matching(ti: np.ndarray, pj: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Indices of the edges in a one-to-one matching with most edges, then highest IoU sum.

    >>> optimal_matching(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([.9, .6, .7]))
    array([1, 2])
    """
    lone, groups = components(ti, pj)
    chosen = [lone] + [solve_component(ti[g], pj[g], iou[g], g) for g in groups]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def solve_component(ti, pj, iou, edge_ids) -> np.ndarray:
    """The optimal matching of one connected component, as a subset of ``edge_ids``."""
    if len(ti) == 0:
        return np.zeros(0, dtype=np.int64)
    if np.all(ti == ti[0]) or np.all(pj == pj[0]):
        # A star (one truth, several predictions or the reverse) holds one match at most.
        return np.asarray(edge_ids)[[int(np.argmax(iou))]]
    from scipy.optimize import linear_sum_assignment

    # Components are small: numbering their nodes in Python beats two np.unique calls.
    r_index: dict[int, int] = {}
    c_index: dict[int, int] = {}
    r_of = np.array([r_index.setdefault(v, len(r_index)) for v in ti.tolist()], dtype=np.intp)
    c_of = np.array([c_index.setdefault(v, len(c_index)) for v in pj.tolist()], dtype=np.intp)
    rows, cols = r_index, c_index
    # Every matched edge weighs 1 plus a share of its IoU; the IoU shares of a whole matching
    # sum to less than 1, so the solver first maximizes the number of pairs, then the IoU.
    size = min(len(rows), len(cols))
    weight = np.zeros((len(rows), len(cols)))
    weight[r_of, c_of] = 1.0 + iou / (size + 1)
    edge_at = np.full((len(rows), len(cols)), -1, dtype=np.int64)
    edge_at[r_of, c_of] = edge_ids
    r, c = linear_sum_assignment(weight, maximize=True)
    picked = edge_at[r, c]
    return picked[picked >= 0]


def aggregate(results: Sequence[MatchResult], *, how: Aggregation | str = Aggregation.MICRO
              ) -> pd.DataFrame:
    """Combine per-image results into one row per IoU threshold.

    Parameters
    ----------
    results : sequence of MatchResult
        Per-image results scored at the same thresholds with the same ``inclusive`` rule.
    how : {"micro", "macro"}, keyword-only
        ``micro`` sums tp, fp and fn over images, then computes precision, recall and F1;
        ``macro`` averages the per-image precision, recall and F1 (macro F1 is the mean of
        per-image F1, not the harmonic mean of macro precision and recall). The count
        columns are sums in both cases.

    Returns
    -------
    pandas.DataFrame
        The columns of :meth:`MatchResult.to_frame` plus ``n_images`` and ``how``.

    Examples
    --------
    >>> t = RegionSet.from_boxes([[0, 0, 4, 4]], image_shape=(8, 8))
    >>> p = RegionSet.from_boxes([[0, 0, 4, 4], [5, 5, 7, 7]], image_shape=(8, 8))
    >>> one, two = match(t, p, 0.5), match(t, t, 0.5)
    >>> aggregate([one, two], how="micro")[["tp", "fp", "precision"]].values.tolist()
    [[2.0, 1.0, 0.6666666666666666]]
    >>> float(aggregate([one, two], how="macro")["precision"].iloc[0])
    0.75
    """
    try:
        how = Aggregation(how)
    except ValueError as exc:
        raise MetricInputError(
            f"unknown aggregation {how!r}: use one of {[a.value for a in Aggregation]}"
        ) from exc
    results = list(results)
    if not results:
        raise MetricInputError("aggregate needs at least one MatchResult; match some images first")
    first = results[0]
    for k, res in enumerate(results):
        if not isinstance(res, MatchResult):
            raise MetricInputError(
                f"result {k} is a {type(res).__name__}, not a MatchResult: pass match()'s output"
            )
        if (res.thresholds.shape != first.thresholds.shape
                or not np.allclose(res.thresholds, first.thresholds)
                or res.inclusive != first.inclusive):
            raise MetricInputError(
                f"result {k} was scored at IoU thresholds {res.thresholds.tolist()} "
                f"(inclusive={res.inclusive}) but result 0 at {first.thresholds.tolist()} "
                f"(inclusive={first.inclusive}): match every image with the same thresholds"
            )
    tp = np.sum([r.tp for r in results], axis=0)
    fp = np.sum([r.fp for r in results], axis=0)
    fn = np.sum([r.fn for r in results], axis=0)
    n_true = sum(r.n_true for r in results)
    n_pred = sum(r.n_pred for r in results)
    if how is Aggregation.MICRO:
        precision, recall, f1 = micro_rates(tp, fp, fn)
    else:
        per_image = np.array([rates(r.tp, r.n_true, r.n_pred) for r in results])
        precision, recall, f1 = per_image.mean(axis=0)
    count = len(first.thresholds)
    return pd.DataFrame({
        "iou_threshold": first.thresholds,
        "tp": tp, "fp": fp, "fn": fn,
        "n_true": np.full(count, n_true, dtype=np.int64),
        "n_pred": np.full(count, n_pred, dtype=np.int64),
        "precision": precision, "recall": recall, "f1": f1,
        "n_images": np.full(count, len(results), dtype=np.int64),
        "how": how.value,
    })


# ---------------------------------------------------------------------------- centre distance
#: The columns of :meth:`CentreMatchResult.to_frame`, in order.
CENTRE_FRAME_COLUMNS = ("max_distance", "tp", "fp", "fn", "n_true", "n_pred", "precision",
                        "recall", "f1")


@dataclass(frozen=True, eq=False)
class CentreMatchResult:
    """Counts and matched pairs of one image when centres match within a distance.

    Attributes
    ----------
    max_distance : float
        Largest centre distance, in pixels, at which a pair may match (inclusive).
    tp, fp, fn : int
        True positives (matched predictions), false positives and false negatives.
    n_true, n_pred : int
        Number of true and predicted regions.
    truth_idx, pred_idx : ndarray of int
        Row numbers (ids order for masks) of the matched truth and predicted regions,
        sorted by ``truth_idx``.
    distances : ndarray of float
        Centre distance of each matched pair, in pixels; every value is at most
        ``max_distance``.
    """

    max_distance: float
    tp: int
    fp: int
    fn: int
    n_true: int
    n_pred: int
    truth_idx: np.ndarray = field(repr=False)
    pred_idx: np.ndarray = field(repr=False)
    distances: np.ndarray = field(repr=False)

    @property
    def precision(self) -> float:
        """``tp / n_pred`` (1 when there are no predictions)."""
        return float(rates(self.tp, self.n_true, self.n_pred)[0])

    @property
    def recall(self) -> float:
        """``tp / n_true`` (1 when there is no truth)."""
        return float(rates(self.tp, self.n_true, self.n_pred)[1])

    @property
    def f1(self) -> float:
        """``2 tp / (n_true + n_pred)`` (1 when both are empty)."""
        return float(rates(self.tp, self.n_true, self.n_pred)[2])

    def to_frame(self) -> pd.DataFrame:
        """One row with the columns in :data:`CENTRE_FRAME_COLUMNS`."""
        return pd.DataFrame({
            "max_distance": [self.max_distance], "tp": [self.tp], "fp": [self.fp],
            "fn": [self.fn], "n_true": [self.n_true], "n_pred": [self.n_pred],
            "precision": [self.precision], "recall": [self.recall], "f1": [self.f1],
        }, columns=list(CENTRE_FRAME_COLUMNS))


def _max_distance(value) -> float:
    # True is not a distance, nor is the text "27".
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    distance = float(value) if real else math.nan
    if not (math.isfinite(distance) and distance > 0):
        raise MetricInputError(
            f"max_distance must be a positive number of pixels, got {value!r}; pass e.g. "
            "max_distance=27 (a quarter of the particle diameter)"
        )
    return distance


def match_centres(truth: RegionSet, pred: RegionSet, *, max_distance: float
                  ) -> CentreMatchResult:
    """Match predicted to true regions one-to-one by the distance between their centres.

    The convention of particle-picking benchmarks (EMPIAR, REPIC, CryoPPP): a pick is a true
    positive when it is assigned to a true particle whose centre lies within
    ``max_distance`` pixels of its own.

    Parameters
    ----------
    truth, pred : RegionSet
        Regions of any kinds (masks, boxes, circles; the two may differ) on the same image
        shape. Only their centres (:meth:`RegionSet.centroids`) are used.
    max_distance : float, keyword-only
        Largest centre distance in pixels at which a pair may match (``distance <=
        max_distance``); pairs farther apart never match.

    Returns
    -------
    CentreMatchResult
        tp, fp, fn, precision, recall and F1, and the matched pairs with their distances.

    Raises
    ------
    MetricInputError
        The inputs are not RegionSets, their image shapes differ, or ``max_distance`` is not
        a positive finite number.

    Notes
    -----
    The assignment is optimal: it has the most pairs within ``max_distance`` and, among
    those, the smallest total distance (:func:`scipy.optimize.linear_sum_assignment` on the
    distance matrix restricted to pairs within reach, solved per connected component).
    Precision, recall and F1 follow :func:`rates`, so empty sets never divide by zero.

    Examples
    --------
    >>> truth = RegionSet.from_circles([[10, 10, 5], [30, 30, 5]], image_shape=(64, 64))
    >>> pred = RegionSet.from_boxes([[6, 8, 16, 18], [40, 40, 50, 50]], image_shape=(64, 64))
    >>> res = match_centres(truth, pred, max_distance=5)
    >>> res.tp, res.fp, res.fn, res.precision, res.recall
    (1, 1, 1, 0.5, 0.5)
    >>> res.truth_idx.tolist(), res.pred_idx.tolist(), res.distances.round(3).tolist()
    ([0], [0], [3.162])
    """
    distance = _max_distance(max_distance)
    check_pair(truth, pred, same_kind=False)
    truth_centres = np.asarray(truth.centroids(), dtype=np.float64).reshape(-1, 2)
    pred_centres = np.asarray(pred.centroids(), dtype=np.float64).reshape(-1, 2)
    for name, centres in (("truth", truth_centres), ("prediction", pred_centres)):
        if not np.all(np.isfinite(centres)):
            bad = int(np.flatnonzero(~np.all(np.isfinite(centres), axis=1))[0])
            raise MetricInputError(f"{name} region {bad} has a non-finite centre "
                                   f"{centres[bad].tolist()}: drop or fix it before scoring")
    ti, pj, dist = _pairs_within(truth_centres, pred_centres, distance)
    # Closeness in [0, 1]: optimal_matching maximizes the pairs, then the summed closeness,
    # which is the smallest summed distance.
    chosen = optimal_matching(ti, pj, 1.0 - dist / distance)
    chosen = chosen[np.argsort(ti[chosen], kind="stable")]
    n_true, n_pred, tp = len(truth_centres), len(pred_centres), len(chosen)
    return CentreMatchResult(max_distance=distance, tp=tp, fp=n_pred - tp, fn=n_true - tp,
                             n_true=n_true, n_pred=n_pred, truth_idx=ti[chosen],
                             pred_idx=pj[chosen], distances=dist[chosen])


def _pairs_within(a: np.ndarray, b: np.ndarray, radius: float):
    """Every pair ``(i, j)`` with ``|a[i] - b[j]| <= radius``, and its distance."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    from scipy.spatial import cKDTree

    near = cKDTree(a).query_ball_tree(cKDTree(b), radius)
    ti = np.repeat(np.arange(len(a), dtype=np.int64), [len(js) for js in near])
    pj = np.array([j for js in near for j in sorted(js)], dtype=np.int64)
    dist = np.hypot(*(a[ti] - b[pj]).T)
    keep = dist <= radius  # the tree's rounding may admit a pair a hair beyond
    return ti[keep], pj[keep], dist[keep]
