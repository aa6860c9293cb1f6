"""The merge thresholds: percentages of diameters, the study's defaults, and their validation."""

from __future__ import annotations

import numpy as np

from lipobench.errors import UserError

__all__ = ["DEFAULT_THRESHOLDS", "thresholds_until"]

#: The study's merge thresholds, in percent, highest first.
DEFAULT_THRESHOLDS: tuple[float, ...] = (20, 15, 10, 8, 5, 3, 1, 0)


def check_thresholds(thresholds) -> np.ndarray:
    """Distinct thresholds, ascending, validated to lie in 0..100."""
    try:
        values = [float(t) for t in thresholds]
    except (TypeError, ValueError):
        raise UserError(f"thresholds {thresholds!r}: give a list of numbers from 0 to 100") \
            from None
    if not values:
        raise UserError("thresholds: the list is empty; give at least one threshold, e.g. "
                        "20, 15, 10, 8, 5, 3, 1, 0")
    if len(set(values)) > 254:
        raise UserError(f"thresholds: {len(set(values))} distinct values; give at most 254")
    bad = [t for t in values if not (0 <= t <= 100)]
    if bad:
        raise UserError(f"threshold {bad[0]:g} is outside 0..100: thresholds are percentages "
                        "of diameters")
    return np.array(sorted(set(values)), dtype=np.float64)


def thresholds_until(until: float, *, key: str = "until") -> list[float]:
    """The study's thresholds from the highest down to ``until`` (``until`` itself included).

    >>> thresholds_until(5)
    [20.0, 15.0, 10.0, 8.0, 5.0]
    >>> thresholds_until(2)
    [20.0, 15.0, 10.0, 8.0, 5.0, 3.0, 2.0]
    >>> thresholds_until(50)
    [50.0]
    """
    if not 0 <= until <= 100:
        raise UserError(f"{key} {until:g} is outside 0..100: give a percentage of diameters, "
                        "e.g. 5")
    kept = [float(t) for t in DEFAULT_THRESHOLDS if t >= until]
    return kept if until in kept else kept + [float(until)]
