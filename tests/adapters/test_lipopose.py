"""LipoPose: the algorithms of lipobench.lipopose (confidence map and merges, checked against a
literal Algorithm 1 of the study; the cached pipeline) and the adapter that binds them to
Cellpose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from lipobench.errors import UserError
from lipobench.lipopose import (
    DEFAULT_THRESHOLDS,
    ConfidenceMethod,
    DetectionCounts,
    confidence_map,
    detection_counts,
    merge_instances,
    merge_masks,
    merge_until,
    parse_diameter_range,
)

from _lipopose_reference import algorithm1_reference

EIGHT = np.ones((3, 3), dtype=bool)


def canonical(labels: np.ndarray, scores) -> tuple[np.ndarray, list[float]]:
    """Number objects by first pixel in raster order, so two results compare exactly."""
    flat = labels.ravel()
    present, first = np.unique(flat, return_index=True)
    order = [lab for _, lab in sorted(zip(first.tolist(), present.tolist())) if lab != 0]
    lookup = np.zeros(int(flat.max()) + 1 if flat.size else 1, dtype=np.int64)
    lookup[order] = np.arange(1, len(order) + 1)
    return lookup[labels], [float(scores[lab - 1]) for lab in order]


def random_masks(rng, n, shape, blobs=6):
    """Per-diameter masks of disks whose radius drifts with the diameter index."""
    rows, cols = np.indices(shape)
    centres = rng.uniform(0, shape[0], size=(blobs, 2))
    radii = rng.uniform(1, max(2.0, shape[0] / 5), size=blobs)
    masks = []
    for i in range(n):
        labels = np.zeros(shape, dtype=np.int32)
        for k, ((r, c), rad) in enumerate(zip(centres, radii)):
            if rng.random() < 0.75:
                scale = rng.uniform(0.5, 1.5)
                labels[(rows + 0.5 - r) ** 2 + (cols + 0.5 - c) ** 2 <= (rad * scale) ** 2] = k + 1
        noise = rng.random(shape) < 0.02
        labels[noise & (labels == 0)] = blobs + 1
        masks.append(labels)
    return masks


def assert_same(result, reference):
    labels, scores = canonical(*result)
    ref_labels, ref_scores = canonical(*reference)
    np.testing.assert_array_equal(labels, ref_labels)
    assert scores == ref_scores


# ----------------------------------------------------------------------------- confidence
def test_average_is_percent_of_diameters():
    masks = [np.array([[1, 0], [3, 0]]), np.array([[1, 1], [0, 0]]), np.array([[0, 0], [7, 0]])]
    conf = confidence_map(masks)
    expected = 100 * np.array([[2, 1], [2, 0]]) / 3
    np.testing.assert_allclose(conf, expected, rtol=1e-6)
    assert conf.dtype == np.float32


def test_sliding_window_is_best_window_mean():
    rng = np.random.default_rng(3)
    masks = [rng.random((6, 7)) < 0.4 for _ in range(9)]
    stack = np.stack(masks).astype(float)
    k = 3
    windows = np.stack([stack[i: i + k].mean(axis=0) for i in range(9 - k + 1)])
    np.testing.assert_allclose(confidence_map(masks, method="sliding_window", window=k),
                               100 * windows.max(axis=0), rtol=1e-6)
    # The full window is the average.
    np.testing.assert_array_equal(confidence_map(masks, method="sliding_window", window=9),
                                  confidence_map(masks))


def test_inputs_are_not_mutated():
    masks = [np.array([[True, False]]), np.array([[2, 0]])]
    before = [m.copy() for m in masks]
    detection_counts(masks)
    for m, b in zip(masks, before):
        np.testing.assert_array_equal(m, b)


@pytest.mark.parametrize(
    "kwargs, masks, words",
    [
        ({}, [], "empty"),
        ({}, [np.zeros((4, 4)), np.zeros((4, 5))], "shape"),
        ({"method": "median"}, [np.zeros((2, 2))], "sliding_window"),
        ({"method": "sliding_window"}, [np.zeros((2, 2))], "window"),
        ({"method": "sliding_window", "window": 3}, [np.zeros((2, 2))] * 2, "from 1 to 2"),
        ({"window": 2}, [np.zeros((2, 2))] * 2, "only the sliding_window"),
    ],
)
def test_bad_masks_or_options_are_user_errors(kwargs, masks, words):
    with pytest.raises(UserError, match=words):
        confidence_map(masks, **kwargs)


@pytest.mark.parametrize("thresholds", [[20, 101], [-1, 5], [], ["x"]])
def test_thresholds_outside_0_to_100_are_user_errors(thresholds):
    with pytest.raises(UserError, match="threshold"):
        merge_until(np.zeros((3, 3), np.float32), thresholds)


# ----------------------------------------------------------------------------- merge
def test_zero_threshold_keeps_every_detected_pixel():
    conf = np.array([[0, 3, 0, 0], [0, 0, 0, 50]], dtype=np.float32)
    labels, scores = merge_until(conf, [20, 0])
    assert labels.tolist() == [[0, 1, 0, 0], [0, 0, 0, 2]]
    assert scores.tolist() == [0.0, 20.0]


def test_component_containing_higher_object_is_not_added():
    # A low-confidence ring around a high core: the core enters at 20, the ring never does.
    conf = np.full((7, 7), 5, dtype=np.float32)
    conf[2:5, 2:5] = 40
    labels, scores = merge_until(conf, DEFAULT_THRESHOLDS)
    assert scores.tolist() == [20.0]
    assert (labels > 0).sum() == 9


def test_diagonal_pixels_are_connected():
    conf = np.array([[30, 0], [0, 30]], dtype=np.float32)
    labels, _ = merge_until(conf, [20])
    assert labels.max() == 1


@pytest.mark.parametrize("seed", range(12))
def test_fast_merge_matches_algorithm1_fixed_seeds(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    masks = random_masks(rng, n, (int(rng.integers(8, 48)), int(rng.integers(8, 48))))
    conf = confidence_map(masks)
    thresholds = DEFAULT_THRESHOLDS[: int(rng.integers(1, len(DEFAULT_THRESHOLDS) + 1))]
    reference = algorithm1_reference(conf, thresholds)
    assert_same(merge_until(conf, thresholds), reference)
    assert_same(merge_until(detection_counts(masks), thresholds), reference)


@settings(max_examples=60, deadline=None)
@given(
    levels=st.integers(0, 12),
    n=st.integers(1, 12),
    shape=st.tuples(st.integers(1, 14), st.integers(1, 14)),
    thresholds=st.lists(st.sampled_from([0, 0.5, 1, 3, 5, 8, 10, 15, 20, 33.5, 50, 80, 100]),
                        min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_fast_merge_matches_algorithm1_hypothesis(levels, n, shape, thresholds, seed):
    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.integers(0, levels + 1, size=shape), n).astype(np.uint8)
    exact = DetectionCounts(counts, n)
    conf = exact.percent()
    reference = algorithm1_reference(conf, thresholds)
    assert_same(merge_until(conf, thresholds), reference)
    assert_same(merge_until(exact, thresholds), reference)


@pytest.mark.parametrize("seed", range(4))
def test_banded_candidates_do_not_depend_on_the_band_height(seed):
    # The fast merge works in row bands with a two-row halo; every band height must give
    # the one-band answer, including bands of one row and ragged last bands.
    from lipobench.lipopose.merge import _maxima_candidates

    rng = np.random.default_rng(seed)
    levels = ndimage.uniform_filter(rng.integers(0, 6, size=(37, 23)) * 50, 3) // 50
    levels = levels.astype(np.uint8)
    whole = _maxima_candidates(levels, band_rows=levels.shape[0])
    for band_rows in (1, 2, 3, 5, 8):
        banded = _maxima_candidates(levels, band_rows=band_rows)
        for got, want in zip(banded, whole):
            np.testing.assert_array_equal(got, want)


def test_fast_merge_matches_algorithm1_across_default_bands():
    # Big enough that the default band height (512 KiB rows) splits the image into bands.
    import cv2

    rng = np.random.default_rng(11)
    shape = (600, 2048)
    centres = rng.uniform((0, 0), shape, size=(120, 2))
    radii = rng.uniform(3, 40, size=120)
    masks = []
    for _ in range(9):
        mask = np.zeros(shape, dtype=np.uint8)
        for (r, c), rad in zip(centres, radii):
            if rng.random() < 0.75:
                cv2.circle(mask, (int(c), int(r)), int(rad * rng.uniform(0.6, 1.4)), 1, -1)
        specks = rng.uniform((0, 0), shape, size=(80, 2)).astype(int)
        mask[specks[:, 0], specks[:, 1]] = 1
        masks.append(mask)
    reference = algorithm1_reference(confidence_map(masks), DEFAULT_THRESHOLDS)
    assert_same(merge_until(detection_counts(masks), DEFAULT_THRESHOLDS), reference)


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (5, 0)])
def test_empty_map_merges_to_no_objects(shape):
    labels, scores = merge_until(np.zeros(shape, dtype=np.float32), DEFAULT_THRESHOLDS)
    assert labels.shape == shape and scores.size == 0


def test_merge_until_is_a_prefix_of_merging_further():
    # Objects that entered at T or above do not depend on the thresholds below T, so
    # "merge until T" equals the full merge filtered to scores >= T (the adapter relies on it).
    rng = np.random.default_rng(7)
    counts = detection_counts(random_masks(rng, 20, (40, 40)))
    full_labels, full_scores = merge_until(counts, DEFAULT_THRESHOLDS)
    for until in DEFAULT_THRESHOLDS:
        labels, scores = merge_until(counts, [t for t in DEFAULT_THRESHOLDS if t >= until])
        keep_ids = np.flatnonzero(full_scores >= until) + 1
        filtered = np.where(np.isin(full_labels, keep_ids), full_labels, 0)
        assert_same((labels, scores), (filtered, full_scores))


def test_uint16_counts_past_255_masks():
    masks = [np.ones((3, 3), bool)] * 300
    counts = detection_counts(masks)
    assert counts.counts.dtype == np.uint16 and counts.counts.max() == 300
    labels, scores = merge_until(counts, [20])
    assert labels.max() == 1 and scores.tolist() == [20.0]


# ----------------------------------------------------------------------------- instances
def _voronoi_disks(shape, centres, radii):
    """Label image of disks; where disks overlap, each pixel goes to the relatively nearer one,
    so touching particles are adjacent instances with no background between them (as
    Cellpose draws them)."""
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, dtype=np.int32)
    best = np.full(shape, np.inf)
    for k, ((r, c), rad) in enumerate(zip(centres, radii)):
        rel = np.hypot(rows + 0.5 - r, cols + 0.5 - c) / rad
        take = (rel <= 1) & (rel < best)
        labels[take] = k + 1
        best[take] = rel[take]
    return labels


def touching_disks(shape=(64, 96)):
    """Two pairs of touching disks and one lone disk: (truth labels, centres, radii)."""
    centres = np.array([[20, 20], [20, 38], [45, 60], [45, 78], [48, 20]])
    radii = np.array([10.0, 10.0, 10.0, 10.0, 8.0])
    return _voronoi_disks(shape, centres, radii), centres, radii


def simulated_diameter_masks(truth, centres, radii, diameters, rng):
    """Cellpose-like per-diameter instances: good near the true size, a touching pair fused
    into one instance when the diameter is too large, misses far from the true size."""
    masks = []
    for d in diameters:
        keep_c, keep_r, groups = [], [], []
        for k, ((r, c), rad) in enumerate(zip(centres, radii)):
            ratio = d / (2 * rad)
            if not 0.5 < ratio < 2.0 or rng.random() < 0.15:
                continue
            scale = 1 + 0.1 * (ratio - 1) + rng.normal(0, 0.03)
            keep_c.append((r, c))
            keep_r.append(rad * scale)
            fuse = ratio > 1.4 and k in (1, 3)  # the second of each touching pair
            groups.append(groups[-1] if fuse and groups and k - 1 == last else len(groups))
            last = k
        labels = _voronoi_disks(truth.shape, keep_c, keep_r)
        lookup = np.array([0] + [g + 1 for g in groups], dtype=np.int32)
        masks.append(lookup[labels])
    return masks


def iou_match(truth: np.ndarray, labels: np.ndarray) -> tuple[int, int, int]:
    """(true positives, predictions, truths) at IoU > 0.5, with lipobench's matcher."""
    from lipobench.metrics.matching import match
    from lipobench.regions import RegionSet

    result = match(RegionSet.from_labels(truth), RegionSet.from_labels(labels), (0.5,))
    return int(result.tp[0]), result.n_pred, result.n_true


