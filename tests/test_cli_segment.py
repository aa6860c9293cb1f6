"""``lipobench segment``: outputs, the annotation round trip, and one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lipobench.testing import run_cli
from lipobench.imageio import read_labels, write_mrc
from lipobench.roi import read_roi_set


class FakeCellposeModelForTests:
    """Stands in for a loaded Cellpose model (the real one runs in tests/adapters)."""

    diam_labels = 20.0
    diam_mean = 30.0

    def __init__(self):
        self.runs = 0


def _fake_segment(model, image, *, diameter=None, flow_threshold=0.4, cellprob_threshold=0.0):
    # Two touching disks found at every diameter, a faint blob only at small diameters.
    model.runs += 1
    rows, cols = np.indices(image.shape)
    labels = np.zeros(image.shape, dtype=np.int32)
    labels[(rows - 20) ** 2 + (cols - 20) ** 2 <= 64] = 1
    labels[((rows - 20) ** 2 + (cols - 36) ** 2 <= 64) & (labels == 0)] = 2
    if diameter <= 15:
        labels[(rows - 45) ** 2 + (cols - 45) ** 2 <= 16] = 3
    return labels


@pytest.fixture
def fake_cellpose(monkeypatch):
    import lipobench.adapters.cellpose as cellpose_module

    loads = []

    def load(ref, device=None):
        loads.append(ref)
        return FakeCellposeModelForTests()

    monkeypatch.setattr(cellpose_module, "load_cellpose_model", load)
    monkeypatch.setattr(cellpose_module, "segment", _fake_segment)
    return loads


@pytest.fixture
def inputs(tmp_path):
    model = tmp_path / "cellpose_model"
    model.write_bytes(b"weights")
    (tmp_path / "images").mkdir()
    image = tmp_path / "images" / "mic1.mrc"
    write_mrc(image, np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32),
              pixel_size_nm=3.0)  # the disks are 48 nm, the blob 24 nm: inside 20-200 nm
    return model, image


def _run(capsys, *args) -> tuple[int, str, str]:
    return run_cli(["segment", *args], capsys)


def test_segment_writes_labels_rois_overlay_and_csv(fake_cellpose, inputs, tmp_path, capsys):
    model, image = inputs
    out = tmp_path / "out"
    code, stdout, _ = _run(capsys, image, "--model", model, "--diameters", "10:30:5",
                           "--merge", "connected", "--out", out)
    assert code == 0 and "Cellpose runs: 5" in stdout
    labels = read_labels(out / "labels" / "mic1.tif")
    assert labels.dtype == np.int32 and labels.shape == (64, 64)
    # The touching disks fuse under the study's merge; the blob (2 of 5 diameters) enters.
    assert len(np.unique(labels)) - 1 == 2
    rois = read_roi_set(out / "rois" / "mic1.zip", (64, 64))
    np.testing.assert_array_equal(rois > 0, labels > 0)
    assert (out / "overlays" / "mic1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "particles.csv")
    assert table.columns.tolist() == ["micrograph", "particle", "area_px", "diameter_px",
                                      "diameter_nm", "entry_threshold", "centroid_row",
                                      "centroid_col"]
    assert sorted(table.entry_threshold) == [20.0, 20.0]
    np.testing.assert_allclose(table.diameter_nm, table.diameter_px * 3.0, atol=1e-3)


def test_rerun_with_new_until_reuses_cached_masks(fake_cellpose, inputs, tmp_path, capsys):
    model, image = inputs
    out = tmp_path / "out"
    _run(capsys, image, "--model", model, "--diameters", "10:30:5", "--out", out)
    code, stdout, _ = _run(capsys, image, "--model", model, "--diameters", "10:30:5",
                           "--until", "50", "--out", out)
    assert code == 0 and "Cellpose runs: 0" in stdout and len(fake_cellpose) == 1
    table = pd.read_csv(out / "particles.csv")
    # Instances keep the touching disks apart; the blob (40 %) is below 50 %.
    assert len(table) == 2 and set(table.entry_threshold) == {50.0}


def test_roi_folder_reads_back_as_a_dataset_for_training(fake_cellpose, inputs, tmp_path,
                                                          capsys):
    """The annotation loop: segment, correct rois/ in Fiji, train on it as ground truth."""
    from lipobench.data import load_dataset

    model, image = inputs
    out = tmp_path / "out"
    _run(capsys, image, "--model", model, "--diameters", "10:30:5", "--out", out)
    root = tmp_path / "dataset"
    root.mkdir()
    (root / "dataset.toml").write_text(
        f'[dataset]\nimages = "{image.parent}"\nmasks = "{out / "rois"}"\n'
        'mask_format = "roi"\n', encoding="utf-8")
    dataset = load_dataset(root)
    truth = dataset.micrograph("mic1").truth
    assert len(truth) == 3  # two touching disks kept apart, and the blob
    np.testing.assert_array_equal(truth.labels > 0, read_labels(out / "labels" / "mic1.tif") > 0)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--diameters", "0:30:5"], "--diameters '0:30:5'"),
        (["--diameters", "30:10:5"], "--diameters"),
        (["--diameters", "10:500:5"], "exceeds the image size 64 px"),
        (["--diameters", "ten"], "START:STOP:STEP"),
        (["--until", "101"], "--until 101 is outside 0..100"),
        (["--until", "-1"], "--until -1 is outside 0..100"),
        (["--merge", "fuse"], "--merge fuse: unknown merge; use connected or instances"),
        (["--confidence", "sliding_window"], "--window"),
        (["--scale", "huge"], "--scale huge: unknown scale mode; use auto, estimate or none"),
        (["--size-nm", "200:20"], "--size-nm 200:20: give --size-nm MIN:MAX in nm"),
        (["--size-nm", "big"], "--size-nm big: not MIN:MAX"),
        (["--min-diameter-px", "-4"], "--min-diameter-px -4: must be a positive number"),
        (["--max-diameter-px", "0"], "--max-diameter-px 0: must be a positive number"),
        (["--min-diameter-px", "40", "--max-diameter-px", "20"],
         "--min-diameter-px 40 exceeds --max-diameter-px 20"),
        (["--diameters", "10:30:5", "--scale", "estimate"], "drop --scale estimate"),
        (["--pixel-size-nm", "-1"], "--pixel-size-nm -1 must be positive"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(fake_cellpose, inputs, tmp_path, capsys,
                                                      extra, words):
    model, image = inputs
    out = tmp_path / "out"
    code, _, err = _run(capsys, image, "--model", model, *extra, "--out", out)
    assert code == 2
    assert err.startswith("lipobench: error: ") and words in err and err.count("\n") == 1
    assert "Traceback" not in err
    assert not out.exists() and fake_cellpose == []


def test_a_pixel_bound_against_the_size_prior_stops_before_anything_is_written(
        fake_cellpose, inputs, tmp_path, capsys):
    """The prior's minimum is 20 nm / 3 nm = 6.7 px here; a maximum of 5 px contradicts it. The
    bound depends on each micrograph's scale, so it is checked once every scale is known."""
    model, image = inputs
    out = tmp_path / "out"
    code, _, err = _run(capsys, image, "--model", model, "--max-diameter-px", "5",
                        "--out", out)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "mic1.mrc: --size-nm 20:200 is 7-67 px at its scale" in err
    assert not out.exists()


