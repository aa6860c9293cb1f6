"""match(): counts against cellpose's oracle, optimality, conventions and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from lipobench.errors import UserError
from lipobench.metrics import MatchResult, MetricInputError, aggregate, match
from lipobench.metrics.iou import box_iou, circle_iou
from lipobench.regions import RegionKind, RegionSet

from _metrics_shapes import blobs, disks, jitter, perturb, random_boxes, random_circles

THRESHOLDS = [0.5, 0.75, 0.9]


def _label_pairs():
    for seed in range(4):
        rng = np.random.default_rng(seed)
        truth = disks(rng, (96, 80), 14)
        yield f"disks-{seed}", truth, perturb(rng, truth)
        truth = blobs(rng, (90, 100))
        yield f"blobs-{seed}", truth, perturb(rng, truth, shift=1)
    rng = np.random.default_rng(99)
    # An independent prediction: many partial overlaps, ties and near misses.
    yield "independent", disks(rng, (70, 70), 20), disks(rng, (70, 70), 20)


@pytest.fixture(scope="module")
def cellpose_average_precision():
    from cellpose.metrics import average_precision

    return average_precision


@pytest.mark.parametrize("name, truth, pred", list(_label_pairs()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_mask_counts_equal_cellpose(cellpose_average_precision, name, truth, pred):
    _, tp, fp, fn = cellpose_average_precision(truth, pred, threshold=THRESHOLDS)
    res = match(RegionSet.from_labels(truth), RegionSet.from_labels(pred), THRESHOLDS,
                inclusive=True)
    assert tp.sum() > 0, "the fixture should produce some matches"
    np.testing.assert_array_equal(res.tp, tp)
    np.testing.assert_array_equal(res.fp, fp)
    np.testing.assert_array_equal(res.fn, fn)


def _dense_optimum(iou, threshold, inclusive):
    """Cellpose's dense formulation on the full IoU table: (matches, IoU sum)."""
    passing = iou >= threshold if inclusive else iou > threshold
    if iou.size == 0:
        return 0, 0.0
    n_min = min(iou.shape)
    cost = -passing.astype(float) - iou * passing / (2 * n_min)
    r, c = linear_sum_assignment(cost)
    ok = passing[r, c]
    return int(ok.sum()), float(iou[r, c][ok].sum())


@pytest.mark.parametrize("kind", ["circle", "box"])
@pytest.mark.parametrize("seed", range(4))
def test_shape_matching_is_optimal(kind, seed):
    """Sparse, per-component matching finds the same optimum as a dense solve."""
    rng = np.random.default_rng(seed)
    if kind == "circle":
        t_table = random_circles(rng, 60, shape=(200, 200))
        p_table = np.concatenate([jitter(rng, t_table[:45], 3.0), jitter(rng, t_table[:15], 3.0),
                                  random_circles(rng, 10, shape=(200, 200))])
        dense = circle_iou(np.repeat(t_table, len(p_table), 0), np.tile(p_table, (len(t_table), 1)))
        truth = RegionSet.from_circles(t_table, image_shape=(200, 200))
        pred = RegionSet.from_circles(p_table, image_shape=(200, 200))
    else:
        t_table = random_boxes(rng, 60, shape=(200, 200))
        p_table = np.concatenate([jitter(rng, t_table[:45], 3.0), jitter(rng, t_table[:15], 3.0),
                                  random_boxes(rng, 10, shape=(200, 200))])
        dense = box_iou(np.repeat(t_table, len(p_table), 0), np.tile(p_table, (len(t_table), 1)))
        truth = RegionSet.from_boxes(t_table, image_shape=(200, 200))
        pred = RegionSet.from_boxes(p_table, image_shape=(200, 200))
    dense = dense.reshape(len(t_table), len(p_table))
    thresholds = [0.3, 0.5, 0.7]
    for inclusive in (False, True):
        res = match(truth, pred, thresholds, inclusive=inclusive)
        for k, threshold in enumerate(thresholds):
            count, total = _dense_optimum(dense, threshold, inclusive)
            t_idx, p_idx, iou = res.pairs(threshold)
            assert res.tp[k] == count
            assert iou.sum() == pytest.approx(total, rel=1e-9)
            # one-to-one, and the reported IoUs are the real ones
            assert len(set(t_idx)) == len(t_idx) and len(set(p_idx)) == len(p_idx)
            np.testing.assert_allclose(iou, dense[t_idx, p_idx])
            assert np.all(iou >= threshold if inclusive else iou > threshold)


def test_strict_rule_excludes_iou_equal_to_threshold():
    truth = RegionSet.from_boxes([[0, 0, 2, 4]], image_shape=(8, 8))
    pred = RegionSet.from_boxes([[0, 0, 2, 2]], image_shape=(8, 8))  # IoU exactly 0.5
    assert match(truth, pred, 0.5).tp.tolist() == [0]
    assert match(truth, pred, 0.5, inclusive=True).tp.tolist() == [1]


