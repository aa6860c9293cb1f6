"""Scoring: exact IoU matching, precision and recall, score sweeps, size strata, intervals.

>>> from lipobench.metrics import match
"""

from lipobench.metrics.curves import Interpolation, PRCurve, precision_recall_curve
from lipobench.metrics.errors import MetricInputError
from lipobench.metrics.matching import (
    Aggregation,
    CentreMatchResult,
    MatchResult,
    aggregate,
    match,
    match_centres,
    micro_rates,
    rates,
)
from lipobench.metrics.strata import stratify_by_size
from lipobench.metrics.uncertainty import (
    Metric,
    MicrographCounts,
    PairedDifference,
    Verdict,
    bootstrap_rates,
    fold_spread,
    paired_difference,
)

__all__ = [
    "Aggregation",
    "CentreMatchResult",
    "Interpolation",
    "MatchResult",
    "Metric",
    "MetricInputError",
    "MicrographCounts",
    "PRCurve",
    "PairedDifference",
    "Verdict",
    "aggregate",
    "bootstrap_rates",
    "fold_spread",
    "match",
    "match_centres",
    "micro_rates",
    "paired_difference",
    "precision_recall_curve",
    "rates",
    "stratify_by_size",
]