def test_missing_model_and_micrograph_are_one_line_errors(fake_cellpose, inputs, tmp_path,
                                                          capsys):
    model, image = inputs
    code, _, err = _run(capsys, image, "--model", tmp_path / "absent", "--out", tmp_path / "o")
    assert code == 2 and "no such model file" in err
    code, _, err = _run(capsys, tmp_path / "absent.mrc", "--model", model,
                        "--out", tmp_path / "o")
    assert code == 2 and "absent.mrc" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def _scales(out) -> dict:
    return pd.read_csv(out / "scales.csv").iloc[0].to_dict()


def test_a_known_pixel_size_zooms_to_the_default_models_pixels(fake_cellpose, tmp_path,
                                                               capsys):
    """An MRC at half the model's pixel size runs on a micrograph shrunk 2x; the labels come
    back at full size, twice as wide as the (test double's) disks on the shrunk grid."""
    from lipobench.shipped import training_pixel_size_nm

    image = tmp_path / "fine.mrc"
    write_mrc(image, np.zeros((128, 128), np.float32),
              pixel_size_nm=training_pixel_size_nm() / 2)
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, image, "--model", "default", "--merge", "connected",
                             "--size-nm", "1:1000", "--out", out)
    assert code == 0, err
    row = _scales(out)
    assert row["zoom"] == 0.5 and row["source"] == "pixel-size"
    assert "fine: pixel size" in stdout and "zoom 0.5" in stdout
    labels = read_labels(out / "labels" / "fine.tif")
    assert labels.shape == (128, 128)
    # The double's first disk has radius 8 at (20, 20) of the 64² grid: 16 at (40, 40) here.
    assert labels[40, 40] > 0 and labels[40 + 15, 40] == labels[40, 40]
    assert labels[40 + 18, 40] == 0


