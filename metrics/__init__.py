"""Scoring: exact IoU matching, precision and recall, score sweeps and size strata.

>>> from lipobench.metrics import match
"""

from lipobench.metrics.curves import Interpolation, PRCurve, precision_recall_curve
from lipobench.metrics.errors import MetricInputError
from lipobench.metrics.matching import Aggregation, MatchResult, aggregate, match, rates
from lipobench.metrics.strata import stratify_by_size

__all__ = [
    "Aggregation",
    "Interpolation",
    "MatchResult",
    "MetricInputError",
    "PRCurve",
    "aggregate",
    "match",
    "precision_recall_curve",
    "rates",
    "stratify_by_size",
]