def test_instance_merge_keeps_touching_particles_apart_where_connected_fuses():
    truth, centres, radii = touching_disks()
    rng = np.random.default_rng(0)
    masks = simulated_diameter_masks(truth, centres, radii, np.arange(10, 41, 2.0), rng)
    results = {}
    for merge in ("connected", "instances"):
        labels, _ = merge_masks(masks, [20, 15, 10, 8, 5, 3, 1, 0], merge=merge)
        tp, n_pred, n_truth = iou_match(truth, labels)
        results[merge] = (tp / max(n_pred, 1), tp / n_truth)
    # The binarized map fuses each touching pair: only the lone disk survives as a match.
    assert results["connected"][1] <= 1 / 5
    assert results["instances"] == (1.0, 1.0)


def test_instance_merge_scores_are_share_of_diameters():
    a = np.zeros((5, 10), np.int32)
    a[1:4, 1:4] = 1
    b = np.zeros_like(a)
    masks = [a, a, a, b]  # found at 3 of 4 diameters: 75 %
    labels, scores = merge_instances(masks, [80, 50, 0])
    assert labels.max() == 1 and scores.tolist() == [50.0]


def test_instance_merge_sliding_window_scores_best_consecutive_share():
    a = np.zeros((5, 10), np.int32)
    a[1:4, 1:4] = 1
    b = np.zeros_like(a)
    masks = [a, a, b, b, b, b]  # 2 of 6 diameters (33 %), but 2 of 2 consecutive (100 %)
    _, average = merge_instances(masks, [50, 20])
    _, window = merge_instances(masks, [50, 20], method="sliding_window", window=2)
    assert average.tolist() == [20.0] and window.tolist() == [50.0]
    with pytest.raises(UserError, match="window"):
        merge_instances(masks, [50], method="sliding_window")