def test_without_a_pixel_size_the_scale_is_estimated_and_said(fake_cellpose, tmp_path, capsys):
    import imageio.v3 as iio

    image = tmp_path / "plain.png"
    iio.imwrite(image, np.full((96, 96), 128, np.uint8))
    out = tmp_path / "out"
    code, stdout, err = _run(capsys, image, "--model", "default", "--size-nm", "1:1000",
                             "--out", out)
    assert code == 0, err
    row = _scales(out)
    assert row["source"] == "estimate" and "pixel size unknown" in row["reason"]
    assert "plain: pixel size unknown" in stdout
    # The double finds 16-px disks at every diameter: coverage peaks at d = 17 px.
    assert 14 <= row["estimated_diameter_px"] <= 18


def test_the_size_prior_drops_objects_smaller_than_its_minimum(fake_cellpose, inputs,
                                                               tmp_path, capsys):
    model, image = inputs  # 3 nm pixels: the double's blob is 8 px = 24 nm wide
    out = tmp_path / "out"
    code, _, err = _run(capsys, image, "--model", model, "--diameters", "10:30:5",
                        "--merge", "connected", "--size-nm", "30:200", "--out", out)
    assert code == 0, err
    table = pd.read_csv(out / "particles.csv")
    assert len(table) == 1 and table.diameter_nm.min() >= 30
    assert _scales(out)["min_diameter_px"] == 10.0
    code, _, err = _run(capsys, image, "--model", model, "--diameters", "10:30:5",
                        "--merge", "connected", "--min-diameter-px", "5",
                        "--out", tmp_path / "px")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "px" / "particles.csv")) == 2


@pytest.mark.slow
def test_segment_with_the_shipped_default_model_finds_real_particles(tmp_path, capsys):
    """The real path: the default Cellpose model on a simulated micrograph, no test double."""
    from lipobench.data import load_dataset
    from lipobench.metrics import match
    from lipobench.regions import RegionSet
    from lipobench.synth import make_dataset

    dataset = load_dataset(make_dataset(tmp_path / "data", preset="quick", n_images=1, seed=3))
    micrograph = dataset.micrograph(dataset.names[0])
    code, out, err = _run(capsys, dataset.image_path(micrograph.name), "--model", "default",
                          "--diameters", "60:90:30", "--until", "0", "--out", tmp_path / "seg")
    assert code == 0, err
    labels = read_labels(tmp_path / "seg" / "labels" / f"{micrograph.name}.tif")
    result = match(micrograph.truth, RegionSet.from_labels(labels), (0.5,))
    assert result.n_pred >= 3
    assert result.recall[0] > 0.5 and result.precision[0] > 0.5
