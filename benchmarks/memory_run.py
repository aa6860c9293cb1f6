"""Peak memory of ``lipobench run`` on the paper preset at its real size (38 x 4096², unbinned).

Contender: the whole command ``lipobench run EXPERIMENT --out OUT --no-plots`` as a process,
from an empty output folder, on the ``paper`` preset at 0.222 nm/px without binning: it draws
the 38 micrographs of 4096² (31 train, 7 test), then predicts with Cellpose (the shipped model,
at the median training diameter), trains and predicts with Topaz (one short epoch at 4x
downsampling) and crYOLO (one epoch at 512 px input, where its environment is installed), and
scores every configuration. The training sets are the real 31 micrographs: only the epochs
are cut, since memory does not grow with them.

Cellpose is not fine-tuned by default: cellpose's own ``labels_to_flows`` took over 12 minutes
for one 4096² training micrograph on the 2-core machine (its diffusion runs ~2x the largest
diameter of iterations), so the 31 would take over six hours. ``--train-cellpose`` adds the
one-epoch fine-tune, for a machine with the time or a GPU.

Measured: the peak resident set size of the runner process itself, of the largest tool
subprocess, and of the whole process tree at once (sampled from ``/proc`` every 0.2 s, the
tools' subprocesses included). Target: the runner <= 6 GB on the 24 GiB machine.

On 2 CPU cores this takes about an hour (Cellpose's dynamics at 4096² take 1-3 minutes per
micrograph); ``--n-images`` lowers the count for a try, but the target is about 38.

Run: ``make bench-memory`` (with the LipoPose memory benchmark), or
``.venv/bin/python benchmarks/memory_run.py [--n-images 38] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _peak_memory import Sampler

TARGET_GB = 6.0

EXPERIMENT = """\
name = "paper-fullsize-memory"

[dataset]
synthetic = {{ preset = "paper", seed = 0, binning = 1, pixel_size_nm = 0.222{count} }}

[split]
mode = "dataset"

[methods.cellpose]
init = "default"
n_epochs = {cellpose_epochs}
bsize = 224
diameter = {{ derive = "diameter", statistic = "median" }}

[methods.topaz]
downsample = 4
num_epochs = 1
epoch_size = 10
minibatch_size = 32
n_expected = {{ derive = "count_per_image", statistic = "mean", round_to_int = true }}
radius = {{ derive = "radius", statistic = "median", scale = 0.9, round_to_int = true }}
extract_radius = {{ derive = "radius", statistic = "median", scale = 0.9, round_to_int = true }}
{cryolo}"""

CRYOLO = """
[methods.cryolo]
box_size = { derive = "box_size", statistic = "median", round_to_int = true }
input_size = 512
nb_epoch = 1
warmup = 0
early_stop = 1
batch_size = 4
train_times = 1
confidence = 0.3
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=None,
                        help="fewer micrographs than the preset's 38, for a try")
    parser.add_argument("--train-cellpose", action="store_true",
                        help="also fine-tune Cellpose for one epoch (hours on 2 CPU cores)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this folder and keep it (default: a temporary one); "
                        "run again with the same folder to resume a killed run")
    args = parser.parse_args()

    from lipobench.adapters.cryolo import CryoloAdapter

    cryolo = CryoloAdapter().availability()
    work = args.keep or Path(tempfile.mkdtemp(prefix="memory_run_"))
    work.mkdir(parents=True, exist_ok=True)
    count = f", n_images = {args.n_images}" if args.n_images else ""
    experiment = work / "paper_fullsize.toml"
    experiment.write_text(EXPERIMENT.format(count=count, cryolo=CRYOLO if cryolo.ok else "",
                                            cellpose_epochs=1 if args.train_cellpose else 0))
    out = work / "out"
    script = Path(sys.executable).with_name("lipobench")
    argv = [str(script), "run", str(experiment), "--out", str(out), "--no-plots"]
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(child.pid, record=work / "memory_peaks.json" if args.keep else None)
    sampler.start()
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    sampler.done.set()
    sampler.join()
    sampler.save()
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}):\n{output[-3000:]}")
    gb = 1024 ** 2
    runner = max(sampler.runner_kb, 0) / gb
    verdict = "met" if runner <= TARGET_GB else "MISSED"
    images = args.n_images or 38
    print(f"memory_run: lipobench run on the paper preset at 4096² unbinned "
          f"({images} micrographs; cellpose {'fine-tuned' if args.train_cellpose else 'shipped'}, "
          f"topaz{', cryolo' if cryolo.ok else ''}): "
          f"{seconds / 60:.1f} min; peak RSS of the runner {runner:.2f} GB (target <= "
          f"{TARGET_GB:g} GB): {verdict}; the whole process tree at once "
          f"{sampler.tree_kb / gb:.2f} GB; largest process of the tree (wait4) "
          f"{usage.ru_maxrss / gb:.2f} GB"
          + (f" (this attempt; peaks over all {sampler.attempts} attempts in {work})"
             if sampler.attempts > 1 else ""))
    for name, kb in sorted(sampler.tools_kb.items(), key=lambda item: -item[1])[:4]:
        print(f"  tool process {name}: peak {kb / gb:.2f} GB")
    if not cryolo.ok:
        print(f"  crYOLO not run: {cryolo.reason}")
    print("  " + (output.strip().splitlines() or [""])[-1])
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
