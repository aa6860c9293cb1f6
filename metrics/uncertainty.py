"""Confidence intervals from a bootstrap over micrographs, and paired comparisons.

Particles in one micrograph share its ice, defocus, crowding and contrast, so they are not
independent draws: a picker that misses the particles of one thick-ice micrograph misses many
at once. The unit of resampling is therefore the whole micrograph (for k-fold runs, each test
micrograph of each fold; a micrograph is tested in one fold only). One bootstrap resample draws
as many micrographs as there are, with replacement, sums their tp, fp and fn, and recomputes
the micro-averaged precision, recall and F1 with :func:`lipobench.metrics.rates`; the 95 %
interval is the 2.5th to the 97.5th percentile of those over the resamples (the percentile
bootstrap; Efron and Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13).

All resamples are computed at once: :func:`bootstrap_indices` draws one index matrix
(resamples x micrographs) from a seeded generator, :func:`multiplicities` turns it into how
often each micrograph is drawn in each resample, and the resampled sums of every
configuration and IoU threshold are one matrix product with that.

A paired comparison (:func:`paired_difference`) uses the same resampled micrographs for both
configurations, so what they share (a hard micrograph is hard for both) cancels in the
difference, and says whether the interval of the difference excludes 0.

Limits. With few micrographs the percentile bootstrap is too narrow: its variance is about
(n - 1) / n of the true one, and 4 micrographs have only 35 distinct resamples. The interval
describes the variation between test micrographs for the trained models at hand; it does not
include the variation of training (the spread over folds, :func:`fold_spread`, shows some of
that). With fewer than 2 micrographs no interval is given (NaN).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from lipobench.metrics.errors import MetricInputError
from lipobench.metrics.matching import rates

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "Metric",
    "MicrographCounts",
    "PairedDifference",
    "Verdict",
    "bootstrap_indices",
    "bootstrap_rates",
    "fold_spread",
    "multiplicities",
    "paired_difference",
    "percentile_interval",
    "resampled_rates",
]

#: Resamples per interval: the Monte Carlo error of a 2.5 % percentile from 2,000 resamples
#: is small next to the interval itself (Efron and Tibshirani suggest at least 1,000).
DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


class Metric(str, enum.Enum):
    """The rates a bootstrap or a comparison is about."""

    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"


class Verdict(str, enum.Enum):
    """What a paired comparison of a first (A) and a second (B) configuration says."""

    FIRST_BETTER = "A better"
    SECOND_BETTER = "B better"
    NO_DIFFERENCE = "no significant difference"

    def text(self, *, confidence: float = DEFAULT_CONFIDENCE) -> str:
        """The verdict for a reader, e.g. ``no significant difference at 95 %``.

        >>> Verdict.NO_DIFFERENCE.text(confidence=0.95)
        'no significant difference at 95 %'
        >>> Verdict.FIRST_BETTER.text()
        'A better'
        """
        if self is Verdict.NO_DIFFERENCE:
            return f"{self.value} at {confidence * 100:g} %"
        return self.value


@dataclass(frozen=True, eq=False)
class MicrographCounts:
    """True positives, false positives and false negatives per micrograph.

    Attributes
    ----------
    tp, fp, fn : ndarray of float
        Arrays of one shape, micrographs on the last axis (leading axes: configurations,
        IoU thresholds, ...). Copies of what was given, so the caller's arrays never change.

    Examples
    --------
    >>> counts = MicrographCounts(tp=[3, 1], fp=[1, 0], fn=[0, 2])
    >>> counts.n_micrographs, round(float(counts.rate(Metric.RECALL)), 3)
    (2, 0.667)
    """

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def __post_init__(self):
        arrays = [np.array(v, dtype=np.float64, copy=True) for v in (self.tp, self.fp, self.fn)]
        if len({a.shape for a in arrays}) != 1:
            raise MetricInputError(
                f"tp, fp and fn have shapes {[a.shape for a in arrays]}: give one count of "
                "each per micrograph, micrographs on the last axis")
        if arrays[0].ndim == 0 or arrays[0].shape[-1] == 0:
            raise MetricInputError("no micrographs: give tp, fp and fn per micrograph, "
                                   "micrographs on the last axis")
        for name, values in zip(("tp", "fp", "fn"), arrays, strict=True):
            if not np.all(np.isfinite(values)) or np.any(values < 0):
                raise MetricInputError(f"{name} holds a negative or non-finite count; "
                                       "counts come from lipobench.metrics.match")
            values.setflags(write=False)
        for name, values in zip(("tp", "fp", "fn"), arrays, strict=True):
            object.__setattr__(self, name, values)

    @property
    def n_micrographs(self) -> int:
        """The length of the last axis."""
        return int(self.tp.shape[-1])

    def rate(self, metric: Metric | str) -> np.ndarray:
        """The micro-averaged ``metric`` over all micrographs (the last axis)."""
        tp, fp, fn = (v.sum(axis=-1) for v in (self.tp, self.fp, self.fn))
        return _pick(rates(tp, tp + fn, tp + fp), metric)


def _as_metric(metric: Metric | str) -> Metric:
    try:
        return Metric(metric)
    except ValueError:
        raise MetricInputError(f"unknown metric {metric!r}: use one of "
                               f"{[m.value for m in Metric]}") from None


def _pick(triple, metric: Metric | str) -> np.ndarray:
    """The entry of a :func:`rates` triple (precision, recall, F1) that ``metric`` names."""
    return triple[list(Metric).index(_as_metric(metric))]


def bootstrap_indices(n_micrographs: int, *, n_resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED) -> np.ndarray:
    """The micrographs drawn, with replacement, in each bootstrap resample.

    Parameters
    ----------
    n_micrographs : int
        How many micrographs there are (at least 1).
    n_resamples : int, keyword-only
        How many resamples.
    seed : int, keyword-only
        Seed of :func:`numpy.random.default_rng`: the same seed and sizes give the same
        matrix, so intervals are reproducible and two configurations compared on the same
        micrographs see the same resamples.

    Returns
    -------
    ndarray of int, shape (n_resamples, n_micrographs)

    Examples
    --------
    >>> first = bootstrap_indices(4, n_resamples=3, seed=1)
    >>> first.shape, bool((first == bootstrap_indices(4, n_resamples=3, seed=1)).all())
    ((3, 4), True)
    """
    if int(n_micrographs) < 1:
        raise MetricInputError("a bootstrap over micrographs needs at least one micrograph")
    if int(n_resamples) < 1:
        raise MetricInputError(f"n_resamples {n_resamples}: use a positive number, e.g. 2000")
    rng = np.random.default_rng(seed)
    return rng.integers(0, int(n_micrographs), size=(int(n_resamples), int(n_micrographs)))


def multiplicities(indices: np.ndarray, *, n_micrographs: int) -> np.ndarray:
    """How often each micrograph is drawn in each resample of an index matrix.

    >>> multiplicities(np.array([[0, 0, 2], [1, 2, 0]]), n_micrographs=3).tolist()
    [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    """
    indices = np.asarray(indices, dtype=np.int64)
    n_resamples = indices.shape[0]
    # One bincount over all resamples: resample r's micrograph m lands at r * M + m.
    flat = (indices + n_micrographs * np.arange(n_resamples)[:, None]).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n_micrographs)
    return counts.reshape(n_resamples, n_micrographs).astype(np.float64)


def resampled_rates(counts: MicrographCounts, indices: np.ndarray) -> dict[Metric, np.ndarray]:
    """Micro-averaged precision, recall and F1 of every resample of an index matrix.

    Parameters
    ----------
    counts : MicrographCounts
        Counts of shape (..., n_micrographs).
    indices : ndarray of int, shape (n_resamples, n_micrographs)
        From :func:`bootstrap_indices`.

    Returns
    -------
    dict
        ``Metric -> ndarray`` of shape (n_resamples, ...).

    Examples
    --------
    >>> counts = MicrographCounts(tp=[4, 0], fp=[0, 0], fn=[0, 4])
    >>> resampled_rates(counts, np.array([[0, 0], [0, 1], [1, 1]]))[Metric.RECALL].tolist()
    [1.0, 0.5, 0.0]
    """
    indices = np.asarray(indices)
    if indices.ndim != 2 or indices.shape[1] != counts.n_micrographs:
        raise MetricInputError(f"an index matrix of shape {indices.shape} does not fit "
                               f"{counts.n_micrographs} micrographs: make it with "
                               "bootstrap_indices(n_micrographs)")
    weights = multiplicities(indices, n_micrographs=counts.n_micrographs)
    # (R, M) @ (M, K): the resampled sums of every leading entry at once.
    tp, fp, fn = (np.tensordot(weights, v, axes=([1], [-1]))
                  for v in (counts.tp, counts.fp, counts.fn))
    triple = rates(tp, tp + fn, tp + fp)
    return {metric: triple[k] for k, metric in enumerate(Metric)}


def percentile_interval(samples: np.ndarray, *, confidence: float = DEFAULT_CONFIDENCE
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The central ``confidence`` interval of ``samples`` along their first axis.

    >>> low, high = percentile_interval(np.arange(101.0), confidence=0.9)
    >>> round(float(low), 6), round(float(high), 6)
    (5.0, 95.0)
    """
    if not 0.0 < float(confidence) < 1.0:
        raise MetricInputError(f"confidence {confidence}: use a level in (0, 1), e.g. 0.95")
    tail = (1.0 - float(confidence)) / 2.0
    low, high = np.quantile(np.asarray(samples, dtype=np.float64), [tail, 1.0 - tail], axis=0)
    return low, high


def bootstrap_rates(counts: MicrographCounts, *, n_resamples: int = DEFAULT_RESAMPLES,
                    confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
                    ) -> dict[str, np.ndarray]:
    """Micro-averaged precision, recall and F1 with bootstrap intervals over micrographs.

    Parameters
    ----------
    counts : MicrographCounts
        Counts of shape (..., n_micrographs); every leading entry (a configuration at an IoU
        threshold) is resampled with the same micrographs.
    n_resamples, seed : int, keyword-only
        See :func:`bootstrap_indices`.
    confidence : float, keyword-only
        The interval's level.

    Returns
    -------
    dict
        Arrays of the leading shape named ``precision``, ``recall``, ``f1`` (the estimates
        from all micrographs) and ``precision_ci_low``, ``precision_ci_high``, and so on
        for recall and F1. The intervals are NaN with fewer than 2 micrographs.

    Examples
    --------
    Two micrographs of 10 particles, one all found and one all missed: a resample holds
    both (recall 0.5) half of the time, and one of them twice a quarter of the time each.

    >>> counts = MicrographCounts(tp=[10, 0], fp=[0, 0], fn=[0, 10])
    >>> found = bootstrap_rates(counts)
    >>> float(found["recall"]), float(found["recall_ci_low"]), float(found["recall_ci_high"])
    (0.5, 0.0, 1.0)
    """
    estimates = {metric.value: counts.rate(metric) for metric in Metric}
    out: dict[str, np.ndarray] = dict(estimates)
    if counts.n_micrographs < 2:
        for metric in Metric:
            nan = np.full(np.shape(estimates[metric.value]), np.nan)
            out[f"{metric.value}_ci_low"], out[f"{metric.value}_ci_high"] = nan, nan.copy()
        return out
    indices = bootstrap_indices(counts.n_micrographs, n_resamples=n_resamples, seed=seed)
    for metric, samples in resampled_rates(counts, indices).items():
        low, high = percentile_interval(samples, confidence=confidence)
        out[f"{metric.value}_ci_low"], out[f"{metric.value}_ci_high"] = low, high
    return out


def fold_spread(counts: MicrographCounts, *, folds) -> dict[str, np.ndarray]:
    """Standard deviation over folds of the per-fold micro-averaged rates.

    Parameters
    ----------
    counts : MicrographCounts
        Counts of shape (..., n_micrographs).
    folds : sequence, keyword-only
        The fold of each micrograph (length n_micrographs).

    Returns
    -------
    dict
        ``precision_fold_sd``, ``recall_fold_sd``, ``f1_fold_sd``: the sample standard
        deviation (ddof 1) over folds, NaN with fewer than 2 folds.

    Examples
    --------
    >>> counts = MicrographCounts(tp=[3, 1, 2, 2], fp=[0, 0, 0, 0], fn=[1, 3, 2, 2])
    >>> spread = fold_spread(counts, folds=[0, 0, 1, 1])  # recall 0.5 in both folds
    >>> float(spread["recall_fold_sd"]), bool(np.isnan(fold_spread(counts, folds=[0] * 4)
    ...                                                 ["f1_fold_sd"]))
    (0.0, True)
    """
    folds = np.asarray(folds)
    if folds.shape != (counts.n_micrographs,):
        raise MetricInputError(f"folds has shape {folds.shape}; give one fold per micrograph "
                               f"({counts.n_micrographs})")
    labels, fold_of = np.unique(folds, return_inverse=True)
    if len(labels) < 2:
        shape = counts.tp.shape[:-1]
        return {f"{m.value}_fold_sd": np.full(shape, np.nan) for m in Metric}
    member = np.zeros((counts.n_micrographs, len(labels)))
    member[np.arange(counts.n_micrographs), fold_of] = 1.0
    tp, fp, fn = (v @ member for v in (counts.tp, counts.fp, counts.fn))
    triple = rates(tp, tp + fn, tp + fp)
    return {f"{m.value}_fold_sd": triple[k].std(axis=-1, ddof=1)
            for k, m in enumerate(Metric)}


@dataclass(frozen=True)
class PairedDifference:
    """A paired bootstrap comparison of a first (A) and a second (B) configuration.

    Attributes
    ----------
    metric : Metric
    first_value, second_value : float
        The metric of A and of B over all shared micrographs.
    difference : float
        ``first_value - second_value``.
    ci_low, ci_high : float
        The interval of the difference from the same resampled micrographs for both.
    confidence : float
    n_micrographs, n_resamples, seed : int
    """

    metric: Metric
    first_value: float
    second_value: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    n_micrographs: int
    n_resamples: int
    seed: int

    @property
    def verdict(self) -> Verdict:
        """A better when the whole interval is above 0, B better when below, else neither."""
        if self.ci_low > 0:
            return Verdict.FIRST_BETTER
        if self.ci_high < 0:
            return Verdict.SECOND_BETTER
        return Verdict.NO_DIFFERENCE


def paired_difference(first: MicrographCounts, second: MicrographCounts, *,
                      metric: Metric | str = Metric.F1, n_resamples: int = DEFAULT_RESAMPLES,
                      confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
                      ) -> PairedDifference:
    """Whether configuration A beats B on the same micrographs, by a paired bootstrap.

    Parameters
    ----------
    first, second : MicrographCounts
        1-D counts of A and of B on the same micrographs, in the same order.
    metric : Metric or str, keyword-only
        ``precision``, ``recall`` or ``f1``.
    n_resamples, confidence, seed : keyword-only
        As for :func:`bootstrap_rates`.

    Returns
    -------
    PairedDifference
        The difference A - B, its interval and :attr:`~PairedDifference.verdict`.

    Examples
    --------
    A finds 9 of 10 particles on each of 6 micrographs, B 5 of 10:

    >>> a = MicrographCounts(tp=[9] * 6, fp=[1] * 6, fn=[1] * 6)
    >>> b = MicrographCounts(tp=[5] * 6, fp=[1] * 6, fn=[5] * 6)
    >>> result = paired_difference(a, b, metric="recall")
    >>> round(result.difference, 2), result.verdict.text()
    (0.4, 'A better')
    >>> paired_difference(a, a).verdict.text()
    'no significant difference at 95 %'
    """
    metric = _as_metric(metric)
    for name, counts in (("first", first), ("second", second)):
        if counts.tp.ndim != 1:
            raise MetricInputError(f"the {name} counts have shape {counts.tp.shape}: compare "
                                   "one configuration at one IoU threshold (1-D counts)")
    if first.n_micrographs != second.n_micrographs:
        raise MetricInputError(f"A has {first.n_micrographs} micrographs and B "
                               f"{second.n_micrographs}: compare them on the same micrographs")
    if first.n_micrographs < 2:
        raise MetricInputError("a paired bootstrap over micrographs needs at least 2 shared "
                               "micrographs")
    first_value = float(first.rate(metric))
    second_value = float(second.rate(metric))
    indices = bootstrap_indices(first.n_micrographs, n_resamples=n_resamples, seed=seed)
    samples = (resampled_rates(first, indices)[metric]
               - resampled_rates(second, indices)[metric])
    low, high = percentile_interval(samples, confidence=confidence)
    return PairedDifference(metric=metric, first_value=first_value, second_value=second_value,
                            difference=first_value - second_value, ci_low=float(low),
                            ci_high=float(high), confidence=float(confidence),
                            n_micrographs=first.n_micrographs, n_resamples=int(n_resamples),
                            seed=int(seed))
