"""LipoPose's multi-diameter inference against the Cellpose evaluations it is made of.

Contender: ``LipoPoseAdapter.predict`` on one simulated micrograph with an empty work folder,
the whole path the runner pays for one micrograph: loading the model, Cellpose at every
diameter, caching each diameter's masks, the instance merge and the RegionSet.

Baseline: the same model loaded once and ``CellposeModel.eval`` called directly at each of
those diameters, with the arguments LipoPose passes (the negated float32 image, channels
[0, 0], flow and cell-probability thresholds). Rounds run both, alternating which goes
first; the best of each is compared. Target: contender <= 1.05x the baseline.

Memory (``--memory``): the whole command a user runs, ``lipobench segment M.mrc --model
default --diameters START:STOP:STEP``, on one 4096² micrograph of the paper preset at 0.222
nm/px (unbinned) written to an MRC file beforehand by another process, with 23 diameters
(``--memory-diameters``) from the 5th to the 95th percentile of its particles' diameters:
model load, Cellpose at every diameter, the merge, labels, ROIs, overlay and table. Its peak
resident set size (the child's own ``ru_maxrss``, from ``wait4``) is reported against the
target of 2 GB. Each Cellpose evaluation at 4096² takes 1-4 minutes on 2 CPU cores (dynamics
run at full size, longer for larger diameters), so 23 diameters take about an hour.

``--memory-at-model-scale`` measures the command as a user types it, without ``--diameters``:
the header's 0.222 nm zooms the micrograph 0.25x to the default model's 0.888 nm, and the 23
default diameters run there (about 8 minutes).

Run: ``.venv/bin/python benchmarks/bench_lipopose_inference.py [--size 1024]
[--diameters 8] [--repeats 2] [--memory] [--memory-at-model-scale] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
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
    from lipobench.lipopose import DiameterRange

    micrograph, sim = simulated(size, 0.888)
    start, stop, step = diameters_for(sim, count)
    diameters = DiameterRange(start=start, stop=stop, step=step).values()
    params = lipopose_params(start, stop, step)
    print(f"bench_lipopose_inference: one {size}² micrograph (paper preset at 0.888 nm/px, "
          f"{len(sim.particles)} particles), {len(diameters)} diameters "
          f"{diameters[0]:g}..{diameters[-1]:g} px")
    base_times, ours_times = [], []
    for round_ in range(repeats):
        # Alternate which goes first, so that a drift in the machine's load favours neither.
        for side in (("base", "ours") if round_ % 2 == 0 else ("ours", "base")):
            if side == "base":
                base_times.append(baseline(micrograph, diameters))
                continue
            with tempfile.TemporaryDirectory() as work:
                ours_times.append(contender(micrograph, params, Path(work)))
        print(f"  round {round_ + 1}: cellpose eval x{len(diameters)} {base_times[-1]:.1f} s, "
              f"lipopose predict {ours_times[-1]:.1f} s")
    ratio = min(ours_times) / min(base_times)
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"bench_lipopose_inference: {ratio:.3f}x the sum of Cellpose evaluations, best "
          f"against best (target <= {TARGET:.2f}x): {verdict}")


_WRITE_MICROGRAPH = """
import json, sys
import mrcfile, numpy as np
sys.path.insert(0, {here!r})
import bench_lipopose_inference as b
micrograph, sim = b.simulated(4096, 0.222)
with mrcfile.new({path!r}, overwrite=True) as mrc:
    mrc.set_data(np.asarray(micrograph.image, dtype=np.float32))
    mrc.voxel_size = 2.22
