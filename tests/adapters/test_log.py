"""The LoG blob detector: finds dark disks, scores them above noise, thresholds offline."""

import numpy as np
import pytest

from lipobench.adapters.log import LogAdapter, detect_blobs
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind


def _disks(shape=(256, 256), centres=((60, 70), (180, 150), (90, 200)), radius=18, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=shape).astype(np.float32)
    rows, cols = np.indices(shape)
    for r, c in centres:
        image[(rows + 0.5 - r) ** 2 + (cols + 0.5 - c) ** 2 < radius ** 2] -= 1.5
    return image


def test_finds_dark_disks_with_the_right_size_and_place():
    image = _disks()
    blobs = detect_blobs(image, min_sigma=4, max_sigma=24)
    strong = blobs.select(blobs.scores > 5)
    assert len(strong) == 3
    for centre in [(60, 70), (180, 150), (90, 200)]:
        assert np.hypot(*(strong.circles[:, :2] - centre).T).min() < 3
    assert np.all(np.abs(strong.circles[:, 2] - 18) < 5)


def test_bright_particles_need_dark_particles_false():
    image = -_disks()
    dark = detect_blobs(image, min_sigma=4, max_sigma=24, dark_particles=True)
    bright = detect_blobs(image, min_sigma=4, max_sigma=24, dark_particles=False)
    assert (bright.scores > 5).sum() == 3
    assert (dark.scores > 5).sum() == 0


def test_downsampling_keeps_coordinates_in_full_resolution_pixels():
    image = _disks()
    full = detect_blobs(image, min_sigma=4, max_sigma=24)
    binned = detect_blobs(image, min_sigma=4, max_sigma=24, downsample=2)
    a = full.select(full.scores > 5).circles
    b = binned.select(binned.scores > 5).circles
    a, b = a[np.lexsort(a.T[:2])], b[np.lexsort(b.T[:2])]
    assert a.shape == b.shape == (3, 3)
    assert np.abs(a - b).max() <= 3


def test_input_is_not_modified_and_bad_downsample_is_refused():
    image = _disks()
    before = image.copy()
    detect_blobs(image, min_sigma=4, max_sigma=24)
    assert np.array_equal(image, before)
    with pytest.raises(ValueError, match="downsample"):
        detect_blobs(image, min_sigma=4, max_sigma=24, downsample=0)


def test_adapter_round_trip_and_offline_threshold(tmp_path):
    adapter = LogAdapter()
    assert adapter.availability().ok and "scikit-image" in adapter.availability().tool_version
    micrographs = [Micrograph("a", _disks(seed=1)), Micrograph("b", _disks(seed=2))]
    native = adapter.to_native(micrographs, tmp_path / "native")
    model = adapter.train(native, {}, tmp_path / "train")
    assert model == "none"
    params = {"min_sigma": 4.0, "max_sigma": 24.0, "downsample": 1}
    predictions = adapter.predict(model, micrographs, params, tmp_path / "predict")
    assert [p.kind for p in predictions] == [RegionKind.CIRCLE] * 2
    assert all(p.image_shape == (256, 256) for p in predictions)
    for regions in predictions:
        kept = adapter.select(regions, {"threshold": 6.0})
        assert len(kept) == 3 < len(regions)
        assert np.all(kept.scores > 6.0)
        assert len(adapter.select(regions, {})) == len(regions)
