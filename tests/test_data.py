"""Dataset folders and dataset.toml (lipobench/data.py)."""

import shutil

import numpy as np
import pytest
import tifffile

import lipobench.data as data_module
from lipobench.data import (
    DatasetManifest,
    DatasetSection,
    MaskFormat,
    load_dataset,
    read_manifest,
    write_dataset,
    write_manifest,
)
from lipobench.errors import UserError
from lipobench.imageio import write_labels_tiff, write_mrc, write_tiff
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionSet
from lipobench.roi import write_roi_zip


def _micrographs(count=3, shape=(24, 30), pixel_size_nm=0.888):
    mics = []
    for k in range(count):
        labels = np.zeros(shape, np.int32)
        labels[2:6, 3:8] = 4
        labels[10:18, 12:20] = 9
        if k == count - 1:
            labels[:] = 0  # an empty mask is valid: no particles
        image = np.random.default_rng(k).normal(size=shape).astype(np.float32)
        mics.append(Micrograph(f"mic_{k:03d}", image, pixel_size_nm,
                               RegionSet.from_labels(labels)))
    return mics


@pytest.fixture
def dataset_root(tmp_path):
    root = tmp_path / "quick"
    write_dataset(root, _micrographs(), name="quick",
                  split={"train": ["mic_000", "mic_001"], "test": ["mic_002"]})
    return root


def test_write_then_load_round_trip(dataset_root):
    dataset = load_dataset(dataset_root)
    assert dataset.name == "quick" and len(dataset) == 3
    assert dataset.names == ["mic_000", "mic_001", "mic_002"]
    assert dataset.split == {"train": ["mic_000", "mic_001"], "test": ["mic_002"]}
    originals = _micrographs()
    for original, loaded in zip(originals, dataset.micrographs()):
        assert loaded.name == original.name
        assert np.array_equal(loaded.image, original.image)
        assert loaded.pixel_size_nm == pytest.approx(0.888)
        assert np.array_equal(loaded.truth.labels, original.truth.labels)  # labels kept
        assert loaded.path == dataset_root / "images" / f"{original.name}.mrc"
    assert len(dataset.micrograph("mic_002").truth) == 0
    assert load_dataset(dataset_root / "dataset.toml").names == dataset.names


def test_manifest_toml_round_trip(tmp_path):
    manifest = DatasetManifest(dataset=DatasetSection(name='odd "name"', pixel_size_nm=1.5,
                                                      masks="gt", mask_format="roi"),
                               split={"train": ["a"], "test": ["b", "c"]})
    path = write_manifest(tmp_path, manifest)
    assert read_manifest(path) == manifest


def test_plain_image_folder_is_an_unlabelled_dataset(tmp_path):
    write_tiff(tmp_path / "b.tif", np.ones((4, 5), np.uint8))
    write_mrc(tmp_path / "a.mrc", np.zeros((6, 7)), pixel_size_nm=0.5)
    (tmp_path / "notes.txt").write_text("ignored")
    dataset = load_dataset(tmp_path)
    assert dataset.names == ["a", "b"] and not dataset.labelled
    assert dataset.split == {"all": ["a", "b"]}
    mic = dataset.micrograph("a")
    assert mic.truth is None and mic.pixel_size_nm == pytest.approx(0.5)
    assert dataset.micrograph("b").pixel_size_nm is None


def test_manifest_pixel_size_overrides_the_header(dataset_root):
    text = (dataset_root / "dataset.toml").read_text().replace("0.888", "1.25")
    (dataset_root / "dataset.toml").write_text(text)
    assert load_dataset(dataset_root).micrograph("mic_000").pixel_size_nm == 1.25


def test_fingerprint_is_stable_across_copies_and_sensitive_to_content(dataset_root, tmp_path):
    dataset = load_dataset(dataset_root)
    copy = shutil.copytree(dataset_root, tmp_path / "elsewhere" / "copy")
    assert load_dataset(copy).fingerprint() == dataset.fingerprint()
    assert len(dataset.fingerprint()) == 64
    assert dataset.fingerprint(["mic_001", "mic_000"]) == dataset.fingerprint(["mic_000",
                                                                                 "mic_001"])
    assert dataset.fingerprint(["mic_000"]) != dataset.fingerprint()
    labels = np.zeros((24, 30), np.int32)
    labels[0, 0] = 1
    write_labels_tiff(copy / "masks" / "mic_002.tif", labels)
    assert load_dataset(copy).fingerprint() != dataset.fingerprint()
    assert load_dataset(copy).fingerprint(["mic_000"]) == dataset.fingerprint(["mic_000"])


def test_particle_table_and_distractors(dataset_root):
    dataset = load_dataset(dataset_root)
    assert dataset.particle_table() is None
    assert dataset.distractor_map("mic_000") is None
    (dataset_root / "particles.csv").write_text("image,label,diameter_nm\nmic_000,4,30.5\n")
    (dataset_root / "distractors").mkdir()
    tifffile.imwrite(dataset_root / "distractors" / "mic_000.tif", np.ones((24, 30), np.uint8))
    table = dataset.particle_table()
    assert table["image"].tolist() == ["mic_000"] and table["diameter_nm"].tolist() == [30.5]
    assert dataset.distractor_map("mic_000").dtype == np.uint8


