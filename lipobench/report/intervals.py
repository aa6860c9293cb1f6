"""Bootstrap intervals and paired comparisons of a results table.

:mod:`lipobench.metrics.uncertainty` holds the statistics; this module feeds it the rows of a
results table (:mod:`lipobench.report.results`). The unit of resampling is the test micrograph,
one ``(fold, image)`` pair of the table: in a k-fold run each micrograph is tested in one fold.

- :func:`interval_columns`: the 95 % interval of every precision, recall and F1 of
  ``summary.csv``, and the standard deviation of the per-fold rates where there are folds;
- :func:`compare`: configuration A against B on the micrographs both were tested on
  (``lipobench compare``);
- :func:`best_versus_best`: each method's best configuration
  (:func:`lipobench.report.aggregate.best_per_method`) against every other method's best
  (``comparisons.csv`` of ``lipobench run``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lipobench.errors import UserError
from lipobench.metrics.uncertainty import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Metric,
    MicrographCounts,
    PairedDifference,
    bootstrap_rates,
    fold_spread,
    paired_difference,
)
from lipobench.report.aggregate import best_per_method

__all__ = ["INTERVAL_COLUMNS", "COMPARISON_COLUMNS", "interval_columns", "micrograph_counts",
           "resolve_configuration", "compare", "best_versus_best"]

#: The columns :func:`interval_columns` adds to the summary, in order.
INTERVAL_COLUMNS = tuple(
    [f"{m.value}_ci_{end}" for m in Metric for end in ("low", "high")]
    + [f"{m.value}_fold_sd" for m in Metric])

#: The columns of :func:`best_versus_best` (``comparisons.csv``).
COMPARISON_COLUMNS = (
    "iou_threshold", "metric", "a_method", "a_config_id", "a_config_label", "b_method",
    "b_config_id", "b_config_label", "a_value", "b_value", "difference", "ci_low", "ci_high",
    "verdict", "n_micrographs", "n_resamples", "confidence", "seed",
)

_UNIT = ["fold", "image"]


def _measured(table: pd.DataFrame) -> pd.DataFrame:
    """The rows with counts: configurations that ran, one row per micrograph and threshold."""
    return table[(table["status"] == "ok") & table["image"].astype(str).ne("")]


def interval_columns(table: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES,
                     confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
                     ) -> pd.DataFrame:
    """Bootstrap intervals and fold spreads per configuration and IoU threshold.

    Configurations tested on the same micrographs (all of them, unless one failed in a fold)
    are resampled together, with the same resampled micrographs.

    Parameters
    ----------
    table : pandas.DataFrame
        A results table (columns ``config_id``, ``fold``, ``image``, ``iou_threshold``,
        ``tp``, ``fp``, ``fn``, ``status``).
    n_resamples, confidence, seed : keyword-only
        See :func:`lipobench.metrics.uncertainty.bootstrap_rates`.

    Returns
    -------
    pandas.DataFrame
        ``config_id``, ``iou_threshold`` and :data:`INTERVAL_COLUMNS`.

    Examples
    --------
    >>> table = pd.DataFrame({"config_id": "a", "fold": [0, 0, 1, 1], "iou_threshold": 0.5,
    ...     "image": ["m0", "m1", "m2", "m3"], "status": "ok",
    ...     "tp": [4, 2, 3, 1], "fp": [0, 0, 0, 0], "fn": [0, 2, 1, 3]})
    >>> row = interval_columns(table).iloc[0]
    >>> float(row["recall_ci_low"]) < 0.625 < float(row["recall_ci_high"])
    True
    >>> round(float(row["recall_fold_sd"]), 3)  # fold recalls 0.75 and 0.5
    0.177
    """
    rows = _measured(table)
    if rows.empty:
        return pd.DataFrame({"config_id": pd.Series([], dtype=object),
                             "iou_threshold": pd.Series([], dtype=float),
                             **{c: pd.Series([], dtype=float) for c in INTERVAL_COLUMNS}})
    units = pd.Series(list(zip(rows["fold"], rows["image"], strict=True)), index=rows.index)
    units_of = units.groupby(rows["config_id"]).agg(lambda u: tuple(sorted(set(u))))
    frames = []
    for unit_set, config_ids in units_of.groupby(units_of).groups.items():
        group = rows[rows["config_id"].isin(list(config_ids))]
        column = {unit: k for k, unit in enumerate(unit_set)}
        keys = pd.MultiIndex.from_frame(group[["config_id", "iou_threshold"]])
        row_of, row_keys = pd.factorize(keys, sort=True)
        col_of = units.loc[group.index].map(column).to_numpy()
        arrays = []
        for name in ("tp", "fp", "fn"):
            values = np.zeros((len(row_keys), len(unit_set)))
            np.add.at(values, (row_of, col_of), group[name].astype(float).to_numpy())
            arrays.append(values)
        counts = MicrographCounts(*arrays)
        found = bootstrap_rates(counts, n_resamples=n_resamples, confidence=confidence,
                                seed=seed)
        found.update(fold_spread(counts, folds=[fold for fold, _ in unit_set]))
        frame = pd.DataFrame({"config_id": row_keys.get_level_values(0),
                              "iou_threshold": row_keys.get_level_values(1)})
        frames.append(frame.assign(**{c: found[c] for c in INTERVAL_COLUMNS}))
    return pd.concat(frames, ignore_index=True)


def _scored_threshold(table: pd.DataFrame, iou_threshold: float) -> float:
    scored = np.unique(_measured(table)["iou_threshold"].astype(float))
    hits = scored[np.isclose(scored, iou_threshold)]
    if hits.size == 0:
        listed = ", ".join(f"{t:g}" for t in scored)
        raise UserError(f"--iou {iou_threshold:g}: this threshold was not scored in the run; "
                        f"use one of {listed}")
    return float(hits[0])


def micrograph_counts(table: pd.DataFrame, config_id: str, *, iou_threshold: float
                      ) -> pd.DataFrame:
    """tp, fp and fn of one configuration per test micrograph at one IoU threshold.

    Returns a frame indexed by ``(fold, image)``, sorted, columns ``tp, fp, fn``.

    >>> table = pd.DataFrame({"config_id": "a", "fold": 0, "image": ["m1", "m0"],
    ...     "iou_threshold": 0.5, "status": "ok", "tp": [1, 2], "fp": [0, 1], "fn": [3, 0]})
    >>> micrograph_counts(table, "a", iou_threshold=0.5)["tp"].tolist()
    [2, 1]
    """
    rows = _measured(table)
    rows = rows[(rows["config_id"] == config_id)
                & np.isclose(rows["iou_threshold"].astype(float), iou_threshold)]
    return rows.groupby(_UNIT, sort=True)[["tp", "fp", "fn"]].sum()


def _labels(table: pd.DataFrame) -> pd.DataFrame:
    configs = table.drop_duplicates("config_id")[["config_id", "config_label", "method",
                                                   "status"]]
    return configs.assign(config_label=configs["config_label"].fillna("").astype(str))


def resolve_configuration(table: pd.DataFrame, name: str, *, what: str = "configuration"
                          ) -> str:
    """The config id that ``name`` means: an id, a label, a method, or a unique prefix.

    In that order: an exact config id, an exact config label, a method name (that method's
    only configuration), then a prefix of exactly one config id or label. Anything else
    raises a one-line :class:`~lipobench.errors.UserError` naming some candidates.

    >>> table = pd.DataFrame({"config_id": ["log-1a", "log-2b", "topaz-3c"],
    ...     "config_label": ["log threshold=1", "log threshold=3", "topaz"],
    ...     "method": ["log", "log", "topaz"], "status": "ok"})
    >>> resolve_configuration(table, "log threshold=3"), resolve_configuration(table, "top")
    ('log-2b', 'topaz-3c')
    """
    configs = _labels(table)
    ids, labels = configs["config_id"].astype(str), configs["config_label"]
    for candidates in (configs[ids == name], configs[labels == name],
                       configs[configs["method"].astype(str) == name],
                       configs[ids.str.startswith(name) | labels.str.startswith(name)]):
        if len(candidates) == 1:
            return str(candidates["config_id"].iloc[0])
        if len(candidates) > 1:
            shown = ", ".join(candidates["config_id"].astype(str).head(4))
            more = f" and {len(candidates) - 4} more" if len(candidates) > 4 else ""
            raise UserError(f"{what} {name!r} matches {len(candidates)} configurations "
                            f"({shown}{more}); give one config id from results.csv")
    known = ", ".join(ids.head(4)) + (" ..." if len(ids) > 4 else "")
    raise UserError(f"{what} {name!r}: no such configuration in the results; give a "
                    f"config id or label from results.csv (e.g. {known})")


def compare(table: pd.DataFrame, first: str, second: str, *, iou_threshold: float = 0.5,
            metric: Metric | str = Metric.F1, n_resamples: int = DEFAULT_RESAMPLES,
            confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
            ) -> PairedDifference:
    """Configuration ``first`` (A) against ``second`` (B) on the micrographs both were tested on.

    ``first`` and ``second`` are config ids (see :func:`resolve_configuration`). Raises a
    :class:`~lipobench.errors.UserError` when either did not run, the threshold was not
    scored, or they share fewer than 2 micrographs.
    """
    at = _scored_threshold(table, iou_threshold)
    a, b = _paired_counts(table, first, second, iou_threshold=at)
    return paired_difference(a, b, metric=metric, n_resamples=n_resamples,
                             confidence=confidence, seed=seed)


def _paired_counts(table: pd.DataFrame, first: str, second: str, *, iou_threshold: float
                   ) -> tuple[MicrographCounts, MicrographCounts]:
    """The counts of A and B on the micrographs both were tested on, in one sorted order."""
    statuses = _labels(table).set_index("config_id")["status"]
    counts = {}
    for what, config_id in (("A", first), ("B", second)):
        found = micrograph_counts(table, config_id, iou_threshold=iou_threshold)
        if found.empty:
            status = statuses.get(config_id, "missing")
            raise UserError(f"{what} {config_id!r}: this configuration has no results "
                            f"(status {status}); see its error column in results.csv and "
                            "rerun `lipobench run`, or compare another configuration")
        counts[what] = found
    shared = counts["A"].index.intersection(counts["B"].index).sort_values()
    if len(shared) < 2:
        raise UserError(f"{first!r} and {second!r} share {len(shared)} test micrograph(s); a "
                        "paired bootstrap needs at least 2: compare configurations of the same "
                        "run and split")
    a, b = (MicrographCounts(*(counts[w].loc[shared, c].astype(float).to_numpy()
                               for c in ("tp", "fp", "fn"))) for w in ("A", "B"))
    return a, b


def best_versus_best(table: pd.DataFrame, summary: pd.DataFrame, *,
                     iou_threshold: float = 0.5, n_resamples: int = DEFAULT_RESAMPLES,
                     confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED
                     ) -> pd.DataFrame:
    """Each method's best configuration (by F1) against every other method's best.

    One row per pair of methods and metric (F1, precision, recall): A is the method whose
    best F1 is higher, so F1 differences read as "how much better, and is it real".
    Empty (with :data:`COMPARISON_COLUMNS`) when fewer than two methods ran.
    """
    best = best_per_method(summary, iou_threshold=iou_threshold)
    best = best[best["status"] == "ok"].sort_values(["f1", "method"], ascending=[False, True],
                                                    kind="stable")
    chosen = table[table["config_id"].isin(best["config_id"])]
    records = []
    picked = list(best.itertuples(index=False))
    for i, a in enumerate(picked):
        for b in picked[i + 1:]:
            at = float(a.iou_threshold)
            try:
                a_counts, b_counts = _paired_counts(chosen, a.config_id, b.config_id,
                                                    iou_threshold=at)
            except UserError:
                continue  # fewer than 2 shared micrographs: nothing to pair
            for metric in (Metric.F1, Metric.PRECISION, Metric.RECALL):
                result = paired_difference(a_counts, b_counts, metric=metric,
                                           n_resamples=n_resamples, confidence=confidence,
                                           seed=seed)
                records.append({
                    "iou_threshold": at, "metric": metric.value,
                    "a_method": a.method, "a_config_id": a.config_id,
                    "a_config_label": a.config_label, "b_method": b.method,
                    "b_config_id": b.config_id, "b_config_label": b.config_label,
                    "a_value": result.first_value, "b_value": result.second_value,
                    "difference": result.difference, "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "verdict": result.verdict.text(confidence=confidence),
                    "n_micrographs": result.n_micrographs, "n_resamples": result.n_resamples,
                    "confidence": result.confidence, "seed": result.seed})
    return pd.DataFrame.from_records(records, columns=list(COMPARISON_COLUMNS))
