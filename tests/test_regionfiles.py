"""lipobench.regionfiles: every region file written and read back, and its mistakes named."""

from __future__ import annotations

import numpy as np
import pytest

from lipobench import cache, regionfiles
from lipobench.errors import UserError
from lipobench.exports import EXPORT_FORMATS
from lipobench.micrograph import Micrograph
from lipobench.regionfiles import (
    READABLE_SUFFIXES,
    WRITABLE_SUFFIXES,
    load_regions,
    read_pair,
    read_regions,
    save_regions,
    write_regions,
)
from lipobench.regions import RegionKind, RegionSet

SHAPE = (40, 52)


def _labels():
    labels = np.zeros(SHAPE, np.int32)
    labels[3:11, 4:12] = 1
    labels[20:34, 25:37] = 2
    labels[30:36, 2:9] = 5
    return labels


def _read_options(suffix):
    return {".star": {"box_size": 8.0}, ".txt": {"radius": 4.0},
            ".tsv": {"radius": 4.0}}.get(suffix, {})


def test_the_cache_uses_the_one_npz_reader_and_writer():
    assert cache.save_regions is save_regions and cache.load_regions is load_regions
    assert set(WRITABLE_SUFFIXES) <= set(READABLE_SUFFIXES)


@pytest.mark.parametrize("suffix", [".npz", ".tif", ".tiff", ".zip"])
def test_masks_round_trip(tmp_path, suffix):
    masks = RegionSet.from_labels(_labels())
    back = read_regions(write_regions(tmp_path / f"m{suffix}", masks), image_shape=SHAPE)
    assert back.kind is RegionKind.MASK
    assert np.array_equal(back.to_label_image(), masks.to_label_image())


@pytest.mark.parametrize("suffix, flip", [(".npz", False), (".box", False), (".box", True),
                                          (".cbox", False), (".cbox", True), (".csv", False),
                                          (".csv", True)])
def test_boxes_round_trip_with_scores(tmp_path, suffix, flip):
    boxes = RegionSet.from_boxes([[2, 3, 10, 12], [20, 30, 31, 40]], image_shape=SHAPE,
                                 scores=[0.9, 0.25])
    path = write_regions(tmp_path / f"b{suffix}", boxes, flip_rows=flip)
    back = read_regions(path, image_shape=SHAPE, flip_rows=flip)
    assert back.kind is RegionKind.BOX
    np.testing.assert_allclose(back.boxes, boxes.boxes)
    np.testing.assert_allclose(back.scores, boxes.scores)


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".txt", ".tsv", ".star"])
def test_circle_centres_round_trip(tmp_path, suffix):
    circles = RegionSet.from_circles([[5.5, 6.5, 4], [30.5, 20.5, 4]], image_shape=SHAPE,
                                     scores=[0.5, 0.75])
    path = write_regions(tmp_path / f"c{suffix}", circles)
    back = read_regions(path, image_shape=SHAPE, **_read_options(suffix))
    np.testing.assert_allclose(back.centroids(), circles.centroids())
    if suffix != ".star":
        np.testing.assert_allclose(back.scores, circles.scores)


def test_topaz_file_names_its_image(tmp_path):
    circles = RegionSet.from_circles([[5.5, 6.5, 4]], image_shape=SHAPE)
    path = write_regions(tmp_path / "picks.txt", circles, image_name="mic_007")
    assert path.read_text().splitlines()[1].startswith("mic_007\t")
    assert len(read_regions(path, image_shape=SHAPE, radius=3, image_name="mic_007")) == 1


