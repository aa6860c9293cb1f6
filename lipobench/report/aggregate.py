"""The one aggregation of a results table: micro-averaged rates, and each method's best.

Micro-averaging sums tp, fp and fn over the rows of a group (test micrographs, folds), then
computes precision, recall and F1 from the sums with :func:`lipobench.metrics.micro_rates`, as
:func:`lipobench.metrics.aggregate` does for match results (empty denominators give 1, never
NaN). ``summary.csv`` (:func:`lipobench.report.results.summarize`), the per-fold rates of
the figures and the choice of each method's best configuration all go through
:func:`micro_average`; the best configuration is chosen in one place,
:func:`best_per_method`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lipobench.metrics import micro_rates

__all__ = ["SCORE_IOU", "micro_average", "fold_rates",
           "nearest_threshold", "best_per_method", "best_configurations"]

#: The IoU threshold of the score sweeps, size strata, overlays and "best" choice (the paper's).
SCORE_IOU = 0.5

#: Count columns summed by :func:`micro_average` when the rows have them.
_SUMMED = ("tp", "fp", "fn", "n_true", "n_pred")


def micro_average(rows: pd.DataFrame, by: Sequence[str], *, extra: dict | None = None
                  ) -> pd.DataFrame:
    """Sums of the counts per group of ``by``, then precision, recall and F1 from the sums.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows with counts ``tp``, ``fp``, ``fn`` (and ``n_true``, ``n_pred`` when present,
        summed too): the ``ok`` rows of a results table.
    by : sequence of str
        The grouping columns (missing values form a group of their own).
    extra : dict, keyword-only
        More named aggregations for :meth:`pandas.core.groupby.DataFrameGroupBy.agg`.

    Examples
    --------
    >>> rows = pd.DataFrame({"config_id": "a", "fold": [0, 0, 1], "tp": [1, 2, 0],
    ...                      "fp": [1, 0, 0], "fn": [0, 1, 2]})
    >>> micro_average(rows, ["config_id"])[["tp", "precision", "recall"]].values.tolist()
    [[3.0, 0.75, 0.5]]
    """
    counts = {c: (c, "sum") for c in _SUMMED if c in rows.columns}
    sums = rows.groupby(list(by), dropna=False, sort=True).agg(
        **counts, **(extra or {})).reset_index()
    precision, recall, f1 = micro_rates(sums["tp"], sums["fp"], sums["fn"])
    return sums.assign(precision=precision, recall=recall, f1=f1)


def _ok(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["status"] == "ok"]


def fold_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Micro-averaged precision, recall and F1 per configuration, fold and IoU threshold.

    >>> table = pd.DataFrame({"method": "m", "config_id": "a", "fold": [0, 0, 1],
    ...     "iou_threshold": 0.5, "status": "ok", "tp": [1, 2, 0], "fp": [1, 0, 0],
    ...     "fn": [0, 1, 2]})
    >>> fold_rates(table)[["fold", "precision", "recall"]].values.tolist()
    [[0.0, 0.75, 0.75], [1.0, 1.0, 0.0]]
    """
    rows = _ok(table)[["method", "config_id", "fold", "iou_threshold", "tp", "fp", "fn"]]
    return micro_average(rows, ["method", "config_id", "fold", "iou_threshold"])


def nearest_threshold(values, target: float) -> float:
    """The scored IoU threshold nearest to ``target``.

    >>> nearest_threshold([0.5, 0.75, 0.5], 0.6)
    0.5
    """
    values = np.unique(np.asarray(values, dtype=float))
    return float(values[np.argmin(np.abs(values - target))])


def best_per_method(rates: pd.DataFrame, *, iou_threshold: float = SCORE_IOU,
                    nearest: bool = False) -> pd.DataFrame:
    """Each method's configuration with the highest F1 at ``iou_threshold``, one row a method.

    Ties go to the first configuration id. Methods that did not run (unavailable or failed)
    keep one row with their status, so a reader sees what is missing.

    Parameters
    ----------
    rates : pandas.DataFrame
        One row per configuration and IoU threshold, columns ``method``, ``config_id``,
        ``iou_threshold``, ``f1``, ``status``: ``summary.csv``, or :func:`micro_average`
        of a table's ``ok`` rows.
    nearest : bool, keyword-only
        Use the scored threshold nearest to ``iou_threshold`` when that one was not scored
        (the figures); False: no method has a best at an unscored threshold.

    Examples
    --------
    >>> s = pd.DataFrame({"method": ["a", "a", "b"], "config_id": ["a1", "a2", "b1"],
    ...                   "config_label": ["a x=1", "a x=2", "b"],
    ...                   "iou_threshold": [0.5, 0.5, None], "precision": [0.9, 0.6, None],
    ...                   "recall": [0.5, 0.8, None], "f1": [0.64, 0.69, None],
    ...                   "status": ["ok", "ok", "unavailable"]})
    >>> best_per_method(s)[["method", "config_label", "status"]].values.tolist()
    [['a', 'a x=2', 'ok'], ['b', 'b', 'unavailable']]
    """
    ok = rates[rates["status"] == "ok"]
    if nearest and len(ok):
        iou_threshold = nearest_threshold(ok["iou_threshold"], iou_threshold)
    at = ok[np.isclose(ok["iou_threshold"].astype(float), iou_threshold)]
    at = at.sort_values(["method", "config_id"], kind="stable")
    best = at.sort_values("f1", ascending=False, kind="stable").drop_duplicates("method")
    missing = rates[(rates["status"] != "ok") & ~rates["method"].isin(best["method"])]
    chosen = pd.concat([best, missing.drop_duplicates("method")], ignore_index=True)
    return chosen.sort_values("method", kind="stable", ignore_index=True)


def best_configurations(table: pd.DataFrame, *, iou_threshold: float = SCORE_IOU
                        ) -> dict[str, str]:
    """Method -> the configuration with the highest micro F1 at ``iou_threshold``.

    From a results table (:func:`best_per_method` of its micro-averages); the nearest scored
    threshold is used when ``iou_threshold`` itself was not scored; ties go to the first
    configuration id.

    >>> table = pd.DataFrame({"method": "m", "config_id": ["a", "b"], "fold": 0,
    ...     "iou_threshold": 0.5, "status": "ok", "tp": [1, 3], "fp": [0, 0], "fn": [3, 1]})
    >>> best_configurations(table)
    {'m': 'b'}
    """
    rows = _ok(table)[["method", "config_id", "iou_threshold", "tp", "fp", "fn"]]
    if rows.empty:
        return {}
    rates = micro_average(rows, ["method", "config_id", "iou_threshold"]).assign(status="ok")
    best = best_per_method(rates, iou_threshold=iou_threshold, nearest=True)
    return {str(m): str(c) for m, c in zip(best["method"], best["config_id"], strict=True)}
