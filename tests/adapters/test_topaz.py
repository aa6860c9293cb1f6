"""The Topaz adapter: coordinate conversion, native files, errors, and real CLI runs."""

import json

import numpy as np
import pytest

from lipobench.adapters.base import Stage
from lipobench.adapters.topaz import (
    MANIFEST,
    TopazAdapter,
    picks_from_topaz,
    topaz_index,
)
from lipobench.errors import ToolFailedError, UserError
from lipobench.formats import read_topaz
from lipobench.regions import RegionKind, RegionSet
from lipobench.testing import make_test_micrographs


def test_importing_the_adapter_does_not_import_topaz_or_torch(imported_by):
    assert imported_by("lipobench.adapters.topaz", ('topaz', 'torch', 'cellpose')) == []


def test_availability_reports_topaz_version():
    available = TopazAdapter().availability()
    assert available.ok, available.reason
    assert available.tool_version == "0.3.20"


@pytest.mark.parametrize("downsample, expected", [(1, [20.5, 10.5]), (4, [80.5, 40.5])])
def test_a_topaz_pick_maps_to_the_right_row_and_col(tmp_path, downsample, expected):
    path = tmp_path / "picks.txt"
    path.write_text("image_name\tx_coord\ty_coord\tscore\nmic\t10\t20\t-1.5\n")
    picks = read_topaz(path, image_shapes={"mic": (32, 32), "other": (32, 32)}, radius=1.0)
    circles = picks_from_topaz(picks["mic"], downsample=downsample, image_shape=(128, 128),
                               radius=7.0)
    assert circles.kind is RegionKind.CIRCLE and circles.image_shape == (128, 128)
    assert circles.circles.tolist() == [[*expected, 7.0]]
    assert circles.scores.tolist() == [-1.5]
    assert len(picks_from_topaz(picks["other"], downsample=downsample, image_shape=(128, 128),
                                radius=7.0)) == 0
    # and back: the original centre gives the same Topaz index
    assert topaz_index([expected], downsample=downsample).tolist() == [[20, 10]]


def test_topaz_downsampling_puts_sample_x_at_original_index_d_times_x():
    """The convention picks_from_topaz relies on, checked against Topaz's own downsample."""
    from topaz.utils.image import downsample

    rows, cols = np.indices((128, 128), dtype=np.float64)
    blob = np.exp(-((rows - 80) ** 2 + (cols - 40) ** 2) / (2 * 6.0 ** 2)).astype(np.float32)
    small = np.clip(downsample(blob, 4), 0, None)
    r, c = np.indices(small.shape)
    centre = [(small * r).sum() / small.sum(), (small * c).sum() / small.sum()]
    assert centre == pytest.approx([20.0, 10.0], abs=0.01)
    assert topaz_index([[80.5, 40.5]], downsample=4).tolist() == [[20, 10]]


def test_topaz_index_clips_into_the_downsampled_image():
    assert topaz_index([[127.9, 0.1]], downsample=4, shape=(32, 32)).tolist() == [[31, 0]]


def test_to_native_writes_mrc_images_and_truth_centroids(tmp_path):
    import mrcfile

    micrographs = make_test_micrographs(2, shape=(64, 64), radius=6)
    native = TopazAdapter().to_native(micrographs, tmp_path)
    with mrcfile.open(native / "images" / "conformance_1.mrc") as f:
        np.testing.assert_array_equal(f.data, micrographs[1].image)
    targets = read_topaz(native / "targets.txt", radius=1.0,
                         image_shapes={m.name: m.shape for m in micrographs})
    for m in micrographs:
        expected = np.floor(m.truth.centroids()) + 0.5
        np.testing.assert_array_equal(targets[m.name].circles[:, :2], expected)


def test_bad_parameters_name_the_key(tmp_path):
    adapter = TopazAdapter()
    with pytest.raises(UserError, match="'downsample'"):
        adapter.train(tmp_path, {"downsample": 0}, tmp_path / "train")
    with pytest.raises(UserError, match="'pretrained'"):
        adapter.train(tmp_path, {"pretrained": "resnet99"}, tmp_path / "train")
    with pytest.raises(UserError, match="'extract_radius'"):
        adapter.predict("resnet8_u32", [], {"extract_radius": -1}, tmp_path / "predict")
    with pytest.raises(UserError, match="neither"):
        adapter.predict(tmp_path / "nothing.sav", [], {}, tmp_path / "predict")


def test_predict_on_no_micrographs_runs_nothing(tmp_path):
    assert TopazAdapter().predict("resnet8_u32", [], {}, tmp_path / "predict") == []
    assert not (tmp_path / "predict").exists()


