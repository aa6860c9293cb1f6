"""``lipobench score`` on real annotations: CSV tables, per-file row flips, centre matching.

The real files are vendored under tests/data/ (see the READMEs there): EMPIAR-10017's
annotated particle centres (CryoSegNet, MIT), REPIC's crYOLO and Topaz picks on the same
micrograph (BSD-3), and the vesicle boxes of vesicle-picker (MIT).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from lipobench.formats import write_box, write_topaz
from lipobench.regions import RegionSet
from lipobench.testing import assert_user_error, run_cli

DATA = Path(__file__).parent / "data"
MICROGRAPH = "Falcon_2012_06_12-14_33_35_0"
CENTRES = DATA / "formats" / f"{MICROGRAPH}.csv"
PICKS = {tool: DATA / "formats" / f"{MICROGRAPH}.{tool}.box" for tool in ("cryolo", "topaz")}
VESICLES = DATA / "vesicles" / "12758756789755284571_boxes.csv"
VESICLE_SHAPE = "2217x2217"


def _centre_scores(capsys, pred, *flags):
    code, out, err = run_cli(["score", "--truth", CENTRES, "--pred", pred,
                              "--image-shape", "4096x4096", "--match", "centre",
                              "--max-distance", "27", "--format", "json", *flags], capsys)
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    return row


# ---------------------------------------------------------------------------- real picks
def test_cryolo_picks_lie_within_27_px_of_true_centres_once_their_rows_flip(capsys):
    # crYOLO ran on the MRC, so its y is the row of mrcfile's array; the centres were
    # annotated on CryoSegNet's JPG, which is that array upside down: only the picks flip.
    row = _centre_scores(capsys, PICKS["cryolo"], "--flip-pred-rows")
    assert (row["tp"], row["fp"], row["fn"], row["n_true"], row["n_pred"]) == \
        (611, 108, 18, 629, 719)
    assert row["precision"] >= 0.8 and row["recall"] > 0.95
    assert row["f1"] == pytest.approx(2 * 611 / (629 + 719))
    unflipped = _centre_scores(capsys, PICKS["cryolo"])
    assert unflipped["precision"] < 0.25
    # Flipping the centres instead scores the same pairs in the MRC's frame.
    flipped_truth = _centre_scores(capsys, PICKS["cryolo"], "--flip-truth-rows")
    assert flipped_truth["tp"] == 611
    both = _centre_scores(capsys, PICKS["cryolo"], "--flip-truth-rows", "--flip-pred-rows")
    assert both["tp"] == unflipped["tp"]


def test_topaz_picks_within_27_px(capsys):
    row = _centre_scores(capsys, PICKS["topaz"], "--flip-pred-rows")
    assert (row["tp"], row["n_pred"]) == (549, 789) and row["precision"] > 0.65
    assert _centre_scores(capsys, PICKS["topaz"])["precision"] < 0.25


def test_the_older_flip_rows_flips_only_the_cryolo_style_file(capsys):
    # --flip-rows flips .box/.cbox/.star on both sides, as before; a CSV table is not one.
    assert _centre_scores(capsys, PICKS["cryolo"], "--flip-rows")["tp"] == 611


def test_table_output_names_the_rule(capsys):
    code, out, err = run_cli(["score", "--truth", CENTRES, "--pred", PICKS["cryolo"],
                              "--image-shape", "4096x4096", "--flip-pred-rows", "--match",
                              "centre", "--max-distance", "27"], capsys)
    assert code == 0, err
    assert "629 true circles, 719 predicted boxes; a match needs centres within 27 px" in out
    assert "0.8498" in out


# ---------------------------------------------------------------------------- CSV tables
def test_vesicle_box_table_scores_against_itself_and_its_flipped_box_file(tmp_path, capsys):
    code, out, err = run_cli(["score", "--truth", VESICLES, "--pred", VESICLES,
                              "--image-shape", VESICLE_SHAPE, "--iou", "0.99",
                              "--format", "json"], capsys)
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    assert (row["tp"], row["fp"], row["fn"]) == (39, 0, 0)
    from lipobench.formats import read_region_csv

    boxes = read_region_csv(VESICLES, image_shape=(2217, 2217))
    write_box(tmp_path / "flipped.box", boxes, flip_rows=True)
    for flags, tp in ((["--flip-pred-rows"], 39), ([], 0)):
        code, out, err = run_cli(["score", "--truth", VESICLES, "--pred",
                                  tmp_path / "flipped.box", "--image-shape", VESICLE_SHAPE,
                                  "--iou", "0.99", "--format", "json", *flags], capsys)
        assert code == 0, err
        assert json.loads(out)["rows"][0]["tp"] == tp, flags


def test_mask_prediction_becomes_the_truths_kind(tmp_path, capsys):
    labels = np.zeros((64, 64), np.int32)
    labels[5:15, 5:15] = 1
    labels[30:40, 30:42] = 2
    tifffile.imwrite(tmp_path / "pred.tif", labels)
    (tmp_path / "boxes.csv").write_text("row0,col0,row1,col1\n5,5,15,15\n30,30,40,42\n")
    (tmp_path / "centres.csv").write_text("row,col,radius\n10,10,7.1\n35,36,7.9\n")
    for truth, kind in (("boxes.csv", "box"), ("centres.csv", "circle")):
        code, out, err = run_cli(["score", "--truth", tmp_path / truth, "--pred",
                                  tmp_path / "pred.tif", "--iou", "0.5", "--format", "json"],
                                 capsys)
        assert code == 0, err
        data = json.loads(out)
        assert data["kind"] == kind and data["rows"][0]["tp"] == 2, truth


def test_flipped_topaz_picks_against_a_centre_table(tmp_path, capsys):
    (tmp_path / "centres.csv").write_text("X-Coordinate,Y-Coordinate,Diameter\n20,10,8\n")
    picks = RegionSet.from_circles([[100 - 10, 20, 4]], image_shape=(100, 100), scores=[1.0])
    write_topaz(tmp_path / "picks.txt", {"mic": picks})
    for flags, tp in ((["--flip-pred-rows"], 1), ([], 0)):
        code, out, err = run_cli(["score", "--truth", tmp_path / "centres.csv", "--pred",
                                  tmp_path / "picks.txt", "--image-shape", "100x100",
                                  "--radius", "4", "--match", "centre", "--max-distance", "2",
                                  "--format", "json", *flags], capsys)
        assert code == 0, err
        assert json.loads(out)["rows"][0]["tp"] == tp, flags


def test_csv_image_column_picks_one_image(tmp_path, capsys):
    (tmp_path / "two.csv").write_text("image,row0,col0,row1,col1\na.png,0,0,4,4\n"
                                      "b.png,10,10,14,14\n")
    code, out, err = run_cli(["score", "--truth", tmp_path / "two.csv", "--pred",
                              tmp_path / "two.csv", "--image-shape", "20x20", "--image", "b",
                              "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["rows"][0]["n_true"] == 1


# ---------------------------------------------------------------------------- bad input
def _snapshot(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


@pytest.fixture
def bad_files(tmp_path):
    tifffile.imwrite(tmp_path / "labels.tif", np.pad(np.ones((4, 4), np.int32), 4))
    np.savez(tmp_path / "regions.npz", nothing=np.zeros(1))
    (tmp_path / "columns.csv").write_text("x,y,w,h\n1,2,3,4\n")
    (tmp_path / "no_radius.csv").write_text("row,col\n1,2\n")
    (tmp_path / "number.csv").write_text("row0,col0,row1,col1\n1,2,3,4\n1,two,3,4\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "ragged.csv").write_text("row0,col0,row1,col1\n1,2,3\n")
    (tmp_path / "inverted.csv").write_text("row0,col0,row1,col1\n5,2,3,4\n")
    (tmp_path / "two.csv").write_text("image,row0,col0,row1,col1\na,0,0,4,4\nb,1,1,5,5\n")
    (tmp_path / "boxes.box").write_text("1\t2\t3\t4\n")
    return tmp_path


_T, _P = "{d}/two.csv", "{d}/boxes.box"
_SHAPE = ["--image-shape", "20x20"]
BAD = {
    "match-no-distance": (["--truth", CENTRES, "--pred", PICKS["cryolo"], *_SHAPE, "--match",
                           "centre"], ["--max-distance"]),
    "distance-without-centre": (["--truth", CENTRES, "--pred", PICKS["cryolo"], *_SHAPE,
                                 "--max-distance", "27"], ["--max-distance", "--match centre"]),
    "distance-zero": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--match", "centre",
                       "--max-distance", "0"], ["--max-distance"]),
    "distance-negative": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--match", "centre",
                           "--max-distance", "-3"], ["--max-distance"]),
    "distance-nan": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--match", "centre",
                      "--max-distance", "nan"], ["--max-distance"]),
    "distance-text": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--match", "centre",
                       "--max-distance", "far"], ["--max-distance"]),
    "match-unknown": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--match", "nearest"],
                      ["--match"]),
    "centre-with-iou": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--match", "centre",
                         "--max-distance", "27", "--iou", "0.5"], ["--iou"]),
    "centre-inclusive": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--match", "centre",
                          "--max-distance", "27", "--inclusive"], ["--inclusive"]),
    "centre-curve": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--match", "centre",
                      "--max-distance", "27", "--report", "curve"], ["--report curve"]),
    "flip-label-truth": (["--truth", "{d}/labels.tif", "--pred", "{d}/labels.tif",
                          "--flip-truth-rows"], ["--flip-truth-rows", "labels.tif"]),
    "flip-npz-pred": (["--truth", "{d}/labels.tif", "--pred", "{d}/regions.npz",
                       "--flip-pred-rows"], ["--flip-pred-rows", "regions.npz"]),
    "flip-both-ways": (["--truth", _T, "--pred", _P, *_SHAPE, "--image", "a", "--flip-rows",
                        "--flip-pred-rows"], ["--flip-rows", "--flip-pred-rows"]),
    "csv-columns": (["--truth", "{d}/columns.csv", "--pred", _P, *_SHAPE],
                    ["columns.csv", "row0,col0,row1,col1", "X-Coordinate,Y-Coordinate"]),
    "csv-no-radius": (["--truth", "{d}/no_radius.csv", "--pred", _P, *_SHAPE],
                      ["no_radius.csv", "--radius"]),
    "csv-number": (["--truth", "{d}/number.csv", "--pred", _P, *_SHAPE],
                   ["number.csv", "line 3", "'two'"]),
    "csv-empty": (["--truth", "{d}/empty.csv", "--pred", _P, *_SHAPE], ["empty.csv"]),
    "csv-ragged": (["--truth", "{d}/ragged.csv", "--pred", _P, *_SHAPE],
                   ["ragged.csv", "line 2"]),
    "csv-inverted": (["--truth", "{d}/inverted.csv", "--pred", _P, *_SHAPE],
                     ["inverted.csv", "line 2"]),
    "csv-no-shape": (["--truth", "{d}/two.csv", "--pred", _P, "--image", "a"],
                     ["two.csv", "--image-shape"]),
    "csv-many-images": (["--truth", _T, "--pred", _P, *_SHAPE], ["two.csv", "--image"]),
    "csv-unknown-image": (["--truth", _T, "--pred", _P, *_SHAPE, "--image", "c"],
                          ["two.csv", "'c'"]),
    "kinds-differ": (["--truth", CENTRES, "--pred", PICKS["cryolo"], "--image-shape",
                      "4096x4096"], ["holds circles", "holds boxes", "--match centre"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_mistake_is_one_line_exit_2_and_writes_nothing(bad_files, capsys, monkeypatch, case):
    argv, fragments = BAD[case]
    monkeypatch.chdir(bad_files)
    before = _snapshot(bad_files)
    code, out, err = run_cli(["score", *[str(a).format(d=bad_files) for a in argv]], capsys)
    assert_user_error(code, err, *fragments)
    assert out == "" and _snapshot(bad_files) == before