print(json.dumps({{"range": b.diameters_for(sim, {count}), "particles": len(sim.particles)}}))
"""


def _peak_rss_gb(argv: list[str], record: Path | None = None) -> tuple[float, float, str]:
    """Run ``argv`` as a child; its own peak RSS (GB), wall seconds and stdout.

    The peak is the child's ``VmHWM``, sampled from ``/proc`` (what ``wait4`` reports at its
    exit); with ``record``, the peak of earlier, killed attempts saved there counts too.
    """
    import os

    from _peak_memory import Sampler

    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(child.pid, record=record)
    sampler.start()
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    sampler.done.set()
    sampler.join()
    sampler.runner_kb = max(sampler.runner_kb, usage.ru_maxrss)
    sampler.save()
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}):\n{output[-2000:]}")
    if sampler.attempts > 1:
        output += (f"\n(peak over {sampler.attempts} attempts; this one ran {seconds:.0f} s, "
                   "resumed from the mask cache)")
    return sampler.runner_kb / 1024**2, seconds, output


def memory(count: int, *, at_model_scale: bool = False, keep: Path | None = None) -> None:
    """Peak RSS of the whole ``lipobench segment`` command, the micrograph read from disk.

    ``at_model_scale``: the command as a user types it, without ``--diameters``, so the
    micrograph is zoomed to the default model's pixels first (0.222 / 0.888 nm: 0.25, from
    the MRC header) and runs the default diameters there.

    ``keep``: work in this folder and keep it; run again with it to resume a killed
    measurement (segment reuses the masks it cached, the peaks so far are read back).
    """
    here = str(Path(__file__).resolve().parent)
    with contextlib.ExitStack() as stack:
        work = keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        path = work / "m4096.mrc"
        drawn = work / f"m4096-{count}.json"
        if not (path.is_file() and drawn.is_file()):
            made = subprocess.run(
                [sys.executable, "-c", _WRITE_MICROGRAPH.format(here=here, path=str(path),
                                                                 count=count)],
                capture_output=True, text=True, check=True)
            drawn.write_text(made.stdout.strip().splitlines()[-1])
        report = json.loads(drawn.read_text())
        start, stop, step = report["range"]
        script = Path(sys.executable).with_name("lipobench")
        scale = "model-scale" if at_model_scale else f"{count}-diameters"
        argv = [str(script), "segment", str(path), "--model", "default", "--out",
                str(work / f"out-{scale}"), "--device", "cpu"]
        if not at_model_scale:
            argv += ["--diameters", f"{start:g}:{stop:g}:{step:g}"]
        peak, seconds, output = _peak_rss_gb(
            argv, record=work / f"memory_peaks-{scale}.json" if keep else None)
    if at_model_scale:
        lines = output.strip().splitlines()
        verdict = "met" if peak <= MEMORY_TARGET_GB else "MISSED"
        print(f"bench_lipopose_inference --memory-at-model-scale: `lipobench segment M.mrc "
              f"--model default` on one 4096² micrograph at 0.222 nm/px "
              f"({report['particles']} particles), no diameters given: {seconds:.0f} s, "
              f"peak RSS {peak:.2f} GB (target <= {MEMORY_TARGET_GB:g} GB): {verdict}")
        print("  " + "\n  ".join(lines[-2:]))
        return
    verdict = "met" if peak <= MEMORY_TARGET_GB else "MISSED"
    print(f"bench_lipopose_inference --memory: `lipobench segment` on one 4096² micrograph at "
          f"0.222 nm/px ({report['particles']} particles), {count} diameters "
          f"{start:g}..{stop:g} px, labels, ROIs, overlay and table written: {seconds:.0f} s, "
          f"peak RSS {peak:.2f} GB (target <= {MEMORY_TARGET_GB:g} GB): {verdict}")
    print("  " + output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--diameters", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory", action="store_true",
                        help="also measure peak memory at 4096² (long)")
    parser.add_argument("--memory-diameters", type=int, default=23,
                        help="diameters LipoPose runs in the memory measurement")
    parser.add_argument("--memory-only", action="store_true", help="skip the timing")
    parser.add_argument("--memory-at-model-scale", action="store_true",
                        help="measure the command without --diameters (zoomed to the model)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="memory: work in this folder and keep it; run again with the "
                        "same folder to resume a killed measurement")
    args = parser.parse_args()
    if not args.memory_only:
        timing(args.size, args.diameters, args.repeats)
    if args.memory or args.memory_only:
        memory(args.memory_diameters, at_model_scale=args.memory_at_model_scale,
               keep=args.keep)


if __name__ == "__main__":
    main()
