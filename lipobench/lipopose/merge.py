"""Merging a confidence map through decreasing thresholds (the study's merge), and the choice
between it and the instance merge (:func:`merge_masks`).

Public functions return ``(labels, scores)``: an int32 instance label image (0 = background,
objects numbered ``1..N``) and a float64 array of N entry thresholds, ``scores[k]`` belonging
to label ``k + 1``; ``RegionSet.from_labels(labels, scores=scores)`` turns them into regions.
OpenCV and fastremap are imported inside the functions that use them.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from lipobench.choices import choose
from lipobench.errors import UserError
from lipobench.lipopose.confidence import DetectionCounts, detection_counts
from lipobench.lipopose.instances import merge_instances
from lipobench.lipopose.methods import ConfidenceMethod, MergeMethod
from lipobench.lipopose.thresholds import DEFAULT_THRESHOLDS, check_thresholds

__all__ = ["merge_until", "merge_masks"]

_EIGHT = np.ones((3, 3), dtype=np.uint8)


def _levels(conf_map, ascending: np.ndarray) -> np.ndarray:
    """Per pixel, how many thresholds its confidence exceeds (uint8)."""
    if isinstance(conf_map, DetectionCounts):
        counts, total = conf_map.counts, conf_map.total
        # conf > T  <=>  100 * count > T * total, exact with fractions.
        cuts = [Fraction(float(t)) * total / 100 for t in ascending]
        top = int(counts.max()) if counts.size else 0
        lut = np.array([sum(1 for c in cuts if k > c) for k in range(top + 1)], dtype=np.uint8)
        if counts.dtype == np.uint8:
            import cv2

            full = np.zeros(256, dtype=np.uint8)
            full[: lut.size] = lut
            return cv2.LUT(counts, full)
        return lut[counts]
    conf = np.asarray(conf_map)
    if conf.ndim != 2:
        raise UserError(f"confidence map: must be a 2-D image, got shape {conf.shape}")
    # searchsorted counts the thresholds strictly below each value, i.e. those it exceeds.
    return np.searchsorted(ascending, conf.astype(np.float64, copy=False),
                           side="left").astype(np.uint8)


def _maxima_candidates(levels: np.ndarray, *, band_rows: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels that may lie on a regional-maximum plateau, and the flat indices that sort
    their components out: ``good``, ``tainted`` and ``tops``.

    ``good``: level > 0 and no higher 8-neighbour; the others with a higher neighbour are
    *bad*. Two 8-adjacent good pixels always share a level, so the components of ``good`` lie
    inside single plateaus; a component is a whole maximal plateau unless it touches a bad
    pixel of its own level (its plateau then goes on into that pixel and is not a maximum):
    ``tainted`` holds the good pixels next to such a pixel. ``tops`` holds each component's
    topmost pixels (no good pixel above), a thin set with at least one pixel of every
    component, enough to read each component's level.
    """
    import cv2

    height, width = levels.shape
    # Row bands of about 512 KiB per buffer keep every pass below in cache; whole-image
    # temporaries are slower at 4096² (memory traffic, and first touches of fresh pages).
    if band_rows is None:
        band_rows = max(8, (1 << 19) // max(width, 1))
    good = np.empty((height, width), dtype=bool)
    tainted, tops = [], []
    # Two rows of halo: the second dilation reads the first one's result a row further out.
    higher_near_buf = np.empty((band_rows + 4, width), dtype=np.uint8)
    bad_buf = np.empty((band_rows + 4, width), dtype=bool)
    dilated_buf = np.empty((band_rows + 4, width), dtype=np.uint8)
    found_buf = np.empty((band_rows, width), dtype=bool)
    for r0 in range(0, height, band_rows):
        r1 = min(r0 + band_rows, height)
        e0, e1 = max(r0 - 2, 0), min(r1 + 2, height)
        window = levels[e0:e1]
        inner = slice(r0 - e0, r1 - e0)
        higher_near = cv2.dilate(window, _EIGHT, dst=higher_near_buf[: e1 - e0])
        bad = np.greater(higher_near, window, out=bad_buf[: e1 - e0])
        good_band = good[r0:r1]
        # The dilation is never below the level, and uint8 wrap-around sends a dilation of
        # 0 to 255, which no level exceeds: so level > dilation - 1 means good.
        not_below = np.subtract(higher_near[inner], np.uint8(1), out=dilated_buf[inner])
        np.greater(window[inner], not_below, out=good_band)
        bad_levels = np.multiply(window, bad, out=higher_near)
        near_bad_level = cv2.dilate(bad_levels, _EIGHT, dst=dilated_buf[: e1 - e0])
        found = found_buf[: r1 - r0]
        np.equal(near_bad_level[inner], window[inner], out=found)
        np.logical_and(found, good_band, out=found)
        tainted.append(np.flatnonzero(found) + r0 * width)
        if r0 == 0:
            found[0] = good_band[0]
            np.greater(good_band[1:], good_band[:-1], out=found[1:])
        else:
            np.greater(good_band, good[r0 - 1: r1 - 1], out=found)
        tops.append(np.flatnonzero(found) + r0 * width)
    joined = [np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
              for parts in (tainted, tops)]
    return good, joined[0], joined[1]


def _plateau_maxima(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the regional-maximum plateaus of ``levels`` above 0 (8-connectivity).

    Returns the int32 labels (1..N) and each plateau's level.
    """
    import cv2
    import fastremap

    if levels.size == 0:  # OpenCV refuses empty images and fastremap crashes on them
        return np.zeros(levels.shape, dtype=np.int32), np.zeros(0, dtype=np.uint8)
    good, tainted, tops = _maxima_candidates(levels)
    count, labels = cv2.connectedComponents(good.view(np.uint8), connectivity=8,
                                            ltype=cv2.CV_32S)
    flat = labels.ravel()
    component_level = np.zeros(count, dtype=np.uint8)
    component_level[flat[tops]] = levels.ravel()[tops]
    keep = np.ones(count, dtype=bool)
    keep[0] = False
    keep[flat[tainted]] = False
    kept = np.flatnonzero(keep)
    lookup = np.zeros(count, dtype=np.uint32)
    lookup[kept] = np.arange(1, kept.size + 1, dtype=np.uint32)
    # numpy's gather (lookup[labels]) first widens every index to intp, 128 MiB at 4096²;
    # fastremap renumbers in place in one pass.
    fastremap.remap_from_array(flat.view(np.uint32), lookup)
    return labels, component_level[kept]


def merge_until(conf_map, thresholds=DEFAULT_THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """The study's merge of a confidence map through decreasing thresholds.

    The mask at threshold ``T`` holds the pixels whose confidence exceeds ``T`` (strictly).
    The connected components (8-connectivity) of the highest threshold's mask are objects;
    then, at each lower threshold, a component joins only if it shares no pixel with an
    object already merged. Merging down to a threshold ``T`` (``thresholds`` ending at ``T``)
    is one configuration: low ``T`` favours recall, high ``T`` precision.

    Parameters
    ----------
    conf_map : ndarray or DetectionCounts
        Confidence in percent (:func:`confidence_map`), or its exact integer form
        (:func:`detection_counts`), which is faster.
    thresholds : sequence of float
        Percentages in 0..100, in any order (they are used highest first; repeats ignored).

    Returns
    -------
    labels : ndarray of int32
        Objects numbered 1..N.
    scores : ndarray of float64
        The threshold at which each object entered, ``scores[k]`` for label ``k + 1``.

    Notes
    -----
    Because the masks are nested, a component at threshold ``T_j`` joins exactly when it
    holds no pixel above the next higher threshold, so the objects are the regional-maximum
    plateaus of the quantized map (how many thresholds each pixel exceeds); they are found
    in one labelling pass instead of one per threshold.

    Examples
    --------
    >>> conf = np.array([[30, 30, 0, 12, 0, 2],
    ...                  [12, 12, 0, 12, 0, 0]], dtype=np.float32)
    >>> labels, scores = merge_until(conf, [20, 10, 1])
    >>> labels.tolist()
    [[1, 1, 0, 2, 0, 3], [0, 0, 0, 2, 0, 0]]
    >>> scores.tolist()
    [20.0, 10.0, 1.0]
    """
    ascending = check_thresholds(thresholds)
    levels = _levels(conf_map, ascending)
    labels, plateau_levels = _plateau_maxima(levels)
    return labels, ascending[plateau_levels.astype(np.intp) - 1]



def merge_masks(label_masks, thresholds=DEFAULT_THRESHOLDS, *,
                merge: MergeMethod | str = MergeMethod.INSTANCES,
                method: ConfidenceMethod | str = ConfidenceMethod.AVERAGE,
                window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-diameter masks of one micrograph to ``(labels, scores)`` with the chosen merge.

    >>> m = [np.array([[1, 0, 2]]), np.array([[1, 0, 0]])]
    >>> merge_masks(m, [40, 0])[0].tolist()
    [[1, 0, 2]]
    """
    merge = choose(MergeMethod, merge, key="merge", what="merge")
    if merge is MergeMethod.INSTANCES:
        return merge_instances(label_masks, thresholds, method=method, window=window)
    return merge_until(detection_counts(label_masks, method=method, window=window), thresholds)
