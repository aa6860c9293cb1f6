"""The instance merge (lipobench's, beyond the study): per-diameter instances grouped by
overlap, so touching particles stay apart where binarizing the masks would fuse them.

Returns ``(labels, scores)`` as :func:`lipobench.lipopose.merge.merge_until` does. SciPy is
imported inside :func:`merge_instances`.
"""

from __future__ import annotations

import numpy as np

from lipobench.errors import UserError
from lipobench.lipopose.confidence import check_masks, detection_counts
from lipobench.lipopose.methods import ConfidenceMethod
from lipobench.lipopose.thresholds import DEFAULT_THRESHOLDS, check_thresholds

__all__ = ["merge_instances"]

_EIGHT = np.ones((3, 3), dtype=np.uint8)


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
    return list(zip(ia[hit].tolist(), ib[hit].tolist(), strict=True))


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

    arrays = check_masks(label_masks)
    ascending = check_thresholds(thresholds)
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
    order = [lab for _, lab in sorted(zip(first.tolist(), present.tolist(), strict=True))
             if lab != 0]
    lookup = np.zeros(int(flat.max()) + 1, dtype=np.int32)
    lookup[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    return lookup[labels], scores[np.array(order) - 1]
