"""LipoPose: one trained Cellpose model run at many diameters, merged through a confidence map.

The method of Basu et al. 2023 ("LipoPose: Adapting Cellpose to Lipid Nanoparticle
Segmentation"):

1. *Multi-inference*: one trained Cellpose model segments each micrograph at many diameters
   spanning the training set's size range (every ~5 px), one mask per diameter.
2. *Confidence map*: per pixel, the percentage of diameters that detected it
   (:func:`confidence_map`, :class:`ConfidenceMethod`).
3. *Merge from thresholds*: the connected components of the highest-threshold mask, then, at
   each lower threshold, every component that shares no pixel with an object already merged
   (:func:`merge_until`). Each object's score is the threshold at which it entered.

Beyond the study, :func:`merge_instances` keeps Cellpose's instances apart instead of
binarizing them, so touching particles are not fused (:class:`MergeMethod`).

Public functions return ``(labels, scores)``: an int32 instance label image (0 = background,
objects numbered ``1..N``) and a float64 array of N entry thresholds, ``scores[k]`` belonging
to label ``k + 1``; ``RegionSet.from_labels(labels, scores=scores)`` turns them into regions.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lipobench.adapters.base import (
    Adapter,
    Availability,
    ModelRef,
    Stage,
    keep_scores_at_least,
    validate_parameters,
)
from lipobench.adapters.cellpose import (
    CellposeAdapter,
    CellposeThresholds,
    CellposeTrainParams,
)
from lipobench.errors import UserError, raise_if_interrupted
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ConfidenceMethod",
    "MergeMethod",
    "DetectionCounts",
    "DiameterRange",
    "parse_diameter_range",
    "detection_counts",
    "confidence_map",
    "merge_until",
    "merge_instances",
    "merge_masks",
    "thresholds_until",
    "LipoPoseAdapter",
]

#: The study's merge thresholds, in percent, highest first.
DEFAULT_THRESHOLDS: tuple[float, ...] = (20, 15, 10, 8, 5, 3, 1, 0)

_EIGHT = np.ones((3, 3), dtype=np.uint8)


class ConfidenceMethod(str, enum.Enum):
    """How per-diameter masks become a per-pixel confidence in percent.

    ``average`` (the study's default): ``100 * (M1 + ... + Mn) / n`` over the binarized masks.
    ``sliding_window`` (the study's alternative): the best agreement among ``window``
    consecutive diameters, ``100 * max_i (M_i + ... + M_{i+window-1}) / window``; a particle
    that only a narrow band of diameters finds still reaches a high confidence.
    """

    AVERAGE = "average"
    SLIDING_WINDOW = "sliding_window"


class MergeMethod(str, enum.Enum):
    """How the confidence becomes particles.

    ``connected`` (the study): connected components of the thresholded confidence map, which
    fuses particles that touch. ``instances`` (lipobench): per-diameter instances grouped by
    overlap, each group scored by the share of diameters that found it (:func:`merge_instances`).
    """

    CONNECTED = "connected"
    INSTANCES = "instances"


def as_choice(enum_cls, value, key: str):
    """``enum_cls(value)``, or a UserError naming ``key`` and the allowed values.

    >>> as_choice(MergeMethod, "connected", "merge")
    <MergeMethod.CONNECTED: 'connected'>
    """
    try:
        return enum_cls(value)
    except ValueError:
        known = ", ".join(repr(m.value) for m in enum_cls)
        raise UserError(f"{key} {value!r} is not one of {known}: pick one of those") from None


# --------------------------------------------------------------------------- diameters
class DiameterRange(BaseModel):
    """Diameters in pixels from ``start`` to ``stop`` inclusive, every ``step``.

    >>> DiameterRange(start=10, stop=30, step=5).values()
    [10.0, 15.0, 20.0, 25.0, 30.0]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: float = Field(gt=0)
    stop: float = Field(gt=0)
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop:g} is below start {self.start:g}")
        return self

    def values(self) -> list[float]:
        """The diameters, ``start + k * step`` up to ``stop`` (inclusive, with a float margin)."""
        count = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [float(round(self.start + k * self.step, 9)) for k in range(count)]

    def check_fits(self, image_shape, *, where: str = "diameters") -> None:
        """Raise a UserError when a diameter exceeds the image's smaller side."""
        limit = min(image_shape)
        if self.stop > limit:
            raise UserError(
                f"{where}: diameter {self.stop:g} px exceeds the image size {limit} px; "
                "give a stop diameter no larger than the image"
            )


def parse_diameter_range(text: str, *, key: str = "--diameters") -> DiameterRange:
    """Parse ``START:STOP:STEP`` (pixels, stop inclusive) into a :class:`DiameterRange`.

    >>> parse_diameter_range("20:40:10").values()
    [20.0, 30.0, 40.0]
    """
    parts = str(text).split(":")
    try:
        if len(parts) != 3:
            raise ValueError("three numbers needed")
        start, stop, step = (float(p) for p in parts)
        return DiameterRange(start=start, stop=stop, step=step)
    except (ValueError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise UserError(
            f"{key} {text!r} is not START:STOP:STEP with positive pixel sizes ({detail}); "
            "write it like 20:200:5"
        ) from None


# --------------------------------------------------------------------------- confidence
@dataclass(frozen=True, eq=False)
class DetectionCounts:
    """A confidence map kept exact: ``percent = 100 * counts / total``.

    ``counts`` (uint8, or uint16 past 255 masks) is the number of diameters that detected each
    pixel (or the best window's count); comparing ``counts * 100 > T * total`` in integers
    is exact where a float percentage could round.
    """

    counts: np.ndarray
    total: int

    def percent(self) -> np.ndarray:
        """The confidence in percent, float32."""
        return (self.counts.astype(np.float32) * np.float32(100)) / np.float32(self.total)


def _check_masks(masks) -> list[np.ndarray]:
    arrays = [np.asarray(m) for m in masks]
    if not arrays:
        raise UserError("masks: the list of per-diameter masks is empty; give at least one "
                        "diameter")
    shape = arrays[0].shape
    if len(shape) != 2:
        raise UserError(f"masks: each mask must be a 2-D image, got shape {shape}")
    for k, array in enumerate(arrays):
        if array.shape != shape:
            raise UserError(
                f"masks: mask {k} has shape {array.shape} but mask 0 has {shape}; "
                "give masks of one micrograph, all of the same shape"
            )
    return arrays


def _as_binary_u8(mask: np.ndarray) -> np.ndarray:
    # Booleans are added as bytes without a copy; label images binarize first.
    if mask.dtype == bool:
        return mask.view(np.uint8)
    return (mask != 0).view(np.uint8)


def detection_counts(masks, *, method: ConfidenceMethod | str = ConfidenceMethod.AVERAGE,
                     window: int | None = None) -> DetectionCounts:
    """Per pixel, how many diameters detected it: the exact form of :func:`confidence_map`.

    >>> a = np.array([[1, 0, 0]]); b = np.array([[2, 2, 0]])
    >>> c = detection_counts([a, b]); c.counts.tolist(), c.total
    ([[2, 1, 0]], 2)
    """
    arrays = _check_masks(masks)
    method = as_choice(ConfidenceMethod, method, "confidence method")
    n = len(arrays)
    dtype = np.uint8 if n <= 255 else np.uint16
    if method is ConfidenceMethod.AVERAGE:
        if window is not None:
            raise UserError("window: only the sliding_window confidence method takes a window; "
                            "drop it or set method = 'sliding_window'")
        acc = np.zeros(arrays[0].shape, dtype=dtype)
        # Row blocks of about 1 MiB keep the accumulator in cache while every mask is added.
        step = max(1, (1 << 20) // max(1, acc.shape[1] * acc.itemsize))
        for r0 in range(0, acc.shape[0], step):
            block = acc[r0: r0 + step]
            for array in arrays:
                np.add(block, _as_binary_u8(array[r0: r0 + step]), out=block, casting="unsafe")
        return DetectionCounts(acc, n)
    if window is None or isinstance(window, bool) or int(window) != window \
            or not 1 <= int(window) <= n:
        raise UserError(f"window {window!r}: the sliding window needs a whole number of "
                        f"diameters from 1 to {n} (the number of masks)")
    window = int(window)
    binary = [_as_binary_u8(a) for a in arrays]
    running = np.zeros(arrays[0].shape, dtype=dtype)
    for array in binary[:window]:
        np.add(running, array, out=running, casting="unsafe")
    best = running.copy()
    for k in range(window, n):
        np.add(running, binary[k], out=running, casting="unsafe")
        np.subtract(running, binary[k - window], out=running, casting="unsafe")
        np.maximum(best, running, out=best)
    return DetectionCounts(best, window)


def confidence_map(masks, *, method: ConfidenceMethod | str = ConfidenceMethod.AVERAGE,
                   window: int | None = None) -> np.ndarray:
    """Per-pixel confidence in percent (float32) from per-diameter masks.

    ``masks`` are the binarized (or label) masks of one micrograph, one per diameter in
    ascending diameter order; any non-zero pixel counts as detected.

    - ``method="average"`` (the study's default): ``100 * (M1 + ... + Mn) / n``.
    - ``method="sliding_window"`` with ``window=k`` (the study's alternative): for each
      start index ``i`` the mean of the ``k`` consecutive masks ``M_i .. M_{i+k-1}``, and per
      pixel the maximum of those ``n - k + 1`` means, times 100. ``k = n`` equals ``average``.

    >>> m = [np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 1]]),
    ...      np.array([[1, 0, 1, 0]]), np.array([[1, 0, 1, 0]])]
    >>> confidence_map(m).tolist()
    [[100.0, 25.0, 50.0, 25.0]]
    >>> confidence_map(m, method="sliding_window", window=2).tolist()
    [[100.0, 50.0, 100.0, 50.0]]
    """
    return detection_counts(masks, method=method, window=window).percent()


# --------------------------------------------------------------------------- merging
def _check_thresholds(thresholds) -> np.ndarray:
    """Distinct thresholds, ascending, validated to lie in 0..100."""
    try:
        values = [float(t) for t in thresholds]
    except (TypeError, ValueError):
        raise UserError(f"thresholds {thresholds!r}: give a list of numbers from 0 to 100") \
            from None
    if not values:
        raise UserError("thresholds: the list is empty; give at least one threshold, e.g. "
                        "20, 15, 10, 8, 5, 3, 1, 0")
    if len(set(values)) > 254:
        raise UserError(f"thresholds: {len(set(values))} distinct values; give at most 254")
    bad = [t for t in values if not (0 <= t <= 100)]
    if bad:
        raise UserError(f"threshold {bad[0]:g} is outside 0..100: thresholds are percentages "
                        "of diameters")
    return np.array(sorted(set(values)), dtype=np.float64)


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
    ascending = _check_thresholds(thresholds)
    levels = _levels(conf_map, ascending)
    labels, plateau_levels = _plateau_maxima(levels)
    return labels, ascending[plateau_levels.astype(np.intp) - 1]


def thresholds_until(until: float, *, key: str = "until") -> list[float]:
    """The study's thresholds from the highest down to ``until`` (``until`` itself included).

    >>> thresholds_until(5)
    [20.0, 15.0, 10.0, 8.0, 5.0]
    >>> thresholds_until(2)
    [20.0, 15.0, 10.0, 8.0, 5.0, 3.0, 2.0]
    >>> thresholds_until(50)
    [50.0]
    """
    if not 0 <= until <= 100:
        raise UserError(f"{key} {until:g} is outside 0..100: give a percentage of diameters, "
                        "e.g. 5")
    kept = [float(t) for t in DEFAULT_THRESHOLDS if t >= until]
    return kept if until in kept else kept + [float(until)]


# --------------------------------------------------------------------------- instances
def _overlap_pairs(a: np.ndarray, b: np.ndarray, area_a, area_b, min_iou: float):
    """Pairs (label in a, label in b) whose IoU exceeds ``min_iou``."""
    flat_a, flat_b = a.ravel(), b.ravel()
    both = np.flatnonzero((flat_a != 0) & (flat_b != 0))
    if both.size == 0:
        return []
    la, lb = flat_a[both].astype(np.int64), flat_b[both].astype(np.int64)
    width = area_b.size
    if area_a.size * width <= 1 << 22:  # a dense pair table is cheaper than sorting
        table = np.bincount(la * width + lb, minlength=area_a.size * width)
        keys = np.flatnonzero(table)
        inter = table[keys]
    else:
        keys, inter = np.unique(la * width + lb, return_counts=True)
    ia, ib = keys // width, keys % width
    iou = inter / (area_a[ia] + area_b[ib] - inter)
    hit = iou > min_iou
    return list(zip(ia[hit].tolist(), ib[hit].tolist()))


def merge_instances(label_masks, thresholds=DEFAULT_THRESHOLDS, *, min_iou: float = 0.5,
                    link_span: int = 2,
                    method: ConfidenceMethod | str = ConfidenceMethod.AVERAGE,
                    window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Instance-preserving merge: group per-diameter instances, keep touching particles apart.

    Binarizing the masks (:func:`merge_until`) fuses particles that touch. Here each
    diameter's instances stay whole:

    1. instances of diameters ``i`` and ``i + 1 .. i + link_span`` whose IoU exceeds
       ``min_iou`` are linked, and linked instances form a group (union-find);
    2. a group's confidence is ``100 * (number of diameters with a member) / n`` (with
       ``method="sliding_window"``, the best share among ``window`` consecutive diameters,
       as in :func:`confidence_map`), and its footprint the pixels covered by more than
       half of its members (by the most covered pixels if none is);
    3. groups are taken in decreasing confidence; a group enters at the highest threshold
       its confidence exceeds (none below the lowest threshold), unless at least half of
       its footprint is already claimed; it claims the still unclaimed pixels of its
       footprint. Its score is the entry threshold.

    Returns ``(labels, scores)`` as :func:`merge_until` does.

    >>> a = np.array([[1, 1, 2, 2]]); b = np.array([[1, 1, 2, 2]]); c = np.array([[1, 1, 1, 1]])
    >>> labels, scores = merge_instances([a, b, c], [50, 0])
    >>> labels.tolist(), scores.tolist()
    ([[1, 1, 2, 2]], [50.0, 50.0])
    """
    from scipy import ndimage

    arrays = _check_masks(label_masks)
    ascending = _check_thresholds(thresholds)
    # The same validation (and the same window rule) as the pixel-wise map.
    detection_counts([np.zeros((1, 1), bool)] * len(arrays), method=method, window=window)
    sliding = ConfidenceMethod(method) is ConfidenceMethod.SLIDING_WINDOW
    if not 0 <= min_iou < 1:
        raise UserError(f"min_iou {min_iou!r} must lie in [0, 1)")
    n = len(arrays)
    shape = arrays[0].shape
    labelled = []
    for array in arrays:
        if np.issubdtype(array.dtype, np.integer) and array.dtype != bool:
            if array.size and array.min() < 0:
                raise UserError("label_masks: a label image holds negative labels; labels "
                                "are 0 for background and positive for particles")
            labelled.append(array)
        else:
            labelled.append(ndimage.label(array != 0, structure=_EIGHT)[0])
    areas = [np.bincount(lab.ravel()) for lab in labelled]
    # Global ids: offset[i] + label for instance `label` of diameter i.
    offsets = np.concatenate([[0], np.cumsum([a.size for a in areas])])
    parent = np.arange(offsets[-1])

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in range(n):
        for j in range(i + 1, min(n, i + link_span + 1)):
            for la, lb in _overlap_pairs(labelled[i], labelled[j], areas[i], areas[j], min_iou):
                ra, rb = find(offsets[i] + la), find(offsets[j] + lb)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[tuple[int, int]]] = {}
    for i in range(n):
        for label in np.flatnonzero(areas[i][1:]) + 1:
            groups.setdefault(find(offsets[i] + label), []).append((i, int(label)))
    boxes = [ndimage.find_objects(lab) for lab in labelled]
    candidates = []
    for members in groups.values():
        found = np.zeros(n, dtype=np.int64)
        found[[i for i, _ in members]] = 1
        if sliding:
            confidence = 100.0 * np.convolve(found, np.ones(window, np.int64),
                                             mode="valid").max() / window
        else:
            confidence = 100.0 * found.sum() / n
        entered = ascending[ascending < confidence]
        if entered.size == 0:
            continue
        r0 = min(boxes[i][label - 1][0].start for i, label in members)
        r1 = max(boxes[i][label - 1][0].stop for i, label in members)
        c0 = min(boxes[i][label - 1][1].start for i, label in members)
        c1 = max(boxes[i][label - 1][1].stop for i, label in members)
        cover = np.zeros((r1 - r0, c1 - c0), dtype=np.int32)
        for i, label in members:
            cover += labelled[i][r0:r1, c0:c1] == label
        footprint = cover * 2 > len(members)
        if not footprint.any():
            footprint = cover == cover.max()
        candidates.append((-confidence, r0, c0, float(entered[-1]), footprint))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    merged = np.zeros(shape, dtype=np.int32)
    scores = []
    for _, r0, c0, score, footprint in candidates:
        window = merged[r0: r0 + footprint.shape[0], c0: c0 + footprint.shape[1]]
        claimed = int(np.count_nonzero(window[footprint]))
        if claimed * 2 >= int(footprint.sum()):
            continue
        scores.append(score)
        window[footprint & (window == 0)] = len(scores)
    return _raster_order(merged, np.array(scores, dtype=np.float64))


def _raster_order(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber labels 1..N by first pixel in raster order, scores alongside."""
    if scores.size == 0:
        return labels.astype(np.int32, copy=False), scores
    flat = labels.ravel()
    present, first = np.unique(flat, return_index=True)
    order = [lab for _, lab in sorted(zip(first.tolist(), present.tolist())) if lab != 0]
    lookup = np.zeros(int(flat.max()) + 1, dtype=np.int32)
    lookup[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    return lookup[labels], scores[np.array(order) - 1]


def merge_masks(label_masks, thresholds=DEFAULT_THRESHOLDS, *,
                merge: MergeMethod | str = MergeMethod.INSTANCES,
                method: ConfidenceMethod | str = ConfidenceMethod.AVERAGE,
                window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-diameter masks of one micrograph to ``(labels, scores)`` with the chosen merge.

    >>> m = [np.array([[1, 0, 2]]), np.array([[1, 0, 0]])]
    >>> merge_masks(m, [40, 0])[0].tolist()
    [[1, 0, 2]]
    """
    merge = as_choice(MergeMethod, merge, "merge")
    if merge is MergeMethod.INSTANCES:
        return merge_instances(label_masks, thresholds, method=method, window=window)
    return merge_until(detection_counts(label_masks, method=method, window=window), thresholds)


# --------------------------------------------------------------------------- adapter
class LipoPosePredictParams(CellposeThresholds):
    """PREDICT-stage parameters of :class:`LipoPoseAdapter`."""

    diameter_start: float | None = Field(None, gt=0, description=(
        "smallest diameter (px); None: half the model's mean training diameter"))
    diameter_stop: float | None = Field(None, gt=0, description=(
        "largest diameter (px, inclusive); None: twice the model's mean training diameter"))
    diameter_step: float = Field(5.0, gt=0, description="spacing of the diameters (px)")
    confidence: ConfidenceMethod = Field(
        ConfidenceMethod.AVERAGE, json_schema_extra={"grid": tuple(ConfidenceMethod)},
        description="confidence map: average (the study) or sliding_window")
    window: int | None = Field(None, ge=1, description=(
        "consecutive diameters per window (sliding_window only)"))
    merge: MergeMethod = Field(
        MergeMethod.INSTANCES,
        json_schema_extra={"grid": (MergeMethod.INSTANCES, MergeMethod.CONNECTED)},
        description=("instances (default: per-diameter instances grouped by overlap, touching "
                     "particles kept apart) or connected (the study: components of the "
                     "thresholded map)"))


class LipoPoseSelectParams(BaseModel):
    """SELECT-stage parameters of :class:`LipoPoseAdapter`."""

    model_config = ConfigDict(extra="forbid")

    until: float = Field(
        0.0, ge=0, le=100, json_schema_extra={"grid": tuple(sorted(DEFAULT_THRESHOLDS))},
        description="merge until this threshold (%): low favours recall, high precision")


def _validated(model_cls, params: Mapping[str, Any], stage: str):
    return validate_parameters("lipopose", model_cls, params, stage)


#: Default diameter range, as factors of the model's mean training diameter.
_DEFAULT_SPAN = (0.5, 2.0)


def _mask_file(workdir: Path, image_name: str, diameter: float, flow: float,
               cellprob: float) -> Path:
    # One file per (image, diameter, Cellpose thresholds): every PREDICT combination of the
    # same model reuses it, so only the merge reruns when merge parameters change.
    return (Path(workdir) / "masks" / image_name /
            f"d{diameter:g}_flow{flow:g}_prob{cellprob:g}.npz")


def _compact_labels(labels: np.ndarray) -> np.ndarray:
    """The label image in the smallest unsigned type that holds its labels.

    All diameters' masks of a micrograph are held until they are merged: at 4096² that is
    16.7 MB each as uint8 (the usual case, under 256 objects) against 67 MB as int32.

    >>> _compact_labels(np.array([[0, 3]], dtype=np.int32)).dtype
    dtype('uint8')
    """
    top = int(labels.max(initial=0))
    for dtype in (np.uint8, np.uint16):
        if top <= np.iinfo(dtype).max:
            return labels.astype(dtype)
    return labels


def _save_labels(path: Path, labels: np.ndarray) -> None:
    from lipobench.fsutil import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, labels=labels)


def _load_labels(path: Path) -> np.ndarray | None:
    import warnings
    import zipfile

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["labels"]
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile):
        # A damaged cached mask (truncated, emptied, garbage) is a cache miss, not a failure
        # on every rerun: say so and let the caller run Cellpose again for it.
        warnings.warn(f"{path}: damaged cached masks; recomputing them", stacklevel=2)
        return None


class LipoPoseAdapter(Adapter):
    """LipoPose: a Cellpose model run at many diameters, merged through a confidence map.

    TRAIN parameters are Cellpose's (training is delegated to
    :class:`~lipobench.adapters.cellpose.CellposeAdapter`). PREDICT parameters choose the
    diameters (``diameter_start``..``diameter_stop`` every ``diameter_step`` px; without a
    start or stop, 0.5 and 2 times the model's mean training diameter), the confidence map and
    the merge. The SELECT parameter ``until`` keeps the objects that entered at that threshold
    or above: merging down to ``T`` gives exactly those objects (the merge never revisits a
    higher threshold), so sweeping ``until`` reruns nothing. ``until`` must be one of
    :data:`DEFAULT_THRESHOLDS`.

    The per-diameter masks are cached in the predict workdir, one file per image and
    diameter, so changing the confidence map or the merge does not rerun Cellpose.
    """

    name: ClassVar[str] = "lipopose"
    region_kind: ClassVar[RegionKind] = RegionKind.MASK
    #: The pipeline runs a plain Cellpose model: one training serves both methods.
    trains_as: ClassVar[str | None] = "cellpose"
    schemas: ClassVar[Mapping[Stage, type[BaseModel]]] = {
        Stage.TRAIN: CellposeTrainParams, Stage.PREDICT: LipoPosePredictParams,
        Stage.SELECT: LipoPoseSelectParams}
    citation: ClassVar[str] = (
        "Basu S, Bajcsy P, Cleveland P, Carrasco MJ, Bahar I, et al. LipoPose: Adapting "
        "Cellpose to Lipid Nanoparticle Segmentation (2023)"
    )

    def __init__(self, device: str = "auto"):
        self.cellpose = CellposeAdapter(device=device)
        #: Cellpose runs of the last predict call (0 when every mask came from the cache).
        self.cellpose_runs = 0

    def availability(self) -> Availability:
        return self.cellpose.availability()

    def test_parameters(self) -> dict[str, Any]:
        return {**super().test_parameters(), "n_epochs": 1,
                "diameter_start": 20.0, "diameter_stop": 30.0, "diameter_step": 10.0}

    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        """Cellpose's training folder (LipoPose trains a plain Cellpose model)."""
        return self.cellpose.to_native(micrographs, workdir)

    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        """Cellpose training with the TRAIN parameters."""
        return self.cellpose.train(native, params, workdir)

    def diameters(self, params: LipoPosePredictParams, model=None) -> list[float]:
        """The diameters to run, validated; the model fills a missing start or stop."""
        start, stop = params.diameter_start, params.diameter_stop
        if start is None or stop is None:
            mean = float(getattr(model, "diam_labels", 0) or getattr(model, "diam_mean", 30.0))
            start = start if start is not None else round(mean * _DEFAULT_SPAN[0], 3)
            stop = stop if stop is not None else round(mean * _DEFAULT_SPAN[1], 3)
        try:
            return DiameterRange(start=start, stop=stop, step=params.diameter_step).values()
        except ValidationError as exc:
            raise UserError(
                f"lipopose diameter_start/diameter_stop/diameter_step ({start:g}, {stop:g}, "
                f"{params.diameter_step:g}): {exc.errors()[0]['msg']}; give start <= stop, "
                "all positive, in pixels"
            ) from None

    def masks_at_diameters(self, model_ref: ModelRef, micrographs: Sequence[Micrograph],
                           params: LipoPosePredictParams, workdir: Path
                           ) -> tuple[list[float], list[list[np.ndarray]]]:
        """Per micrograph, the label image at each diameter, from the cache where present.

        The model is loaded once, and only when some mask is missing from the cache.
        """
        diameters, per_micrograph = self.iter_masks(model_ref, micrographs, params, workdir)
        return diameters, list(per_micrograph)

    def iter_masks(self, model_ref: ModelRef, micrographs: Sequence[Micrograph],
                   params: LipoPosePredictParams, workdir: Path
                   ) -> tuple[list[float], Iterator[list[np.ndarray]]]:
        """Like :meth:`masks_at_diameters`, one micrograph's masks at a time, in order.

        The diameters are checked at the call; the iterator runs Cellpose as it advances.

        Memory stays that of one Cellpose evaluation, then of one micrograph's masks: each
        diameter's masks go to the cache as soon as Cellpose returns them and are read back
        for the merge only once every diameter has run.
        """
        from lipobench.adapters.cellpose import load_cellpose_model, segment

        model = None
        if params.diameter_start is None or params.diameter_stop is None:
            model = load_cellpose_model(model_ref, self.cellpose.device)
        diameters = self.diameters(params, model)
        for micrograph in micrographs:
            limit = min(micrograph.shape)
            if diameters[-1] > limit:
                raise UserError(
                    f"lipopose diameter {diameters[-1]:g} px exceeds micrograph "
                    f"{micrograph.name!r} ({limit} px); lower diameter_stop"
                )
        self.cellpose_runs = 0

        def run_cellpose(micrograph, diameter, path):
            nonlocal model
            # Cellpose may swallow a Ctrl-C inside its C++ code: look between runs.
            raise_if_interrupted()
            if model is None:
                model = load_cellpose_model(model_ref, self.cellpose.device)
            labels = _compact_labels(segment(
                model, micrograph.image, diameter=diameter,
                flow_threshold=params.flow_threshold,
                cellprob_threshold=params.cellprob_threshold))
            self.cellpose_runs += 1
            _save_labels(path, labels)
            return labels

        def per_micrograph():
            for micrograph in micrographs:
                paths = [_mask_file(workdir, micrograph.name, diameter,
                                    params.flow_threshold, params.cellprob_threshold)
                         for diameter in diameters]
                for diameter, path in zip(diameters, paths):
                    if not path.is_file():
                        run_cellpose(micrograph, diameter, path)
                per_diameter = []
                for diameter, path in zip(diameters, paths):
                    labels = _load_labels(path)  # None when damaged: then it runs again
                    per_diameter.append(labels if labels is not None
                                        else run_cellpose(micrograph, diameter, path))
                yield per_diameter

        return diameters, per_micrograph()

    def predict(self, model: ModelRef, micrographs: Sequence[Micrograph],
                params: Mapping[str, Any], workdir: Path) -> list[RegionSet]:
        """Masks merged down to the lowest default threshold, scored by entry threshold."""
        p = _validated(LipoPosePredictParams, params, "predict")
        if p.confidence is ConfidenceMethod.SLIDING_WINDOW and p.window is None:
            raise UserError("lipopose window: the sliding_window confidence needs window = "
                            "a number of consecutive diameters, e.g. 3")
        regions = []
        _, per_micrograph = self.iter_masks(model, micrographs, p, Path(workdir))
        for per_diameter in per_micrograph:
            labels, scores = merge_masks(per_diameter, DEFAULT_THRESHOLDS, merge=p.merge,
                                         method=p.confidence, window=p.window)
            del per_diameter
            regions.append(RegionSet.from_labels(labels, scores=scores, copy=False))
        return regions

    def select(self, regions: RegionSet, params: Mapping[str, Any]) -> RegionSet:
        """Keep the objects merged at ``until`` or above (entry threshold >= until)."""
        p = _validated(LipoPoseSelectParams, params, "select")
        if p.until not in DEFAULT_THRESHOLDS:
            allowed = ", ".join(f"{t:g}" for t in DEFAULT_THRESHOLDS)
            raise UserError(f"lipopose until {p.until:g}: merge-until thresholds are "
                            f"{allowed}; pick one of them")
        return keep_scores_at_least(regions, p.until)

