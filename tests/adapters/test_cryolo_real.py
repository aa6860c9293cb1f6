"""The crYOLO adapter against the real crYOLO 1.9.9: no test double anywhere in this file.

Needs crYOLO's environment, which `make test` builds with `lipobench tools install cryolo
--if-python-available` (cached in ~/.local/share/lipobench/tools between runs). Where no
Python 3.7 exists these tests skip with the install hint; where one exists but crYOLO is not
installed they fail, so a machine that can run them never skips them silently.

The row convention is checked with crYOLO's own code (tests/adapters/cryolo_side.py, run by
crYOLO's Python): its training parser must put every box lipobench writes on a particle, and
boxes written by crYOLO's own writers must land on the particles when lipobench reads them.
The test images hold particles in their top half only, so a box whose rows are flipped lands
on background.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from lipobench.adapters.cryolo import (ENVIRONMENT, CryoloAdapter, find_cryolo, read_predictions,
                                       training_annotations)
from lipobench.data import write_dataset
from lipobench.formats import cryolo_flips_rows, read_box, read_star_centres
from lipobench.imageio import read_image, write_mrc, write_tiff
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionSet
from lipobench.testing import check_adapter, make_test_micrographs, run_cli
from lipobench.toolenv import find_python

pytestmark = pytest.mark.slow

SIDE = Path(__file__).with_name("cryolo_side.py")
SHAPE = (256, 256)
CENTRES = [(40.5, 50.5), (60.5, 180.5), (100.5, 110.5)]  # all in the top half


@pytest.fixture(scope="module")
def cryolo_bin() -> Path:
    folder, source = find_cryolo()
    if folder is None:
        python, why = find_python(ENVIRONMENT.python)
        if python is None:
            pytest.skip(f"the real-crYOLO tests need Python {ENVIRONMENT.python}: {why}; then "
                        "run `lipobench tools install cryolo`")
        pytest.fail(f"Python {ENVIRONMENT.python} is here ({python}) but crYOLO is not "
                    f"({source}): run `lipobench tools install cryolo` (make test does)")
    return folder


def _cryolo_side(cryolo_bin: Path, *args) -> dict:
    done = subprocess.run([str(cryolo_bin / "python"), str(SIDE), *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _layout() -> Micrograph:
    """Three discs of radius 14 (value 1) on 0, all in the top half."""
    rows, cols = np.indices(SHAPE)
    labels = np.zeros(SHAPE, np.int32)
    for index, (row, col) in enumerate(CENTRES, start=1):
        labels[(rows + 0.5 - row) ** 2 + (cols + 0.5 - col) ** 2 < 14 ** 2] = index
    return Micrograph("layout", (labels > 0).astype(np.float32),
                      truth=RegionSet.from_labels(labels))


def _write_image(path: Path, image: np.ndarray) -> Path:
    if path.suffix == ".mrc":
        write_mrc(path, image)
    elif path.suffix == ".tif":
        write_tiff(path, image)
    else:
        assert cv2.imwrite(str(path), (image * 255).astype(np.uint8))
    return path


# ---------------------------------------------------------------- training boxes
def test_adapter_training_boxes_lie_on_particles_in_cryolos_own_parser(cryolo_bin, tmp_path):
    adapter = CryoloAdapter(bin_dir=cryolo_bin)
    native = adapter.to_native([_layout()], tmp_path / "native")
    box_size, _ = training_annotations(native, 24, tmp_path / "annotations")
    values = _cryolo_side(cryolo_bin, "parse", native / "images" / "layout.tif",
                          tmp_path / "annotations" / "layout.box")
    assert box_size == 24 and values == {"layout.tif": [1.0, 1.0, 1.0]}


@pytest.mark.parametrize("suffix", [".mrc", ".tif", ".png"])
def test_convert_training_boxes_lie_on_particles_in_cryolos_own_parser(cryolo_bin, tmp_path,
                                                                        capsys, suffix):
    dataset = write_dataset(tmp_path / "data", [_layout()], name="layout")
    image = dataset / "images" / "layout.mrc"
    if suffix != ".mrc":
        _write_image(image.with_suffix(suffix), read_image(image)[0])
        image.unlink()
    code, _, err = run_cli(["convert", dataset, tmp_path / "out", "--to", "cryolo",
                            "--box-size", "24", "--split", "all"], capsys)
    assert code == 0, err
    values = _cryolo_side(cryolo_bin, "parse", tmp_path / "out" / "images" / f"layout{suffix}",
                          tmp_path / "out" / "annotations" / "layout.box")
    assert len(values[f"layout{suffix}"]) == 3
    assert min(values[f"layout{suffix}"]) > 0.5  # 1.0 (MRC, TIFF) or 255 (PNG): a particle


# ---------------------------------------------------------------- predictions
@pytest.mark.parametrize("suffix", [".mrc", ".tif", ".jpg"])
def test_boxes_from_cryolos_own_writers_land_on_particles(cryolo_bin, tmp_path, suffix):
    (tmp_path / "images").mkdir()
    image_path = _write_image(tmp_path / "images" / f"layout{suffix}", _layout().image)
    out = tmp_path / "out"
    assert _cryolo_side(cryolo_bin, "write", image_path, out, 24) == {"particles": 3}
    flip = cryolo_flips_rows(image_path)
    expected = np.array(CENTRES)
    cbox = read_predictions(out / "CBOX", {"layout": image_path}, {"layout": SHAPE})["layout"]
    eman = read_box(out / "EMAN" / "layout.box", image_shape=SHAPE, flip_rows=flip)
    star = read_star_centres(out / "STAR" / "layout.star", image_shape=SHAPE, flip_rows=flip)
    for centres in (cbox.centroids(), eman.centroids(), star):
        order = np.argsort(centres[:, 0] * 1000 + centres[:, 1])
        np.testing.assert_allclose(centres[order], expected, atol=1.0)
    assert cbox.scores.tolist() == pytest.approx([0.9] * 3)


# ---------------------------------------------------------------- the adapter, for real
def test_conformance_against_real_cryolo(cryolo_bin, tmp_path):
    adapter = CryoloAdapter(bin_dir=cryolo_bin)
    selected = check_adapter(adapter, tmp_path)
    assert len(selected) == 3 and all(r.scores is not None for r in selected)


def test_lipobench_run_trains_and_predicts_with_real_cryolo(cryolo_bin, tmp_path, capsys):
    micrographs = make_test_micrographs(6, shape=SHAPE, radius=14)
    names = [m.name for m in micrographs]
    dataset = write_dataset(tmp_path / "tiny", micrographs, name="tiny",
                            split={"train": names[:4], "test": names[4:]})
    experiment = tmp_path / "exp.toml"
    experiment.write_text(f"""
