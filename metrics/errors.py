"""The error every metric raises for input a user can fix."""

from __future__ import annotations

from lipobench.errors import UserError

__all__ = ["MetricInputError"]


class MetricInputError(UserError):
    """Regions or options that cannot be scored (mismatched shapes or kinds, bad thresholds)."""
