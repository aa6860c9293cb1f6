"""The confidence map: per pixel, the share of diameters whose mask detected it.

:func:`detection_counts` keeps it exact (integer counts and their total);
:func:`confidence_map` gives it in percent. Pure numpy: nothing heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipobench.choices import choose
from lipobench.errors import UserError
from lipobench.lipopose.methods import ConfidenceMethod

__all__ = ["DetectionCounts", "detection_counts", "confidence_map"]


@dataclass(frozen=True, eq=False)
class DetectionCounts:
    """A confidence map kept exact: ``percent = 100 * counts / total``.

    ``counts`` (uint8, or uint16 past 255 masks) is the number of diameters that detected each
    pixel (or the best window's count); comparing ``counts * 100 > T * total`` in integers
    is exact where a float percentage could round.
    """

    counts: np.ndarray
    total: int

    def percent(self) -> np.ndarray:
        """The confidence in percent, float32."""
        return (self.counts.astype(np.float32) * np.float32(100)) / np.float32(self.total)


def check_masks(masks) -> list[np.ndarray]:
    """The masks as arrays: at least one, each 2-D, all of one shape (else a UserError)."""
    arrays = [np.asarray(m) for m in masks]
    if not arrays:
        raise UserError("masks: the list of per-diameter masks is empty; give at least one "
                        "diameter")
    shape = arrays[0].shape
    if len(shape) != 2:
        raise UserError(f"masks: each mask must be a 2-D image, got shape {shape}")
    for k, array in enumerate(arrays):
        if array.shape != shape:
            raise UserError(
                f"masks: mask {k} has shape {array.shape} but mask 0 has {shape}; "
                "give masks of one micrograph, all of the same shape"
            )
    return arrays


def _as_binary_u8(mask: np.ndarray) -> np.ndarray:
    # Booleans are added as bytes without a copy; label images binarize first.
    if mask.dtype == bool:
        return mask.view(np.uint8)
    return (mask != 0).view(np.uint8)


def detection_counts(masks, *, method: ConfidenceMethod | str = ConfidenceMethod.AVERAGE,
                     window: int | None = None) -> DetectionCounts:
    """Per pixel, how many diameters detected it: the exact form of :func:`confidence_map`.

    >>> a = np.array([[1, 0, 0]]); b = np.array([[2, 2, 0]])
    >>> c = detection_counts([a, b]); c.counts.tolist(), c.total
    ([[2, 1, 0]], 2)
    """
    arrays = check_masks(masks)
    method = choose(ConfidenceMethod, method, key="method", what="confidence method")
    n = len(arrays)
    dtype = np.uint8 if n <= 255 else np.uint16
    if method is ConfidenceMethod.AVERAGE:
        if window is not None:
            raise UserError("window: only the sliding_window confidence method takes a window; "
                            "drop it or set method = 'sliding_window'")
        acc = np.zeros(arrays[0].shape, dtype=dtype)
        # Row blocks of about 1 MiB keep the accumulator in cache while every mask is added.
        step = max(1, (1 << 20) // max(1, acc.shape[1] * acc.itemsize))
        for r0 in range(0, acc.shape[0], step):
            block = acc[r0: r0 + step]
            for array in arrays:
                np.add(block, _as_binary_u8(array[r0: r0 + step]), out=block, casting="unsafe")
        return DetectionCounts(acc, n)
    if window is None or isinstance(window, bool) or int(window) != window \
            or not 1 <= int(window) <= n:
        raise UserError(f"window {window!r}: the sliding window needs a whole number of "
                        f"diameters from 1 to {n} (the number of masks)")
    window = int(window)
    binary = [_as_binary_u8(a) for a in arrays]
    running = np.zeros(arrays[0].shape, dtype=dtype)
    for array in binary[:window]:
        np.add(running, array, out=running, casting="unsafe")
    best = running.copy()
    for k in range(window, n):
        np.add(running, binary[k], out=running, casting="unsafe")
        np.subtract(running, binary[k - window], out=running, casting="unsafe")
        np.maximum(best, running, out=best)
    return DetectionCounts(best, window)


def confidence_map(masks, *, method: ConfidenceMethod | str = ConfidenceMethod.AVERAGE,
                   window: int | None = None) -> np.ndarray:
    """Per-pixel confidence in percent (float32) from per-diameter masks.

    ``masks`` are the binarized (or label) masks of one micrograph, one per diameter in
    ascending diameter order; any non-zero pixel counts as detected.

    - ``method="average"`` (the study's default): ``100 * (M1 + ... + Mn) / n``.
    - ``method="sliding_window"`` with ``window=k`` (the study's alternative): for each
      start index ``i`` the mean of the ``k`` consecutive masks ``M_i .. M_{i+k-1}``, and per
      pixel the maximum of those ``n - k + 1`` means, times 100. ``k = n`` equals ``average``.

    >>> m = [np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 1]]),
    ...      np.array([[1, 0, 1, 0]]), np.array([[1, 0, 1, 0]])]
    >>> confidence_map(m).tolist()
    [[100.0, 25.0, 50.0, 25.0]]
    >>> confidence_map(m, method="sliding_window", window=2).tolist()
    [[100.0, 50.0, 100.0, 50.0]]
    """
    return detection_counts(masks, method=method, window=window).percent()
