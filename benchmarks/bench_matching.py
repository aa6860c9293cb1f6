"""Speed of lipobench.metrics.match against cellpose's average_precision and a read floor.

Run: .venv/bin/python benchmarks/bench_matching.py

1. Two 4096² int32 label images with ~100 particles each, thresholds 0.5, 0.75, 0.9:
   lipobench's match, cellpose.metrics.average_precision (the baseline; numba, JIT-warmed
   first) and the floor ``a.sum(); b.sum()`` (numpy reading both images once).
   Targets: at least 2x faster than cellpose, at most 1.5x the floor.
2. 1,000 predicted against 1,000 true circles, and boxes: target under 10 ms.

Times are medians of rounds that run the contenders in turn, after one warm-up run each.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from lipobench.metrics import match
from lipobench.regions import RegionSet

THRESHOLDS = [0.5, 0.75, 0.9]


def timeit(func, repeats: int = 15) -> tuple[float, float]:
    return interleaved([func], repeats)[0]


def interleaved(funcs, repeats: int = 15) -> list[float]:
    """(median, min) time of each function, run in turn within every round.

    The benchmark machine is shared: running the contenders side by side, round after round,
    exposes them to the same load, so their ratios stay meaningful when absolute times drift.
    """
    for func in funcs:
        func()
    times = [[] for _ in funcs]
    for _ in range(repeats):
        for func, bucket in zip(funcs, times):
            start = time.perf_counter()
            func()
            bucket.append(time.perf_counter() - start)
    return [(statistics.median(bucket), min(bucket)) for bucket in times]


def label_image(rng, size: int, count: int) -> np.ndarray:
    labels = np.zeros((size, size), dtype=np.int32)
    for k in range(count):
        r, c = rng.uniform(80, size - 80, 2)
        radius = rng.uniform(20, 60)
        r0, c0 = int(r - radius), int(c - radius)
        r1, c1 = int(r + radius) + 1, int(c + radius) + 1
        rows, cols = np.ogrid[r0:r1, c0:c1]
        disk = (rows + 0.5 - r) ** 2 + (cols + 0.5 - c) ** 2 <= radius**2
        labels[r0:r1, c0:c1][disk] = k + 1
    return labels


def prediction_from(rng, truth: np.ndarray) -> np.ndarray:
    """The truth shifted a few pixels, 10 % of particles dropped, a few new ones drawn."""
    pred = np.roll(truth, (3, -4), axis=(0, 1))
    drop = np.zeros(truth.max() + 1, dtype=bool)
    drop[1:] = rng.random(truth.max()) < 0.1
    pred[drop[pred]] = 0
    extra = label_image(rng, truth.shape[0], 10)
    pred[extra > 0] = extra[extra > 0] + truth.max()
    # cellpose counts max(label) as the number of particles: relabel 1..N.
    present = np.unique(pred)
    lookup = np.zeros(pred.max() + 1, dtype=np.int32)
    lookup[present] = np.arange(len(present), dtype=np.int32)
    return lookup[pred]


def bench_masks() -> None:
    from cellpose.metrics import average_precision

    rng = np.random.default_rng(0)
    truth = label_image(rng, 4096, 100)
    pred = prediction_from(rng, truth)
    t_set = RegionSet.from_labels(truth, copy=False)
    p_set = RegionSet.from_labels(pred, copy=False)

    ours = match(t_set, p_set, THRESHOLDS, inclusive=True)
    _, tp, fp, fn = average_precision(truth, pred, threshold=THRESHOLDS)
    assert ours.tp.tolist() == tp.astype(int).tolist(), (ours.tp, tp)
    assert ours.fp.tolist() == fp.astype(int).tolist()
    assert ours.fn.tolist() == fn.astype(int).tolist()

    t_ours, t_cellpose, t_floor = interleaved([
        lambda: match(t_set, p_set, THRESHOLDS, inclusive=True),
        lambda: average_precision(truth, pred, threshold=THRESHOLDS),
        lambda: (truth.sum(), pred.sum()),
    ], repeats=21)
    print(f"masks 4096² int32, {len(ours.truth_ids)} vs {len(ours.pred_ids)} particles, "
          f"tp={ours.tp.tolist()}")
    print("                                        median       min")
    for label, (median, best) in (("cellpose average_precision (baseline)", t_cellpose),
                                  ("lipobench match", t_ours),
                                  ("floor: a.sum(); b.sum()", t_floor)):
        print(f"  {label:<37} {median * 1e3:7.2f} ms {best * 1e3:7.2f} ms")
    for stat, k in (("median", 0), ("min", 1)):
        print(f"  {stat:>6}: speed-up over cellpose {t_cellpose[k] / t_ours[k]:.2f}x "
              f"(target >= 2x); match / floor {t_ours[k] / t_floor[k]:.2f}x (target <= 1.5x)")


def bench_shapes() -> None:
    rng = np.random.default_rng(1)
    size = 4096
    centres = rng.uniform(0, size, (1000, 2))
    radii = rng.uniform(15, 40, 1000)
    circles = np.column_stack([centres, radii])
    moved = circles + np.column_stack([rng.normal(0, 3, (1000, 2)), rng.normal(0, 2, 1000)])
    moved[:, 2] = np.abs(moved[:, 2]) + 1
    cases = {
        "circles": (RegionSet.from_circles(circles, image_shape=(size, size)),
                    RegionSet.from_circles(moved, image_shape=(size, size))),
    }
    t_boxes = RegionSet.from_circles(circles, image_shape=(size, size)).to_boxes()
    p_boxes = RegionSet.from_circles(moved, image_shape=(size, size)).to_boxes()
    cases["boxes"] = (t_boxes, p_boxes)
    for name, (truth, pred) in cases.items():
        res = match(truth, pred, THRESHOLDS)
        median, best = timeit(lambda: match(truth, pred, THRESHOLDS), repeats=30)
        print(f"{name}: 1000 vs 1000, tp={res.tp.tolist()}: median {median * 1e3:.2f} ms, "
              f"min {best * 1e3:.2f} ms (target < 10 ms: {median * 1e3 / 10:.2f}x of it)")


if __name__ == "__main__":
    bench_masks()
    bench_shapes()
