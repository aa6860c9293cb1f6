"""Shared parsing helpers of the coordinate formats: reading text, numbers, sizes, shapes.

Every reader of :mod:`lipobench.formats` reports malformed input as a
:class:`~lipobench.errors.UserError` (the one error type of these modules) whose one-line
message names the file, the line and what was expected; these helpers build those messages.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np

from lipobench.errors import UserError
from lipobench.regions import RegionSet


def _read_text(path: Path, what: str) -> str:
    if not path.exists():
        raise UserError(f"{path}: {what} not found; check the path")
    if not path.is_file():
        raise UserError(f"{path}: is not a file; give the path of a {what}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: is not a text file; give a {what}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror}); check its permissions") \
            from None


def _number(token: str, path: Path, lineno: int, expected: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise UserError(f"{path}: line {lineno}: {token!r} is not a number; "
                        f"expected {expected}") from None
    if not math.isfinite(value):
        raise UserError(f"{path}: line {lineno}: {token!r} is not a finite number; "
                        f"expected {expected}")
    return value


def _fmt(value: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without a dot."""
    value = float(value)
    if value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(value)


def _check_regions(regions, what: str) -> RegionSet:
    if not isinstance(regions, RegionSet):
        raise TypeError(f"{what} needs a RegionSet, got {type(regions).__name__}")
    return regions


def _image_height(image_shape) -> int:
    try:
        rows, cols = (int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise UserError(f"image_shape must be (rows, cols), got {image_shape!r}") from None
    if rows <= 0 or cols <= 0:
        raise UserError(f"image_shape must be two positive sizes, got {image_shape!r}")
    return rows


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive number of pixels, got {value!r}")
    return float(value)


def _check_positive_sizes(sizes: np.ndarray, linenos, path: Path, what: str) -> None:
    bad = np.flatnonzero(sizes <= 0)
    if bad.size:
        row = int(bad[0])
        raise UserError(f"{path}: line {linenos[row]}: {what} is {sizes[row]:g}; "
                        "box sizes must be positive")
