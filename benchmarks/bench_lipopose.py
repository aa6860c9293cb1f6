"""Speed of LipoPose's confidence map + merge on 37 masks of 4096², side by side.

Three timings on the same masks, best of a few repeats:

- floor: numpy adding up the 37 masks (``acc += m`` for each mask), nothing else;
- baseline: a straightforward Algorithm 1 (float confidence map, label the masks at each of
  the 8 thresholds with scipy, test every pair of objects for shared pixels over their
  bounding boxes);
- ours: ``merge_until(detection_counts(masks), DEFAULT_THRESHOLDS)``.

Targets: ours at least 5x faster than the baseline and at most 3x the floor.
Run: ``.venv/bin/python benchmarks/bench_lipopose.py [--size 4096] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from scipy import ndimage

from lipobench.adapters.lipopose import (
    DEFAULT_THRESHOLDS,
    detection_counts,
    merge_instances,
    merge_until,
)

EIGHT = np.ones((3, 3), dtype=bool)


def simulated_masks(size: int, n_diameters: int = 37, n_particles: int = 120, seed: int = 0):
    """Cellpose-like per-diameter masks: particles found near their size, radius drifting."""
    rng = np.random.default_rng(seed)
    scale = size / 4096
    centres = rng.uniform(0, size, size=(n_particles, 2))
    diameters = np.clip(rng.lognormal(np.log(315 * scale), 0.4, n_particles), 20 * scale,
                        900 * scale)
    tried = np.linspace(90 * scale, 900 * scale, n_diameters)
    masks = []
    for d in tried:
        mask = np.zeros((size, size), dtype=np.uint8)
        for (r, c), true_d in zip(centres, diameters):
            ratio = d / true_d
            if not 0.5 < ratio < 2.0 or rng.random() < 0.1:
                continue
            radius = 0.5 * true_d * (1 + 0.1 * (ratio - 1) + rng.normal(0, 0.02))
            cv2.circle(mask, (int(c), int(r)), max(int(radius), 1), 1, thickness=-1)
        # Small false detections, as Cellpose makes on ice and debris.
        for r, c in rng.uniform(0, size, size=(30, 2)):
            cv2.circle(mask, (int(c), int(r)), int(rng.uniform(3, 15)), 1, thickness=-1)
        # Binarized masks, as booleans: the floor and ours read the same bytes.
        masks.append(mask.view(bool))
    return masks


def floor(masks):
    acc = np.zeros(masks[0].shape, dtype=np.uint8)
    for m in masks:
        acc += m
    return acc


def baseline(masks, thresholds=DEFAULT_THRESHOLDS):
    """A straightforward Algorithm 1: label at every threshold, test object pairs by boxes."""
    conf = 100.0 * np.sum(np.stack(masks), axis=0, dtype=np.float64) / len(masks)
    ordered = sorted(set(float(t) for t in thresholds), reverse=True)
    merged, count = ndimage.label(conf > ordered[0], structure=EIGHT)
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
        if additions:
            lookup = np.zeros(n_candidates + 1, dtype=merged.dtype)
            lookup[additions] = np.arange(count + 1, count + 1 + len(additions))
            merged = np.where(merged > 0, merged, lookup[candidates])
            count += len(additions)
            scores += [threshold] * len(additions)
    return merged, scores


def ours(masks):
    return merge_until(detection_counts(masks), DEFAULT_THRESHOLDS)


def best_time(fn, *args, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--instances", action="store_true",
                        help="also time the instance-preserving merge (slower, not a target)")
    args = parser.parse_args()
    masks = simulated_masks(args.size)
    t_floor, _ = best_time(floor, masks, repeats=args.repeats)
    t_ours, (labels, scores) = best_time(ours, masks, repeats=args.repeats)
    t_base, (ref_labels, ref_scores) = best_time(baseline, masks, repeats=1)
    same_partition = (len(scores) == len(ref_scores)
                      and np.array_equal(labels > 0, ref_labels > 0)
                      and sorted(scores) == sorted(ref_scores))
    print(f"37 masks of {args.size}², {len(DEFAULT_THRESHOLDS)} thresholds, "
          f"{len(scores)} objects (baseline agrees: {same_partition})")
    print(f"floor    (acc += m)        {t_floor * 1e3:9.1f} ms")
    print(f"baseline (Algorithm 1)     {t_base * 1e3:9.1f} ms")
    print(f"ours     (counts + merge)  {t_ours * 1e3:9.1f} ms")
    print(f"speed-up over baseline     {t_base / t_ours:9.1f} x   (target >= 5)")
    print(f"ours / floor               {t_ours / t_floor:9.2f} x   (target <= 3)")
    if args.instances:
        labelled = [ndimage.label(m, structure=EIGHT)[0] for m in masks]
        t_inst, (inst_labels, _) = best_time(merge_instances, labelled, repeats=1)
        print(f"instances merge            {t_inst * 1e3:9.1f} ms ({inst_labels.max()} objects)")


if __name__ == "__main__":
    main()
