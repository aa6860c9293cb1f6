"""Speed of simulating one paper-size micrograph against FFTs, in process and as a whole command.

Baseline: one complex64 FFT pair (scipy.fft.fft2 + ifft2, workers=-1) of 4096^2, on the same
machine, in the same run. Target: each contender takes at most 10x that.

1. In process: ``simulate_micrograph`` of the paper preset (4096^2 at 0.222 nm/px, 4x binned
   to 1024^2), image, labels and particle table, no writing.
2. Whole process: ``lipobench synth OUT --n-images 1 --size 4096 --pixel-size 0.222
   --binning 1`` run as a command (interpreter start, imports, simulation at 4096^2 without
   binning, tables, labels and writing the dataset), after one warm-up run. Python's bytecode
   cache is left on for the command, as for any user (PYTHONDONTWRITEBYTECODE is removed
   from its environment); the interleaving runs the FFT pair between command runs.

Run: ``.venv/bin/python benchmarks/bench_synth.py [--size 4096] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.fft as sfft


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def synth_command(out: Path, size: int) -> list[str]:
    script = Path(sys.executable).with_name("lipobench")
    head = [str(script)] if script.exists() else [
        sys.executable, "-c", "from lipobench.cli import console; console()"]
    return head + ["synth", str(out), "--n-images", "1", "--size", str(size),
                   "--pixel-size", "0.222", "--binning", "1"]


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

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    scratch = Path(tempfile.mkdtemp(prefix="bench_synth_"))

    def command():
        out = scratch / "out"
        subprocess.run(synth_command(out, n), check=True, env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(out)

    try:
        fft_pair()  # warm up plans and imports
        simulate()
        command()
        baseline = _best(fft_pair, args.repeats)
        ours = _best(simulate, args.repeats)
        whole, baseline_2 = [], []
        for _ in range(args.repeats):
            whole.append(_best(command, 1))
            baseline_2.append(_best(fft_pair, 1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    paired = statistics.median(w / f for w, f in zip(whole, baseline_2))
    baseline = min(baseline, *baseline_2)
    print(f"best of {args.repeats} runs each")
    print(f"baseline  complex64 FFT pair {n}^2: {baseline:.3f} s")
    print(f"ours      in process, one simulated micrograph {n}^2 physical -> {n // 4}^2 "
          f"output: {ours:.3f} s, {ours / baseline:.1f}x (target <= 10x)")
    print(f"ours      whole command, lipobench {' '.join(synth_command(Path('OUT'), n)[-10:])}: "
          f"{min(whole):.3f} s, {min(whole) / baseline:.1f}x best against best; median of "
          f"the {args.repeats} command / FFT-pair ratios, each pair run back to back: "
          f"{paired:.1f}x (target <= 10x)")


if __name__ == "__main__":
    main()