@pytest.mark.parametrize("name, regions, fragment", [
    ("a.png", RegionSet.from_labels(_labels()), "does not write '.png'"),
    ("a.roi", RegionSet.from_labels(_labels()), "does not write '.roi'"),
    ("a", RegionSet.from_labels(_labels()), "(no extension)"),
    ("a.csv", RegionSet.from_labels(_labels()), "not masks"),
])
def test_unwritable_files_are_named(tmp_path, name, regions, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        write_regions(tmp_path / name, regions)
    assert list(tmp_path.iterdir()) == []


def test_flipping_a_file_that_counts_from_the_top_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"a\.npz: rows of a \.npz file count from the top"):
        write_regions(tmp_path / "a.npz", RegionSet.from_labels(_labels()), flip_rows=True)


def test_read_pair_takes_the_label_image_size_and_converts_the_truth(tmp_path):
    write_regions(tmp_path / "truth.tif", RegionSet.from_labels(_labels()))
    pred = RegionSet.from_labels(_labels()).to_boxes()
    write_regions(tmp_path / "pred.box", pred)
    truth, back = read_pair(tmp_path / "truth.tif", tmp_path / "pred.box", truth_shape="box")
    assert truth.kind is back.kind is RegionKind.BOX and back.image_shape == SHAPE
    np.testing.assert_allclose(truth.boxes, back.boxes)
    with pytest.raises(UserError, match="convert the truth with --truth-shape box"):
        read_pair(tmp_path / "truth.tif", tmp_path / "pred.box")


def test_read_pair_draws_picks_as_the_truths_shape(tmp_path):
    """A picker's circles against box truth become their bounding squares (lipobench pick
    against expert boxes); boxes against circles have no such shape and stay an error."""
    write_regions(tmp_path / "truth.csv", RegionSet.from_boxes([[10, 10, 30, 30]],
                                                               image_shape=SHAPE))
    write_regions(tmp_path / "picks.csv", RegionSet.from_circles(
        [[20, 20, 10]], image_shape=SHAPE, scores=[1.5]))
    truth, picks = read_pair(tmp_path / "truth.csv", tmp_path / "picks.csv", image_shape=SHAPE)
    assert picks.kind is RegionKind.BOX and picks.boxes.tolist() == [[10, 10, 30, 30]]
    assert picks.scores.tolist() == [1.5]
    with pytest.raises(UserError, match="holds circles but .* holds boxes"):
        read_pair(tmp_path / "picks.csv", tmp_path / "truth.csv", image_shape=SHAPE)


def test_export_formats_write_every_micrograph(tmp_path):
    micrographs = [Micrograph(f"m{k}", np.zeros(SHAPE, np.float32), None,
                              RegionSet.from_labels(_labels())) for k in range(2)]
    for name, export in EXPORT_FORMATS.items():
        folder = tmp_path / name
        folder.mkdir()
        export.write(micrographs, folder, **({"box_size": 10.0} if export.boxes else {}))
    # no file of its own: the micrograph goes to crYOLO as the TIFF written for it
    assert sorted(p.name for p in (tmp_path / "cryolo" / "images").iterdir()) == \
        ["m0.tif", "m1.tif"]
    boxes = read_regions(tmp_path / "cryolo" / "annotations" / "m1.box", image_shape=SHAPE,
                         flip_rows=True)
    np.testing.assert_allclose(boxes.boxes[:, 2:] - boxes.boxes[:, :2], 10.0)
    assert sorted(p.name for p in (tmp_path / "star").iterdir()) == ["m0.star", "m1.star"]
    assert sorted(p.name for p in (tmp_path / "roi").iterdir()) == ["m0.zip", "m1.zip"]
    with pytest.raises(UserError, match="writes no boxes"):
        EXPORT_FORMATS["roi"].write(micrographs, tmp_path / "roi", box_size=10.0)
    with pytest.raises(UserError, match="'bare' has no ground truth"):
        EXPORT_FORMATS["star"].write([Micrograph("bare", np.zeros(SHAPE, np.float32))],
                                     tmp_path / "star")


def test_the_module_imports_nothing_heavy(imported_by):
    assert imported_by("lipobench.regionfiles", ("numpy", "pandas", "lipobench.regions")) == []
    assert regionfiles.__all__
