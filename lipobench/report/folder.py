"""A results folder opened for reading: its table, run record, and what is derived from them.

Everything a figure needs is computed once per folder, from the table (the record; files
written beside it by an older version may lack columns): :attr:`ResultsFolder.summary`,
:attr:`~ResultsFolder.parameters`, :attr:`~ResultsFolder.labels` and
:attr:`~ResultsFolder.colors`, the one colour map of the folder, so that every figure colours
a method the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from lipobench.errors import UserError

__all__ = ["RunFilesMissing", "ResultsFolder", "open_results"]

_REQUIRED = ("method", "adapter", "region_kind", "config_id", "param_spec", "fold", "image",
             "iou_threshold", "tp", "fp", "fn", "n_pred", "status", "prediction_file")


class RunFilesMissing(UserError):
    """Files of the run that the folder no longer holds: its dataset, or its predictions.

    Published results keep their tables only; the figures that need the micrographs or the
    predictions are then skipped, with a note, rather than failing the rest.
    """


@dataclass(eq=False)
class ResultsFolder:
    """A results folder written by ``lipobench run``: its table and its run record.

    ``registry`` (the adapters, for their parameters' stages and abbreviations) defaults to
    the installed plugins' on first use.
    """

    root: Path
    table: pd.DataFrame
    run: dict[str, Any]
    _registry: Any = field(default=None, repr=False)
    _micrographs: dict[str, Any] = field(default_factory=dict, repr=False)
    _dataset: Any = field(default=None, repr=False)

    @property
    def registry(self):
        """The adapter registry this folder is read with."""
        if self._registry is None:
            from lipobench.report.parameters import registry_or_default

            self._registry = registry_or_default(None)
        return self._registry

    @property
    def ok(self) -> pd.DataFrame:
        """The rows of configurations that ran."""
        return self.table[self.table["status"] == "ok"]

    @property
    def name(self) -> str:
        """The experiment's name, for figure titles."""
        return self.run.get("experiment") or self.root.name

    @property
    def first_test_image(self) -> str | None:
        folds = self.run.get("folds") or []
        tests = folds[0].get("test", []) if folds else []
        return tests[0] if tests else None

    @cached_property
    def summary(self) -> pd.DataFrame:
        """:func:`~lipobench.report.results.summarize` of the table, intervals included.

        Recomputed rather than read: a summary.csv of an older version may lack the
        intervals, and the table is the record.
        """
        from lipobench.report.results import summarize

        return summarize(self.table)

    @cached_property
    def parameters(self) -> pd.DataFrame:
        """The long-form parameter table (:func:`~lipobench.report.parameters.parameter_table`)."""
        from lipobench.report.parameters import parameter_table

        return parameter_table(self.table, self.registry)

    @cached_property
    def labels(self) -> dict[str, str]:
        """Config id -> its label (:func:`~lipobench.report.labels.config_labels`)."""
        from lipobench.report.labels import config_labels

        return config_labels(self.table, registry=self.registry)

    @cached_property
    def colors(self) -> dict[str, tuple[float, ...]]:
        """Method -> its colour, the same in every figure of this folder."""
        from lipobench.report.style import method_colors

        return method_colors(self.table["method"].astype(str))

    def micrograph(self, name: str):
        """One micrograph of the run's dataset, loaded once."""
        if name not in self._micrographs:
            if self._dataset is None:
                from lipobench.data import load_dataset

                where = self.run.get("dataset")
                if not where or not Path(where).exists():
                    raise RunFilesMissing(f"{self.root / 'run.json'}: dataset {where!r} no "
                                          "longer exists; restore it there to plot sizes, "
                                          "score curves and overlays")
                self._dataset = load_dataset(where)
            self._micrographs[name] = self._dataset.micrograph(name)
        return self._micrographs[name]

    def predictions(self, relative: str):
        """A prediction file of the run (see :func:`lipobench.run.scoring.prediction_file`)."""
        from lipobench.cache import load_regions

        path = self.root / relative
        if not path.is_file():
            raise RunFilesMissing(f"{path}: the folder holds no prediction files (published "
                                  "results keep the tables only); rerun `lipobench run` to "
                                  "plot score curves, sizes and overlays")
        try:
            return load_regions(path)
        except (OSError, KeyError, ValueError) as exc:
            raise UserError(f"{path}: cannot read the prediction file ({exc}); rerun "
                            f"`lipobench run` to rewrite it") from None


def open_results(path: str | Path, *, registry=None) -> ResultsFolder:
    """Open and check a results folder; a folder that is not one raises one UserError line."""
    root = Path(path)
    hint = "give the output folder of `lipobench run` (it holds results.parquet and run.json)"
    if not root.is_dir():
        raise UserError(f"{root}: no such results folder; {hint}")
    parquet, record = root / "results.parquet", root / "run.json"
    for needed in (parquet, record):
        if not needed.is_file():
            raise UserError(f"{root}: not a lipobench results folder (no {needed.name}); {hint}")
    try:
        table = pd.read_parquet(parquet)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserError(f"{parquet}: cannot read the results table ({type(exc).__name__}); "
                        "rerun `lipobench run` to rewrite it") from None
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise UserError(f"{parquet}: not a lipobench results table (no column {missing[0]!r}); "
                        "rerun `lipobench run` to rewrite it")
    try:
        run = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{record}: cannot read the run record ({exc}); rerun "
                        "`lipobench run` to rewrite it") from None
    if not isinstance(run, dict):
        raise UserError(f"{record}: not a lipobench run record; rerun `lipobench run`")
    return ResultsFolder(root, table, run, registry)
