"""``lipobench synth``: the dataset layout, byte-identical reruns, and one-line user errors."""

import json
import time
import tomllib

import mrcfile
import numpy as np
import pandas as pd
import pytest
import tifffile

from lipobench.cli import main
from lipobench.data import load_dataset
from lipobench.synth import make_dataset
from lipobench.synth.params import SynthParams

SMALL = ["--n-images", "3", "--size", "96"]


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_synth_writes_the_dataset_layout(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", str(out), *SMALL, "--preview"]) == 0
    assert "wrote" in capsys.readouterr().out
    manifest = tomllib.loads((out / "dataset.toml").read_text())
    assert manifest["dataset"] == {"name": "synthetic-quick", "pixel_size_nm": 0.888,
                                   "images": "images", "masks": "masks",
                                   "mask_format": "labels", "trust_pickles": False}
    assert manifest["split"] == {"train": ["synth_0000", "synth_0001"], "test": ["synth_0002"]}
    with mrcfile.open(out / "images" / "synth_0000.mrc") as mrc:
        assert mrc.data.dtype == np.float32 and mrc.data.shape == (96, 96)
        assert float(mrc.voxel_size.x) == pytest.approx(8.88, rel=1e-5)
    labels = tifffile.imread(out / "masks" / "synth_0001.tif")
    assert labels.dtype == np.int32
    assert tifffile.imread(out / "distractors" / "synth_0001.tif").dtype == np.uint8
    table = pd.read_csv(out / "particles.csv")
    assert {"image", "id", "class", "axis_1_nm", "diameter_px", "diameter_nm", "centroid_row",
            "bbox_row0", "visible_fraction", "truncated", "touching_ids"} <= set(table.columns)
    rows = table[table["image"] == "synth_0001"]
    assert sorted(rows["id"]) == sorted(np.unique(labels[labels > 0]).tolist())
    params = SynthParams.model_validate_json((out / "synth_params.json").read_text())
    assert params.output.size_px == 96 and params.seed == 0
    assert (out / "preview.png").stat().st_size > 0
    dataset = load_dataset(out)
    assert dataset.split["test"] == ["synth_0002"]
    assert len(dataset.micrograph("synth_0001").truth) == len(rows)


def test_same_seed_gives_identical_bytes_and_a_new_seed_does_not(tmp_path):
    a = make_dataset(tmp_path / "a", preset="quick", seed=3, n_images=2, size=64)
    time.sleep(1.1)  # a timestamp in any header would now differ
    b = make_dataset(tmp_path / "b", preset="quick", seed=3, n_images=2, size=64)
    c = make_dataset(tmp_path / "c", preset="quick", seed=4, n_images=2, size=64)
    assert _files(a) == _files(b)
    assert _files(a)["images/synth_0000.mrc"] != _files(c)["images/synth_0000.mrc"]


def test_params_file_round_trips_through_the_cli(tmp_path):
    first = make_dataset(tmp_path / "first", preset="quick", seed=5, n_images=2, size=64)
    again = tmp_path / "again"
    assert main(["synth", str(again), "--params", str(first / "synth_params.json")]) == 0
    assert _files(first) == _files(again)


def test_paper_preset_binning_one_keeps_the_physical_grid():
    from lipobench.synth.dataset import resolve_params

    p = resolve_params(preset="paper", binning=1)
    assert (p.output.size_px, p.output.binning, p.n_images, p.n_test) == (4096, 1, 38, 7)
    assert p.output.pixel_size_nm == pytest.approx(0.222)


@pytest.mark.parametrize("pixel_size, binning, expected", [
    (0.222, None, 1),  # the request: 4096^2 at 0.222 nm/px is simulated at 4096^2
    (0.888, None, 4),
    (0.5, None, 2),
    (0.1, None, 1),  # finer than the physical pixel: never below binning 1
    (0.222, 4, 4),  # an explicit --binning wins
])
def test_pixel_size_without_binning_keeps_the_physical_pixel(pixel_size, binning, expected):
    from lipobench.synth.dataset import resolve_params

    p = resolve_params(preset="quick", size=4096, pixel_size_nm=pixel_size, binning=binning)
    assert p.output.binning == expected
    assert p.output.physical_size_px == 4096 * expected


def test_synth_says_what_it_simulates(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "out"), "--n-images", "1", "--size", "64",
                 "--pixel-size", "0.444"]) == 0
    assert "simulating 128^2 px at 0.222 nm/px, binned 2x to 64^2 px at 0.444 nm/px" in (
        capsys.readouterr().out)


@pytest.mark.parametrize("args, expected", [
    (["--size", "0"], "--size must be a positive number of pixels"),
    (["--size", "-5"], "--size must be a positive number of pixels"),
    (["--pixel-size", "0"], "--pixel-size must be a positive size in nm"),
    (["--pixel-size", "-0.5"], "--pixel-size must be a positive size in nm"),
    (["--n-images", "0"], "--n-images must be positive"),
    (["--count", "100000"], "more particles than fit"),
    (["--preset", "huge"], "unknown synthetic preset 'huge'"),
    (["--binning", "0"], "--binning must be positive"),
    (["--seed", "-1"], "--seed must be zero or positive"),
    (["--params", "missing.json"], "missing.json: no such parameter file"),
])
def test_bad_options_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, args, expected):
    out = tmp_path / "ds"
    with pytest.raises(SystemExit) as stop:
        main(["synth", str(out), *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lipobench: error: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_an_out_path_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(SystemExit) as stop:
        main(["synth", str(target), "--n-images", "2", "--size", "32"])
    assert stop.value.code == 2
    assert "is not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_a_folder_that_is_not_a_synthetic_dataset_is_never_replaced(tmp_path, capsys):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(SystemExit) as stop:
        main(["synth", str(precious), "--n-images", "2", "--size", "32"])
    assert stop.value.code == 2
    assert "is not a synthetic dataset" in capsys.readouterr().err
    assert (precious / "thesis.txt").read_text() == "years of work"
    # An earlier synthetic dataset, or an empty folder, is fine.
    assert main(["synth", str(tmp_path / "ds"), "--n-images", "2", "--size", "32"]) == 0
    assert main(["synth", str(tmp_path / "ds"), "--n-images", "2", "--size", "48"]) == 0
    (tmp_path / "empty").mkdir()
    assert main(["synth", str(tmp_path / "empty"), "--n-images", "2", "--size", "32"]) == 0


def test_a_morphology_mix_that_does_not_sum_to_one_is_refused(tmp_path, capsys):
    data = SynthParams().model_dump(mode="json")
    data["sample"]["morphology"]["solid"] = 0.9
    bad = tmp_path / "params.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as stop:
        main(["synth", str(tmp_path / "ds"), "--params", str(bad)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "sample.morphology" in err and "sum to 1" in err
    assert not (tmp_path / "ds").exists()


def test_unknown_parameter_keys_are_refused(tmp_path, capsys):
    data = SynthParams().model_dump(mode="json")
    data["optics"]["defocus"] = 2.0
    bad = tmp_path / "params.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SystemExit):
        main(["synth", str(tmp_path / "ds"), "--params", str(bad)])
    assert "optics.defocus" in capsys.readouterr().err