def test_shipped_detector_needs_no_training(tmp_path):
    model = TopazAdapter().train(tmp_path / "unused", {"pretrained": "resnet16_u64",
                                                       "downsample": 4}, tmp_path)
    assert json.loads(model.read_text()) == {"model": "resnet16_u64", "downsample": 4}


def test_select_keeps_picks_at_or_above_min_score():
    picks = RegionSet.from_circles([[5, 5, 3], [9, 9, 3]], image_shape=(20, 20),
                                   scores=[-2.0, 1.0])
    adapter = TopazAdapter()
    assert adapter.select(picks, {"min_score": 0.0}).scores.tolist() == [1.0]
    assert len(adapter.select(picks, {})) == 2


@pytest.mark.slow
def test_real_train_then_predict_finds_the_disks(tmp_path, stage_values):
    adapter = TopazAdapter(device="cpu")
    micrographs = make_test_micrographs(2, shape=(128, 128), radius=10)
    params = adapter.test_parameters()
    native = adapter.to_native(micrographs, tmp_path / "native")
    model = adapter.train(native, stage_values(adapter, Stage.TRAIN, params), tmp_path / "train")
    manifest = json.loads(model.read_text())
    assert model.name == MANIFEST and manifest["downsample"] == 2
    assert (tmp_path / "train" / manifest["model"]).is_file()
    assert "train" in (tmp_path / "train" / "topaz.log").read_text()

    predictions = adapter.predict(model, micrographs, {"extract_radius": 8.0},
                                  tmp_path / "predict")
    for regions, micrograph in zip(predictions, micrographs):
        assert regions.kind is RegionKind.CIRCLE and regions.image_shape == micrograph.shape
        assert len(regions) > 0 and np.all(np.isfinite(regions.scores))
        assert np.all(regions.circles[:, 2] == 8.0)
        # The best pick sits on a particle: a wrong scale or axis swap would miss.
        best = regions.circles[np.argmax(regions.scores), :2]
        distances = np.hypot(*(micrograph.truth.centroids() - best).T)
        assert distances.min() < 4.0, (best, micrograph.truth.centroids())


@pytest.mark.slow
def test_topaz_crash_raises_tool_failed_naming_the_log(tmp_path):
    broken = tmp_path / "broken.sav"
    broken.write_bytes(b"not a torch file")
    micrographs = make_test_micrographs(1, shape=(64, 64), radius=6)
    with pytest.raises(ToolFailedError) as info:
        TopazAdapter(device="cpu").predict(broken, micrographs, {}, tmp_path / "predict")
    log = tmp_path / "predict" / "topaz.log"
    assert str(log) in str(info.value) and info.value.log_path == log
    assert "extract" in log.read_text()
    assert not list((tmp_path / "predict").glob("picks_*.txt"))


def test_init_must_be_explicit_about_a_pickle(tmp_path):
    adapter = TopazAdapter()
    planted = tmp_path / "planted.sav"
    planted.write_bytes(b"not read")
    with pytest.raises(UserError, match="topaz train parameters: init .*trust_init = true"):
        adapter.train(tmp_path, {"init": str(planted)}, tmp_path / "train")
    with pytest.raises(UserError, match="init .*not a Topaz .sav"):
        adapter.train(tmp_path, {"init": str(tmp_path / "model.pt"), "trust_init": True},
                      tmp_path / "train")
    with pytest.raises(UserError, match="exclude each other"):
        adapter.train(tmp_path, {"init": "default", "pretrained": "resnet8_u32"},
                      tmp_path / "train")
    with pytest.raises(UserError, match="no such file"):
        adapter.train(tmp_path, {"init": str(tmp_path / "gone.sav"), "trust_init": True},
                      tmp_path / "train")
    assert not (tmp_path / "train" / MANIFEST).exists()


@pytest.mark.slow
def test_real_training_continues_the_shipped_detector(tmp_path):
    """init = 'default': topaz train loads lipobench's detector and keeps its downsampling."""
    from lipobench.shipped import packaged_model, read_manifest

    adapter = TopazAdapter(device="cpu")
    micrographs = make_test_micrographs(2, shape=(128, 128), radius=10)
    native = adapter.to_native(micrographs, tmp_path / "native")
    model = adapter.train(native, {"init": "default", "num_epochs": 1, "epoch_size": 2,
                                   "minibatch_size": 32, "radius": 8.0}, tmp_path / "train")
    manifest = json.loads(model.read_text())
    assert manifest["downsample"] == read_manifest()["models"]["topaz"]["downsample"]
    assert (tmp_path / "train" / manifest["model"]).is_file()
    log = (tmp_path / "train" / "topaz.log").read_text()
    assert f"Loading model: {packaged_model('topaz')}" in log
