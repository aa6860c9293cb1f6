"""Each configuration's parameter values per fold: a long-form table, and the wide columns.

The results table stores the values resolved for each fold as JSON (its ``params`` column).
From it:

- :func:`parameter_table`, the long form written as ``parameters.parquet`` and
  ``parameters.csv`` (:data:`PARAMETER_COLUMNS`): one row per configuration, fold and
  parameter, the value as JSON text and, where it is a number, as a float too. Each adapter's
  parameters keep their types: crYOLO's ``confidence = 0.3`` is the number 0.3 even when
  LipoPose's ``confidence = "average"`` ran beside it;
- :func:`wide_parameter_columns`, the ``param.<name>`` columns of the results table, one type
  per column: where two adapters give one name values of different types (a number and a
  text), each gets its own column, ``param.<adapter>.<name>``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PARAMETER_COLUMNS", "registry_or_default", "resolved_parameters",
           "parameter_table", "wide_parameter_columns", "uniform"]

#: The columns of :func:`parameter_table`, in order.
PARAMETER_COLUMNS = ("config_id", "fold", "method", "adapter", "stage", "parameter", "value",
                     "number")


def registry_or_default(registry):
    """``registry``, or the adapters every installed plugin registers when None."""
    if registry is not None:
        return registry
    from lipobench import plugins

    return plugins.load_registry()


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds."""
    return value.item() if isinstance(value, np.generic) else value


def _row_parameters(row: Mapping[str, Any], wide: list[str]) -> dict[str, Any]:
    params = row.get("params")
    if isinstance(params, str):
        return json.loads(params)
    if isinstance(params, Mapping):
        return dict(params)
    # A table without ``params`` (built by hand): its ``param.`` columns.
    found = {}
    for column in wide:
        name = column.removeprefix("param.")
        adapter, _, own = name.rpartition(".")
        if adapter and adapter != row.get("adapter"):
            continue
        value = row.get(column)
        if not _missing(value):
            found[own] = _plain(value)
    return found


def resolved_parameters(table: pd.DataFrame
                        ) -> Iterator[tuple[str, Any, str, str, dict[str, Any]]]:
    """``(config_id, fold, method, adapter, values)`` once per configuration and fold.

    A table without folds (built by hand) gives every row.
    """
    rows = table.drop_duplicates(["config_id", "fold"]) if "fold" in table.columns else table
    wide = [c for c in table.columns if str(c).startswith("param.")]
    for row in rows.to_dict("records"):
        yield (str(row["config_id"]), row.get("fold"), str(row.get("method", "")),
               str(row.get("adapter", "")), _row_parameters(row, wide))


def _number(value: Any) -> float:
    real = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if real else math.nan


def parameter_table(table: pd.DataFrame, registry=None) -> pd.DataFrame:
    """The long-form parameter table of a results table (:data:`PARAMETER_COLUMNS`).

    ``stage`` is the parameter's stage as the registry's adapter declares it (empty for an
    adapter or parameter it does not know); ``registry`` defaults to the installed plugins'.

    >>> table = pd.DataFrame({"config_id": ["c", "c", "l"], "fold": [0, 0, 0],
    ...     "method": ["cryolo", "cryolo", "lipopose"], "adapter": ["cryolo", "cryolo", "lipopose"],
    ...     "params": ['{"confidence": 0.3}', '{"confidence": 0.3}', '{"confidence": "average"}']})
    >>> parameter_table(table)[["adapter", "stage", "value", "number"]].values.tolist()
    [['cryolo', 'select', '0.3', 0.3], ['lipopose', 'predict', '"average"', nan]]
    """
    registry = registry_or_default(registry)
    records = []
    for config_id, fold, method, adapter, values in resolved_parameters(table):
        declared = (registry.entry(adapter).adapter_cls.parameters if adapter in registry
                    else {})
        for name, value in sorted(values.items()):
            records.append({
                "config_id": config_id, "fold": None if _missing(fold) else int(fold),
                "method": method, "adapter": adapter,
                "stage": declared[name].stage.value if name in declared else "",
                "parameter": name, "value": json.dumps(value, sort_keys=True),
                "number": _number(value)})
    frame = pd.DataFrame.from_records(records, columns=list(PARAMETER_COLUMNS))
    frame["fold"] = frame["fold"].astype("Int64")
    frame["number"] = frame["number"].astype("float64")
    return frame.sort_values(["method", "config_id", "fold", "parameter"], kind="stable",
                             ignore_index=True)


