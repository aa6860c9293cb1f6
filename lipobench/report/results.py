"""The results table: one tidy row per configuration, fold, test image and IoU threshold.

Files written under the run's output folder (layout in :mod:`lipobench.run`):

``results.parquet`` and ``results.csv``, columns:

- ``experiment``, ``method`` (the experiment's table name), ``adapter``, ``region_kind``,
  ``config_id`` (stable: method and a hash of the parameter spec), ``config_label``
  (the method and the parameters that vary, as every legend shows it:
  :func:`lipobench.report.labels.config_labels`, e.g. ``cellpose d=q0.25(diameter)``);
- ``params`` (JSON of the values resolved for this fold), ``param_spec`` (JSON of the values
  as written, derived ones as their tables), and one ``param.<name>`` column per parameter
  holding the resolved value, or ``param.<adapter>.<name>`` per adapter where adapters give
  one name values of different types (:func:`lipobench.report.parameters.wide_parameter_columns`);
- ``fold``, ``image``, ``iou_threshold``, ``tp``, ``fp``, ``fn``, ``n_true``, ``n_pred``,
  ``precision``, ``recall``, ``f1``;
- ``tool_version``, ``train_seconds``, ``predict_seconds`` (compute time of the train and the
  predict task behind the row, as first measured), ``seconds`` (their sum), ``cached`` (this
  run reused both), ``status`` (``ok``, ``failed`` or ``unavailable``), ``error``,
  ``log_file`` (relative to the output folder), ``prediction_file`` (this configuration's
  selected predictions of the image, an npz for :func:`lipobench.cache.load_regions`);
- ``model.<key>``: what the adapter records about the trained model
  (:meth:`~lipobench.adapters.base.Adapter.model_info`; crYOLO: ``model.init``, whether it
  started from random weights, its epochs, and the box and input sizes it trained at).

A failed or unavailable configuration has one row per fold with ``image`` and the counts
empty, its ``status`` and its ``error``. Empty denominators follow
:func:`lipobench.metrics.rates`: precision with no predictions, recall with no particles
(and F1 with neither) are 1, never NaN.

``parameters.parquet`` and ``parameters.csv``: the values resolved for each fold in long form,
one row per configuration, fold and parameter, each adapter's with its own type
(:func:`lipobench.report.parameters.parameter_table`): ``config_id``, ``fold``, ``method``,
``adapter``, ``stage``, ``parameter``, ``value`` (JSON) and ``number`` (the value where it is a
number, else empty).

``summary.csv``: per configuration and IoU threshold, the micro-average over every test image
of every fold (sums of tp, fp, fn, then precision, recall, F1), with its parameters, status
and error; failed and unavailable configurations appear with empty metrics. Each rate has a
95 % confidence interval, ``precision_ci_low`` and ``precision_ci_high`` and so on: the
percentile bootstrap over test micrographs (whole micrographs resampled with replacement,
2,000 resamples, seed 0, rates recomputed from the resampled sums;
:mod:`lipobench.metrics.uncertainty`), empty with fewer than 2 micrographs. Where a run has
several folds, ``precision_fold_sd``, ``recall_fold_sd`` and ``f1_fold_sd`` are the standard
deviations of the per-fold micro-averages (empty with one fold).

``comparisons.csv``: each method's best configuration (by F1 at IoU 0.5) against every other
method's best, per metric: the difference, its 95 % interval from a paired bootstrap (the
same resampled micrographs for both) and the verdict
(:func:`lipobench.report.intervals.best_versus_best`; ``lipobench compare`` for any pair).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lipobench.cache import canonical_json
from lipobench.fsutil import atomic_path
from lipobench.metrics import micro_rates
from lipobench.report.aggregate import micro_average
from lipobench.report.intervals import best_versus_best, interval_columns
from lipobench.report.labels import config_labels
from lipobench.report.parameters import parameter_table, wide_parameter_columns

__all__ = ["COLUMNS", "build_table", "summarize", "write_results", "read_results",
           "keep_other_methods"]

#: The fixed columns of the results table, in order (``param.`` and ``model.`` columns follow).
COLUMNS = (
    "experiment", "method", "adapter", "region_kind", "config_id", "config_label", "params",
    "param_spec", "fold", "image", "iou_threshold", "tp", "fp", "fn", "n_true", "n_pred",
    "precision", "recall", "f1", "tool_version", "train_seconds", "predict_seconds", "seconds",
    "cached", "status", "error", "log_file", "prediction_file",
)

_TEXT = ("error", "log_file", "prediction_file", "image", "tool_version")
_ORDER = ["method", "config_id", "fold", "image", "iou_threshold"]


def build_table(experiment, plan, outcomes: Mapping[str, Any], registry) -> pd.DataFrame:
    """The tidy table of a finished run (see the module text for its columns)."""
    records: list[dict[str, Any]] = []
    values: list[Mapping[str, Any]] = []  # each record's resolved parameters, as resolved
    rows_by_task: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for key, outcome in outcomes.items():
        for row in outcome.rows:
            rows_by_task.setdefault((key, row["config_id"]), []).append(row)
    for item in plan.configs:
        configuration = item.configuration
        adapter_cls = registry.entry(configuration.adapter).adapter_cls
        base = {
            "experiment": experiment.label, "method": configuration.method,
            "adapter": configuration.adapter, "region_kind": adapter_cls.region_kind.value,
            "config_id": configuration.config_id,
            "params": canonical_json(item.params), "param_spec": configuration.spec_json,
            "fold": item.fold, "tool_version": item.tool_version or "",
        }
        if item.status != "ok":
            records.append({**base, "status": item.status, "error": item.error,
                            "cached": False})
            values.append(item.params)
            continue
        trained = outcomes[item.train_key]
        predicted = outcomes[item.predict_key]
        timing = {"train_seconds": trained.seconds, "predict_seconds": predicted.seconds,
                  "seconds": trained.seconds + predicted.seconds,
                  "cached": bool(trained.cached and predicted.cached),
                  **{f"model.{k}": v for k, v in trained.model_info.items()}}
        if predicted.status != "ok":
            records.append({**base, **timing, "status": "failed", "error": predicted.error,
                            "log_file": predicted.log_file})
            values.append(item.params)
            continue
        for row in rows_by_task.get((item.predict_key, configuration.config_id), []):
            for t, threshold in enumerate(row["iou_threshold"]):
                records.append({
                    **base, **timing, "image": row["image"], "iou_threshold": threshold,
                    "tp": row["tp"][t], "fp": row["fp"][t], "fn": row["fn"][t],
                    "n_true": row["n_true"], "n_pred": row["n_pred"], "status": "ok",
                    "error": "", "prediction_file": row["prediction_file"]})
                values.append(item.params)
    table = pd.DataFrame.from_records(records)
    for column in COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    for column in ("tp", "fp", "fn", "n_true", "n_pred"):
        table[column] = table[column].astype("Int64")
    precision, recall, f1 = micro_rates(table["tp"].fillna(0), table["fp"].fillna(0),
                                        table["fn"].fillna(0))
    measured = table["status"].eq("ok").to_numpy()
    table["precision"] = np.where(measured, precision, np.nan)
    table["recall"] = np.where(measured, recall, np.nan)
    table["f1"] = np.where(measured, f1, np.nan)
    return _finish(table, registry, values)


def _finish(table: pd.DataFrame, registry, values=None) -> pd.DataFrame:
    """Labels and ``param.`` columns made from the rows, the columns in order, rows sorted.

    ``values``: each row's resolved parameters (default: its ``params`` and ``param.`` cells).
    """
    wide = wide_parameter_columns(table, values)
    table = table.drop(columns=[c for c in table.columns if str(c).startswith("param.")])
    labels = config_labels(table, registry=registry)
    table["config_label"] = table["config_id"].map(labels)
    table = pd.concat([table, wide], axis=1)
    param_columns = sorted(c for c in table.columns if c.startswith("param."))
    model_columns = sorted(c for c in table.columns if c.startswith("model."))
    table = table[list(COLUMNS) + param_columns + model_columns]
    for column in _TEXT:
        table[column] = table[column].fillna("").astype(str)
    table["cached"] = table["cached"].fillna(False).astype(bool)
    return table.sort_values(_ORDER, kind="stable", ignore_index=True)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Micro-averaged precision, recall and F1 per configuration and IoU threshold.

    With their 95 % bootstrap intervals over micrographs and, for k-fold runs, the standard
    deviation of the per-fold rates (:func:`lipobench.report.intervals.interval_columns`).
    """
    keys = ["experiment", "method", "adapter", "region_kind", "config_id", "config_label",
            "param_spec"]
    ok = table[table["status"] == "ok"]
    sums = micro_average(ok, keys + ["iou_threshold"],
                         extra={"images": ("image", "count"), "folds": ("fold", "nunique")})
    sums["status"], sums["error"] = "ok", ""
    bad = table[table["status"] != "ok"].drop_duplicates("config_id")
    bad = bad[~bad["config_id"].isin(sums["config_id"])][keys + ["status", "error"]]
    sums = sums.merge(interval_columns(ok), on=["config_id", "iou_threshold"], how="left")
    summary = pd.concat([sums, bad], ignore_index=True)
    for column in ("tp", "fp", "fn", "n_true", "n_pred", "images", "folds"):
        summary[column] = summary[column].astype("Int64")
    return summary.sort_values(["method", "config_id", "iou_threshold"], kind="stable",
                               ignore_index=True)


