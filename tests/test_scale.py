"""lipobench.scale: the size prior, the zoom, the first-pass estimate, and the size filter.

The estimate runs here against test doubles of a segmenter (named so); the same path runs with
the real default Cellpose model in tests/test_real_micrograph.py and tests/test_cli_segment.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from lipobench.adapters.base import SizeFilterParams, validate_parameters
from lipobench.errors import UserError
from lipobench.regions import RegionSet
from lipobench.scale import (
    ModelScale,
    ScaleMode,
    ScaleSource,
    choose_scale,
    estimate_diameter,
    labels_to_shape,
    parse_size_prior,
    resize_image,
)


@pytest.mark.parametrize("text", ["200:20", "20", "a:b", "0:10", "nan:20", "20:inf"])
def test_a_bad_size_prior_is_a_user_error_naming_the_key(text):
    with pytest.raises(UserError, match="--size-nm"):
        parse_size_prior(text)


def test_labels_come_back_to_the_micrographs_grid_with_their_ids_and_areas():
    small = np.zeros((50, 40), np.int32)
    small[10:20, 5:15] = 7
    small[30:34, 30:38] = 3
    big = labels_to_shape(small, (125, 100))
    assert big.shape == (125, 100) and set(np.unique(big)) == {0, 3, 7}
    assert np.sum(big == 7) == pytest.approx(100 * 2.5 ** 2, rel=0.1)


def test_shrinking_averages_areas_so_a_fine_pattern_does_not_alias():
    checker = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)
    assert np.allclose(resize_image(checker, 0.5), 0.5)


class DiscFinderForTests:
    """A test double of a segmenter: finds discs of ``true`` px only at diameters within a
    factor 1.6 of it, and their masks lean 10 % toward the diameter asked for."""

    def __init__(self, true: float):
        self.true, self.calls = true, []

    def __call__(self, image, diameter):
        self.calls.append(diameter)
        labels = np.zeros(image.shape, np.int32)
        if self.true / 1.6 <= diameter <= self.true * 1.6:
            radius = (0.9 * self.true + 0.1 * diameter) / 2
            rows, cols = np.indices(image.shape)
            for k, (r, c) in enumerate([(60, 60), (60, 180), (180, 60), (180, 180)], 1):
                labels[np.hypot(rows - r, cols - c) < radius] = k
        return labels


@pytest.mark.parametrize("true", [24.0, 40.0, 60.0])
def test_the_estimate_recovers_the_discs_width_and_skips_the_costly_small_diameters(true):
    finder = DiscFinderForTests(true)
    estimate = estimate_diameter(np.zeros((240, 240), np.float32), finder)
    assert estimate.diameter_px == pytest.approx(true, rel=0.1)
    # Largest first, and it stops two diameters after the coverage faded.
    assert finder.calls == sorted(finder.calls, reverse=True)
    if true >= 40:
        assert min(finder.calls) > 12


def test_the_estimate_of_a_shrunk_pass_is_in_the_micrographs_pixels():
    finder = DiscFinderForTests(30.0)
    big = np.zeros((1536, 1536), np.float32)  # shrunk 2x to 768² for the pass
    estimate = estimate_diameter(big, finder)
    assert estimate.reduction == 2.0
    assert estimate.diameter_px == pytest.approx(60.0, rel=0.1)


def test_nothing_found_means_no_estimate_and_the_micrographs_own_pixels():
    scale = choose_scale(np.zeros((200, 200)), ModelScale(75.0, 0.888),
                         segment=lambda image, d: np.zeros(image.shape, int))
    assert scale.zoom == 1.0 and scale.source is ScaleSource.ESTIMATE
    assert "found no particles" in scale.reason


def test_known_pixel_sizes_need_no_estimate_and_an_own_model_runs_as_given():
    def fail(image, diameter):
        raise AssertionError("no segmentation needed")

    image = np.zeros((64, 64))
    by_size = choose_scale(image, ModelScale(75.0, 0.888), pixel_size_nm=1.776, segment=fail)
    assert by_size.zoom == 2.0 and by_size.source is ScaleSource.PIXEL_SIZE
    own = choose_scale(image, ModelScale(75.0, None), pixel_size_nm=1.776, segment=fail)
    assert own.zoom == 1.0 and "training pixel size is unknown" in own.reason
    # Within 5 % of 1 the micrograph is not resized.
    assert choose_scale(image, ModelScale(75.0, 0.888), pixel_size_nm=0.9).zoom == 1.0
    assert choose_scale(image, ModelScale(75.0, 0.888), mode=ScaleMode.NONE).zoom == 1.0


def test_the_size_filter_keeps_the_range_inclusive_and_refuses_min_above_max():
    labels = np.zeros((40, 40), np.int32)
    labels[:2, :2] = 1         # 2.26 px
    labels[5:15, 5:15] = 2     # 11.3 px
    labels[20:40, 20:40] = 3   # 22.6 px
    regions = RegionSet.from_labels(labels)
    kept = SizeFilterParams(min_diameter_px=5, max_diameter_px=20).apply(regions)
    assert kept.ids.tolist() == [2]
    exact = float(regions.equivalent_diameters()[1])
    assert SizeFilterParams(min_diameter_px=exact).apply(regions).ids.tolist() == [2, 3]
    with pytest.raises(UserError, match="min_diameter_px 30 exceeds max_diameter_px 10"):
        validate_parameters("cellpose", SizeFilterParams,
                            {"min_diameter_px": 30, "max_diameter_px": 10}, "select")


def test_cellpose_and_lipopose_select_filter_sizes():
    from lipobench.adapters.cellpose import CellposeAdapter
    from lipobench.adapters.lipopose import LipoPoseAdapter

    labels = np.zeros((40, 40), np.int32)
    labels[:2, :2] = 1
    labels[5:15, 5:15] = 2
    regions = RegionSet.from_labels(labels, scores=[40.0, 40.0])
    assert CellposeAdapter().select(regions, {"min_diameter_px": 5}).ids.tolist() == [2]
    assert LipoPoseAdapter().select(regions, {"until": 0.0, "min_diameter_px": 5}
                                    ).ids.tolist() == [2]
