"""Foreground runs of a label image: one pass that validates labels and encodes them compactly.

A label image of ~100 particles on 4096² pixels is mostly background and large constant
patches; its foreground as runs of equal labels along the raveled (C order) image holds tens of
thousands of runs instead of 16.7 million pixels. :meth:`RegionSet.from_labels` already has
to read every pixel once to refuse negative labels; computing the runs in that same pass lets
matching work on the runs and never read the images again (see
:func:`lipobench.metrics.iou.overlaps`). The encoding is exact: the pixels of run ``k`` are
``starts[k] .. stops[k] - 1`` of the raveled image, all of label ``values[k]``.

The kernels are compiled with numba (installed with cellpose, a dependency). Importing numba
and loading the cached kernels costs ~0.5 s once per process, so :mod:`lipobench.regions` uses
this module only for large images (``regions._RUNS_MIN_PIXELS``). Where numba cannot be
imported, :func:`label_runs` returns None and callers use plain numpy instead.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["LabelRuns", "label_runs", "run_overlap_table", "run_overlaps", "run_regions"]

#: More runs than pixels / this and the encoding stops being compact (noise-like labels):
#: then it is dropped and matching reads the image instead.
_MAX_RUN_SHARE = 16
#: Rows of this many pixels are skipped when uniform. Measured on 4096² images: 256 reads as
#: fast as numpy's max, 64 takes 1.4x.
_BLOCK = 256
#: A row that is not uniform is read as chunks of this many pixels, each turned into a 64-bit
#: mask of the pixels where the label changes.
_CHUNK = 64
#: Dtypes the kernels take; uint64 labels above 2**63 would not fit the int64 run values.
_DTYPES = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64,
                                          np.uint8, np.uint16, np.uint32))


class LabelRuns(NamedTuple):
    """Runs of equal non-zero labels along the raveled image, in pixel order."""

    starts: np.ndarray  # int64, first pixel of each run
    stops: np.ndarray  # int64, one past the last pixel
    values: np.ndarray  # int64, the label of each run


try:
    import numba
except ImportError:  # pragma: no cover - numba comes with cellpose
    numba = None


def _jit(func):
    return func if numba is None else numba.njit(cache=True, nogil=True)(func)


if numba is not None:
    from llvmlite import ir
    from numba.extending import intrinsic

    @intrinsic
    def _lowest_bit(typingctx, mask):
        """Index of the lowest set bit of a non-zero integer (one tzcnt instruction)."""

        def codegen(context, builder, signature, args):
            return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

        return mask(mask), codegen


@_jit
def _encode(flat, limit):
    # The image is read as rows of _BLOCK pixels; a row whose pixels all equal the current
    # run's label (background included) is skipped by an OR of XORs that compiles to SIMD
    # (loops with constant bounds; variable bounds or mixed array layouts do not vectorize).
    # A row where a label changes is read again from L1 as chunks of _CHUNK pixels, each
    # compared with itself shifted by one pixel into a bit mask of label changes (vector
    # compares, no branch per pixel), and only the set bits are visited: one step per run,
    # with the run written unconditionally and kept when its label is not background. This
    # reads crowded images (a change in most rows) at the speed of uniform ones; the earlier
    # walk (16 bytes at a time, pixel by pixel where a label changed) took 1.4x as long there.
    # Row 0 and the partial last row are walked pixel by pixel (_walk), so
    # every chunk's shifted read starts inside the image. One function with local counters:
    # helper calls per run and state kept in arrays measured 2-3x slower on crowded images.
    rows = flat.size // _BLOCK
    grid = flat[: rows * _BLOCK].reshape(rows, _BLOCK)
    # np.empty only reserves pages: the untouched rest of these arrays costs no memory. One
    # spare slot takes the unconditional write past the last kept run.
    starts = np.empty(limit + 1, np.int64)
    stops = np.empty(limit + 1, np.int64)
    values = np.empty(limit + 1, np.int64)
    head = min(_BLOCK, flat.size)
    zero = flat[0] - flat[0]
    count, lowest, start, current = _walk(flat, 0, head, limit, 0, zero, 0, zero,
                                          starts, stops, values)
    if count < 0:
        return -1, lowest, starts, stops, values
    for r in range(1, rows):
        row = grid[r]
        changed = current - current
        for k in range(_BLOCK):
            changed |= row[k] ^ current
        if changed == 0:
            continue
        for c in range(r * _BLOCK, (r + 1) * _BLOCK, _CHUNK):
            here = flat[c: c + _CHUNK]
            before = flat[c - 1: c - 1 + _CHUNK]
            changes = np.uint64(0)
            for k in range(_CHUNK):
                changes |= np.uint64(here[k] != before[k]) << np.uint64(k)
            while changes:
                j = c + np.int64(_lowest_bit(changes))
                changes &= changes - np.uint64(1)
                value = flat[j]
                starts[count] = start
                stops[count] = j
                values[count] = current
                count += current != 0
                if count > limit:
                    return -1, lowest, starts, stops, values
                if value < lowest:
                    lowest = value
                current = value
                start = j
    count, lowest, _, _ = _walk(flat, max(rows * _BLOCK, head), flat.size + 1, limit, count,
                                lowest, start, current, starts, stops, values)
    return count, lowest, starts, stops, values


@_jit
def _walk(flat, begin, end, limit, count, lowest, start, current, starts, stops, values):
    """(count, lowest, start, current) after pixels ``begin .. end - 1``, pixel by pixel.

    Pixels at or past the image's end read as background, so walking to ``flat.size + 1``
    closes the last run. ``count`` is -1 when more than ``limit`` runs were found.
    """
    for j in range(begin, end):
        value = flat[j] if j < flat.size else current - current
        if value != current:
            if current != 0:
                if count == limit:
                    return -1, lowest, start, current
                starts[count] = start
                stops[count] = j
                values[count] = current
                count += 1
            if value < lowest:
                lowest = value
            current = value
            start = j
    return count, lowest, start, current


@_jit
def _overlap(starts_a, stops_a, index_a, starts_b, stops_b, index_b):
    # Both run lists are sorted and disjoint: one merge visits every intersecting pair.
    out_a = np.empty(starts_a.size + starts_b.size, np.int64)
    out_b = np.empty(starts_a.size + starts_b.size, np.int64)
    length = np.empty(starts_a.size + starts_b.size, np.int64)
    i = j = k = 0
    while i < starts_a.size and j < starts_b.size:
        lo = max(starts_a[i], starts_b[j])
        hi = min(stops_a[i], stops_b[j])
        if lo < hi:
            out_a[k] = index_a[i]
            out_b[k] = index_b[j]
            length[k] = hi - lo
            k += 1
        if stops_a[i] <= stops_b[j]:
            i += 1
        else:
            j += 1
    return out_a[:k], out_b[:k], length[:k]


@_jit
def _overlap_table(starts_a, stops_a, index_a, starts_b, stops_b, index_b, n_b, table):
    # The merge of _overlap, each intersection added straight into the dense pair table
    # (index_a * n_b + index_b): no list of run pairs to sum afterwards. (Branch-free steps,
    # a zero length added where runs miss, measured 1.1-1.4x slower: one store chain.)
    i = j = 0
    while i < starts_a.size and j < starts_b.size:
        lo = max(starts_a[i], starts_b[j])
        hi = min(stops_a[i], stops_b[j])
        if lo < hi:
            table[index_a[i] * n_b + index_b[j]] += hi - lo
        if stops_a[i] <= stops_b[j]:
            i += 1
        else:
            j += 1
    return table


@_jit
def _regions(values, starts, stops, top):
    # A table of top + 1 entries marks the labels present, then numbers them in ascending
    # order; one more pass gives each run its region and adds its length to the region's area.
    lookup = np.zeros(top + 1, np.int64)
    for v in values:
        lookup[v] = 1
    ids = np.empty(values.size, np.int64)
    n = 0
    for v in range(top + 1):
        if lookup[v]:
            lookup[v] = n
            ids[n] = v
            n += 1
    index = np.empty(values.size, np.int64)
    areas = np.zeros(n, np.int64)
    for k in range(values.size):
        region = lookup[values[k]]
        index[k] = region
        areas[region] += stops[k] - starts[k]
    return ids[:n], index, areas


def label_runs(labels: np.ndarray) -> tuple[LabelRuns | None, int | None]:
    """The foreground runs of a 2-D integer label image, and its smallest label.

    Returns ``(None, None)`` where the kernels do not apply (uint64, numba missing): the
    caller then checks the labels itself. Returns ``(None, lowest)`` where the runs would not
    be compact; ``lowest`` is exact whenever it is not None.

    >>> labels = np.zeros((512, 512), dtype=np.int32); labels[1, 2:5] = 7
    >>> runs, lowest = label_runs(labels)
    >>> (runs.starts.tolist(), runs.stops.tolist(), runs.values.tolist(), lowest)
    ([514], [517], [7], 0)
    """
    if numba is None or labels.size == 0 or labels.dtype not in _DTYPES:
        return None, None
    flat = np.ascontiguousarray(labels).reshape(-1)
    count, lowest, starts, stops, values = _encode(flat, max(flat.size // _MAX_RUN_SHARE, 1))
    count, lowest = int(count), int(lowest)
    if count < 0:
        # Too many runs to keep; the walk stopped early, so the smallest label is read here,
        # with background counted as the walk counts it (an image without 0 still has 0 below
        # its labels).
        return None, min(int(flat.min()), 0)
    return (LabelRuns(starts[:count].copy(), stops[:count].copy(), values[:count].copy()),
            lowest)


def run_regions(runs: LabelRuns, top: int):
    """``(ids, index, areas)``: the labels present in ``runs`` (ascending), each run's position
    among them, and each label's pixel count (int64); ``top`` is at least the largest label.

    >>> runs = LabelRuns(np.array([0, 5, 9]), np.array([2, 6, 12]), np.array([9, 4, 9]))
    >>> [a.tolist() for a in run_regions(runs, 9)]
    [[4, 9], [1, 0, 1], [1, 5]]
    """
    return _regions(runs.values, runs.starts, runs.stops, top)


def run_overlap_table(a: LabelRuns, index_a: np.ndarray, n_a: int, b: LabelRuns,
                      index_b: np.ndarray, n_b: int) -> np.ndarray:
    """Pixels shared by regions ``p`` of ``a`` and ``q`` of ``b`` at ``[p * n_b + q]`` (int64).

    ``index_a`` and ``index_b`` give each run's region, below ``n_a`` and ``n_b``.
    """
    table = np.zeros(n_a * n_b, np.int64)
    return _overlap_table(a.starts, a.stops, np.asarray(index_a, np.int64),
                          b.starts, b.stops, np.asarray(index_b, np.int64), n_b, table)


def run_overlaps(a: LabelRuns, index_a: np.ndarray, b: LabelRuns, index_b: np.ndarray):
    """``(index_a, index_b, pixels)`` for every pair of intersecting runs of ``a`` and ``b``.

    ``index_a`` and ``index_b`` give a number to each run (e.g. its region's position); a pair
    of regions can appear several times, once per intersecting run pair.
    """
    return _overlap(a.starts, a.stops, np.asarray(index_a, np.int64),
                    b.starts, b.stops, np.asarray(index_b, np.int64))
