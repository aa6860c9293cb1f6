"""The one label of a configuration: its method and the parameters that vary, abbreviated.

``cellpose d=31``, ``topaz r=8/ex=12``, ``lipopose merge=instances/t=20``: what the results
table's ``config_label`` column holds, what ``lipobench compare`` accepts and what every
legend, panel title and published table shows. Parameter names are shortened as their
adapter says (:attr:`lipobench.registry.AdapterEntry.abbreviations`); this module names no
adapter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lipobench.report.parameters import registry_or_default, resolved_parameters

__all__ = ["abbreviations_of", "value_text", "config_labels"]


def abbreviations_of(registry, adapters: Sequence[str]) -> dict[str, dict[str, str]]:
    """Adapter -> its parameters' legend abbreviations, for the adapters the registry knows.

    >>> from lipobench.plugins import load_registry
    >>> abbreviations_of(load_registry(disable_plugins=True), ["log", "gone"])["log"]["threshold"]
    't'
    """
    return {name: registry.entry(name).abbreviations for name in adapters if name in registry}


def value_text(value: Any) -> str:
    """A parameter value as a legend shows it: numbers to 3 significant digits.

    >>> value_text(72.6995), value_text(True), value_text("instances")
    ('72.7', 'true', 'instances')
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):.3g}"  # legends need 3 digits, not 72.6995
    return str(value)


def _agreed(values: list[Any]) -> list[Any]:
    """The distinct values of a parameter over folds, missing ones left out."""
    found: list[Any] = []
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if value not in found:
            found.append(value)
    return found


def _spec_text(resolved: Mapping[tuple[str, str], list[Any]], config_id: str, key: str,
               spec_value: Any) -> str:
    """A parameter's value for a label: the resolved value when every fold agrees on it."""
    if isinstance(spec_value, Mapping):
        values = _agreed(resolved.get((config_id, key), []))
        if len(values) == 1:
            return value_text(values[0])
        from lipobench.experiment import Derived

        return Derived.model_validate(spec_value).label()
    return value_text(spec_value)


def config_labels(table: pd.DataFrame, *, registry=None,
                  exclude: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """A short label per configuration: the method and the parameters that vary.

    Parameters
    ----------
    table : pandas.DataFrame
        The results table (columns ``config_id``, ``method``, ``adapter``, ``param_spec``, and
        the values resolved per fold: ``params``, or ``param.<name>`` columns).
    registry : lipobench.registry.AdapterRegistry, keyword-only
        Where the adapters' abbreviations come from; default: the installed plugins'.
    exclude : mapping, keyword-only
        Parameter names to leave out, per adapter (e.g. SELECT parameters of a score sweep).

    Examples
    --------
    >>> table = pd.DataFrame({"config_id": ["a", "b", "c"], "method": ["cp", "cp", "topaz"],
    ...     "adapter": ["cellpose", "cellpose", "topaz"],
    ...     "param_spec": ['{"diameter": 31, "seed": 0}', '{"diameter": 40.5, "seed": 0}',
    ...                    '{"radius": 12}']})
    >>> config_labels(table)
    {'a': 'cp d=31', 'b': 'cp d=40.5', 'c': 'topaz'}
    """
    exclude = exclude or {}
    configs = table.drop_duplicates("config_id")
    short = abbreviations_of(registry_or_default(registry), sorted(set(configs["adapter"])))
    resolved: dict[tuple[str, str], list[Any]] = {}
    for config_id, _, _, _, values in resolved_parameters(table):
        for key, value in values.items():
            resolved.setdefault((config_id, key), []).append(value)
    labels: dict[str, str] = {}
    for method, group in configs.groupby("method", sort=True):
        specs = {str(cid): json.loads(spec)
                 for cid, spec in zip(group["config_id"], group["param_spec"], strict=True)}
        adapters = dict(zip(group["config_id"].astype(str), group["adapter"], strict=True))
        keys = sorted(set().union(*(s.keys() for s in specs.values())))
        varying = [k for k in keys
                   if len({json.dumps(s.get(k), sort_keys=True) for s in specs.values()}) > 1]
        for cid, spec in specs.items():
            skip = set(exclude.get(adapters[cid], ()))
            names = short.get(adapters[cid], {})
            parts = [f"{names.get(k, k)}={_spec_text(resolved, cid, k, spec.get(k))}"
                     for k in varying if k not in skip]
            labels[cid] = f"{method} {'/'.join(parts)}" if parts else str(method)
    return labels