def test_roi_masks(tmp_path):
    root = tmp_path / "roi"
    (root / "images").mkdir(parents=True)
    labels = np.zeros((12, 12), np.int32)
    labels[2:5, 2:6] = 1
    labels[7:11, 6:9] = 2
    write_mrc(root / "images" / "m.mrc", np.zeros((12, 12)))
    write_roi_zip(root / "masks" / "m.zip", RegionSet.from_labels(labels))
    write_manifest(root, DatasetManifest(dataset=DatasetSection(masks="masks",
                                                                mask_format=MaskFormat.ROI)))
    truth = load_dataset(root).micrograph("m").truth
    assert np.array_equal(truth.labels, labels)


def test_cellpose_seg_masks_need_trust(tmp_path):
    root = tmp_path / "cp"
    (root / "masks").mkdir(parents=True)
    write_tiff(root / "images" / "m.tif", np.zeros((6, 6), np.float32))
    masks = np.zeros((6, 6), np.uint16)
    masks[1:4, 1:4] = 1
    np.save(root / "masks" / "m_seg.npy", {"masks": masks}, allow_pickle=True)
    section = dict(masks="masks", mask_format="cellpose_seg")
    write_manifest(root, DatasetManifest(dataset=DatasetSection(**section)))
    with pytest.raises(UserError, match="trust_pickles = true"):
        load_dataset(root)
    write_manifest(root, DatasetManifest(dataset=DatasetSection(**section, trust_pickles=True)))
    assert len(load_dataset(root).micrograph("m").truth) == 1


# ---------------------------------------------------------------------------- bad datasets
def test_unknown_key_is_one_line_naming_the_key_and_the_allowed_ones(dataset_root):
    toml = dataset_root / "dataset.toml"
    toml.write_text(toml.read_text().replace("[dataset]", "[dataset]\nfoo = 1"))
    with pytest.raises(UserError) as info:
        load_dataset(dataset_root)
    message = str(info.value)
    assert "\n" not in message
    assert "dataset.toml: unknown key 'foo' in [dataset]; allowed: name, pixel_size_nm" \
        in message


def test_unknown_table_bad_value_and_bad_syntax(dataset_root):
    toml = dataset_root / "dataset.toml"
    original = toml.read_text()
    toml.write_text(original + "\n[extra]\nx = 1\n")
    with pytest.raises(UserError, match="unknown key 'extra' in the top level"):
        load_dataset(dataset_root)
    toml.write_text(original.replace('mask_format = "labels"', 'mask_format = "png"'))
    with pytest.raises(UserError, match="dataset.mask_format: Input should be"):
        load_dataset(dataset_root)
    toml.write_text(original.replace("0.888", "-1"))
    with pytest.raises(UserError, match="pixel_size_nm"):
        load_dataset(dataset_root)
    toml.write_text("[dataset\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_dataset(dataset_root)


def test_mask_without_image_and_image_without_mask(dataset_root):
    write_labels_tiff(dataset_root / "masks" / "ghost.tif", np.zeros((24, 30), np.int32))
    with pytest.raises(UserError, match=r"ghost\.tif: mask without an image"):
        load_dataset(dataset_root)
    (dataset_root / "masks" / "ghost.tif").unlink()
    (dataset_root / "masks" / "mic_001.tif").unlink()
    with pytest.raises(UserError, match=r"mic_001\.mrc: image without a mask"):
        load_dataset(dataset_root)


def test_shape_mismatch_names_both_files(dataset_root):
    write_labels_tiff(dataset_root / "masks" / "mic_001.tif", np.zeros((5, 5), np.int32))
    dataset = load_dataset(dataset_root)
    with pytest.raises(UserError, match=r"mic_001\.tif: mask shape \(5, 5\) differs from "
                                        r"image .*mic_001\.mrc"):
        dataset.micrograph("mic_001")


def test_split_naming_an_unknown_image(dataset_root):
    toml = dataset_root / "dataset.toml"
    toml.write_text(toml.read_text().replace('test = ["mic_002"]', 'test = ["mic_999"]'))
    with pytest.raises(UserError, match=r"\[split\] test names 'mic_999'"):
        load_dataset(dataset_root)


def test_missing_folder_duplicate_stems_and_no_images(tmp_path, dataset_root):
    with pytest.raises(UserError, match="no such dataset folder"):
        load_dataset(tmp_path / "absent")
    write_tiff(dataset_root / "images" / "mic_000.tif", np.zeros((24, 30), np.float32))
    with pytest.raises(UserError, match="two images named 'mic_000'"):
        load_dataset(dataset_root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        load_dataset(tmp_path / "empty")


def test_write_dataset_is_all_or_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_writer(path, labels):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        write_labels_tiff(path, labels)

    monkeypatch.setattr(data_module, "write_labels_tiff", failing_writer)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(tmp_path / "ds", _micrographs())
    assert list(tmp_path.iterdir()) == []  # no dataset folder, no temporary folder left


def test_write_dataset_rejects_mixed_truth(tmp_path):
    mics = _micrographs(2)
    mics[1] = Micrograph("bare", mics[1].image)
    with pytest.raises(ValueError, match="every micrograph has ground truth or none"):
        write_dataset(tmp_path / "ds", mics)
