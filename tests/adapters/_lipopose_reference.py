"""The study's Algorithm 1 written literally: the reference for the tests and the benchmark.

Kept apart from the fast implementation in lipobench.lipopose on purpose, so the two
can disagree.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EIGHT = np.ones((3, 3), dtype=bool)


def algorithm1_reference(conf: np.ndarray, thresholds) -> tuple[np.ndarray, list[float]]:
    """The study's Algorithm 1, written literally: the reference the fast path must match.

    Label the mask at the highest threshold; at each lower threshold label its mask and add
    each object that shares no pixel with any object already merged, testing every pair of
    objects over the overlap of their bounding boxes.
    """
    ordered = sorted(set(float(t) for t in thresholds), reverse=True)
    merged, count = ndimage.label(conf > ordered[0], structure=EIGHT)
    merged = merged.astype(np.int32)
    scores = [ordered[0]] * count
    for threshold in ordered[1:]:
        candidates, n_candidates = ndimage.label(conf > threshold, structure=EIGHT)
        candidate_boxes = ndimage.find_objects(candidates)
        merged_boxes = ndimage.find_objects(merged)
        additions = []
        for c in range(1, n_candidates + 1):
            cbox = candidate_boxes[c - 1]
            shares = False
            for o, obox in enumerate(merged_boxes, start=1):
                if obox is None:
                    continue
                r0, r1 = max(cbox[0].start, obox[0].start), min(cbox[0].stop, obox[0].stop)
                c0, c1 = max(cbox[1].start, obox[1].start), min(cbox[1].stop, obox[1].stop)
                if r0 >= r1 or c0 >= c1:
                    continue
                window = (slice(r0, r1), slice(c0, c1))
                if np.any((candidates[window] == c) & (merged[window] == o)):
                    shares = True
                    break
            if not shares:
                additions.append(c)
        if additions:  # candidates are disjoint, so one relabelling adds them all
            lookup = np.zeros(n_candidates + 1, dtype=merged.dtype)
            lookup[additions] = np.arange(count + 1, count + 1 + len(additions))
            merged = np.where(merged > 0, merged, lookup[candidates])
            count += len(additions)
            scores += [threshold] * len(additions)
    return merged, scores
