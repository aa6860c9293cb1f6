"""Threads for the simulator: independent steps overlap, full-size noise is drawn in parallel.

numpy, scipy.fft and the compressors let go of the GIL in their loops, so a second thread
runs beside the first on a machine with two or more cores; results never depend on the
thread timing (each thread writes its own arrays, the noise blocks are fixed).
"""

from __future__ import annotations

import os
import threading

import numpy as np

__all__ = ["Background", "NOISE_BLOCKS", "draw_normal", "row_blocks", "standard_normal"]


class Background:
    """``fn(*args)`` on a daemon thread; :meth:`result` waits and returns it (or raises)."""

    def __init__(self, fn, *args):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args):
        try:
            self._value = fn(*args)
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


#: Full-size Gaussian noise is drawn in this many blocks of rows, each from its own child
#: generator of the stream (Generator.spawn) and on its own thread: numpy draws without the
#: GIL, so 4096^2 takes half the time on two cores. Fixed, so the numbers do not depend on
#: the machine.
NOISE_BLOCKS = 4


def standard_normal(rng: np.random.Generator, shape) -> np.ndarray:
    """float32 standard normal noise of ``shape`` (rows split over :data:`NOISE_BLOCKS`
    children of ``rng``, drawn in parallel); the same numbers from the same seeded ``rng``.

    >>> a = standard_normal(np.random.default_rng(1), (64, 8))
    >>> b = standard_normal(np.random.default_rng(1), (64, 8))
    >>> a.dtype.name, a.shape, bool((a == b).all())
    ('float32', (64, 8), True)
    """
    return draw_normal(rng.spawn(NOISE_BLOCKS), shape)


def draw_normal(children: list[np.random.Generator], shape) -> np.ndarray:
    """:func:`standard_normal` from ``children = rng.spawn(NOISE_BLOCKS)`` (spawned ahead,
    so that the draw can run on another thread while ``rng`` goes on being used)."""
    if len(children) != NOISE_BLOCKS:
        raise ValueError(f"need {NOISE_BLOCKS} child generators, got {len(children)}")
    out = np.empty(shape, dtype=np.float32)
    edges = np.linspace(0, shape[0], NOISE_BLOCKS + 1).astype(int).tolist()

    def draw(k):
        children[k].standard_normal(dtype=np.float32, out=out[edges[k]:edges[k + 1]])

    if out.size < 1 << 18:  # small: threads would cost more than they save
        for k in range(NOISE_BLOCKS):
            draw(k)
        return out
    threads = [threading.Thread(target=draw, args=(k,)) for k in range(1, NOISE_BLOCKS)]
    for thread in threads:
        thread.start()
    try:
        draw(0)
    finally:
        for thread in threads:
            thread.join()
    return out


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: Threads for :func:`row_blocks`: two halves (more buys little for these memory-bound loops).
ROW_THREADS = min(2, _cores())


def row_blocks(fn, n_rows: int, block: int = 128) -> None:
    """``fn(slice(r0, r0 + block))`` for every block of ``n_rows`` rows, the first half of
    the blocks on a helper thread and the rest on this one. ``fn`` must write only its own
    rows; the results are then the same as in one loop, whatever the threads' timing.

    >>> out = np.zeros((1000, 3))
    >>> row_blocks(lambda rows: out.__setitem__(rows, rows.start), 1000, block=100)
    >>> out[::100, 0].tolist() == list(range(0, 1000, 100))
    True
    """
    starts = list(range(0, n_rows, block))

    def run(chunk):
        for r0 in chunk:
            fn(slice(r0, min(r0 + block, n_rows)))

    if ROW_THREADS < 2 or len(starts) < 4:
        run(starts)
        return
    half = len(starts) // 2
    helper = Background(run, starts[:half])
    try:
        run(starts[half:])
    finally:
        helper.result()
