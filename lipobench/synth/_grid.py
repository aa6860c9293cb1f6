"""Linear interpolation of a coarse grid onto one ``factor`` times finer, a block of rows at a time.

Smooth full-size maps (the ice thickness, the wide inelastic blur) are computed on a coarse
grid and interpolated here: a fine pixel ``j`` has its centre at ``(j + 0.5) / factor - 0.5``
in coarse pixel units (pixel edges line up, as ``ndimage.zoom(grid_mode=True)``), and beyond
the outermost coarse centres the edge value is kept (mode "nearest").

>>> coarse = np.array([[0.0, 4.0], [8.0, 12.0]], dtype=np.float32)
>>> LinearZoom(coarse, 2).full().tolist()
[[0.0, 1.0, 3.0, 4.0], [2.0, 3.0, 5.0, 6.0], [6.0, 7.0, 9.0, 10.0], [8.0, 9.0, 11.0, 12.0]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["LinearZoom", "zoom_matrix"]


class LinearZoom:
    """``coarse`` (float32, h x w) seen as the ``factor * h x factor * w`` fine grid."""

    def __init__(self, coarse: np.ndarray, factor: int):
        self.coarse = np.ascontiguousarray(coarse, dtype=np.float32)
        self.factor = int(factor)
        h, w = self.coarse.shape
        self.shape = (h * self.factor, w * self.factor)
        # Offsets of the fine pixels inside a coarse pixel, in coarse pixels, in (-0.5, 0.5).
        self._offsets = ((np.arange(self.factor) + 0.5) / self.factor - 0.5).astype(np.float32)
        x = (np.arange(self.shape[0]) + 0.5) / self.factor - 0.5
        lo = np.floor(x).astype(np.intp)
        self._row_lo = np.clip(lo, 0, h - 1)
        self._row_hi = np.clip(lo + 1, 0, h - 1)
        self._row_w = (x - lo).astype(np.float32)[:, None]
        # Forward differences along the columns, zero past the last one (mode "nearest").
        self._step = np.zeros_like(self.coarse)
        np.subtract(self.coarse[:, 1:], self.coarse[:, :-1], out=self._step[:, :-1])

    def rows(self, part: slice) -> np.ndarray:
        """Fine rows ``part`` (float32, a new array)."""
        start, stop, _ = part.indices(self.shape[0])
        lo, hi, w = self._row_lo[start:stop], self._row_hi[start:stop], self._row_w[start:stop]
        # Along the rows first, on the coarse width; then each of the factor columns of a
        # coarse pixel from its value and the step to the left or right neighbour.
        base = self.coarse[lo] * (1 - w)
        base += self.coarse[hi] * w
        step = self._step[lo] * (1 - w)
        step += self._step[hi] * w
        n, width = base.shape
        out = np.empty((n, width, self.factor), dtype=np.float32)
        for k, offset in enumerate(self._offsets):
            column = out[:, :, k]
            if offset >= 0:
                np.multiply(step, offset, out=column)
            else:
                # toward the left neighbour: the step into this coarse pixel, from the left
                np.multiply(step[:, :-1], offset, out=column[:, 1:])
                column[:, 0] = 0
            column += base
        return out.reshape(n, width * self.factor)

    def full(self, block: int = 128) -> np.ndarray:
        """The whole fine grid (float32)."""
        from lipobench.synth._parallel import row_blocks

        out = np.empty(self.shape, dtype=np.float32)
        row_blocks(lambda rows: out.__setitem__(rows, self.rows(rows)), self.shape[0], block)
        return out


def zoom_matrix(coarse: int, size: int) -> np.ndarray:
    """(size, coarse) float32: the linear interpolation of a line of ``coarse`` pixels onto
    ``size`` pixels as a matrix, pixel edges lined up and edge values kept beyond the outer
    centres: ``scipy.ndimage.zoom(line, size / coarse, order=1, mode="nearest",
    grid_mode=True)`` equals ``zoom_matrix(coarse, size) @ line`` (tests/synth/test_filters.py).

    >>> zoom_matrix(2, 4).tolist()
    [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
    """
    x = (np.arange(size) + 0.5) * (coarse / size) - 0.5
    lo = np.floor(x).astype(np.intp)
    weight = x - lo
    matrix = np.zeros((size, coarse))
    rows = np.arange(size)
    # np.add.at: beyond the outer centres both neighbours clip onto the same edge pixel.
    np.add.at(matrix, (rows, np.clip(lo, 0, coarse - 1)), 1 - weight)
    np.add.at(matrix, (rows, np.clip(lo + 1, 0, coarse - 1)), weight)
    return matrix.astype(np.float32)
