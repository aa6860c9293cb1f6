"""Exact IoU: analytic shapes against rasterization, masks against a direct count."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipobench.metrics.iou import box_iou, circle_iou, overlaps
from lipobench.regions import RegionSet

from _metrics_shapes import blobs, disks, perturb


def _raster_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _circle_raster(shape, row, col, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows + 0.5 - row) ** 2 + (cols + 0.5 - col) ** 2 <= radius**2


def _box_raster(shape, r0, c0, r1, c1):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return ((rows + 0.5 >= r0) & (rows + 0.5 < r1)) & ((cols + 0.5 >= c0) & (cols + 0.5 < c1))


@pytest.mark.parametrize("a, b", [
    ((400, 400, 250), (450, 380, 200)),   # lens
    ((400, 400, 250), (410, 405, 100)),   # nested
    ((400, 400, 150), (400, 680, 150.5)),  # barely touching
    ((300.3, 500.7, 180.2), (420.1, 380.9, 230.6)),
])
def test_circle_iou_matches_rasterized_large_circles(a, b):
    shape = (900, 1000)
    expected = _raster_iou(_circle_raster(shape, *a), _circle_raster(shape, *b))
    assert abs(circle_iou([a], [b])[0] - expected) <= 0.01


@pytest.mark.parametrize("a, b", [
    ((100, 100, 500, 600), (300, 250, 700, 800)),
    ((100.4, 100.2, 500.7, 600.1), (120.5, 130.5, 480.2, 590.9)),
    ((100, 100, 300, 300), (300, 300, 500, 500)),  # sharing a corner only
])
def test_box_iou_matches_rasterized_large_boxes(a, b):
    shape = (900, 1000)
    expected = _raster_iou(_box_raster(shape, *a), _box_raster(shape, *b))
    assert abs(box_iou([a], [b])[0] - expected) <= 0.01


circles = st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(0.1, 40))


@settings(max_examples=200, deadline=None)
@given(circles, circles)
def test_circle_iou_symmetric_and_bounded(a, b):
    forward, backward = circle_iou([a], [b])[0], circle_iou([b], [a])[0]
    assert forward == pytest.approx(backward, abs=1e-12)
    assert 0.0 <= forward <= 1.0


boxes = st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(0.1, 40),
                  st.floats(0.1, 40)).map(lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@settings(max_examples=200, deadline=None)
@given(boxes, boxes)
def test_box_iou_symmetric_and_bounded(a, b):
    forward, backward = box_iou([a], [b])[0], box_iou([b], [a])[0]
    assert forward == pytest.approx(backward, abs=1e-12)
    assert 0.0 <= forward <= 1.0


def test_identical_shapes_have_iou_one():
    assert circle_iou([[3, 4, 5]], [[3, 4, 5]])[0] == pytest.approx(1.0)
    assert box_iou([[1, 2, 3, 4]], [[1, 2, 3, 4]])[0] == pytest.approx(1.0)


def _dense_mask_iou(a, b):
    ids_a, ids_b = (np.setdiff1d(np.unique(x), [0]) for x in (a, b))
    table = np.zeros((len(ids_a), len(ids_b)))
    for i, la in enumerate(ids_a):
        for j, lb in enumerate(ids_b):
            ma, mb = a == la, b == lb
            if (ma & mb).any():
                table[i, j] = _raster_iou(ma, mb)
    return table


def _sparse_to_dense(found, shape):
    table = np.zeros(shape)
    table[found.truth_idx, found.pred_idx] = found.iou
    return table


# Shapes not divisible by the tile size, and smaller than one tile, exercise the edge strips.
@pytest.mark.parametrize("shape", [(70, 45), (10, 13), (64, 96)])
@pytest.mark.parametrize("seed", [0, 1])
def test_mask_overlaps_equal_direct_count(shape, seed):
    rng = np.random.default_rng(seed)
    truth = disks(rng, shape, 8)
    pred = perturb(rng, truth)
    found = overlaps(RegionSet.from_labels(truth), RegionSet.from_labels(pred))
    expected = _dense_mask_iou(truth, pred)
    np.testing.assert_allclose(_sparse_to_dense(found, expected.shape), expected)
    np.testing.assert_array_equal(found.truth_ids, np.setdiff1d(np.unique(truth), [0]))
    np.testing.assert_array_equal(found.truth_areas, np.bincount(truth.ravel())[1:])


@pytest.mark.parametrize("dtype", [np.uint16, np.int64, np.uint64, np.uint32])
def test_mask_overlaps_with_large_sparse_labels(dtype):
    """Label values far above the count go through compaction and give the same IoUs."""
    rng = np.random.default_rng(5)
    truth = blobs(rng, (80, 90))
    pred = perturb(rng, truth)
    # 2**23 is past the dense-table limit; RegionSet.from_labels itself bincounts up to the
    # largest label, so far larger values cost it memory.
    big = min(int(np.iinfo(dtype).max), 2**23)
    spread_t = np.where(truth > 0, big - truth.astype(np.int64) * 3, 0).astype(dtype)
    spread_p = np.where(pred > 0, big - 7 - pred.astype(np.int64) * 5, 0).astype(dtype)
    plain = overlaps(RegionSet.from_labels(truth), RegionSet.from_labels(pred))
    spread = overlaps(RegionSet.from_labels(spread_t), RegionSet.from_labels(spread_p))
    n_t, n_p = len(plain.truth_ids), len(plain.pred_ids)
    # Spreading reverses the label order, so region k of one is region n-1-k of the other.
    dense_plain = _sparse_to_dense(plain, (n_t, n_p))
    dense_spread = _sparse_to_dense(spread, (n_t, n_p))[::-1, ::-1]
    np.testing.assert_allclose(dense_spread, dense_plain)
    assert spread.truth_ids.max() == big - 3


def test_crowded_label_images_read_whole():
    """More than half the tiles busy: the whole-image path gives the same table."""
    rng = np.random.default_rng(11)
    truth = disks(rng, (96, 96), 60, radius=(6, 14))
    pred = perturb(rng, truth)
    found = overlaps(RegionSet.from_labels(truth), RegionSet.from_labels(pred))
    expected = _dense_mask_iou(truth, pred)
    np.testing.assert_allclose(_sparse_to_dense(found, expected.shape), expected)
