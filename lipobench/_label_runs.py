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

__all__ = ["LabelRuns", "label_runs", "run_overlaps"]

#: More runs than pixels / this and the encoding stops being compact (noise-like labels):
#: then it is dropped and matching reads the image instead.
_MAX_RUN_SHARE = 16
#: Rows of this many pixels are skipped when uniform. Measured on 4096² images: 256 reads as
#: fast as numpy's max, 64 takes 1.4x.
_BLOCK = 256
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


def _word_layout(flat):
    """(labels per 64-bit word, words per row, label mask, spread) for ``flat``'s dtype.

    Inside the kernels numba replaces this by the overload below, which makes them constants.
    """
    size = flat.dtype.itemsize
    mask = (1 << (8 * size)) - 1
    return 8 // size, _BLOCK * size // 8, np.uint64(mask), np.uint64(0xFFFFFFFFFFFFFFFF // mask)


if numba is not None:
    from numba.extending import overload

    @overload(_word_layout)
    def _word_layout_constants(flat):
        # Compile-time constants per dtype: as run-time values (from flat.itemsize) they
        # measured 1.5x slower on crowded images, as loop bounds no longer fixed.
        size = flat.dtype.bitwidth // 8
        per_word, words = 8 // size, _BLOCK * size // 8
        mask = (1 << (8 * size)) - 1
        spread = 0xFFFFFFFFFFFFFFFF // mask

        def layout(flat):
            return per_word, words, np.uint64(mask), np.uint64(spread)

        return layout


@_jit
def _encode(flat, limit):
    # The image is read as rows of _BLOCK pixels; a row whose pixels all equal the current
    # run's label (background included) is skipped by an OR of XORs that compiles to SIMD
    # (loops with constant bounds over a 2-D view; variable bounds or mixed array layouts do
    # not vectorize). A row where a label changes is walked 16 bytes at a time, compared as
    # two 64-bit words with the current label repeated, and pixel by pixel only where those
    # differ: 1.2x faster than walking every pixel on crowded images. The partial last row
    # is left to _encode_tail. One function with local counters: helper calls per run and
    # state kept in arrays measured 2-3x slower on crowded images.
    rows = flat.size // _BLOCK
    grid = flat[: rows * _BLOCK].reshape(rows, _BLOCK)
    words = flat[: rows * _BLOCK].view(np.uint64).reshape(rows, _BLOCK * flat.itemsize // 8)
    # pattern, the current label in every slot of a word, is (label & mask) * spread
    per_word, row_words, mask, spread = _word_layout(flat)
    # np.empty only reserves pages: the untouched rest of these arrays costs no memory.
    starts = np.empty(limit, np.int64)
    stops = np.empty(limit, np.int64)
    values = np.empty(limit, np.int64)
    count = 0
    lowest = 0
    start = 0
    current = flat[0] - flat[0]
    pattern = np.uint64(0)
    for r in range(rows):
        row = grid[r]
        changed = current - current
        for k in range(_BLOCK):
            changed |= row[k] ^ current
        if changed == 0:
            continue
        here = words[r]
        for w in range(0, row_words, 2):
            if ((here[w] ^ pattern) | (here[w + 1] ^ pattern)) == 0:
                continue
            for k in range(w * per_word, (w + 2) * per_word):
                value = row[k]
                if value != current:
                    if current != 0:
                        if count == limit:
                            return -1, lowest, starts, stops, values
                        starts[count] = start
                        stops[count] = r * _BLOCK + k
                        values[count] = current
                        count += 1
                    if value < lowest:
                        lowest = value
                    current = value
                    start = r * _BLOCK + k
            pattern = (np.uint64(current) & mask) * spread
    return _encode_tail(flat, rows * _BLOCK, limit, count, lowest, start, current,
                        starts, stops, values)


@_jit
def _encode_tail(flat, begin, limit, count, lowest, start, current, starts, stops, values):
    """:func:`_encode` from pixel ``begin`` to the end, then the last run closed."""
    for j in range(begin, flat.size + 1):
        value = flat[j] if j < flat.size else current - current
        if value != current:
            if current != 0:
                if count == limit:
                    return -1, lowest, starts, stops, values
                starts[count] = start
                stops[count] = j
                values[count] = current
                count += 1
            if value < lowest:
                lowest = value
            current = value
            start = j
    return count, lowest, starts, stops, values


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
    if flat.ctypes.data % 8:
        flat = flat.copy()  # the kernel reads 64-bit words; a fresh array is aligned
    count, lowest, starts, stops, values = _encode(flat, max(flat.size // _MAX_RUN_SHARE, 1))
    count, lowest = int(count), int(lowest)
    if count < 0:
        # Too many runs to keep; the walk stopped early, so the smallest label is read here.
        return None, int(flat.min())
    return (LabelRuns(starts[:count].copy(), stops[:count].copy(), values[:count].copy()),
            lowest)


def run_overlaps(a: LabelRuns, index_a: np.ndarray, b: LabelRuns, index_b: np.ndarray):
    """``(index_a, index_b, pixels)`` for every pair of intersecting runs of ``a`` and ``b``.

    ``index_a`` and ``index_b`` give a number to each run (e.g. its region's position); a pair
    of regions can appear several times, once per intersecting run pair.
    """
    return _overlap(a.starts, a.stops, np.asarray(index_a, np.int64),
                    b.starts, b.stops, np.asarray(index_b, np.int64))
