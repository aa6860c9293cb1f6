"""``lipobench info`` and ``lipobench convert`` through the command line, bad input included."""

import json
import zipfile

import numpy as np
import pytest
import roifile
import tifffile

from lipobench import formats
from lipobench.data import (
    DatasetManifest,
    DatasetSection,
    load_dataset,
    write_dataset,
    write_manifest,
)
from lipobench.imageio import read_image, read_labels, write_labels_tiff, write_mrc, write_tiff
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionSet
from lipobench.roi import read_roi_set
from lipobench.testing import assert_user_error, run_cli

SHAPE = (40, 52)


def _labels(k):
    labels = np.zeros(SHAPE, np.int32)
    labels[3:11, 4:12] = 1
    labels[20:34, 25 + k:37 + k] = 2
    labels[30:36, 2:9] = 5
    return labels


def _micrographs(count=3):
    return [Micrograph(f"mic_{k:03d}", np.random.default_rng(k).normal(size=SHAPE)
                       .astype(np.float32), 0.5, RegionSet.from_labels(_labels(k)))
            for k in range(count)]


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    write_dataset(root, _micrographs(), name="small", split={"train": ["mic_000", "mic_001"],
                                                              "test": ["mic_002"]})
    return root


def assert_nothing_written(parent, expected=("data",)):
    # neither the output folder nor a hidden temporary folder beside it
    assert sorted(p.name for p in parent.iterdir()) == sorted(expected)


# ---------------------------------------------------------------------------- info
def test_info_json(dataset, capsys):
    code, out, err = run_cli(["info", dataset, "--json"], capsys)
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert summary["name"] == "small" and summary["images"] == 3
    assert summary["splits"] == {"train": 2, "test": 1}
    assert summary["image_shapes"] == [{"rows": 40, "cols": 52, "images": 3}]
    assert summary["pixel_size_nm"] == [0.5]
    assert summary["particles"] == {"total": 9, "per_image_mean": 3.0, "per_image_min": 3,
                                    "per_image_max": 3}
    diameters = [2 * np.sqrt(a / np.pi) for a in (64, 168, 42)]
    px = summary["equivalent_diameter_px"]
    assert px["min"] == pytest.approx(min(diameters), abs=1e-3)
    assert px["max"] == pytest.approx(max(diameters), abs=1e-3)
    assert summary["equivalent_diameter_nm"]["max"] == pytest.approx(max(diameters) * 0.5,
                                                                     abs=1e-3)


def test_info_table(dataset, capsys):
    code, out, _ = run_cli(["info", dataset], capsys)
    assert code == 0
    assert "dataset small" in out and "3 (train 2, test 1)" in out and "40 x 52" in out


