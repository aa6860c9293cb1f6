"""lipobench's own overhead in a whole ``lipobench run``, against the tool calls it makes.

Contender: the command ``lipobench run EXPERIMENT --out OUT`` as a process, timed from start
to exit, with an empty cache (every model trained or loaded, every prediction made, scored,
tabled and plotted, as a user's first run). The synthetic dataset is simulated once before
the timing and copied into each OUT, because drawing data is not a tool call either way and
``lipobench synth`` has its own benchmark (``bench_synth.py``).

Baseline: the same tool calls made directly. The child process runs with clocks around every
entry point through which lipobench hands work to a tool (``_tool_clock.py``: Topaz and crYOLO
subprocesses, Cellpose model loading, ``eval`` and ``train_seg``, scikit-image's
``blob_log``), so the baseline is the time spent inside those calls, plus importing the
in-process tools once (``import cellpose.models, cellpose.train, skimage.feature`` in a fresh
interpreter, best of three), which a script calling them directly pays too.

Target: wall time <= 1.10x the baseline. Also printed: the strict ratio without the tools'
import, and where the rest goes (per tool).

Run: ``.venv/bin/python benchmarks/bench_run.py [--experiment experiments/quick.toml]
[--repeats 1]``. With crYOLO's environment installed (``lipobench tools install cryolo``)
the quick experiment takes about 5 minutes per repeat on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = 1.10

_CHILD = """
import sys
sys.path.insert(0, {here!r})
import _tool_clock
_tool_clock.install({clock!r})
from lipobench.cli import main
sys.argv = ["lipobench", "run", {experiment!r}, "--out", {out!r}]
main()
"""


def simulate_once(experiment: Path, into: Path) -> Path:
    """The experiment's synthetic dataset, drawn once under ``into/data``."""
    from lipobench.experiment import load_experiment
    from lipobench.plugins import load_registry
    from lipobench.run.dataset import prepare_dataset

    spec = load_experiment(experiment, load_registry())
    return prepare_dataset(spec, into)


def tool_import_seconds(repeats: int = 3) -> float:
    code = "import cellpose.models, cellpose.train, skimage.feature"
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def timed_run(experiment: Path, template_data: Path, work: Path, index: int):
    out = work / f"run-{index}"
    shutil.copytree(template_data.parent, out / "data")
    clock = work / f"clock-{index}.json"
    child = _CHILD.format(here=str(HERE), clock=str(clock), experiment=str(experiment),
                          out=str(out))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"lipobench run failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    tools = json.loads(clock.read_text())
    failed = [line for line in done.stdout.splitlines() if "failed" in line.lower()]
    return wall, tools, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path, default=Path("experiments/quick.toml"))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    experiment = args.experiment.resolve()

    with tempfile.TemporaryDirectory(prefix="bench_run-") as tmp:
        work = Path(tmp)
        data = simulate_once(experiment, work / "template")
        imports = tool_import_seconds()
        print(f"bench_run: {experiment.name}, {args.repeats} run(s) from an empty cache; "
              f"tool imports {imports:.2f} s (fresh interpreter, best of 3)")
        ratios = []
        for index in range(args.repeats):
            wall, tools, failed = timed_run(experiment, data, work, index)
            inside = sum(tools["seconds"].values())
            baseline = inside + imports
            ratio = wall / baseline
            ratios.append(ratio)
            print(f"  run {index + 1}: wall {wall:.1f} s; inside tool calls {inside:.1f} s "
                  f"(+ imports = baseline {baseline:.1f} s); lipobench's own "
                  f"{wall - baseline:.1f} s")
            for name, seconds in sorted(tools["seconds"].items(), key=lambda kv: -kv[1]):
                print(f"      {name:28s} {seconds:7.1f} s  ({tools['calls'][name]} calls)")
            print(f"    ratio {ratio:.3f}x the baseline (strict, without the tools' "
                  f"imports: {wall / inside:.3f}x)")
            for line in failed:
                print(f"    note: {line.strip()}")
        best = min(ratios)
        verdict = "met" if best <= TARGET else "MISSED"
        print(f"bench_run: best {best:.3f}x the tools' own time (target <= {TARGET:.2f}x): "
              f"{verdict}")


if __name__ == "__main__":
    main()
