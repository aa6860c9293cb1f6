"""Matching through label runs (images of 2**18 pixels and more): exact, gapped labels included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipobench._label_runs import _MAX_RUN_SHARE, label_runs
from lipobench.errors import InvalidRegionsError
from lipobench.metrics import match
from lipobench.metrics.iou import _mask_overlaps, overlaps
from lipobench import regions
from lipobench.regions import RegionSet

from _metrics_shapes import disks, perturb

THRESHOLDS = [0.5, 0.75, 0.9]
#: Not a multiple of the kernels' 256-pixel rows, so the tail walk runs too.
SHAPE = (515, 517)


@pytest.fixture(autouse=True)
def _runs_for_small_images(monkeypatch):
    # Images of the paper's size take the runs path; these tests shrink the size limit so
    # that test images of 515 x 517 take it too.
    monkeypatch.setattr(regions, "_RUNS_MIN_PIXELS", 1 << 18)


def _pair(seed, count=80):
    rng = np.random.default_rng(seed)
    truth = disks(rng, SHAPE, count, radius=(4, 30))
    return truth, perturb(rng, truth, shift=3, extra=8)


def _gapped(rng, labels, top):
    """``labels`` with 1..N sent to N increasing values drawn from 1..top (0 stays 0)."""
    count = int(labels.max())
    values = np.unique(rng.integers(1, top + 1, 2 * count, dtype=np.int64))
    values = np.sort(rng.choice(values, count, replace=False))
    lookup = np.concatenate([[0], values]).astype(np.int64 if top >= 2**31 else np.int32)
    return lookup[labels]


def _decode(runs, size):
    flat = np.zeros(size, dtype=np.int64)
    for start, stop, value in zip(runs.starts, runs.stops, runs.values):
        flat[start:stop] = value
    return flat


def _assert_same_overlaps(from_runs, from_pixels):
    """The same pairs, IoUs, areas and ids, whatever order each lists its pairs in."""
    order_runs = np.lexsort((from_runs.pred_idx, from_runs.truth_idx))
    order_pixels = np.lexsort((from_pixels.pred_idx, from_pixels.truth_idx))
    for name in ("truth_idx", "pred_idx", "iou"):
        np.testing.assert_array_equal(getattr(from_runs, name)[order_runs],
                                      getattr(from_pixels, name)[order_pixels])
    for name in ("truth_areas", "pred_areas", "truth_ids", "pred_ids"):
        np.testing.assert_array_equal(getattr(from_runs, name), getattr(from_pixels, name))


@pytest.mark.parametrize("seed", range(3))
def test_run_path_counts_equal_cellpose(seed):
    from cellpose.metrics import average_precision

    truth, pred = _pair(seed)
    t_set, p_set = RegionSet.from_labels(truth), RegionSet.from_labels(pred)
    assert t_set.label_runs is not None and p_set.label_runs is not None
    _, tp, fp, fn = average_precision(truth, pred, threshold=THRESHOLDS)
    res = match(t_set, p_set, THRESHOLDS, inclusive=True)
    assert tp.sum() > 0
    np.testing.assert_array_equal(res.tp, tp)
    np.testing.assert_array_equal(res.fp, fp)
    np.testing.assert_array_equal(res.fn, fn)


@pytest.mark.parametrize("top", [5_000, 3 * 10**6, 2**40])
def test_gapped_labels_match_like_their_sequential_relabelling(top):
    # cellpose counts max(label) objects, so it scores the sequential relabelling; gapped
    # labels must give the same counts, pairs and areas, with the gapped values as ids.
    rng = np.random.default_rng(top % 1000)
    truth, pred = _pair(7)
    g_truth, g_pred = _gapped(rng, truth, top), _gapped(rng, pred, top)
    sequential = match(RegionSet.from_labels(truth), RegionSet.from_labels(pred), THRESHOLDS,
                       inclusive=True)
    gapped = match(RegionSet.from_labels(g_truth), RegionSet.from_labels(g_pred), THRESHOLDS,
                   inclusive=True)
    for name in ("tp", "fp", "fn", "truth_areas", "pred_areas"):
        np.testing.assert_array_equal(getattr(gapped, name), getattr(sequential, name))
    np.testing.assert_array_equal(gapped.truth_ids, np.unique(g_truth)[1:])
    np.testing.assert_array_equal(gapped.pred_ids, np.unique(g_pred)[1:])
    for threshold in THRESHOLDS:
        for ours, theirs in zip(gapped.pairs(threshold), sequential.pairs(threshold)):
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("top", [None, 5_000, 2**40])
def test_runs_and_pixels_give_the_same_overlaps(top):
    truth, pred = _pair(3)
    if top is not None:
        rng = np.random.default_rng(1)
        truth, pred = _gapped(rng, truth, top), _gapped(rng, pred, top)
    from_runs = overlaps(RegionSet.from_labels(truth), RegionSet.from_labels(pred))
    from_pixels = _mask_overlaps(truth, pred)
    _assert_same_overlaps(from_runs, from_pixels)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64])
def test_runs_encode_every_pixel(dtype):
    truth, _ = _pair(5, count=40)
    labels = truth.astype(dtype)
    runs, lowest = label_runs(labels)
    assert lowest == 0
    np.testing.assert_array_equal(_decode(runs, labels.size), labels.ravel())
    # A view that is not C-contiguous is encoded in the C order of its values.
    runs_t, _ = label_runs(labels.T)
    np.testing.assert_array_equal(_decode(runs_t, labels.size), labels.T.ravel())


def test_a_view_not_on_a_word_boundary_is_encoded_exactly():
    truth, _ = _pair(8, count=40)
    buffer = np.zeros(truth.size + 1, dtype=np.uint8)
    buffer[1:] = truth.ravel()
    shifted = buffer[1:].reshape(SHAPE)  # contiguous, one byte off 8-byte alignment
    runs, lowest = label_runs(shifted)
    assert lowest == 0
    np.testing.assert_array_equal(_decode(runs, truth.size), truth.ravel())
    # int32 labels one byte off their own alignment (numpy marks the view unaligned)
    wide = np.zeros(truth.size * 4 + 1, dtype=np.uint8)
    unaligned = wide[1:].view(np.int32).reshape(SHAPE)
    unaligned[...] = truth
    assert not unaligned.flags.aligned
    runs, lowest = label_runs(unaligned)
    assert lowest == 0
    np.testing.assert_array_equal(_decode(runs, truth.size), truth.ravel())


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
@pytest.mark.parametrize("where", [0, 300, 70_000, SHAPE[0] * SHAPE[1] - 1])
def test_negative_label_refused_wherever_it_is(where, dtype):
    truth, _ = _pair(2)
    flat = truth.ravel().astype(dtype)
    flat[where] = -3
    with pytest.raises(InvalidRegionsError, match="negative"):
        RegionSet.from_labels(flat.reshape(SHAPE))


def test_noise_like_labels_fall_back_to_pixels_and_stay_exact():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 50, SHAPE).astype(np.int32)  # a label change at most pixels
    pred = np.roll(truth, 1, axis=1)
    t_set = RegionSet.from_labels(truth)
    assert t_set.label_runs is None
    res = match(t_set, RegionSet.from_labels(pred), 0.5)
    reference = _mask_overlaps(truth, pred)
    np.testing.assert_array_equal(res.truth_areas, reference.truth_areas)
    noisy = truth.copy()
    noisy[-1, -1] = -1
    with pytest.raises(InvalidRegionsError, match="negative"):
        RegionSet.from_labels(noisy)


def test_uint64_labels_take_the_numpy_path():
    truth, pred = _pair(6)
    big = np.where(truth > 0, truth.astype(np.uint64) + np.uint64(2**63), np.uint64(0))
    assert label_runs(big) == (None, None)
    res = match(RegionSet.from_labels(big), RegionSet.from_labels(pred.astype(np.uint64)), 0.5)
    assert res.n_true == len(np.unique(truth)) - 1


def _reference_runs(flat):
    """(starts, stops, values) of the non-zero runs of ``flat``, by numpy."""
    flat = flat.astype(np.int64)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    starts, stops = edges[:-1], edges[1:]
    keep = flat[starts] != 0
    return starts[keep], stops[keep], flat[starts][keep]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(-2, 4)), min_size=1, max_size=60),
       st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"]),
       st.integers(0, 70))
def test_runs_of_any_lengths_are_encoded_exactly(pieces, dtype, width):
    # Runs of 1..300 pixels land anywhere against the kernels' 256-pixel rows and 64-pixel
    # chunks (a change at a chunk's first pixel, several in one chunk, rows of one label).
    lengths = np.array([n for n, _ in pieces])
    labels = np.array([v for _, v in pieces])
    if np.dtype(dtype).kind == "u":
        labels = np.abs(labels)
    flat = np.repeat(labels, lengths).astype(dtype)
    width = width or flat.size
    flat = np.concatenate([flat, np.zeros(-flat.size % width, dtype)])
    runs, lowest = label_runs(flat.reshape(-1, width))
    assert lowest == min(int(flat.min()), 0)
    starts, stops, values = _reference_runs(flat)
    if len(starts) > max(flat.size // _MAX_RUN_SHARE, 1):
        assert runs is None
        return
    np.testing.assert_array_equal(runs.starts, starts)
    np.testing.assert_array_equal(runs.stops, stops)
    np.testing.assert_array_equal(runs.values, values)


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_runs_are_kept_up_to_the_compactness_limit(extra):
    size = 512 * 512
    limit = size // _MAX_RUN_SHARE
    flat = np.zeros(size, np.int32)
    flat[1 : 2 * (limit + extra) : 2] = 5  # one-pixel runs, also in the walked first row
    runs, lowest = label_runs(flat.reshape(512, 512))
    assert lowest == 0
    if extra > 0:
        assert runs is None
    else:
        np.testing.assert_array_equal(runs.starts, np.arange(1, 2 * (limit + extra), 2))


@pytest.mark.parametrize("top", [None, 2**40])
def test_run_overlaps_past_the_dense_table_limit(monkeypatch, top):
    # More region pairs than the dense table holds: the merge lists the run pairs instead.
    from lipobench.metrics import iou

    truth, pred = _pair(9)
    if top is not None:
        rng = np.random.default_rng(2)
        truth, pred = _gapped(rng, truth, top), _gapped(rng, pred, top)
    from_pixels = _mask_overlaps(truth, pred)
    monkeypatch.setattr(iou, "_DENSE_LIMIT", 16)
    from_runs = overlaps(RegionSet.from_labels(truth), RegionSet.from_labels(pred))
    _assert_same_overlaps(from_runs, from_pixels)