def uniform(column: pd.Series) -> pd.Series:
    """One type for a column of values, as Parquet needs: bool, Int64, float64 or text.

    A grid mixing 30 and 30.5 becomes float; anything mixing texts and numbers, text.

    >>> uniform(pd.Series([30, None, 30.5])).dtype, uniform(pd.Series([1, "a"])).tolist()
    (dtype('float64'), ['1', 'a'])
    """
    values = column.dropna()
    if values.map(lambda v: isinstance(v, bool)).all():
        return column.astype("boolean")
    if values.map(lambda v: isinstance(v, int) and not isinstance(v, bool)).all():
        return column.astype("Int64")
    if values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all():
        return column.astype("float64")
    return column.map(lambda v: v if _missing(v) else str(v))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "text"


def _wide_value(row: Mapping[str, Any], adapter: str, name: str, recorded: Any) -> Any:
    """A row's value of ``name``: its ``param.`` cell where that keeps the type, else JSON's.

    ``params`` is canonical JSON, which writes 30.0 as 30: a float grid stays float through
    the typed cell. A text cell where the JSON holds a number is an older table's
    flattening (two adapters' values in one column) and gives way to the number.
    """
    for column in (f"param.{adapter}.{name}", f"param.{name}"):
        cell = row.get(column)
        if cell is None or _missing(cell):
            continue
        cell = _plain(cell)
        if isinstance(cell, str) and not isinstance(recorded, str):
            break
        return cell
    return recorded


def wide_parameter_columns(table: pd.DataFrame, values: Sequence[Mapping[str, Any]] | None = None
                           ) -> pd.DataFrame:
    """The ``param.<name>`` columns of ``table`` (rows aligned), made from its ``params``.

    A name that two adapters give values of different kinds (bool, number, text) is split
    into one ``param.<adapter>.<name>`` column per adapter, so each column keeps one type.
    ``values`` (one mapping per row, as the runner resolved them) stand in for ``params``;
    without them, a row's existing ``param.`` cells keep their types where they can.

    >>> table = pd.DataFrame({"adapter": ["cryolo", "lipopose", "log"],
    ...     "params": ['{"confidence": 0.3}', '{"confidence": "average"}', '{"radius": 5}']})
    >>> wide = wide_parameter_columns(table)
    >>> sorted(wide.columns), str(wide["param.cryolo.confidence"].dtype)
    (['param.cryolo.confidence', 'param.lipopose.confidence', 'param.radius'], 'float64')
    """
    wide = [c for c in table.columns if str(c).startswith("param.")]
    rows = table.to_dict("records")
    adapters = [str(row.get("adapter", "")) for row in rows]
    if values is None:
        parsed: dict[str, dict[str, Any]] = {}  # the rows of a configuration and fold share one
        values = []
        for row, adapter in zip(rows, adapters, strict=True):
            text = row.get("params")
            if not isinstance(text, str):
                values.append(_row_parameters(row, wide))
                continue
            if text not in parsed:
                parsed[text] = json.loads(text)
            recorded = parsed[text]
            values.append({k: _wide_value(row, adapter, k, v) for k, v in recorded.items()}
                          if wide else recorded)
    kinds: dict[str, dict[str, set[str]]] = {}
    for adapter, params in zip(adapters, values, strict=True):
        for name, value in params.items():
            found = kinds.setdefault(name, {}).setdefault(adapter, set())
            if not _missing(value):
                found.add(_kind(value))
    columns = {}
    for name in sorted(kinds):
        by_adapter = kinds[name]
        split = len(by_adapter) > 1 and len(set().union(*by_adapter.values())) > 1
        owners = sorted(by_adapter) if split else [None]
        for owner in owners:
            column = f"param.{owner}.{name}" if owner else f"param.{name}"
            cells = [params.get(name) if owner in (None, adapter) else None
                     for adapter, params in zip(adapters, values, strict=True)]
            columns[column] = uniform(pd.Series(cells, index=table.index, dtype=object))
    return pd.DataFrame(columns, index=table.index)
