"""lipobench.report: the parameters table, one label, one colour map, the figures hook.

Two test doubles that return the true particles as circles share a parameter name,
``confidence``, with values of different types (a number for one, a text for the other), as
crYOLO and LipoPose do. The results published under docs/results/ (written before the
parameters table existed) must stay readable by ``lipobench plot`` and ``lipobench compare``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pluggy
import pytest

from lipobench import hookspecs
from lipobench.adapters.base import Adapter, Availability, Parameter, Stage
from lipobench.adapters.lipopose_report import LEGEND_ABBREVIATIONS
from lipobench.adapters.log import LogAdapter
from lipobench.cli import main
from lipobench.errors import UserError
from lipobench.experiment import parse_experiment
from lipobench.metrics import stratify_by_size
from lipobench.plugins import get_plugin_manager, load_registry
from lipobench.regions import RegionKind, RegionSet
from lipobench.registry import AdapterRegistry
from lipobench.report.folder import RunFilesMissing, open_results
from lipobench.report.labels import config_labels
from lipobench.report.make import make_plots
from lipobench.report.parameters import (
    PARAMETER_COLUMNS,
    parameter_table,
    wide_parameter_columns,
)
from lipobench.run import run_experiment
from lipobench.testing import make_test_micrographs

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "docs" / "results"


class _TruthCircles(Adapter):
    """The true particles as circles, scored by their order: nothing to train."""

    region_kind = RegionKind.CIRCLE
    trainable = False

    def availability(self) -> Availability:
        return Availability(True, tool_version="truth 1.0")

    def to_native(self, micrographs, workdir: Path) -> Path:
        return Path(workdir)

    def train(self, native: Path, params, workdir: Path):
        return "none"

    def predict(self, model, micrographs, params, workdir: Path):
        out = []
        for micrograph in micrographs:
            centres = micrograph.truth.centroids()
            circles = np.column_stack([centres, np.full(len(centres), 10.0)])
            out.append(RegionSet.from_circles(circles, image_shape=micrograph.shape,
                                              scores=np.linspace(0, 1, len(centres))))
        return out


class NumberConfidenceForTests(_TruthCircles):
    """``confidence`` is a number (a SELECT score cut), like crYOLO's."""

    name = "numberconf"
    parameters = {"confidence": Parameter(Stage.SELECT, (0.3,), "score cut", "c")}

    def select(self, regions, params):
        return regions.select(regions.scores >= params["confidence"])


class TextConfidenceForTests(_TruthCircles):
    """``confidence`` is a text (how a confidence map is made), like LipoPose's."""

    name = "textconf"
    parameters = {"confidence": Parameter(Stage.PREDICT, ("average",), "map")}


def _registry() -> AdapterRegistry:
    registry = AdapterRegistry()
    registry.register(NumberConfidenceForTests, package="tests")
    registry.register(TextConfidenceForTests, package="tests")
    return registry


@pytest.fixture(scope="module")
def clashing(tmp_path_factory) -> Path:
    from lipobench.data import write_dataset

    root = tmp_path_factory.mktemp("clash")
    data = write_dataset(root / "data", make_test_micrographs(4), name="tiny",
                         split={"train": ["conformance_0", "conformance_1"],
                                "test": ["conformance_2", "conformance_3"]})
    experiment = parse_experiment({
        "name": "clash", "dataset": {"path": str(data)}, "iou_thresholds": [0.5, 0.7],
        "methods": {"numberconf": {"confidence": [0.3, 0.6]},
                    "textconf": {"confidence": ["average", "window"]}}})
    run_experiment(experiment, out=root / "results", registry_factory=_registry)
    return root / "results"


# ---------------------------------------------------------------------------- parameters