def keep_other_methods(out: str | Path, table: pd.DataFrame, methods, registry=None
                       ) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """``table`` plus the rows of every method not in ``methods`` from the results in ``out``.

    For ``lipobench run --only``: a partial run updates its methods' rows and keeps the
    others. Returns the merged table and the previous run.json (None when ``out`` has no
    results yet).
    """
    from lipobench.errors import UserError

    out = Path(out)
    parquet, record = out / "results.parquet", out / "run.json"
    if not parquet.is_file():
        return table, None
    try:
        previous = pd.read_parquet(parquet)
        run = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    except (OSError, ValueError) as exc:
        raise UserError(f"{parquet}: cannot read the earlier results to merge --only into "
                        f"({type(exc).__name__}); run without --only") from None
    kept = previous[~previous["method"].isin(list(methods))]
    if kept.empty:
        return table, run
    return _finish(pd.concat([kept, table], ignore_index=True), registry), run


def write_results(out: str | Path, table: pd.DataFrame, summary: pd.DataFrame, *,
                  comparisons: pd.DataFrame | None = None,
                  parameters: pd.DataFrame | None = None, registry=None) -> None:
    """Write results, parameters (parquet and csv), summary.csv and comparisons.csv atomically.

    ``comparisons`` defaults to :func:`lipobench.report.intervals.best_versus_best` of the
    table, ``parameters`` to :func:`lipobench.report.parameters.parameter_table` of it (with
    ``registry``'s stages).
    """
    out = Path(out)
    if comparisons is None:
        comparisons = best_versus_best(table, summary)
    if parameters is None:
        parameters = parameter_table(table, registry)
    for name, frame in (("results", table), ("parameters", parameters)):
        with atomic_path(out / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        with atomic_path(out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    with atomic_path(out / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(out / "comparisons.csv") as tmp:
        comparisons.to_csv(tmp, index=False)


def read_results(out: str | Path) -> pd.DataFrame:
    """The results table of a run folder, with ``params`` parsed back into dicts."""
    table = pd.read_parquet(Path(out) / "results.parquet")
    table["params"] = table["params"].map(json.loads)
    return table
