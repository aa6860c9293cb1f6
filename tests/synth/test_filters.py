"""The simulator's own small Gaussian blur and zoom matrix equal scipy.ndimage's, bit for bit.

They stand in for ndimage on ``lipobench synth``'s path only to keep its import out of the
command's start-up; the simulated bytes must not change with it.
"""

import numpy as np
import pytest
from scipy import ndimage

from lipobench.synth._filters import gaussian_filter
from lipobench.synth._grid import zoom_matrix


@pytest.mark.parametrize("mode", ["reflect", "wrap", "nearest", "mirror"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_filter_equals_ndimage(mode, dtype):
    rng = np.random.default_rng(7)
    for _ in range(40):
        shape = tuple(int(n) for n in rng.integers(2, 90, size=2))
        image = rng.normal(size=shape).astype(dtype)
        if rng.random() < 0.4:  # a cover: 0/1 steps, as a polygon's
            image = (image > 0.3).astype(dtype)
        # up to kernels far wider than the array: the borders extend it more than once
        sigma = float(rng.uniform(0.2, 30.0))
        before = image.copy()
        got = gaussian_filter(image, sigma, mode=mode)
        np.testing.assert_array_equal(got, ndimage.gaussian_filter(image, sigma, mode=mode))
        assert got.dtype == image.dtype
        np.testing.assert_array_equal(image, before)


def test_gaussian_filter_of_zero_sigma_is_a_copy():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = gaussian_filter(image, 0.0)
    np.testing.assert_array_equal(got, image)
    assert got is not image


def test_gaussian_filter_refuses_what_it_does_not_do():
    with pytest.raises(ValueError, match="mode"):
        gaussian_filter(np.zeros((4, 4)), 1.0, mode="constant")
    with pytest.raises(ValueError, match="2-D"):
        gaussian_filter(np.zeros(4), 1.0)


@pytest.mark.parametrize("size", [1, 5, 37, 48, 100, 777, 1024, 4096])
def test_zoom_matrix_equals_ndimage_zoom(size):
    coarse = 48
    line = np.random.default_rng(size).normal(size=coarse)
    expected = ndimage.zoom(line, size / coarse, order=1, mode="nearest", grid_mode=True)
    columns = [ndimage.zoom(e, size / coarse, order=1, mode="nearest", grid_mode=True)[:size]
               for e in np.eye(coarse)]
    matrix = zoom_matrix(coarse, size)
    np.testing.assert_array_equal(matrix, np.stack(columns, axis=1).astype(np.float32))
    np.testing.assert_allclose(matrix.astype(np.float64) @ line, expected[:size], atol=1e-6)