def test_info_empty_mask_is_valid(tmp_path, capsys):
    mic = Micrograph("blank", np.zeros(SHAPE, np.float32), None,
                     RegionSet.from_labels(np.zeros(SHAPE, np.int32)))
    write_dataset(tmp_path / "data", [mic])
    code, out, err = run_cli(["info", tmp_path / "data", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["particles"]["total"] == 0 and summary["equivalent_diameter_px"] is None
    assert summary["pixel_size_nm"] == [None]
    code, _, err = run_cli(["convert", tmp_path / "data", tmp_path / "out", "--to", "topaz"],
                       capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "targets.txt").read_text() == "image_name\tx_coord\ty_coord\n"


def test_info_unlabelled_folder(tmp_path, capsys):
    write_tiff(tmp_path / "a.tif", np.ones((5, 6), np.uint8))
    code, out, _ = run_cli(["info", tmp_path, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["particles"] is None


# ---------------------------------------------------------------------------- bad input
def test_missing_dataset(tmp_path, capsys):
    code, _, err = run_cli(["info", tmp_path / "nowhere"], capsys)
    assert_user_error(code, err, "nowhere: no such dataset folder")


def test_truncated_mrc(dataset, capsys):
    path = dataset / "images" / "mic_001.mrc"
    path.write_bytes(path.read_bytes()[:-100])
    code, _, err = run_cli(["info", dataset], capsys)
    assert_user_error(code, err, "mic_001.mrc: not a readable MRC file")


def test_non_mrc_bytes_named_mrc_leaves_no_output(dataset, capsys):
    (dataset / "images" / "mic_002.mrc").write_bytes(b"GIF89a" + bytes(500))
    out = dataset.parent / "out"
    code, _, err = run_cli(["convert", dataset, out, "--to", "cellpose"], capsys)
    assert_user_error(code, err, "mic_002.mrc: not a readable MRC file")
    assert_nothing_written(dataset.parent)


def test_shape_mismatch_leaves_no_output(dataset, capsys):
    write_labels_tiff(dataset / "masks" / "mic_002.tif", np.zeros((10, 10), np.int32))
    code, _, err = run_cli(["convert", dataset, dataset.parent / "out", "--to", "roi"], capsys)
    assert_user_error(code, err, "mic_002.tif: mask shape (10, 10) differs", "mic_002.mrc")
    assert_nothing_written(dataset.parent)


@pytest.mark.parametrize("array, fragment", [
    (np.full(SHAPE, 0.5, np.float32), "fractional label values"),
    (np.full(SHAPE, -3, np.int32), "negative labels"),
])
def test_bad_labels(dataset, capsys, array, fragment):
    tifffile.imwrite(dataset / "masks" / "mic_000.tif", array)
    code, _, err = run_cli(["info", dataset], capsys)
    assert_user_error(code, err, "mic_000.tif", fragment)


def _roi_dataset(root, rois_by_member):
    write_mrc(root / "images" / "m.mrc", np.zeros(SHAPE))
    (root / "masks").mkdir()
    with zipfile.ZipFile(root / "masks" / "m.zip", "w") as archive:
        for member, roi in rois_by_member.items():
            archive.writestr(member, roi.tobytes())
    write_manifest(root, DatasetManifest(dataset=DatasetSection(masks="masks",
                                                                mask_format="roi")))


def test_roi_line_type(tmp_path, capsys):
    line = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.LINE, name="scale-bar", x1=1, y1=1,
                             x2=20, y2=1)
    _roi_dataset(tmp_path / "data", {"0001.roi": line})
    code, _, err = run_cli(["convert", tmp_path / "data", tmp_path / "out", "--to", "star"],
                       capsys)
    assert_user_error(code, err, "m.zip: ROI 'scale-bar' is a line ROI")
    assert_nothing_written(tmp_path)


def test_roi_zip_member_with_dotdot(tmp_path, capsys):
    box = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, top=1, left=1, bottom=4, right=4)
    _roi_dataset(tmp_path / "data", {"../../escape.roi": box})
    code, _, err = run_cli(["info", tmp_path / "data"], capsys)
    assert_user_error(code, err, "unsafe path")
    assert not (tmp_path / "escape.roi").exists()


def test_unknown_key_in_dataset_toml(dataset, capsys):
    toml = dataset / "dataset.toml"
    toml.write_text(toml.read_text().replace("[dataset]", "[dataset]\npixelsize = 1"))
    code, _, err = run_cli(["info", dataset], capsys)
    assert_user_error(code, err, "unknown key 'pixelsize' in [dataset]; allowed: name, "
                                 "pixel_size_nm")


def test_convert_option_errors(dataset, capsys):
    out = dataset.parent / "out"
    code, _, err = run_cli(["convert", dataset, out, "--to", "cryolo"], capsys)
    assert_user_error(code, err, "--box-size PX", "--tight")
    code, _, err = run_cli(["convert", dataset, out, "--to", "cryolo", "--box-size", "20",
                        "--tight"], capsys)
    assert_user_error(code, err, "exactly one")
    code, _, err = run_cli(["convert", dataset, out, "--to", "eman"], capsys)
    assert_user_error(code, err, "eman")
    code, _, err = run_cli(["convert", dataset, out, "--to", "topaz", "--split", "val"], capsys)
    assert_user_error(code, err, "--split val", "train, test")
    code, _, err = run_cli(["convert", dataset, dataset / "inside", "--to", "roi"], capsys)
    assert_user_error(code, err, "overlaps the dataset folder")
    assert_nothing_written(dataset.parent)
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run_cli(["convert", dataset, out, "--to", "roi"], capsys)
    assert_user_error(code, err, "not empty", "--overwrite")
    assert (out / "keep.txt").read_text() == "mine"
    code, _, err = run_cli(["convert", dataset, out, "--to", "roi", "--overwrite"], capsys)
    assert code == 0 and not (out / "keep.txt").exists()


# ---------------------------------------------------------------------------- conversions
def test_convert_writes_every_tool_and_reads_back(dataset, capsys):
    data = load_dataset(dataset)
    truths = {m.name: m.truth for m in data.micrographs()}
    outs = {}
    for target, extra in [("cryolo", ["--box-size", "16"]), ("topaz", []), ("star", []),
                          ("cellpose", []), ("roi", [])]:
        outs[target] = dataset.parent / target
        code, out, err = run_cli(["convert", dataset, outs[target], "--to", target, *extra],
                             capsys)
        assert code == 0, err
        assert f"for 3 images to {outs[target]}" in out

    for name, truth in truths.items():
        centres = truth.centroids()
        # crYOLO: squares of 16 around each centroid; MRC input, which crYOLO flips on
        # reading, so its bottom-up y is our row from the top
        assert (outs["cryolo"] / "images" / f"{name}.mrc").read_bytes() == \
            (dataset / "images" / f"{name}.mrc").read_bytes()
        boxes = formats.read_box(outs["cryolo"] / "annotations" / f"{name}.box",
                                 image_shape=SHAPE, flip_rows=False)
        np.testing.assert_allclose(boxes.boxes, np.column_stack([centres - 8, centres + 8]))
        raw = np.loadtxt(outs["cryolo"] / "annotations" / f"{name}.box", ndmin=2)
        np.testing.assert_allclose(raw[:, 1], centres[:, 0] - 8)
        # STAR: centroids
        star = formats.read_star_centres(outs["star"] / f"{name}.star", image_shape=SHAPE,
                                         flip_rows=False)
        np.testing.assert_allclose(star, centres, atol=1e-3)
        # Cellpose (the adapter's to_native): image beside its _masks file, the same
        # instances numbered 1..N
        image, _ = read_image(outs["cellpose"] / f"{name}.tif")
        assert np.array_equal(image, data.micrograph(name).image)
        assert np.array_equal(read_labels(outs["cellpose"] / f"{name}_masks.tif"),
                              truth.to_label_image())
        # Fiji: the same instances
        assert np.array_equal(read_roi_set(outs["roi"] / f"{name}.zip", SHAPE),
                              truth.to_label_image())
    # Topaz (the adapter's to_native): float32 MRC images and one targets.txt of centroids
    topaz = formats.read_topaz(outs["topaz"] / "targets.txt",
                               image_shapes={n: SHAPE for n in truths}, radius=3)
    for name, truth in truths.items():
        np.testing.assert_allclose(topaz[name].circles[:, :2],
                                   np.floor(truth.centroids()) + 0.5)
        image, _ = read_image(outs["topaz"] / "images" / f"{name}.mrc")
        assert image.dtype == np.float32
        assert np.array_equal(image, data.micrograph(name).image)
    assert sorted(p.name for p in (outs["topaz"] / "images").iterdir()) == \
        [f"{n}.mrc" for n in sorted(truths)]
    assert sorted(p.name for p in outs["topaz"].iterdir()) == ["images", "targets.txt"]


def test_convert_tight_boxes_from_tiff_images_count_rows_from_the_bottom(tmp_path, capsys):
    root = tmp_path / "tiffs"
    labels = _labels(0)
    write_tiff(root / "images" / "t.tif", np.zeros(SHAPE, np.float32))
    write_labels_tiff(root / "masks" / "t.tif", labels)
    write_manifest(root, DatasetManifest(dataset=DatasetSection(masks="masks")))
    code, _, err = run_cli(["convert", root, tmp_path / "out", "--to", "cryolo", "--tight",
                        "--split", "all"], capsys)
    assert code == 0, err
    raw = np.loadtxt(tmp_path / "out" / "annotations" / "t.box", ndmin=2)
    tight = RegionSet.from_labels(labels).to_boxes().boxes
    np.testing.assert_allclose(raw[:, 0], tight[:, 1])  # x = col0
    np.testing.assert_allclose(raw[:, 1], SHAPE[0] - tight[:, 2])  # y = rows below the box
    np.testing.assert_allclose(raw[:, 2:4], tight[:, [3, 2]] - tight[:, [1, 0]])


def test_installed_entry_point_exit_code_and_single_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "lipobench"
    result = subprocess.run([str(script), "convert", str(tmp_path / "missing"),
                             str(tmp_path / "out"), "--to", "roi"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("lipobench: error: ") and result.stderr.count("\n") == 1
    assert "missing: no such dataset folder" in result.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- --to NAME
def test_unknown_target_names_the_option_and_every_choice(dataset, capsys):
    code, _, err = run_cli(["convert", dataset, dataset.parent / "out", "--to", "eman"],
                           capsys)
    assert_user_error(code, err, "--to eman: unknown target; use ", "cryolo, star, roi", "cellpose",
                      "lipopose", "topaz", "log")
    assert_nothing_written(dataset.parent)


def test_target_names_ignore_case(dataset, capsys):
    code, out, err = run_cli(["convert", dataset, dataset.parent / "rois", "--to", "ROI"],
                             capsys)
    assert code == 0, err
    code, out, err = run_cli(["convert", dataset, dataset.parent / "cp", "--to", "CellPose"],
                             capsys)
    assert code == 0, err
    assert "wrote cellpose training data for 3 images" in out
    assert (dataset.parent / "cp" / "mic_000_masks.tif").is_file()


def test_lipopose_writes_the_cellpose_folder_and_log_is_refused(dataset, capsys):
    code, _, err = run_cli(["convert", dataset, dataset.parent / "lp", "--to", "lipopose",
                            "--split", "test"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (dataset.parent / "lp").iterdir()) == \
        ["mic_002.tif", "mic_002_masks.tif"]
    code, _, err = run_cli(["convert", dataset, dataset.parent / "none", "--to", "log"],
                           capsys)
    assert_user_error(code, err, "--to log", "wrote no training data", "cryolo, star, roi")
    assert_nothing_written(dataset.parent, expected=("data", "lp"))


def test_adapter_options_and_box_options_do_not_mix(dataset, capsys):
    code, _, err = run_cli(["convert", dataset, dataset.parent / "out", "--to", "cellpose",
                            "--tight"], capsys)
    assert_user_error(code, err, "--box-size and --tight apply to --to cryolo only")
    assert_nothing_written(dataset.parent)


CENTRES_PLUGIN = '''
"""A third-party plugin whose adapter trains on a CSV table of particle centres per image."""
from pathlib import Path

from lipobench.adapters.log import LogAdapter
from lipobench.hookspecs import hookimpl
from lipobench.regionfiles import write_regions


class CentresAdapter(LogAdapter):
    name = "centres"
    trainable = True

    def to_native(self, micrographs, workdir):
        folder = Path(workdir) / "centres_train"
        folder.mkdir()
        for micrograph in micrographs:
            write_regions(folder / f"{micrograph.name}.csv", micrograph.truth.to_circles())
        return folder


@hookimpl
def lipobench_register_adapters(registry):
    registry.register(CentresAdapter)
'''


@pytest.fixture
def centres_plugin(tmp_path, monkeypatch):
    """The plugin above, installed as a distribution would be (see tests/test_plugins.py)."""
    import sys

    from test_plugins import EXAMPLE_PLUGIN, _fake_distribution

    from lipobench.plugins import DISABLE_ENV

    site = tmp_path / "site"
    site.mkdir()
    (site / "centres_plugin_for_tests.py").write_text(CENTRES_PLUGIN)
    _fake_distribution(site, name="centres-plugin", module="centres_plugin_for_tests",
                       entry_points="[lipobench]\ncentres = centres_plugin_for_tests\n")
    _fake_distribution(site, name="lipobench-example-plugin", module="lipobench_example_plugin",
                       entry_points="[lipobench]\nthreshold = lipobench_example_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    yield site
    for module in ("centres_plugin_for_tests", "lipobench_example_plugin"):
        sys.modules.pop(module, None)


def test_a_third_party_adapter_gains_convert_with_no_cli_change(dataset, centres_plugin,
                                                                 capsys):
    from lipobench.regionfiles import read_regions

    out = dataset.parent / "centres"
    code, stdout, err = run_cli(["convert", dataset, out, "--to", "centres", "--split",
                                 "train"], capsys)
    assert code == 0, err
    assert "wrote centres training data for 2 images" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["mic_000.csv", "mic_001.csv"]
    truth = load_dataset(dataset).micrograph("mic_001").truth
    back = read_regions(out / "mic_001.csv", image_shape=SHAPE)
    np.testing.assert_allclose(back.circles, truth.to_circles().circles)
    # both plugins are choices; the example plugin's adapter learns nothing: refused
    code, _, err = run_cli(["convert", dataset, dataset.parent / "x", "--to", "nope"], capsys)
    assert_user_error(code, err, "--to nope", "centres", "threshold")
    code, _, err = run_cli(["convert", dataset, dataset.parent / "x", "--to", "threshold"],
                           capsys)
    assert_user_error(code, err, "--to threshold", "wrote no training data")
    assert_nothing_written(dataset.parent, expected=("data", "site", "centres"))
