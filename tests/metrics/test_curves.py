"""Precision-recall curves over score: exact against rematching at every cutoff."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipobench.metrics import MetricInputError, match, precision_recall_curve
from lipobench.regions import RegionKind, RegionSet

from _metrics_shapes import jitter, random_circles


def _brute_force_tp(pairs, cutoffs, threshold, inclusive=False):
    return np.array([
        sum(int(match(t, p.select(p.scores >= cut), threshold, inclusive=inclusive).tp[0])
            for t, p in pairs)
        for cut in cutoffs
    ])


@pytest.mark.parametrize("seed", range(3))
def test_curve_equals_rematching_at_every_cutoff(seed):
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(2):
        t_table = random_circles(rng, 40, shape=(150, 150), radius=(5, 12))
        # duplicates and near-duplicates make components where greedy-by-score goes wrong
        p_table = np.concatenate([jitter(rng, t_table[:30], 2.5), jitter(rng, t_table[:12], 2.5),
                                  random_circles(rng, 8, shape=(150, 150))])
        scores = np.round(rng.uniform(0, 1, len(p_table)), 1)  # ties on purpose
        pairs.append((RegionSet.from_circles(t_table, image_shape=(150, 150)),
                       RegionSet.from_circles(p_table, image_shape=(150, 150), scores=scores)))
    for inclusive in (False, True):
        curve = precision_recall_curve([t for t, _ in pairs], [p for _, p in pairs],
                                       iou_threshold=0.5, inclusive=inclusive)
        expected = _brute_force_tp(pairs, curve.score_thresholds, 0.5, inclusive)
        np.testing.assert_array_equal(curve.tp, expected)
        kept = [sum(int((p.scores >= c).sum()) for _, p in pairs) for c in curve.score_thresholds]
        np.testing.assert_array_equal(curve.n_pred, kept)
        assert curve.n_true == 80
        np.testing.assert_array_equal(curve.fn, 80 - curve.tp)
        assert np.all(np.diff(curve.score_thresholds) < 0)
        assert np.all(np.diff(curve.recall) >= 0)


def test_optimal_not_greedy_by_score():
    """A high-score prediction between two particles must not block a low-score exact hit."""
    truth = RegionSet.from_boxes([[0, 0, 10, 10], [0, 2, 10, 12]], image_shape=(20, 20))
    pred = RegionSet.from_boxes([[0, 1, 10, 11], [0, 0, 10, 10]], image_shape=(20, 20),
                                scores=[0.9, 0.1])
    curve = precision_recall_curve(truth, pred, iou_threshold=0.7)
    assert curve.tp.tolist() == [1, 2]
    assert curve.recall.tolist() == [0.5, 1.0]


def test_area_step_and_envelope():
    truth = RegionSet.from_circles([[10, 10, 4], [30, 30, 4], [50, 50, 4]], image_shape=(64, 64))
    pred = RegionSet.from_circles([[10, 10, 4], [40, 10, 4], [30, 30, 4], [50, 50, 4]],
                                  image_shape=(64, 64), scores=[0.9, 0.8, 0.7, 0.6])
    curve = precision_recall_curve(truth, pred)
    np.testing.assert_allclose(curve.precision, [1, 0.5, 2 / 3, 0.75])
    np.testing.assert_allclose(curve.recall, [1 / 3, 1 / 3, 2 / 3, 1])
    step = 1 / 3 * 1 + 1 / 3 * (2 / 3) + 1 / 3 * 0.75
    envelope = 1 / 3 * 1 + 1 / 3 * 0.75 + 1 / 3 * 0.75
    assert curve.area() == pytest.approx(step)
    assert curve.average_precision == pytest.approx(step)
    assert curve.area(interpolation="envelope") == pytest.approx(envelope)
    frame = curve.to_frame()
    assert frame["score_threshold"].tolist() == [0.9, 0.8, 0.7, 0.6]
    with pytest.raises(MetricInputError, match="unknown interpolation"):
        curve.area(interpolation="linear")


def test_empty_sets():
    truth = RegionSet.from_circles([[10, 10, 4]], image_shape=(32, 32))
    none = RegionSet.empty(RegionKind.CIRCLE, (32, 32)).with_scores([])
    curve = precision_recall_curve(truth, none)
    assert len(curve.score_thresholds) == 0 and curve.area() == 0.0
    assert precision_recall_curve(none, none).area() == 1.0
    scored = RegionSet.from_circles([[10, 10, 4]], image_shape=(32, 32), scores=[0.3])
    only_false = precision_recall_curve(RegionSet.empty(RegionKind.CIRCLE, (32, 32)), scored)
    assert only_false.precision.tolist() == [0.0] and only_false.area() == 0.0


def test_bad_input():
    truth = RegionSet.from_circles([[10, 10, 4]], image_shape=(32, 32))
    unscored = RegionSet.from_circles([[10, 10, 4]], image_shape=(32, 32))
    with pytest.raises(MetricInputError, match="prediction 0 has no scores"):
        precision_recall_curve(truth, unscored)
    scored = unscored.with_scores([0.5])
    with pytest.raises(MetricInputError, match="one IoU threshold"):
        precision_recall_curve(truth, scored, iou_threshold=[0.5, 0.7])
    with pytest.raises(MetricInputError, match="outside"):
        precision_recall_curve(truth, scored, iou_threshold=1.0)
    with pytest.raises(MetricInputError, match="2 truth images but 1"):
        precision_recall_curve([truth, truth], [scored])
    with pytest.raises(MetricInputError, match="or a list for both"):
        precision_recall_curve(truth, [scored])

scored_circles = st.lists(
    st.tuples(st.floats(0, 40), st.floats(0, 40), st.floats(2, 9),
              st.sampled_from([0.1, 0.5, 0.9])),
    min_size=0, max_size=10,
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 40), st.floats(0, 40), st.floats(2, 9)), max_size=8),
       scored_circles, st.sampled_from([0.3, 0.5, 0.7]))
def test_curve_exact_for_any_scene(truth_rows, pred_rows, threshold):
    truth = RegionSet.from_circles(np.array(truth_rows).reshape(-1, 3), image_shape=(48, 48))
    table = np.array(pred_rows).reshape(-1, 4)
    pred = RegionSet.from_circles(table[:, :3], image_shape=(48, 48), scores=table[:, 3])
    curve = precision_recall_curve(truth, pred, iou_threshold=threshold)
    expected = _brute_force_tp([(truth, pred)], curve.score_thresholds, threshold)
    np.testing.assert_array_equal(curve.tp, expected)
    assert 0.0 <= curve.area() <= 1.0
