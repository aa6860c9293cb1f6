"""match_centres(): one-to-one, optimal, never beyond max_distance, conventions, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipobench.metrics import CentreMatchResult, MetricInputError, match_centres, rates
from lipobench.regions import RegionSet

SHAPE = (64, 64)


def _points(rows_cols, radius=3.0):
    table = np.column_stack([np.asarray(rows_cols, float).reshape(-1, 2),
                             np.full(len(rows_cols), radius)]).reshape(-1, 3)
    return RegionSet.from_circles(table, image_shape=SHAPE)


def test_one_to_one_each_truth_takes_one_pick():
    truth = _points([[10, 10]])
    pred = _points([[10, 11], [11, 10], [10, 10]])
    res = match_centres(truth, pred, max_distance=5)
    assert isinstance(res, CentreMatchResult)
    assert (res.tp, res.fp, res.fn, res.n_true, res.n_pred) == (1, 2, 0, 1, 3)
    assert res.pred_idx.tolist() == [2] and res.distances.tolist() == [0.0]


def test_optimal_not_greedy():
    # Greedy nearest-first pairs truth 0 with pick 0 (distance 1) and leaves truth 1 alone;
    # the optimum pairs truth 0 with pick 1 and truth 1 with pick 0.
    truth = _points([[10, 10], [10, 13]])
    pred = _points([[10, 11], [10, 6]])
    res = match_centres(truth, pred, max_distance=4.5)
    assert res.tp == 2
    assert res.truth_idx.tolist() == [0, 1] and res.pred_idx.tolist() == [1, 0]


def test_among_maximal_matchings_the_smallest_total_distance():
    truth = _points([[10, 10], [10, 20]])
    pred = _points([[10, 12], [10, 19]])
    res = match_centres(truth, pred, max_distance=20)
    assert res.pred_idx.tolist() == [0, 1] and res.distances.sum() == pytest.approx(3.0)


def test_pairs_beyond_the_radius_never_match_and_the_radius_is_inclusive():
    truth = _points([[10, 10], [40, 40]])
    pred = _points([[10, 15], [40, 45.001]])
    res = match_centres(truth, pred, max_distance=5)
    assert (res.tp, res.fp, res.fn) == (1, 1, 1)
    assert res.truth_idx.tolist() == [0] and res.distances.tolist() == [5.0]


def test_kinds_may_differ_only_centres_count():
    labels = np.zeros(SHAPE, np.int32)
    labels[8:12, 8:12] = 5  # centre (10, 10)
    masks = RegionSet.from_labels(labels)
    boxes = RegionSet.from_boxes([[7, 7, 13, 13], [30, 30, 34, 34]], image_shape=SHAPE)
    res = match_centres(masks, boxes, max_distance=1)
    assert (res.tp, res.fp, res.fn) == (1, 1, 0)


def test_rates_and_frame_follow_the_iou_conventions():
    truth = _points([[10, 10], [30, 30], [50, 50]])
    pred = _points([[10, 10], [31, 30]])
    res = match_centres(truth, pred, max_distance=2)
    precision, recall, f1 = (float(x) for x in rates(2, 3, 2))
    assert (res.precision, res.recall, res.f1) == (precision, recall, f1)
    frame = res.to_frame()
    assert frame.columns.tolist() == ["max_distance", "tp", "fp", "fn", "n_true", "n_pred",
                                      "precision", "recall", "f1"]
    assert frame.iloc[0].tolist() == [2.0, 2, 0, 1, 3, 2, 1.0, 2 / 3, 0.8]


@pytest.mark.parametrize("n_true, n_pred, expected", [(0, 0, (1.0, 1.0, 1.0)),
                                                      (2, 0, (1.0, 0.0, 0.0)),
                                                      (0, 2, (0.0, 1.0, 0.0))])
def test_empty_sets(n_true, n_pred, expected):
    truth = _points([[10, 10 + 10 * k] for k in range(n_true)])
    pred = _points([[30, 10 + 10 * k] for k in range(n_pred)])
    res = match_centres(truth, pred, max_distance=3)
    assert res.tp == 0 and (res.precision, res.recall, res.f1) == expected


def test_inputs_are_not_modified():
    truth = _points([[10, 10], [20, 20]])
    pred = _points([[10, 11]])
    before = (truth.circles.copy(), pred.circles.copy())
    match_centres(truth, pred, max_distance=3)
    assert np.array_equal(truth.circles, before[0]) and np.array_equal(pred.circles, before[1])


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "27", None, True])
def test_bad_max_distance(value):
    with pytest.raises(MetricInputError, match="max_distance must be a positive number"):
        match_centres(_points([[1, 1]]), _points([[1, 1]]), max_distance=value)


def test_bad_inputs_name_the_fix():
    with pytest.raises(MetricInputError, match="RegionSet"):
        match_centres(np.zeros((1, 2)), _points([[1, 1]]), max_distance=3)
    other = RegionSet.from_circles([[1, 1, 1]], image_shape=(32, 64))
    with pytest.raises(MetricInputError, match="64x64 px .* 32x64 px"):
        match_centres(_points([[1, 1]]), other, max_distance=3)
    with pytest.raises(TypeError):
        match_centres(_points([[1, 1]]), _points([[1, 1]]), 3)  # keyword-only


def _brute_force(truth: np.ndarray, pred: np.ndarray, radius: float) -> tuple[int, float]:
    """Most pairs within ``radius``, then the least total distance, by trying every matching."""
    best = (0, 0.0)
    for k in range(min(len(truth), len(pred)), 0, -1):
        for rows in itertools.combinations(range(len(truth)), k):
            for cols in itertools.permutations(range(len(pred)), k):
                d = np.hypot(*(truth[list(rows)] - pred[list(cols)]).T)
                if np.all(d <= radius) and (best[0] < k or d.sum() < best[1] - 1e-9):
                    best = (k, float(d.sum()))
        if best[0]:
            return best
    return best


_coords = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=5)


@settings(max_examples=60, deadline=None)
@given(truth=_coords, pred=_coords, radius=st.sampled_from([1.0, 2.5, 4.0, 7.0]))
def test_matches_brute_force(truth, pred, radius):
    t = np.asarray(truth, float).reshape(-1, 2)
    p = np.asarray(pred, float).reshape(-1, 2)
    res = match_centres(_points(t), _points(p), max_distance=radius)
    count, total = _brute_force(t, p, radius)
    assert res.tp == count
    assert res.distances.sum() == pytest.approx(total, abs=1e-9)
    assert len(set(res.truth_idx.tolist())) == res.tp == len(set(res.pred_idx.tolist()))
    assert np.all(res.distances <= radius)
