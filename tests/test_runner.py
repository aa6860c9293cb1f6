"""The runner: tasks run once each, resume after SIGKILL, failures and missing tools recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lipobench.adapters.base import Adapter, Availability, Parameter, Stage
from lipobench.data import write_dataset
from lipobench.errors import ToolFailedError
from lipobench.run.executors import LocalExecutor
from lipobench.experiment import load_experiment
from lipobench.micrograph import Micrograph
from lipobench.registry import AdapterRegistry
from lipobench.regions import RegionKind, RegionSet
from lipobench.report.results import COLUMNS
from lipobench.run import run_experiment

MARKERS_ENV = "LIPOBENCH_TEST_MARKERS"
SLEEP_ENV = "LIPOBENCH_TEST_SLEEP"


# ---------------------------------------------------------------------------- test doubles


def _mark(stage: str, params) -> None:
    folder = os.environ.get(MARKERS_ENV)
    if folder:
        name = f"{stage}-{json.dumps(dict(params), sort_keys=True)}-{uuid.uuid4().hex}"
        (Path(folder) / name.replace("/", "_")).write_text("")


class DiskDetectorForTests(Adapter):
    """Test double: 'predicts' circles at the true centres, with the radius it is given.

    Every train and predict call leaves a marker file, so tests can count tool runs.
    """

    name = "diskdetect"
    region_kind = RegionKind.CIRCLE
    parameters = {
        "shrink": Parameter(Stage.TRAIN, (1.0,), "recorded in the model, otherwise unused"),
        "radius": Parameter(Stage.PREDICT, (9.0,), "radius of every predicted circle"),
        "min_score": Parameter(Stage.SELECT, (0.0,), "keep circles scoring at least this"),
    }

    def availability(self) -> Availability:
        return Availability(True, tool_version="disk 1.0")

    def to_native(self, micrographs, workdir: Path) -> Path:
        path = Path(workdir) / "truth.json"
        path.write_text(json.dumps({m.name: len(m.truth) for m in micrographs}))
        return path

    def train(self, native: Path, params, workdir: Path):
        _mark("train", params)
        model = Path(workdir) / "model.json"
        model.write_text(json.dumps({"shrink": params["shrink"],
                                     "counts": json.loads(Path(native).read_text())}))
        return model

    def predict(self, model, micrographs, params, workdir: Path):
        assert json.loads(Path(model).read_text())["shrink"] > 0
        _mark("predict", params)
        time.sleep(float(os.environ.get(SLEEP_ENV, "0")))
        out = []
        for micrograph in micrographs:
            centres = micrograph.truth.centroids()
            circles = np.column_stack([centres, np.full(len(centres), params["radius"])])
            out.append(RegionSet.from_circles(circles, image_shape=micrograph.shape,
                                              scores=np.arange(len(centres), dtype=float)))
        return out

    def select(self, regions, params):
        return regions.select(regions.scores >= params["min_score"])


class CrashingDetectorForTests(DiskDetectorForTests):
    """Test double whose tool fails in predict, leaving a log like a real tool."""

    name = "crashdetect"

    def predict(self, model, micrographs, params, workdir: Path):
        _mark("crash", params)
        log = Path(workdir) / "tool.log"
        log.write_text("segfault in the detector core\n")
        raise ToolFailedError("detector exited with code 139", log_path=log)


class MissingToolForTests(DiskDetectorForTests):
    """Test double for a tool that is not installed."""

    name = "missingtool"

    def availability(self) -> Availability:
        return Availability(False, reason="missingtool is not installed",
                            fix="install it, or set bin_dir under [tools.missingtool]")


class SharedTrainingDetectorForTests(DiskDetectorForTests):
    """Test double that reuses diskdetect's training, as LipoPose reuses Cellpose's."""

    name = "sharedtrain"
    trains_as = "diskdetect"

    def train(self, native: Path, params, workdir: Path):
        raise AssertionError("the runner must train this adapter as diskdetect")


def make_registry() -> AdapterRegistry:
    registry = AdapterRegistry()
    for cls in (DiskDetectorForTests, CrashingDetectorForTests, MissingToolForTests,
                SharedTrainingDetectorForTests):
        registry.register(cls, package="tests")
    return registry


def make_dataset(root: Path, n_images: int = 4) -> Path:
    """Tiny disks: image i has three particles of radius 8 + i."""
    rng = np.random.default_rng(0)
    micrographs = []
    yy, xx = np.mgrid[:96, :96]
    for i in range(n_images):
        image = np.ones((96, 96), np.float32)
        labels = np.zeros((96, 96), np.int32)
        for k, (r, c) in enumerate([(25, 25), (25, 70), (70, 40)]):
            inside = (yy - r) ** 2 + (xx - c) ** 2 < (8 + i) ** 2
            image[inside] = 0.2
            labels[inside] = k + 1
        image += rng.normal(0, 0.05, image.shape).astype(np.float32)
        micrographs.append(Micrograph(f"m{i}", image, 1.0, RegionSet.from_labels(labels)))
    names = [m.name for m in micrographs]
    half = n_images // 2
    return write_dataset(root, micrographs, name="tiny",
                         split={"train": names[:half], "test": names[half:]})


def markers(folder: Path, stage: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(stage + "-"))


def tiny_workspace(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """The tiny dataset under tmp_path and a folder where the test doubles leave markers."""
    make_dataset(tmp_path / "tiny")
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(marker_dir))
    return tmp_path, marker_dir


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    return tiny_workspace(tmp_path, monkeypatch)


def experiment_file(folder: Path, body: str, *, header: str = "") -> Path:
    path = folder / "exp.toml"
    path.write_text(f'{header}iou_thresholds = [0.5, 0.9]\n[dataset]\npath = "tiny"\n{body}')
    return path


def run(path: Path, out: Path, registry=None, **kwargs):
    registry = registry or make_registry()
    experiment = load_experiment(path, registry)
    return run_experiment(experiment, out=out, executor=LocalExecutor(), registry=registry,
                          **kwargs)


# ---------------------------------------------------------------------------- tests


def test_each_model_trains_once_and_each_prediction_runs_once(workspace):
    folder, marker_dir = workspace
    path = experiment_file(folder, "[methods.diskdetect]\nshrink = [1.0, 2.0]\n"
                                   "radius = [9.0, 12.0]\nmin_score = [0.0, 1.0, 2.0]\n")
    result = run(path, folder / "out")
    assert len(markers(marker_dir, "train")) == 2        # shrink
    assert len(markers(marker_dir, "predict")) == 4      # shrink x radius; SELECT reuses
    table = result.table
    assert list(table.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert table["config_id"].nunique() == 12
    assert len(table) == 12 * 2 * 2                      # configs x test images x thresholds
    assert set(table["status"]) == {"ok"}
    assert (table["tp"] + table["fn"] == table["n_true"]).all()
    assert (table["tp"] + table["fp"] == table["n_pred"]).all()
    # min_score keeps the circles scored 0, 1, 2 (3 per image), 1 and 2, or 2
    by_select = table.groupby("param.min_score")["n_pred"].first().to_dict()
    assert by_select == {0.0: 3, 1.0: 2, 2.0: 1}
    assert (table["tool_version"] == "disk 1.0").all()
    assert not table["cached"].any()
    # the selected predictions are kept per configuration, fold and image
    for relative in table["prediction_file"].unique():
        assert (folder / "out" / relative).is_file()

    again = run(path, folder / "out")
    assert len(markers(marker_dir, "train")) == 2
    assert len(markers(marker_dir, "predict")) == 4
    assert again.table["cached"].all()
    assert again.counts == {"done": 6, "cached": 6, "failed": 0}
    keep = [c for c in table.columns if c not in ("cached",)]
    pd.testing.assert_frame_equal(again.table[keep], table[keep])


def test_an_adapter_that_trains_as_another_shares_its_model(workspace):
    folder, marker_dir = workspace
    path = experiment_file(folder, "[methods.diskdetect]\nradius = [9.0]\n"
                                   "[methods.sharedtrain]\nradius = [12.0]\n")
    result = run(path, folder / "out")
    assert set(result.table["status"]) == {"ok"}
    assert len(markers(marker_dir, "train")) == 1      # one model for both methods
    assert len(markers(marker_dir, "predict")) == 2
    assert set(result.table["method"]) == {"diskdetect", "sharedtrain"}


def test_summary_is_the_micro_average(workspace):
    folder, _ = workspace
    path = experiment_file(folder, "[methods.diskdetect]\nradius = [7.0, 10.0]\n"
                                   "min_score = [0.0, 1.0]\n")
    result = run(path, folder / "out")
    summary = pd.read_csv(folder / "out" / "summary.csv")
    assert len(summary) == 4 * 2
    for _, row in summary.iterrows():
        rows = result.table[(result.table["config_id"] == row["config_id"])
                            & (result.table["iou_threshold"] == row["iou_threshold"])]
        tp, fp, fn = rows["tp"].sum(), rows["fp"].sum(), rows["fn"].sum()
        assert row["tp"] == tp and row["images"] == 2
        assert row["precision"] == pytest.approx(tp / (tp + fp))
        assert row["recall"] == pytest.approx(tp / (tp + fn))
        assert row["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    parquet = pd.read_parquet(folder / "out" / "results.parquet")
    csv = pd.read_csv(folder / "out" / "results.csv")
    assert len(parquet) == len(csv) == len(result.table)


def test_derived_values_resolve_per_fold_and_are_recorded(workspace):
    folder, marker_dir = workspace
    path = experiment_file(
        folder, '[split]\nmode = "kfold"\nk = 2\nseed = 1\n[methods.diskdetect]\n'
                'radius = { derive = "radius", statistic = "median" }\n')
    result = run(path, folder / "out")
    record = json.loads((folder / "out" / "run.json").read_text())
    (config_id,) = record["configurations"]
    resolved = record["configurations"][config_id]["resolved"]
    folds = record["folds"]
    assert len(folds) == 2 and sorted(folds[0]["test"] + folds[1]["test"]) == \
        ["m0", "m1", "m2", "m3"]
    from lipobench.data import load_dataset
    from lipobench.experiment import Quantity, training_statistics

    dataset = load_dataset(folder / "tiny")
    for fold in folds:
        truths = [m.truth for m in dataset.micrographs(fold["train"])]
        expected = float(np.median(training_statistics(truths)[Quantity.RADIUS]))
        assert resolved[str(fold["index"])]["radius"] == pytest.approx(expected, abs=1e-6)
        rows = result.table[result.table["fold"] == fold["index"]]
        assert set(rows["image"]) == set(fold["test"])
        assert rows["param.radius"].unique().tolist() == pytest.approx([expected], abs=1e-6)
    spec = json.loads(result.table["param_spec"].iloc[0])
    assert spec["radius"]["derive"] == "radius"
    # two folds train two models (different training images)
    assert len(markers(marker_dir, "train")) == 2


def test_run_json_says_what_the_run_ran_on_and_how_long_it_took(workspace):
    import lipobench

    folder, _ = workspace
    path = experiment_file(folder, "[methods.diskdetect]\n")
    before = time.time()
    run(path, folder / "out")
    took = time.time() - before
    record = json.loads((folder / "out" / "run.json").read_text())
    env = record["environment"]
    assert env["packages"]["lipobench"] == lipobench.__version__
    assert env["packages"]["numpy"] == np.__version__
    assert set(env["tools"]) == {"diskdetect"}
    assert env["cpu_count"] >= 1 and env["python"].startswith("3.")
    assert 0 <= record["wall_seconds"] <= took + 0.5
    import calendar

    started = calendar.timegm(time.strptime(record["started"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(started - before) < 5


def test_crash_is_recorded_with_its_log_and_others_still_run(workspace, capsys):
    folder, marker_dir = workspace
    path = experiment_file(folder, "[methods.crashdetect]\nmin_score = [0.0, 1.0]\n"
                                   "[methods.diskdetect]\n")
    result = run(path, folder / "out")
    table = result.table
    crashed = table[table["method"] == "crashdetect"]
    assert len(crashed) == 2 and set(crashed["status"]) == {"failed"}
    assert crashed["error"].str.contains("detector exited with code 139").all()
    assert crashed["precision"].isna().all()
    log = folder / "out" / crashed["log_file"].iloc[0]
    text = log.read_text()
    assert "ToolFailedError" in text and "segfault in the detector core" in text
    assert set(table[table["method"] == "diskdetect"]["status"]) == {"ok"}
    assert result.counts["failed"] == 1
    assert "failed" in capsys.readouterr().err
    summary = pd.read_csv(folder / "out" / "summary.csv")
    assert set(summary[summary["method"] == "crashdetect"]["status"]) == {"failed"}
    # failures are not cached: the next run retries the tool
    run(path, folder / "out")
    assert len(markers(marker_dir, "crash")) == 2


def test_cli_exit_code_is_1_when_a_configuration_failed(workspace, monkeypatch, capsys):
    import lipobench.plugins
    from lipobench.cli import main

    folder, _ = workspace
    monkeypatch.setattr(lipobench.plugins, "load_registry", lambda **kwargs: make_registry())
    failing = experiment_file(folder, "[methods.crashdetect]\n")
    assert main(["run", str(failing), "--out", str(folder / "a")]) == 1
    assert "1 failed" in capsys.readouterr().out
    working = experiment_file(folder, "[methods.diskdetect]\n[methods.missingtool]\n")
    assert main(["run", str(working), "--out", str(folder / "b")]) == 0
    assert (folder / "b" / "results.parquet").is_file()
    # the closing table names each method's best configuration, or why it did not run
    out = capsys.readouterr().out
    assert "best configuration per method" in out
    assert "missingtool" in out and "unavailable" in out
    assert "1.000" in out  # diskdetect predicts every particle exactly


def test_unavailable_tool_is_reported_and_others_run(workspace, capsys):
    folder, marker_dir = workspace
    path = experiment_file(folder, "[methods.missingtool]\nradius = [5.0, 6.0]\n"
                                   "[methods.diskdetect]\n")
    result = run(path, folder / "out")
    missing = result.table[result.table["method"] == "missingtool"]
    assert len(missing) == 2 and set(missing["status"]) == {"unavailable"}
    assert missing["error"].str.contains("not installed; install it").all()
    assert missing["tp"].isna().all() and missing["image"].eq("").all()
    assert markers(marker_dir, "predict") and all('"radius": 9.0' in m for m in
                                                  markers(marker_dir, "predict"))
    err = capsys.readouterr().err
    assert "missingtool: unavailable: missingtool is not installed" in err
    assert "bin_dir under [tools.missingtool]" in err  # printed as is, not as rich markup
    summary = pd.read_csv(folder / "out" / "summary.csv")
    assert set(summary[summary["method"] == "missingtool"]["status"]) == {"unavailable"}


def test_unlabelled_dataset_is_refused_before_any_task(tmp_path, capsys, monkeypatch):
    import lipobench.plugins
    from lipobench.cli import main

    micrographs = [Micrograph(f"u{i}", np.zeros((32, 32), np.float32), 1.0) for i in range(3)]
    write_dataset(tmp_path / "tiny", micrographs)
    monkeypatch.setattr(lipobench.plugins, "load_registry", lambda **kwargs: make_registry())
    path = experiment_file(tmp_path, '[split]\nmode = "kfold"\nk = 3\n[methods.diskdetect]\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lipobench: error: ") and err.count("\n") == 1
    assert "exp.toml: dataset: " in err and "has no ground-truth masks" in err
    assert not (tmp_path / "out").exists()


def test_registry_is_built_once_per_run_in_process(workspace):
    folder, _ = workspace
    path = experiment_file(folder, "[methods.diskdetect]\nshrink = [1.0, 2.0]\n"
                                   "radius = [9.0, 12.0]\n")
    registry = make_registry()
    built = []

    def factory():
        built.append(1)
        return registry

    run(path, folder / "out", registry=registry, registry_factory=factory)
    assert len(built) == 1  # 2 train and 4 predict tasks share it
    run(path, folder / "again", registry=registry, registry_factory=factory)
    assert len(built) == 2  # a new run builds its own: it may hold other plugins


def test_train_entries_keep_the_model_not_a_copy_of_the_training_data(workspace):
    folder, _ = workspace
    path = experiment_file(folder, "[methods.diskdetect]\nshrink = [1.0]\n")
    run(path, folder / "out")
    (entry,) = (folder / "out" / "cache" / "train").iterdir()
    assert not (entry / "native").exists()
    record = json.loads((entry / "done.json").read_text())
    assert record["trained_on"] == ["m0", "m1"]
    rerun = run(path, folder / "out")  # the entry is intact without it
    assert rerun.table["cached"].all()


def test_a_new_cache_version_reruns_that_adapters_tasks_and_nothing_else(workspace,
                                                                          monkeypatch):
    folder, marker_dir = workspace
    path = experiment_file(folder, "[methods.diskdetect]\n[methods.sharedtrain]\n")
    run(path, folder / "out")
    trained, predicted = len(markers(marker_dir, "train")), len(markers(marker_dir, "predict"))
    assert (trained, predicted) == (1, 2)  # sharedtrain trains as diskdetect
    monkeypatch.setattr(SharedTrainingDetectorForTests, "cache_version", "2")
    run(path, folder / "out")
    # Only sharedtrain predicts again; the training it shares and diskdetect are cached.
    assert len(markers(marker_dir, "train")) == trained
    assert len(markers(marker_dir, "predict")) == predicted + 1
    monkeypatch.setattr(DiskDetectorForTests, "cache_version", "2")
    run(path, folder / "out")
    # diskdetect's training changed: it trains again, and both its users predict again.
    assert len(markers(marker_dir, "train")) == trained + 1
    assert len(markers(marker_dir, "predict")) == predicted + 1 + 2


def test_fresh_reruns_everything(workspace):
    folder, marker_dir = workspace
    path = experiment_file(folder, "[methods.diskdetect]\n")
    run(path, folder / "out")
    run(path, folder / "out", fresh=True)
    assert len(markers(marker_dir, "predict")) == 2


# ---------------------------------------------------------------------------- SIGKILL

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import lipobench.plugins
from test_runner import make_registry
lipobench.plugins.load_registry = lambda **kwargs: make_registry()
from lipobench.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_then_rerun_finishes_without_redoing_finished_tasks(workspace):
    folder, marker_dir = workspace
    radii = [6.0, 7.0, 8.0, 9.0, 10.0]
    path = experiment_file(folder, f"[methods.diskdetect]\nradius = {radii}\n")
    script = folder / "run_with_doubles.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    out = folder / "out"
    env = {**os.environ, SLEEP_ENV: "0.6", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(script), "run", str(path), "--out", str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    done_dir = out / "cache" / "predict"
    deadline = time.monotonic() + 120
    finished: list[Path] = []
    try:
        while time.monotonic() < deadline and process.poll() is None:
            finished = sorted(done_dir.glob("*/done.json")) if done_dir.exists() else []
            if len(finished) >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()
        process.kill()  # SIGKILL: no cleanup handler runs
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -9
    finished = sorted(done_dir.glob("*/done.json"))
    finished_radii = {json.loads(p.read_text())["params"]["radius"] for p in finished}
    assert 2 <= len(finished_radii) < len(radii)
    assert not (out / "results.parquet").exists()

    rerun = subprocess.run(command, env={**env, SLEEP_ENV: "0"}, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    table = pd.read_parquet(out / "results.parquet")
    assert table["config_id"].nunique() == len(radii)
    assert set(table["status"]) == {"ok"} and len(table) == len(radii) * 2 * 2
    calls = markers(marker_dir, "predict")
    for radius in radii:
        count = sum(f'"radius": {radius}' in m for m in calls)
        if radius in finished_radii:
            assert count == 1, (radius, calls)  # finished before the kill: never rerun
        else:
            assert count in (1, 2), (radius, calls)  # at most the interrupted one twice
    assert len(markers(marker_dir, "train")) == 1
    cached = table.groupby("config_id")["cached"].first()
    assert int(cached.sum()) == len(finished_radii)
