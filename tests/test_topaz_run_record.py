"""The record of a run with Topaz's default detector says the downsampling that ran (4), not 1."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lipobench.adapters.topaz import TopazAdapter, _read_model_ref
from lipobench.cache import load_regions
from lipobench.defaults import read_manifest
from lipobench.errors import UserError
from lipobench.regions import RegionSet
from lipobench.registry import AdapterRegistry
from test_runner import experiment_file, make_dataset, run

SHIPPED_FACTOR = int(read_manifest()["models"]["topaz"]["downsample"])


class TopazWithoutExtractForTests(TopazAdapter):
    """Topaz's real train step (the manifest), with ``topaz extract`` replaced by one pick."""

    def predict(self, model, micrographs, params, workdir):
        _, downsample = _read_model_ref(model)
        # One pick per micrograph at a spot that depends on the factor the model runs at.
        return [RegionSet.from_circles([[8.0 * downsample, 8.0, 4.0]], image_shape=m.shape,
                                       scores=[1.0]) for m in micrographs]


def test_the_shipped_manifest_runs_the_default_detector_at_4():
    assert SHIPPED_FACTOR == 4


def test_default_detector_records_its_own_factor_in_the_model_info(tmp_path):
    adapter = TopazAdapter()
    model = adapter.train(None, {"pretrained": "default"}, tmp_path / "a")
    assert json.loads(model.read_text())["downsample"] == SHIPPED_FACTOR
    assert adapter.model_info(model) == {"detector": "topaz_default.sav",
                                         "downsample": str(SHIPPED_FACTOR)}
    same = adapter.train(None, {"pretrained": "default", "downsample": SHIPPED_FACTOR},
                         tmp_path / "b")
    assert adapter.model_info(same)["downsample"] == str(SHIPPED_FACTOR)
    # Topaz's own detectors and training run at the factor given, 1 when left out.
    shipped = adapter.train(None, {"pretrained": "resnet16_u64"}, tmp_path / "c")
    assert adapter.model_info(shipped) == {"detector": "resnet16_u64", "downsample": "1"}


def test_default_detector_refuses_another_factor(tmp_path):
    with pytest.raises(UserError, match=r"downsample .*set downsample = 4"):
        TopazAdapter().train(None, {"pretrained": "default", "downsample": 2}, tmp_path / "a")
    assert not (tmp_path / "a" / "topaz_model.json").exists()


def test_run_json_and_results_do_not_claim_downsample_1(tmp_path):
    make_dataset(tmp_path / "tiny")
    registry = AdapterRegistry()
    registry.register(TopazWithoutExtractForTests, package="tests")
    path = experiment_file(tmp_path, '[methods.topaz]\npretrained = "default"\n')
    result = run(path, tmp_path / "out", registry=registry)
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    (entry,) = record["configurations"].values()
    assert [fold["downsample"] for fold in entry["resolved"].values()] == [None]
    table = result.table
    assert table["status"].eq("ok").all()
    assert table["model.downsample"].astype(str).unique().tolist() == [str(SHIPPED_FACTOR)]
    assert pd.isna(table["param.downsample"]).all()
    assert all(json.loads(p)["downsample"] is None for p in table["params"])
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert len(summary) == 2 and summary["status"].eq("ok").all()  # IoU 0.5 and 0.9
    # The prediction ran at the recorded factor.
    prediction = load_regions(tmp_path / "out" / table["prediction_file"].iloc[0])
    assert prediction.circles[:, 0].tolist() == [8.0 * SHIPPED_FACTOR]
