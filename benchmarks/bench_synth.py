"""Speed of one paper-size micrograph (4096^2 at 0.222 nm/px, 4x binned) against FFTs.

Baseline: one complex64 FFT pair (scipy.fft.fft2 + ifft2, workers=-1) of the same 4096^2
size, on the same machine, in the same run. Target: the simulation takes at most 10x that.

Run: ``.venv/bin/python benchmarks/bench_synth.py [--size 4096] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.fft as sfft


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="physical side, pixels")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from lipobench.synth import PRESETS, simulate_micrograph

    n = args.size
    data = (np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
            .astype(np.complex64))

    def fft_pair():
        sfft.ifft2(sfft.fft2(data, workers=-1), workers=-1)

    params = PRESETS["paper"].with_overrides(**{"output.size_px": n // 4})
    counter = iter(range(10 ** 6))

    def simulate():
        simulate_micrograph(params, index=next(counter))

    fft_pair()  # warm up plans and imports
    simulate()
    baseline = _best(fft_pair, args.repeats)
    ours = _best(simulate, args.repeats)
    print(f"micrograph {n}^2 physical -> {n // 4}^2 output, {args.repeats} repeats (best)")
    print(f"baseline  complex64 FFT pair {n}^2: {baseline:.3f} s")
    print(f"ours      one simulated micrograph: {ours:.3f} s")
    print(f"ratio     {ours / baseline:.1f}x (target <= 10x)")


if __name__ == "__main__":
    main()