def test_the_parameters_table_keeps_each_adapters_types(clashing):
    for reader in (pd.read_parquet, pd.read_csv):
        suffix = "parquet" if reader is pd.read_parquet else "csv"
        long = reader(clashing / f"parameters.{suffix}")
        assert list(long.columns) == list(PARAMETER_COLUMNS)
        # One row per configuration, fold and parameter.
        assert len(long) == 4 and not long.duplicated(["config_id", "fold", "parameter"]).any()
        number = long[long["adapter"] == "numberconf"]
        assert sorted(number["number"]) == [0.3, 0.6]
        assert sorted(number["value"].map(json.loads)) == [0.3, 0.6]
        assert set(number["stage"]) == {"select"}
        text = long[long["adapter"] == "textconf"]
        assert text["number"].isna().all() and set(text["stage"]) == {"predict"}
        assert sorted(text["value"].map(json.loads)) == ["average", "window"]
    assert pd.read_parquet(clashing / "parameters.parquet")["number"].dtype == np.float64


def test_wide_columns_split_a_name_two_adapters_give_different_types(clashing):
    table = pd.read_parquet(clashing / "results.parquet")
    assert "param.confidence" not in table.columns
    numbers = table["param.numberconf.confidence"]
    assert numbers.dtype == np.float64
    assert sorted(numbers.dropna().unique()) == [0.3, 0.6]
    assert numbers[table["adapter"] == "textconf"].isna().all()
    texts = table["param.textconf.confidence"]
    assert sorted(texts.dropna().unique()) == ["average", "window"]
    # Without a clash, one column per name, as before.
    alone = wide_parameter_columns(table[table["adapter"] == "numberconf"])
    assert list(alone.columns) == ["param.confidence"] and alone.iloc[:, 0].dtype == np.float64


def test_the_parameters_table_of_a_table_written_before_it_existed():
    table = pd.read_parquet(PUBLISHED / "paper21" / "results.parquet")
    long = parameter_table(table, load_registry(disable_plugins=True))
    cryolo = long[(long["adapter"] == "cryolo") & (long["parameter"] == "confidence")]
    assert len(cryolo) and cryolo["number"].notna().all() and set(cryolo["stage"]) == {"select"}
    per_config = table.drop_duplicates(["config_id", "fold"])
    assert long.groupby(["config_id", "fold"]).size().sum() == sum(
        len(json.loads(p)) for p in per_config["params"])


# ---------------------------------------------------------------------------- one label


def test_the_results_label_is_the_legend_label(clashing):
    folder = open_results(clashing, registry=_registry())
    stored = folder.table.drop_duplicates("config_id").set_index("config_id")["config_label"]
    assert stored.to_dict() == folder.labels
    # Abbreviated as each adapter declares: numberconf's Parameter says "c", textconf's none.
    assert sorted(stored) == ["numberconf c=0.3", "numberconf c=0.6", "textconf confidence=average",
                              "textconf confidence=window"]
    record = json.loads((clashing / "run.json").read_text())
    assert {k: v["label"] for k, v in record["configurations"].items()} == folder.labels


def test_abbreviations_come_from_the_adapters_through_the_registry():
    registry = load_registry(disable_plugins=True)
    assert registry.entry("log").abbreviations["min_sigma"] == "σmin"  # its schema field
    assert registry.entry("lipopose").abbreviations["until"] == "t"  # given at registration
    assert registry.entry("lipopose").abbreviations["flow_threshold"] == "flow"  # Cellpose's
    assert set(LEGEND_ABBREVIATIONS) <= set(registry.entry("lipopose").adapter_cls.parameters)
    table = pd.DataFrame({"config_id": ["a", "b"], "method": "mine", "adapter": "log",
                          "param_spec": ['{"min_sigma": 2}', '{"min_sigma": 3}']})
    assert config_labels(table, registry=registry) == {"a": "mine σmin=2", "b": "mine σmin=3"}
    # An adapter the registry does not know is labelled by its parameters' full names.
    assert config_labels(table, registry=AdapterRegistry())["a"] == "mine min_sigma=2"


def test_registration_refuses_abbreviations_of_unknown_parameters():
    with pytest.raises(UserError, match="'nope', which is not one of its parameters"):
        AdapterRegistry().register(LogAdapter, abbreviations={"nope": "n"})
    with pytest.raises(UserError, match="must be a non-empty string"):
        AdapterRegistry().register(LogAdapter, abbreviations={"threshold": ""})


# ---------------------------------------------------------------------------- figures


