"""LipoPose's multi-diameter inference against the Cellpose evaluations it is made of.

Contender: ``LipoPoseAdapter.predict`` on one simulated micrograph with an empty work folder,
the whole path the runner pays for one micrograph: loading the model, Cellpose at every
diameter, caching each diameter's masks, the instance merge and the RegionSet.

Baseline: the same model loaded once and ``CellposeModel.eval`` called directly at each of
those diameters, with the arguments LipoPose passes (the negated float32 image, channels
[0, 0], flow and cell-probability thresholds). Rounds alternate baseline and contender; the
best of each is compared. Target: contender <= 1.05x the baseline.

Memory (``--memory``): the contender alone in a fresh process on one 4096² micrograph of the
paper preset at 0.222 nm/px (unbinned) with 23 diameters spanning its particles; its peak
resident set size (``ru_maxrss``) is reported against the target of 2 GB. On 2 CPU cores
that takes the better part of an hour.

Run: ``.venv/bin/python benchmarks/bench_lipopose_inference.py [--size 1024]
[--diameters 8] [--repeats 2] [--memory]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 1.05
MEMORY_TARGET_GB = 2.0


def simulated(size: int, pixel_size: float, seed: int = 0):
    """One paper-preset micrograph of ``size``² at ``pixel_size`` nm, and its simulation."""
    from lipobench.synth import simulate_micrograph
    from lipobench.synth.dataset import resolve_params

    params = resolve_params(preset="paper", size=size, pixel_size_nm=pixel_size)
    sim = simulate_micrograph(params, index=0, seed=seed)
    return sim.to_micrograph("bench"), sim


def diameters_for(sim, count: int) -> tuple[float, float, float]:
    """``count`` diameters from the 5th to the 95th percentile of the particles' diameters."""
    sizes = np.asarray(sim.particles["diameter_px"], dtype=float)
    start, stop = np.percentile(sizes, [5, 95])
    step = (stop - start) / max(count - 1, 1)
    return round(float(start), 3), round(float(start + step * (count - 1)), 3), round(step, 3)


def lipopose_params(start, stop, step):
    return {"diameter_start": start, "diameter_stop": stop, "diameter_step": step}


def contender(micrograph, params, workdir: Path) -> float:
    from lipobench.adapters.lipopose import LipoPoseAdapter

    adapter = LipoPoseAdapter(device="cpu")
    start = time.perf_counter()
    adapter.predict("default", [micrograph], params, workdir)
    return time.perf_counter() - start


def baseline(micrograph, diameters) -> float:
    from cellpose import models

    from lipobench.defaults import packaged_model

    start = time.perf_counter()
    model = models.CellposeModel(gpu=False, pretrained_model=str(packaged_model("cellpose")))
    image = np.negative(np.asarray(micrograph.image, dtype=np.float32))
    for diameter in diameters:
        model.eval(image, channels=[0, 0], diameter=diameter, flow_threshold=0.4,
                   cellprob_threshold=0.0)
    return time.perf_counter() - start


def timing(size: int, count: int, repeats: int) -> None:
    from lipobench.adapters.lipopose import DiameterRange

    micrograph, sim = simulated(size, 0.888)
    start, stop, step = diameters_for(sim, count)
    diameters = DiameterRange(start=start, stop=stop, step=step).values()
    params = lipopose_params(start, stop, step)
    print(f"bench_lipopose_inference: one {size}² micrograph (paper preset at 0.888 nm/px, "
          f"{len(sim.particles)} particles), {len(diameters)} diameters "
          f"{diameters[0]:g}..{diameters[-1]:g} px")
    base_times, ours_times = [], []
    for round_ in range(repeats):
        base_times.append(baseline(micrograph, diameters))
        with tempfile.TemporaryDirectory() as work:
            ours_times.append(contender(micrograph, params, Path(work)))
        print(f"  round {round_ + 1}: cellpose eval x{len(diameters)} {base_times[-1]:.1f} s, "
              f"lipopose predict {ours_times[-1]:.1f} s")
    ratio = min(ours_times) / min(base_times)
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"bench_lipopose_inference: {ratio:.3f}x the sum of Cellpose evaluations, best "
          f"against best (target <= {TARGET:.2f}x): {verdict}")


_MEMORY_CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {here!r})
import bench_lipopose_inference as b
micrograph, sim = b.simulated(4096, 0.222)
start, stop, step = b.diameters_for(sim, 23)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as work:
    seconds = b.contender(micrograph, b.lipopose_params(start, stop, step), Path(work))
print(json.dumps({{"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "before_kb": before, "seconds": seconds, "range": [start, stop, step],
                  "particles": len(sim.particles)}}))
"""


def memory() -> None:
    child = _MEMORY_CHILD.format(here=str(Path(__file__).resolve().parent))
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    peak = report["peak_kb"] / 1024**2
    verdict = "met" if peak <= MEMORY_TARGET_GB else "MISSED"
    start, stop, step = report["range"]
    print(f"bench_lipopose_inference --memory: one 4096² micrograph at 0.222 nm/px "
          f"({report['particles']} particles), 23 diameters {start:g}..{stop:g} px: "
          f"{report['seconds']:.0f} s, peak RSS {peak:.2f} GB (simulating the image: "
          f"{report['before_kb'] / 1024**2:.2f} GB) (target <= {MEMORY_TARGET_GB:g} GB): "
          f"{verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--diameters", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory", action="store_true",
                        help="also measure peak memory at 4096² with 23 diameters (long)")
    args = parser.parse_args()
    timing(args.size, args.diameters, args.repeats)
    if args.memory:
        memory()


if __name__ == "__main__":
    main()
