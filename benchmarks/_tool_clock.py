"""Clocks around the tools' own entry points, for ``bench_run.py``'s child process.

``install(path)`` wraps every call through which lipobench hands work to a tool, and at exit
writes the seconds spent inside them to ``path`` (JSON). Nested calls count once. Wrapped:

- ``lipobench.toolrun.run_tool``: every Topaz and crYOLO subprocess, start to exit;
- ``cellpose.models.CellposeModel.__init__`` (loading a model), ``CellposeModel.eval``, the
  steps of eval that :func:`lipobench.adapters.cellpose.segment` calls one by one
  (``transforms.convert_image``, ``normalize_img`` and ``resize_image``, ``core.run_net``,
  ``dynamics.resize_and_compute_masks``), ``dynamics.labels_to_flows`` (the training flows,
  computed one micrograph at a time before training) and ``cellpose.train.train_seg``:
  Cellpose runs in process;
- ``skimage.feature.blob_log``: the LoG baseline's detector.

These are exactly the calls a script that used the tools directly would make, with the same
arguments; everything else in the run (planning, conversions, cache, scoring, tables, plots,
imports of lipobench itself) is lipobench's overhead.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import threading
import time
from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)
_calls: dict[str, int] = defaultdict(int)
_depth = threading.local()


def _clocked(name, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        depth = getattr(_depth, "value", 0)
        if depth:
            return fn(*args, **kwargs)
        _depth.value = 1
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _seconds[name] += time.perf_counter() - start
            _calls[name] += 1
            _depth.value = 0

    return wrapper


def install(path: str) -> None:
    import skimage.feature
    from cellpose import core, dynamics, models, train, transforms

    import lipobench.toolrun as toolrun

    toolrun.run_tool = _clocked("subprocess (topaz, cryolo)", toolrun.run_tool)
    models.CellposeModel.__init__ = _clocked("cellpose load", models.CellposeModel.__init__)
    models.CellposeModel.eval = _clocked("cellpose eval", models.CellposeModel.eval)
    for module, name in ((transforms, "convert_image"), (transforms, "normalize_img"),
                         (transforms, "resize_image"), (core, "run_net"),
                         (dynamics, "resize_and_compute_masks")):
        setattr(module, name, _clocked("cellpose eval", getattr(module, name)))
    dynamics.labels_to_flows = _clocked("cellpose train_seg", dynamics.labels_to_flows)
    train.train_seg = _clocked("cellpose train_seg", train.train_seg)
    skimage.feature.blob_log = _clocked("skimage blob_log", skimage.feature.blob_log)

    def write():
        with open(path, "w") as handle:
            json.dump({"seconds": dict(_seconds), "calls": dict(_calls), "pid": os.getpid()},
                      handle)

    atexit.register(write)