# ----------------------------------------------------------------------------- diameters
def test_diameter_range_parses_inclusive_stop():
    assert parse_diameter_range("10:190:5").values()[-1] == 190.0
    assert len(parse_diameter_range("10:190:5").values()) == 37


@pytest.mark.parametrize("text", ["10:5:1", "0:10:2", "10:20", "a:b:c", "10:20:0", "-5:10:5"])
def test_bad_diameter_ranges_are_user_errors(text):
    with pytest.raises(UserError, match="--diameters"):
        parse_diameter_range(text)


def test_confidence_method_accepts_strings():
    assert ConfidenceMethod("sliding_window") is ConfidenceMethod.SLIDING_WINDOW


# ----------------------------------------------------------------------------- pipeline
def _counting_segment(calls):
    """A plain segment function (no Cellpose): a disk whose radius follows the diameter."""

    def segment(image, diameter):
        calls.append(diameter)
        rows, cols = np.indices(image.shape)
        return ((rows - 20) ** 2 + (cols - 20) ** 2 <= (diameter / 2) ** 2).astype(np.int32)

    return segment


def test_pipeline_caches_each_diameter_and_merges_one_micrograph_at_a_time(tmp_path):
    from lipobench.lipopose import MaskCache, iter_masks, iter_merged
    from lipobench.micrograph import Micrograph

    micrographs = [Micrograph(f"m{k}", np.zeros((48, 48), np.float32)) for k in range(2)]
    cache = MaskCache(tmp_path, 0.4, 0.0)
    calls = []
    per_micrograph = iter_masks(_counting_segment(calls), micrographs, [10.0, 20.0], cache)
    assert calls == []  # nothing runs before the iterator advances
    first = next(per_micrograph)
    assert calls == [10.0, 20.0] and {m.dtype for m in first} == {np.dtype(np.uint8)}
    assert cache.path("m0", 10.0) == tmp_path / "masks" / "m0" / "d10_flow0.4_prob0.npz"
    assert [len(m) for m in per_micrograph] == [2] and len(calls) == 4
    merged = list(iter_merged(iter_masks(_counting_segment(calls), micrographs, [10.0, 20.0],
                                         cache), [50, 0], merge="connected"))
    assert len(calls) == 4  # every mask came from the cache
    assert_same(merged[0], merge_masks(first, [50, 0], merge="connected"))
    assert [s.tolist() for _, s in merged] == [[50.0], [50.0]]