circle_sets = st.lists(
    st.tuples(st.floats(0, 60), st.floats(0, 60), st.floats(1, 12)), min_size=0, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(circle_sets, circle_sets, st.lists(st.floats(0.05, 0.95), min_size=2, max_size=5,
                                          unique=True))
def test_tp_monotone_in_threshold_and_symmetric(truth_rows, pred_rows, thresholds):
    truth = RegionSet.from_circles(np.array(truth_rows).reshape(-1, 3), image_shape=(64, 64))
    pred = RegionSet.from_circles(np.array(pred_rows).reshape(-1, 3), image_shape=(64, 64))
    thresholds = sorted(thresholds)
    res = match(truth, pred, thresholds)
    assert np.all(np.diff(res.tp) <= 0)
    inclusive = match(truth, pred, thresholds, inclusive=True)
    assert np.all(inclusive.tp >= res.tp)
    swapped = match(pred, truth, thresholds)
    np.testing.assert_array_equal(swapped.tp, res.tp)
    assert np.all((res.precision >= 0) & (res.precision <= 1))
    assert np.all((res.recall >= 0) & (res.recall <= 1))
    np.testing.assert_array_equal(res.tp + res.fp, len(pred_rows))
    np.testing.assert_array_equal(res.tp + res.fn, len(truth_rows))


def test_rates_and_frame():
    truth = RegionSet.from_boxes([[0, 0, 4, 4], [10, 10, 14, 14], [20, 20, 24, 24]],
                                 image_shape=(32, 32))
    pred = RegionSet.from_boxes([[0, 0, 4, 4], [10, 10, 14, 15], [28, 28, 30, 30],
                                 [5, 5, 6, 6]], image_shape=(32, 32))
    res = match(truth, pred, (0.5, 0.9))
    assert res.tp.tolist() == [2, 1]
    np.testing.assert_allclose(res.precision, [0.5, 0.25])
    np.testing.assert_allclose(res.recall, [2 / 3, 1 / 3])
    np.testing.assert_allclose(res.f1, [2 * 2 / 7, 2 * 1 / 7])
    frame = res.to_frame()
    assert list(frame.columns) == ["iou_threshold", "tp", "fp", "fn", "n_true", "n_pred",
                                   "precision", "recall", "f1"]
    assert frame["fp"].tolist() == [2, 3] and frame["n_pred"].tolist() == [4, 4]
    assert res.pairs(0.9)[1].tolist() == [0]


def test_mask_pairs_use_region_indices_and_ids():
    truth = np.zeros((20, 20), np.int32)
    truth[2:8, 2:8] = 40
    truth[10:18, 10:18] = 7
    pred = np.zeros((20, 20), np.int32)
    pred[10:18, 10:17] = 3
    res = match(RegionSet.from_labels(truth), RegionSet.from_labels(pred), 0.5)
    t_idx, p_idx, iou = res.pairs(0.5)
    assert res.truth_ids.tolist() == [7, 40]
    assert t_idx.tolist() == [0] and p_idx.tolist() == [0]
    assert iou.tolist() == pytest.approx([56 / 64])
    assert res.truth_areas.tolist() == [64.0, 36.0]


# ---------------------------------------------------------------- empty sets


@pytest.mark.parametrize("kind", list(RegionKind))
def test_empty_prediction(kind):
    truth = RegionSet.from_boxes([[1, 1, 5, 5]], image_shape=(16, 16))
    if kind is RegionKind.MASK:
        truth = RegionSet.from_labels(truth.to_label_image())
    elif kind is RegionKind.CIRCLE:
        truth = truth.to_circles()
    res = match(truth, RegionSet.empty(kind, (16, 16)), (0.5, 0.75))
    assert res.tp.tolist() == [0, 0] and res.fn.tolist() == [1, 1]
    assert res.precision.tolist() == [1.0, 1.0]   # nothing claimed, nothing wrong
    assert res.recall.tolist() == [0.0, 0.0]
    assert res.f1.tolist() == [0.0, 0.0]


def test_empty_truth_and_both_empty():
    pred = RegionSet.from_circles([[5, 5, 2]], image_shape=(16, 16))
    none = RegionSet.empty(RegionKind.CIRCLE, (16, 16))
    res = match(none, pred, 0.5)
    assert (res.precision.tolist(), res.recall.tolist(), res.f1.tolist()) == ([0.0], [1.0], [0.0])
    both = match(none, none, 0.5)
    assert (both.precision.tolist(), both.recall.tolist(), both.f1.tolist()) == ([1.0], [1.0],
                                                                                 [1.0])
    masks = RegionSet.empty(RegionKind.MASK, (16, 16))
    assert match(masks, masks, 0.5).f1.tolist() == [1.0]


# ---------------------------------------------------------------- bad input


def _circles(rows, shape=(32, 32)):
    return RegionSet.from_circles(rows, image_shape=shape)


def test_shapes_that_differ():
    with pytest.raises(MetricInputError, match=r"32x32 px but the prediction for 32x40"):
        match(_circles([[5, 5, 2]]), _circles([[5, 5, 2]], shape=(32, 40)))


def test_kinds_that_differ_name_the_conversion():
    labels = np.zeros((32, 32), np.int32)
    labels[3:9, 3:9] = 1
    with pytest.raises(MetricInputError, match=r"to_circles\(\).*--truth-shape circle"):
        match(RegionSet.from_labels(labels), _circles([[5, 5, 2]]))
    boxes = RegionSet.from_boxes([[1, 1, 5, 5]], image_shape=(32, 32))
    with pytest.raises(MetricInputError, match=r"pred.to_boxes\(\)"):
        match(boxes, RegionSet.from_labels(labels))
    with pytest.raises(MetricInputError, match="boxes but the prediction holds circles"):
        match(boxes, _circles([[5, 5, 2]]))


def test_not_a_regionset():
    with pytest.raises(MetricInputError, match="RegionSet"):
        match(np.zeros((4, 4), int), _circles([[1, 1, 1]]))


@pytest.mark.parametrize("rows", [[[5, 5, -2]], [[np.nan, 5, 2]], [[5, 5, 0]]])
def test_nan_or_negative_circle_sizes(rows):
    # The constructor refuses them ...
    with pytest.raises(UserError):
        _circles(rows)
    # ... and match refuses a set built around it.
    sneaky = RegionSet(RegionKind.CIRCLE, (32, 32), circles=np.asarray(rows, dtype=float))
    with pytest.raises(MetricInputError, match="prediction region 0"):
        match(_circles([[5, 5, 2]]), sneaky)


@pytest.mark.parametrize("rows", [[[5, 5, 3, 9]], [[5, 5, 9, np.inf]]])
def test_inverted_or_infinite_boxes(rows):
    sneaky = RegionSet(RegionKind.BOX, (32, 32), boxes=np.asarray(rows, dtype=float))
    with pytest.raises(MetricInputError, match="truth region 0"):
        match(sneaky, RegionSet.from_boxes([[1, 1, 4, 4]], image_shape=(32, 32)))


@pytest.mark.parametrize("thresholds", [0.0, 1.0, -0.2, 1.5, np.nan, [], [0.5, 0.5], "half",
                                        [[0.5]]])
def test_thresholds_outside_open_unit_interval(thresholds):
    with pytest.raises(MetricInputError):
        match(_circles([[5, 5, 2]]), _circles([[5, 5, 2]]), thresholds)


def test_pairs_for_an_unscored_threshold():
    res = match(_circles([[5, 5, 2]]), _circles([[5, 5, 2]]), 0.5)
    with pytest.raises(MetricInputError, match="0.6 was not scored"):
        res.pairs(0.6)


def test_match_does_not_mutate_inputs():
    table = np.array([[5.0, 5.0, 2.0], [20.0, 20.0, 4.0]])
    truth = _circles(table)
    before = truth.circles.copy()
    match(truth, _circles(table[::-1]), 0.5)
    np.testing.assert_array_equal(truth.circles, before)


# ---------------------------------------------------------------- aggregate


def _results():
    a = match(_circles([[5, 5, 3], [20, 20, 3]]), _circles([[5, 5, 3]]), (0.5, 0.8))
    b = match(_circles([[5, 5, 3]]), _circles([[5, 5, 3], [25, 25, 3], [12, 25, 2]]),
              (0.5, 0.8))
    return a, b


def test_aggregate_micro_and_macro():
    a, b = _results()
    micro = aggregate([a, b], how="micro")
    assert micro["tp"].tolist() == [2, 2] and micro["n_true"].tolist() == [3, 3]
    np.testing.assert_allclose(micro["precision"], [2 / 4, 2 / 4])
    np.testing.assert_allclose(micro["recall"], [2 / 3, 2 / 3])
    macro = aggregate([a, b], how="macro")
    np.testing.assert_allclose(macro["precision"], [(1 + 1 / 3) / 2] * 2)
    np.testing.assert_allclose(macro["recall"], [(0.5 + 1) / 2] * 2)
    np.testing.assert_allclose(macro["f1"], [(2 / 3 + 2 / 4) / 2] * 2)
    assert set(macro["how"]) == {"macro"} and macro["n_images"].tolist() == [2, 2]
    assert isinstance(micro, pd.DataFrame)


def test_aggregate_bad_input():
    a, _ = _results()
    other = match(_circles([[5, 5, 3]]), _circles([[5, 5, 3]]), (0.5,))
    with pytest.raises(MetricInputError, match="same thresholds"):
        aggregate([a, other])
    with pytest.raises(MetricInputError, match="unknown aggregation 'mean'"):
        aggregate([a], how="mean")
    with pytest.raises(MetricInputError, match="at least one"):
        aggregate([])
    assert isinstance(a, MatchResult)
