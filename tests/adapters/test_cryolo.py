"""The crYOLO adapter: lookup, file handling in crYOLO's real formats, and orchestration.

The fast orchestration tests here run against tests/adapters/fake_cryolo_for_tests/, a TEST
DOUBLE of crYOLO's two scripts that checks the configuration it is given and writes CBOX files
in crYOLO 1.9's layout. The same paths run against the real crYOLO 1.9.9, and its row
convention is checked with crYOLO's own parser and writer, in test_cryolo_real.py.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lipobench.adapters.cryolo import BIN_ENV, CryoloAdapter, find_cryolo, read_predictions
from lipobench.cli import main
from lipobench.errors import ToolFailedError, ToolUnavailableError, UserError
from lipobench.formats import cryolo_flips_rows, read_box, read_cbox
from lipobench.micrograph import Micrograph
from lipobench.plugins import load_registry
from lipobench.regions import RegionKind
from lipobench.testing import check_adapter, make_test_micrographs

HERE = Path(__file__).parent
FAKE = HERE / "fake_cryolo_for_tests"
DATA = HERE / "data"
# Vendored copies of ../shared/reference/{repic,empiar10017}/ (licences beside them).
REPIC = HERE.parent / "data" / "formats" / "Falcon_2012_06_12-14_33_35_0.cryolo.box"
CENTRES = HERE.parent / "data" / "formats" / "Falcon_2012_06_12-14_33_35_0.csv"
FALCON_SHAPE = (4096, 4096)


@pytest.fixture
def no_cryolo(tmp_path, monkeypatch):
    """An environment where crYOLO is nowhere: empty PATH, no env var, no user config."""
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(BIN_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


@pytest.fixture
def fake_bin(no_cryolo):
    """The fake scripts, copied with this interpreter in their shebang (portable)."""
    folder = no_cryolo / "fake_env" / "bin"
    folder.mkdir(parents=True)
    for script in FAKE.glob("cryolo_*.py"):
        text = script.read_text().split("\n", 1)[1]
        target = folder / script.name
        target.write_text(f"#!{sys.executable}\n{text}")
        target.chmod(0o755)
    return folder


# ---------------------------------------------------------------- finding crYOLO
def test_absent_cryolo_is_unavailable_with_reason_and_fix(no_cryolo):
    available = CryoloAdapter().availability()
    assert not available.ok
    assert "not on PATH" in available.reason and BIN_ENV in available.reason
    assert "lipobench tools install cryolo" in available.fix and "Python 3.7" in available.fix
    assert BIN_ENV in available.fix
    assert "config.toml" in available.fix


def test_missing_tool_fails_before_any_work(no_cryolo):
    workdir = no_cryolo / "native"
    workdir.mkdir()
    with pytest.raises(ToolUnavailableError, match=f"not on PATH.*{BIN_ENV}"):
        CryoloAdapter().to_native(make_test_micrographs(1), workdir)
    assert list(workdir.iterdir()) == []


def test_wrong_configured_folder_is_named_with_its_source(no_cryolo, monkeypatch):
    monkeypatch.setenv(BIN_ENV, str(no_cryolo))
    available = CryoloAdapter().availability()
    assert not available.ok
    assert str(no_cryolo) in available.reason and f"${BIN_ENV}" in available.reason


def test_lookup_order_option_config_env_path(fake_bin, no_cryolo, monkeypatch):
    elsewhere = no_cryolo / "elsewhere"
    shutil.copytree(fake_bin, elsewhere)
    monkeypatch.setenv("PATH", str(elsewhere))
    assert find_cryolo() == (elsewhere, "PATH")
    monkeypatch.setenv(BIN_ENV, str(fake_bin))
    assert find_cryolo() == (fake_bin, f"${BIN_ENV}")
    config = no_cryolo / "config" / "lipobench" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[tools.cryolo]\nbin_dir = "{elsewhere}"\n')
    assert find_cryolo()[0] == elsewhere
    assert find_cryolo(fake_bin)[0] == fake_bin
    config.write_text("[tools.cryolo\n")
    with pytest.raises(UserError, match="config.toml: not valid TOML"):
        find_cryolo()


def test_version_is_read_from_the_environment_metadata(fake_bin):
    site = fake_bin.parent / "lib" / "python3.8" / "site-packages" / "cryolo-1.9.9.dist-info"
    site.mkdir(parents=True)
    available = CryoloAdapter(bin_dir=fake_bin).availability()
    assert available.ok and available.tool_version == "crYOLO 1.9.9"


def test_options_are_validated_through_the_registry():
    registry = load_registry(disable_plugins=True)
    assert isinstance(registry.get("cryolo", bin_dir="/x", num_cpu=2), CryoloAdapter)
    with pytest.raises(UserError, match="num_cpu"):
        registry.get("cryolo", num_cpu=0)
    with pytest.raises(UserError, match="unknown option 'bindir'"):
        registry.get("cryolo", bindir="/x")


# ---------------------------------------------------------------- crYOLO's real formats
def _nearest_distances(centres, truth):
    d = np.hypot(centres[:, None, 0] - truth[None, :, 0], centres[:, None, 1] - truth[None, :, 1])
    return d.min(axis=1)


def test_real_cryolo_picks_on_mrc_land_on_the_jpg_annotations_after_one_flip():
    # REPIC ran crYOLO on the MRC: by crYOLO's rule its y is then the row of mrcfile's array.
    # CryoSegNet's JPG (where the centres were annotated) is that array upside down.
    truth = pd.read_csv(CENTRES)
    truth_rc = truth[["Y-Coordinate", "X-Coordinate"]].to_numpy(float)
    in_mrc = read_box(REPIC, image_shape=FALCON_SHAPE,
                      flip_rows=cryolo_flips_rows("Falcon_2012_06_12-14_33_35_0.mrc"))
    assert len(in_mrc) == 719 and in_mrc.scores is not None
    in_jpg = in_mrc.centroids() * [-1, 1] + [FALCON_SHAPE[0], 0]
    near_jpg = (_nearest_distances(in_jpg, truth_rc) < 27).mean()
    near_mrc = (_nearest_distances(in_mrc.centroids(), truth_rc) < 27).mean()
    assert near_jpg > 0.8 > 0.2 > near_mrc


def test_cryolo19_cbox_fixture_matches_the_box_file_in_both_conventions():
    for flip in (True, False):
        from_cbox = read_cbox(DATA / "Falcon_2012_06_12-14_33_35_0.cbox",
                              image_shape=FALCON_SHAPE, flip_rows=flip)
        from_box = read_box(DATA / "Falcon_2012_06_12-14_33_35_0.box",
                            image_shape=FALCON_SHAPE, flip_rows=flip)
        assert np.allclose(from_cbox.boxes, from_box.boxes)
        assert np.allclose(from_cbox.scores, from_box.scores, atol=1e-6)
    first = read_cbox(DATA / "Falcon_2012_06_12-14_33_35_0.cbox", image_shape=FALCON_SHAPE,
                      flip_rows=True).boxes[0]
    # x=2889, y=3885, 180 px, read as rows counted from the bottom edge (TIFF/PNG/JPEG input).
    assert first.tolist() == [4096 - 3885 - 180, 2889, 4096 - 3885, 2889 + 180]


def test_predictions_follow_the_image_format_row_convention(fake_bin, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "as_mrc.mrc").write_bytes(b"")
    (images / "as_tif.tif").write_bytes(b"")
    weights = tmp_path / "w.h5"
    weights.write_text(json.dumps({"box_size": 20}))
    from lipobench.toolrun import run_tool

    run_tool([fake_bin / "cryolo_predict.py", "-c", "x", "-w", weights, "-i", images,
              "-o", tmp_path / "out", "-t", "0.0"], log_path=tmp_path / "log")
    paths = {"as_mrc": images / "as_mrc.mrc", "as_tif": images / "as_tif.tif"}
    regions = read_predictions(tmp_path / "out" / "CBOX", paths,
                               {name: (128, 128) for name in paths})
    expected = [[22, 30, 42, 50], [70, 80, 90, 100]]  # centres (32, 40) and (80, 90)
    assert regions["as_mrc"].boxes.tolist() == expected == regions["as_tif"].boxes.tolist()


# ---------------------------------------------------------------- orchestration (fake crYOLO)
def _micrographs():
    return make_test_micrographs(2, shape=(128, 128), radius=10)


def _trained(fake_bin, tmp_path, **params):
    adapter = CryoloAdapter(bin_dir=fake_bin)
    native = adapter.to_native(_micrographs(), tmp_path / "native")
    model = adapter.train(native, {"nb_epoch": 1, **params}, tmp_path / "train")
    return adapter, model


def test_train_writes_config_and_square_boxes_and_strips_pythonpath(fake_bin, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    adapter, model = _trained(fake_bin, tmp_path, box_size=24)
    assert Path(model).name == "cryolo_model.h5" and Path(model).is_file()
    config = json.loads((tmp_path / "train" / "config.json").read_text())
    assert config["model"]["anchors"] == [24, 24] and config["train"]["nb_epoch"] == 1
    assert config["model"]["filter"][0] == 0.1
    boxes = read_box(tmp_path / "train" / "annotations" / "conformance_0.box",
                     image_shape=(128, 128))
    assert len(boxes) > 0 and set(np.unique(boxes.boxes[:, 2] - boxes.boxes[:, 0])) == {24.0}
    log = (tmp_path / "train" / "cryolo_train.log").read_text()
    assert "PYTHONPATH=<unset>" in log and "-w 5 -e 10 --seed 10 -nc" in log
    # 128 px micrographs: the network input is 128, never crYOLO's upscaling 1024.
    assert config["model"]["input_size"] == 128
    assert config["other"]["log_path"] == str(tmp_path / "train" / "logs")


def test_default_box_size_is_the_median_particle_side(fake_bin, tmp_path):
    _trained(fake_bin, tmp_path)
    side = json.loads((tmp_path / "train" / "config.json").read_text())["model"]["anchors"][0]
    truths = [m.truth.to_boxes().boxes for m in _micrographs()]
    sides = np.concatenate([np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) for b in truths])
    assert side == round(float(np.median(sides)))


def test_predict_once_then_threshold_offline(fake_bin, tmp_path, monkeypatch):
    adapter, model = _trained(fake_bin, tmp_path, box_size=20)
    micrographs = _micrographs()
    predictions = adapter.predict(model, micrographs, {}, tmp_path / "predict")
    assert [p.kind for p in predictions] == [RegionKind.BOX] * 2
    assert predictions[0].boxes.tolist() == [[22, 30, 42, 50], [70, 80, 90, 100]]
    assert predictions[0].scores.tolist() == pytest.approx([0.2, 0.7])
    kept = adapter.select(predictions[0], {"confidence": 0.5})
    assert kept.boxes.tolist() == [[70, 80, 90, 100]]
    assert "-t 0.0 --write_empty" in (tmp_path / "predict" / "cryolo_predict.log").read_text()
    # The finished output is reused: a crashing crYOLO is never started again.
    monkeypatch.setenv("FAKE_CRYOLO_CRASH", "1")
    again = adapter.predict(model, micrographs, {}, tmp_path / "predict")
    assert again[1].boxes.tolist() == predictions[1].boxes.tolist()


def test_crashing_training_names_its_log(fake_bin, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CRYOLO_CRASH", "1")
    with pytest.raises(ToolFailedError) as excinfo:
        _trained(fake_bin, tmp_path)
    log = tmp_path / "train" / "cryolo_train.log"
    assert excinfo.value.log_path == log
    assert str(log) in str(excinfo.value) and "exited with code 1" in str(excinfo.value)
    assert "ResourceExhaustedError" in log.read_text()


def test_crashing_prediction_names_its_log_and_leaves_no_output(fake_bin, tmp_path, monkeypatch):
    adapter, model = _trained(fake_bin, tmp_path)
    monkeypatch.setenv("FAKE_CRYOLO_CRASH", "1")
    with pytest.raises(ToolFailedError, match=r"exited with code 139; see log .*cryolo_predict"):
        adapter.predict(model, _micrographs(), {}, tmp_path / "predict")
    assert not (tmp_path / "predict" / "cryolo_out").exists()


def test_malformed_cbox_is_reported_with_path_and_line(fake_bin, tmp_path, monkeypatch):
    adapter, model = _trained(fake_bin, tmp_path, box_size=20)
    monkeypatch.setenv("FAKE_CRYOLO_MALFORMED", "1")
    with pytest.raises(UserError, match=r"conformance_0\.cbox: line \d+: 'not-a-number'"):
        adapter.predict(model, _micrographs(), {}, tmp_path / "predict")


def test_missing_cbox_for_an_image_names_the_log(fake_bin, tmp_path, monkeypatch):
    adapter, model = _trained(fake_bin, tmp_path)
    monkeypatch.setenv("FAKE_CRYOLO_SKIP", "conformance_1")
    with pytest.raises(ToolFailedError, match=r"no conformance_1\.cbox.*see log .*predict\.log"):
        adapter.predict(model, _micrographs(), {}, tmp_path / "predict")


def test_training_needs_ground_truth(fake_bin, tmp_path):
    bare = Micrograph("bare", np.zeros((32, 32), np.float32))
    with pytest.raises(UserError, match="'bare' has no ground truth"):
        CryoloAdapter(bin_dir=fake_bin).to_native([bare], tmp_path)


def test_conformance_with_the_fake(fake_bin, tmp_path):
    selected = check_adapter(CryoloAdapter(bin_dir=fake_bin), tmp_path)
    # test_parameters keep confidence 0.1: both fixed picks (0.2 and 0.7) survive.
    assert [len(r) for r in selected] == [2, 2, 2]


# ---------------------------------------------------------------- command line
def test_doctor_and_adapters_explain_missing_cryolo(no_cryolo, monkeypatch, capsys):
    monkeypatch.setenv("LIPOBENCH_DISABLE_PLUGINS", "1")
    assert main(["doctor", "cryolo"]) == 0
    out = capsys.readouterr().out
    assert "cryolo: unavailable" in out and "reason: crYOLO not found" in out
    assert "fix: run `lipobench tools install cryolo`" in out and "torch" in out
    assert main(["adapters"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("cryolo"))
    assert line.split()[:4] == ["cryolo", "box", "lipobench", "0.1.0"]
    assert "unavailable: crYOLO not found" in line


def test_doctor_reports_a_configured_cryolo(fake_bin, monkeypatch, capsys):
    monkeypatch.setenv(BIN_ENV, str(fake_bin))
    assert main(["doctor", "cryolo", "log"]) == 0
    out = capsys.readouterr().out
    assert "cryolo: ok" in out and "log: ok (scikit-image" in out


def test_doctor_unknown_adapter_lists_known_ones(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["doctor", "cryollo"])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lipobench: error: unknown method 'cryollo'") and "cryolo" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ---------------------------------------------------------------- parameters (one schema)
def test_parameters_come_from_the_schema_with_defaults_and_help():
    params = CryoloAdapter.parameters
    assert params["architecture"].grid == ("PhosaurusNet",)
    assert params["input_size"].stage.value == "train" and "multiple of 32" in params["input_size"].help
    assert params["confidence"].stage.value == "select"


@pytest.mark.parametrize("params, key", [
    ({"nb_epoch": -3}, "nb_epoch"),
    ({"input_size": 100}, "input_size"),
    ({"architecture": "ResNet"}, "architecture"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"epochs": 3}, "epochs"),
])
def test_bad_train_parameters_are_one_user_error_naming_the_key(fake_bin, tmp_path, params, key):
    adapter = CryoloAdapter(bin_dir=fake_bin)
    native = adapter.to_native(_micrographs(), tmp_path / "native")
    with pytest.raises(UserError, match=f"cryolo train parameter '{key}'"):
        adapter.train(native, params, tmp_path / "train")
    assert not (tmp_path / "train").exists()


def test_starting_weights_must_be_an_h5_file(fake_bin, tmp_path):
    adapter = CryoloAdapter(bin_dir=fake_bin)
    native = adapter.to_native(_micrographs(), tmp_path / "native")
    with pytest.raises(UserError, match=r"pretrained_weights .*missing\.h5: not an \.h5 model"):
        adapter.train(native, {"pretrained_weights": str(tmp_path / "missing.h5")},
                      tmp_path / "train")
    with pytest.raises(UserError, match="fine_tune = true needs pretrained_weights"):
        adapter.train(native, {"fine_tune": True}, tmp_path / "train")
    start = tmp_path / "general.h5"
    start.write_text("weights")
    adapter.train(native, {"pretrained_weights": str(start), "fine_tune": True},
                  tmp_path / "train")
    config = json.loads((tmp_path / "train" / "config.json").read_text())
    assert config["train"]["pretrained_weights"] == str(start)
    assert "--fine_tune" in (tmp_path / "train" / "cryolo_train.log").read_text()
    assert adapter.model_info(tmp_path / "train" / "cryolo_model.h5")["init"] == \
        "weights general.h5"


def test_prediction_writes_its_own_config_and_only_into_its_workdir(fake_bin, tmp_path):
    adapter, model = _trained(fake_bin, tmp_path, box_size=20)
    before = sorted(p.relative_to(tmp_path / "train") for p in (tmp_path / "train").rglob("*"))
    adapter.predict(model, _micrographs(), {}, tmp_path / "predict")
    config = json.loads((tmp_path / "predict" / "config.json").read_text())
    assert config["model"]["filter"] == [0.1, str(tmp_path / "predict" / "filtered")]
    assert config["other"]["log_path"] == str(tmp_path / "predict" / "logs")
    assert "train" not in config
    assert f"-c {tmp_path / 'predict' / 'config.json'}" in \
        (tmp_path / "predict" / "cryolo_predict.log").read_text()
    after = sorted(p.relative_to(tmp_path / "train") for p in (tmp_path / "train").rglob("*"))
    assert after == before


def test_train_defaults_for_cryolo_without_cryolo_is_one_line_before_any_work(no_cryolo,
                                                                               capsys):
    from lipobench.testing import assert_user_error, run_cli

    code, _, err = run_cli(["train-defaults", "--tool", "cryolo", "--work-dir",
                            no_cryolo / "work", "--out", no_cryolo / "models"], capsys)
    assert_user_error(code, err, "--tool cryolo: crYOLO not found")
    assert "lipobench tools install cryolo" in err
    assert not (no_cryolo / "work").exists() and not (no_cryolo / "models").exists()


def test_default_starting_weights_without_a_trained_default_say_how_to_make_one(
        fake_bin, tmp_path, monkeypatch):
    monkeypatch.setenv("LIPOBENCH_USER_MODELS_DIR", str(tmp_path / "none"))
    adapter = CryoloAdapter(bin_dir=fake_bin)
    native = adapter.to_native(_micrographs(), tmp_path / "native")
    with pytest.raises(ToolUnavailableError, match="no default cryolo model .*train-defaults"):
        adapter.train(native, {"pretrained_weights": "default"}, tmp_path / "train")
