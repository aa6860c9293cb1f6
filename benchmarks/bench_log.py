"""LoG adapter speed: scikit-image blob_log alone (baseline) vs detect_blobs (ours).

Ours adds normalisation, per-scale scoring and optional binning. Run:
    .venv/bin/python benchmarks/bench_log.py
"""

import time

import numpy as np
from skimage.feature import blob_log

from lipobench.adapters.log import DETECTION_FLOOR, _normalise, detect_blobs


def _image(size=512, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(size, size)).astype(np.float32)
    rows, cols = np.indices(image.shape)
    for r, c in rng.uniform(40, size - 40, size=(12, 2)):
        image[(rows - r) ** 2 + (cols - c) ** 2 < 20 ** 2] -= 1.0
    return image


def _best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    image = _image()
    options = dict(min_sigma=4.0, max_sigma=24.0, num_sigma=10)
    baseline = _best(lambda: blob_log(_normalise(image, dark_particles=True),
                                      threshold=DETECTION_FLOOR, exclude_border=False,
                                      **options))
    ours = _best(lambda: detect_blobs(image, **options))
    binned = _best(lambda: detect_blobs(image, downsample=2, **options))
    print(f"512x512, sigma 4-24 x10: blob_log alone {baseline:.2f} s")
    print(f"detect_blobs (scored)        {ours:.2f} s   ratio {ours / baseline:.2f}")
    print(f"detect_blobs downsample=2    {binned:.2f} s   ratio {binned / baseline:.2f}")


if __name__ == "__main__":
    main()
