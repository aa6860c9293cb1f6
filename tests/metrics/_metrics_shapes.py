"""Random label images and region sets shared by the metrics tests."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential


def disks(rng, shape, count, radius=(3, 12)) -> np.ndarray:
    """Overlapping disks; later ones paint over earlier ones (labels 1..N after relabelling)."""
    labels = np.zeros(shape, dtype=np.int32)
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    for k in range(count):
        r, c = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        rad = rng.uniform(*radius)
        labels[(rows - r) ** 2 + (cols - c) ** 2 <= rad**2] = k + 1
    return relabel_sequential(labels)[0]


def blobs(rng, shape, sigma=3.0, level=0.6) -> np.ndarray:
    """Irregular blobs: thresholded smooth noise, one label per connected piece."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    field /= field.std()
    return ndimage.label(field > level)[0].astype(np.int32)


def perturb(rng, labels, *, shift=2, drop=0.2, extra=3) -> np.ndarray:
    """A plausible prediction: the truth shifted, some particles dropped, some invented."""
    moved = np.roll(labels, tuple(rng.integers(-shift, shift + 1, size=2)), axis=(0, 1))
    ids = np.unique(moved)[1:]
    gone = ids[rng.random(ids.size) < drop]
    moved = np.where(np.isin(moved, gone), 0, moved)
    if extra:
        fresh = disks(rng, labels.shape, extra)
        moved = np.where(fresh > 0, fresh + moved.max(), moved)
    return relabel_sequential(moved)[0].astype(np.int32)


def random_circles(rng, count, shape=(512, 512), radius=(4, 20)) -> np.ndarray:
    return np.column_stack([rng.uniform(0, shape[0], count), rng.uniform(0, shape[1], count),
                            rng.uniform(*radius, count)])


def random_boxes(rng, count, shape=(512, 512), size=(4, 30)) -> np.ndarray:
    r0, c0 = rng.uniform(0, shape[0], count), rng.uniform(0, shape[1], count)
    return np.column_stack([r0, c0, r0 + rng.uniform(*size, count), c0 + rng.uniform(*size, count)])


def jitter(rng, table, scale=2.0) -> np.ndarray:
    """Move each region a little and change its size a little, keeping sizes positive."""
    out = table + rng.normal(0, scale, table.shape)
    if table.shape[1] == 3:
        out[:, 2] = np.abs(out[:, 2]) + 0.5
    else:
        out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 0.5)
        out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 0.5)
    return out