name = "real-cryolo"
output = "{tmp_path / 'out'}"
iou_thresholds = [0.3, 0.5]

[dataset]
path = "{dataset}"

[split]
mode = "dataset"

[methods.cryolo]
box_size = {{ derive = "box_size", statistic = "median", round_to_int = true }}
nb_epoch = 1
warmup = 0
early_stop = 1
batch_size = 2
train_times = 1
lowpass_cutoff = 0.1
confidence = [0.0, 0.4]
""")
    code, out, err = run_cli(["run", experiment], capsys)
    assert code == 0, err + out
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert set(table["status"]) == {"ok"} and set(table["method"]) == {"cryolo"}
    assert table["tool_version"].unique().tolist() == ["crYOLO 1.9.9"]
    assert table["model.init"].unique().tolist() == ["random (backbone weights not downloadable)"]
    assert table["model.input_size"].unique().tolist() == ["256"]
    # The printed summary says what budget the crYOLO rows come from.
    assert "cryolo models: box_size 28; init random (backbone weights not downloadable); " \
        "input_size 256; nb_epoch 1; training " in out
    by_confidence = table.groupby("param.confidence")["n_pred"].sum()
    assert by_confidence[0.0] > 0 and by_confidence[0.0] >= by_confidence[0.4]
    # The random-box baseline the README quotes, on these very results.
    from lipobench.metrics.chance import _main as chance

    assert chance([str(tmp_path / "out"), "--method", "cryolo"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["configuration", "picks", "P", "R", "P", "chance", "R", "chance"]
    assert len(lines) == 3 and all(line.startswith("cryolo conf=") for line in lines[1:])
    # Filtered images of the training stay in the training entry, the prediction's in its own.
    cache = tmp_path / "out" / "cache"
    trained = [p for p in cache.rglob("filtered") if (p.parent / "cryolo_model.h5").is_file()]
    predicted = [p for p in cache.rglob("filtered") if (p.parent / "cryolo_out").is_dir()]
    assert len(trained) == 1 and len(predicted) == 1
    assert sorted(f.name for f in predicted[0].rglob("*.tif")) == [f"{n}.tif" for n in names[4:]]


# ---------------------------------------------------------------- a default model to start from
def test_train_defaults_makes_a_cryolo_model_that_training_starts_from(cryolo_bin, tmp_path,
                                                                        monkeypatch):
    from lipobench import defaults, shipped
    from lipobench.adapters.cryolo import CryoloTrainParams

    out = tmp_path / "user-models"
    recipe = defaults.DefaultsRecipe(
        preset="quick", data_seed=1, n_images=3,
        cryolo=defaults.CryoloRecipe(train=CryoloTrainParams(
            nb_epoch=1, warmup=0, early_stop=1, batch_size=2, train_times=1, filter="none")))
    manifest = defaults.train_defaults(out, recipe=recipe, work_dir=tmp_path / "work",
                                       tools=("cryolo",), log=lambda _: None)
    entry = manifest["models"]["cryolo"]
    assert entry["init"].startswith("random") and entry["input_size"] == "512"
    scores = entry["validation_iou_0.5"]
    assert scores["tp"] + scores["fn"] > 0 and 0 <= scores["chance_recall"] <= 1
    monkeypatch.setenv(shipped.USER_MODELS_DIR_ENV, str(out))
    start = shipped.packaged_model("cryolo", shipped.user_models_dir())  # sha256 checked
    adapter = CryoloAdapter(bin_dir=cryolo_bin)
    native = adapter.to_native(make_test_micrographs(3, shape=SHAPE, radius=14),
                               tmp_path / "native")
    model = adapter.train(native, {**{k: v for k, v in adapter.test_parameters().items()
                                      if k != "confidence"}, "pretrained_weights": "default"},
                          tmp_path / "finetune")
    config = json.loads((tmp_path / "finetune" / "config.json").read_text())
    assert config["train"]["pretrained_weights"] == str(start)
    assert adapter.model_info(model)["init"] == "weights cryolo_default.h5"
    # crYOLO 1.9.9 prints "Random initialisation" before loading pretrained weights over it.
    assert f"Load weights:  {start}" in (tmp_path / "finetune" / "cryolo_train.log").read_text()