def test_pipeline_reruns_a_damaged_cached_mask(tmp_path):
    from lipobench.lipopose import MaskCache, iter_masks
    from lipobench.micrograph import Micrograph

    micrographs = [Micrograph("m0", np.zeros((48, 48), np.float32))]
    cache = MaskCache(tmp_path, 0.4, 0.0)
    calls = []
    (masks,) = iter_masks(_counting_segment(calls), micrographs, [10.0, 20.0], cache)
    cache.path("m0", 20.0).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="damaged cached masks; recomputing"):
        (again,) = iter_masks(_counting_segment(calls), micrographs, [10.0, 20.0], cache)
    assert calls == [10.0, 20.0, 20.0]
    for got, want in zip(again, masks, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_micrographs_masks_are_freed_once_it_is_merged(tmp_path, monkeypatch):
    """One micrograph's masks in memory at a time: none is left when its merge is handed out."""
    import weakref

    import lipobench.lipopose.pipeline as pipeline
    from lipobench.micrograph import Micrograph

    read = []
    load = pipeline.load_labels

    def load_and_watch(path):
        labels = load(path)
        read.append(weakref.ref(labels))
        return labels

    monkeypatch.setattr(pipeline, "load_labels", load_and_watch)
    micrographs = [Micrograph(f"m{k}", np.zeros((48, 48), np.float32)) for k in range(3)]
    per_micrograph = pipeline.iter_masks(_counting_segment([]), micrographs, [10.0, 20.0, 30.0],
                                         pipeline.MaskCache(tmp_path, 0.4, 0.0))
    for k, (labels, _) in enumerate(pipeline.iter_merged(per_micrograph, [50, 0])):
        assert labels.max() == 1 and len(read) == 3 * (k + 1)
        assert all(ref() is None for ref in read)


def test_the_algorithms_import_neither_the_adapters_nor_cellpose(imported_by):
    import ast

    import lipobench.lipopose

    assert imported_by("lipobench.lipopose", ("cellpose", "torch", "cv2", "scipy",
                                              "lipobench.adapters", "lipobench.cli")) == []
    # Deferred imports too: imports point from the adapter and the CLI to the algorithms.
    for path in Path(lipobench.lipopose.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("lipobench.adapters", "lipobench.cli",
                                            "cellpose", "torch")), (path.name, name)


# ----------------------------------------------------------------------------- adapter
from lipobench.adapters.base import Stage  # noqa: E402
from lipobench.adapters.lipopose import LipoPoseAdapter  # noqa: E402
from lipobench.micrograph import Micrograph  # noqa: E402
from lipobench.regions import RegionKind  # noqa: E402


class FakeCellposeModelForTests:
    """Stands in for a loaded Cellpose model in unit tests: a disk whose size follows the
    diameter asked for. The real model runs in test_real_cellpose_masks_are_cached."""

    diam_labels = 20.0
    loads = 0

    def __init__(self):
        FakeCellposeModelForTests.loads += 1
        self.calls = []


def _fake_segment(model, image, *, diameter=None, flow_threshold=0.4, cellprob_threshold=0.0):
    model.calls.append(diameter)
    rows, cols = np.indices(image.shape)
    radius = 6 + (diameter or 20) / 10
    labels = ((rows - 20) ** 2 + (cols - 20) ** 2 <= radius ** 2).astype(np.int32)
    labels[(rows - 20) ** 2 + (cols - 45) ** 2 <= 25] = 2 if diameter < 25 else 0
    return labels


@pytest.fixture
def fake_cellpose(monkeypatch):
    import lipobench.adapters.cellpose as cellpose_module

    FakeCellposeModelForTests.loads = 0
    monkeypatch.setattr(cellpose_module, "load_cellpose_model",
                        lambda ref, device=None: FakeCellposeModelForTests())
    monkeypatch.setattr(cellpose_module, "segment", _fake_segment)
    return FakeCellposeModelForTests


def _micrographs(count=2, shape=(64, 64)):
    return [Micrograph(f"m{k}", np.zeros(shape, np.float32)) for k in range(count)]


def test_adapter_caches_masks_per_image_and_diameter(fake_cellpose, tmp_path):
    adapter = LipoPoseAdapter(device="cpu")
    params = {"diameter_start": 10, "diameter_stop": 40, "diameter_step": 5}
    first = adapter.predict("model", _micrographs(), params, tmp_path)
    assert adapter.cellpose_runs == 2 * 7 and fake_cellpose.loads == 1
    assert len(list((tmp_path / "masks" / "m0").glob("d*.npz"))) == 7
    # New merge parameters: the cached masks are read, Cellpose is neither loaded nor run.
    again = adapter.predict("model", _micrographs(),
                            {**params, "merge": "connected"}, tmp_path)
    assert adapter.cellpose_runs == 0 and fake_cellpose.loads == 1
    assert [len(r) for r in first] == [len(r) for r in again] == [2, 2]
    big = first[0].select(first[0].areas() > 100)
    assert big.scores.tolist() == [20.0]
    small = first[0].select(first[0].areas() < 100)
    assert small.scores.tolist() == [20.0]  # found at 3 of 7 diameters: 43 % > 20 %


def test_masks_come_one_micrograph_at_a_time_in_their_smallest_type(fake_cellpose, tmp_path):
    from lipobench.adapters.lipopose import LipoPosePredictParams

    adapter = LipoPoseAdapter(device="cpu")
    p = LipoPosePredictParams(diameter_start=10, diameter_stop=40, diameter_step=5)
    diameters, per_micrograph = adapter.iter_masks("model", _micrographs(3), p, tmp_path)
    assert len(diameters) == 7 and adapter.cellpose_runs == 0  # nothing runs up front
    first = next(per_micrograph)
    assert adapter.cellpose_runs == 7  # only the first micrograph's diameters ran
    assert {m.dtype for m in first} == {np.dtype(np.uint8)}  # 2 labels: 1 byte per pixel
    assert [len(m) for m in per_micrograph] == [7, 7] and adapter.cellpose_runs == 21


def test_predict_is_the_pipeline_merged_down_to_the_default_thresholds(fake_cellpose,
                                                                      tmp_path):
    from lipobench.adapters.lipopose import LipoPosePredictParams
    from lipobench.lipopose import thresholds_until

    adapter = LipoPoseAdapter(device="cpu")
    params = {"diameter_start": 10, "diameter_stop": 40, "diameter_step": 5}
    predicted = adapter.predict("model", _micrographs(), params, tmp_path)
    p = LipoPosePredictParams(**params)
    diameters, merged = adapter.iter_labels("model", _micrographs(), p, tmp_path)
    assert len(diameters) == 7 and adapter.cellpose_runs == 0
    for regions, (labels, scores) in zip(predicted, merged, strict=True):
        np.testing.assert_array_equal(regions.labels, labels)
        assert regions.scores.tolist() == scores.tolist()
    # Merging down to 20 (what `lipobench segment --until 20` asks) is SELECT's until 20.
    _, until_20 = adapter.iter_labels("model", _micrographs(), p, tmp_path,
                                      thresholds=thresholds_until(20))
    for regions, (labels, scores) in zip(predicted, until_20, strict=True):
        kept = adapter.select(regions, {"until": 20})
        assert sorted(kept.scores.tolist()) == sorted(scores.tolist())
        np.testing.assert_array_equal(kept.labels > 0, labels > 0)


def test_select_until_keeps_objects_entered_at_or_above(fake_cellpose, tmp_path):
    adapter = LipoPoseAdapter(device="cpu")
    params = {"diameter_start": 10, "diameter_stop": 100, "diameter_step": 5}
    (regions,) = adapter.predict("model", _micrographs(1, (128, 128)), params, tmp_path)
    assert sorted(regions.scores.tolist()) == [15.0, 20.0]  # the small disk: 3 of 19 = 16 %
    assert len(adapter.select(regions, {"until": 20})) == 1
    assert len(adapter.select(regions, {"until": 15})) == 2
    with pytest.raises(UserError, match="until 7"):
        adapter.select(regions, {"until": 7})


def test_adapter_default_diameters_come_from_the_model(fake_cellpose, tmp_path):
    adapter = LipoPoseAdapter(device="cpu")
    adapter.predict("model", _micrographs(1), {}, tmp_path)
    # diam_labels 20 -> 10 .. 40 every 5 px.
    assert adapter.cellpose_runs == 7


@pytest.mark.parametrize(
    "params, words",
    [
        ({"diameter_start": 10, "diameter_stop": 500}, "exceeds micrograph 'm0'"),
        ({"diameter_start": 0, "diameter_stop": 10}, "diameter_start"),
        ({"diameter_start": 30, "diameter_stop": 10}, "start <= stop"),
        ({"confidence": "sliding_window"}, "window"),
        ({"merge": "fused"}, "merge"),
        ({"diameters": 3}, "known predict parameters"),
    ],
)
def test_adapter_bad_parameters_are_user_errors(fake_cellpose, tmp_path, params, words):
    with pytest.raises(UserError, match=words):
        LipoPoseAdapter(device="cpu").predict("model", _micrographs(1), params, tmp_path)
    assert not (tmp_path / "masks").exists()


def test_adapter_declares_cellpose_training_and_its_own_stages():
    adapter = LipoPoseAdapter(device="cpu")
    assert adapter.region_kind is RegionKind.MASK
    assert adapter.stage_of("n_epochs") is Stage.TRAIN
    assert adapter.stage_of("diameter_step") is Stage.PREDICT
    assert adapter.stage_of("merge") is Stage.PREDICT
    assert adapter.stage_of("until") is Stage.SELECT
    assert adapter.test_parameters()["until"] == 0


@pytest.mark.slow
def test_real_cellpose_masks_are_cached(tmp_path):
    """A tiny real Cellpose network (random weights, saved to a file): run once, then reuse."""
    from cellpose import models

    model = models.CellposeModel(gpu=False, pretrained_model=False, diam_mean=30.0)
    model_file = tmp_path / "tiny_model"
    model.net.save_model(str(model_file))
    adapter = LipoPoseAdapter(device="cpu")
    rng = np.random.default_rng(0)
    micrographs = [Micrograph("tiny", rng.normal(size=(64, 64)).astype(np.float32))]
    params = {"diameter_start": 20, "diameter_stop": 30, "diameter_step": 10}
    (first,) = adapter.predict(model_file, micrographs, params, tmp_path / "work")
    assert adapter.cellpose_runs == 2 and first.kind is RegionKind.MASK
    (again,) = adapter.predict(model_file, micrographs, {**params, "merge": "connected"},
                               tmp_path / "work")
    assert adapter.cellpose_runs == 0 and again.image_shape == (64, 64)


def test_lipopose_cv_experiment_validates_and_trains_both_methods_alike():
    from lipobench.experiment import expand_configurations, load_experiment
    from lipobench.plugins import load_registry

    registry = load_registry()
    root = Path(__file__).resolve().parents[2]
    experiment = load_experiment(root / "experiments" / "lipopose_cv.toml", registry)
    configurations = expand_configurations(experiment, registry)
    by_adapter = {}
    for c in configurations:
        by_adapter.setdefault(c.adapter, []).append(c)
    # Cellpose alone at 3 diameters; the pipeline: 2 merges x 8 merge-until thresholds.
    assert len(by_adapter["cellpose"]) == 3 and len(by_adapter["lipopose"]) == 2 * 8
    assert experiment.split.k == 5
    train = {
        repr(sorted((k, v) for k, v in c.spec.items()
                    if registry.get(c.adapter).parameters[k].stage is Stage.TRAIN))
        for c in configurations
    }
    assert len(train) == 1  # the same Cellpose training parameters for both methods