class _Extra:
    def __init__(self, stem: str):
        self.stem = stem
        self.seen = []

    @hookspecs.hookimpl
    def lipobench_figures(self, folder):
        from lipobench.report.style import new_figure

        self.seen.append(folder)
        fig, axes = new_figure(1, 1, width=2.0, height=2.0)
        axes[0, 0].bar([0], [1.0], color=folder.colors["numberconf"])
        return {self.stem: fig}


def _plugins(extra) -> pluggy.PluginManager:
    pm = get_plugin_manager(disable_plugins=True)
    pm.register(extra, name="extra-for-tests")
    return pm


def test_a_plugin_adds_figures_through_lipobench_figures(clashing, tmp_path):
    extra = _Extra("my_figure")
    written, notes = make_plots(clashing, out=tmp_path, formats="png", registry=_registry(),
                                plugins=_plugins(extra))
    assert notes == []
    assert (tmp_path / "my_figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written[-1] == tmp_path / "my_figure.png"
    (folder,) = extra.seen
    assert set(folder.colors) == {"numberconf", "textconf"}


def test_a_plugin_figure_name_must_be_a_file_stem(clashing, tmp_path):
    with pytest.raises(UserError, match="plain file stem"):
        make_plots(clashing, out=tmp_path, formats="png", registry=_registry(),
                   plugins=_plugins(_Extra("../escape")))


def test_recall_by_size_bins_by_the_sizes_given(tmp_path):
    truth = RegionSet.from_circles([[10, 10, 3], [40, 40, 8]], image_shape=(64, 64))
    pred = RegionSet.from_circles([[40, 40, 8]], image_shape=(64, 64))
    by_area = stratify_by_size(truth, pred, bins=[0, 10, 20])
    assert by_area["n_true"].tolist() == [1, 1]
    # The mask sizes of a box method's particles: both in the upper bin, one of them found.
    given = stratify_by_size(truth, pred, bins=[0, 10, 20], true_diameters=[[15.0, 12.0]])
    assert given["n_true"].tolist() == [0, 2] and given["matched_true"].tolist() == [0, 1]
    from lipobench.metrics import MetricInputError

    with pytest.raises(MetricInputError, match="1 true diameters for 2 true regions"):
        stratify_by_size(truth, pred, bins=3, true_diameters=[[15.0]])


# ---------------------------------------------------------------------------- published


@pytest.mark.parametrize("name, figures", [
    ("lipopose_cv", ["lipopose_merge_thresholds.png", "precision_recall_vs_iou.png"]),
    ("paper21", ["precision_recall_vs_iou.png",
                 *(f"precision_recall_vs_iou_{pair}.png"
                   for pair in ("cellpose_vs_cryolo", "cellpose_vs_topaz", "cryolo_vs_topaz"))]),
])
def test_published_results_still_plot(name, figures, tmp_path, capsys):
    """They keep their tables only: the figures drawn from the table are drawn, with a note."""
    assert main(["plot", str(PUBLISHED / name), "--out", str(tmp_path), "--format", "png"]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(figures)
    assert "holds no prediction files" in captured.err and "Traceback" not in captured.err


def test_published_results_still_compare(capsys):
    folder = PUBLISHED / "lipopose_cv"
    assert main(["compare", str(folder), "cellpose-39375cbb22",
                 "lipopose: merge=instances, until=20"]) == 0
    printed = capsys.readouterr().out
    assert "B: lipopose-240ed2194e (lipopose: merge=instances, until=20): F1 0.890" in printed
    assert "verdict: no significant difference at 95 %" in printed


def test_missing_run_files_are_their_own_error_not_a_message_to_match(tmp_path):
    import shutil

    shutil.copy(PUBLISHED / "paper21" / "results.parquet", tmp_path)
    record = json.loads((PUBLISHED / "paper21" / "run.json").read_text())
    (tmp_path / "run.json").write_text(json.dumps({**record, "dataset": str(tmp_path / "gone")}))
    folder = open_results(tmp_path)
    row = folder.ok.iloc[0]
    with pytest.raises(RunFilesMissing):
        folder.predictions(row["prediction_file"])
    with pytest.raises(RunFilesMissing, match="no longer exists"):
        folder.micrograph(row["image"])
