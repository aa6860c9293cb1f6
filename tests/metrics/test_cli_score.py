"""``lipobench score`` through the command line: real files, bad input as one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from lipobench.testing import assert_user_error, run_cli
from lipobench.cli.score import parse_iou_thresholds
from lipobench.errors import UserError
from lipobench.metrics import match
from lipobench.regions import RegionSet


def _truth_labels():
    labels = np.zeros((64, 64), np.int32)
    labels[5:15, 5:15] = 1
    labels[30:40, 30:42] = 2
    labels[50:60, 5:12] = 3
    return labels


@pytest.fixture
def files(tmp_path):
    truth = _truth_labels()
    pred = np.zeros((64, 64), np.int32)
    pred[5:15, 6:16] = 4      # IoU 9/11 with particle 1
    pred[30:40, 30:40] = 9    # IoU 10/12 with particle 2
    pred[20:25, 50:60] = 2    # nothing there
    tifffile.imwrite(tmp_path / "truth.tif", truth)
    tifffile.imwrite(tmp_path / "pred.tif", pred)
    # crYOLO .box: x y w h score, x = col0 and y = row0 without row flipping
    (tmp_path / "pred.box").write_text("5\t5\t10\t10\t0.9\n30\t30\t12\t10\t0.5\n")
    (tmp_path / "picks.txt").write_text(
        "image_name\tx_coord\ty_coord\tscore\ntruth\t9\t9\t1.5\ntruth\t35\t35\t-1\n"
    )
    return tmp_path


def test_label_images_csv_equals_match(files, capsys):
    code, out, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.tif",
                          "--iou", "0.5,0.8,0.9", "--format", "csv"], capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "iou_threshold,tp,fp,fn,n_true,n_pred,precision,recall,f1"
    rows = [line.split(",") for line in lines[1:]]
    assert [r[1] for r in rows] == ["2", "2", "0"] and [r[2] for r in rows] == ["1", "1", "3"]
    expected = match(RegionSet.from_labels(_truth_labels()),
                     RegionSet.from_labels(tifffile.imread(files / "pred.tif")), [0.5, 0.8, 0.9])
    assert [float(r[6]) for r in rows] == pytest.approx(expected.precision.tolist())


def test_table_and_json(files, capsys):
    code, out, _ = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.tif"],
                       capsys)
    assert code == 0 and "3 true, 3 predicted masks" in out and "precision" in out
    code, out, _ = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.tif",
                        "--iou", "0.5:0.95:0.05", "--format", "json", "--inclusive"], capsys)
    data = json.loads(out)
    assert code == 0 and data["kind"] == "mask" and data["inclusive"] is True
    assert [row["iou_threshold"] for row in data["rows"]] == pytest.approx(
        np.arange(0.5, 0.951, 0.05).tolist())
    assert data["rows"][0]["tp"] == 2


def test_mask_truth_against_boxes_needs_truth_shape(files, capsys):
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.box"],
                       capsys)
    assert_user_error(code, err, "holds masks", "holds boxes", "--truth-shape box")
    code, out, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.box",
                          "--truth-shape", "box", "--iou", "0.9", "--format", "json"], capsys)
    assert code == 0, err
    row = json.loads(out)["rows"][0]
    # box 1 is the tight box of particle 1 exactly; box 2 too: both match at IoU > 0.9
    assert (row["tp"], row["fp"], row["fn"]) == (2, 0, 1)


def test_topaz_picks_against_enclosing_circles(files, capsys):
    code, out, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "picks.txt",
                          "--truth-shape", "circle", "--radius", "7", "--iou", "0.5",
                          "--format", "json"], capsys)
    assert code == 0, err
    truth = RegionSet.from_labels(_truth_labels()).to_circles()
    pred = RegionSet.from_circles([[9.5, 9.5, 7], [35.5, 35.5, 7]], image_shape=(64, 64))
    assert json.loads(out)["rows"][0]["tp"] == int(match(truth, pred, 0.5).tp[0])
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "picks.txt",
                        "--truth-shape", "circle"], capsys)
    assert_user_error(code, err, "--radius")


def test_shapes_that_differ(files, capsys):
    tifffile.imwrite(files / "small.tif", np.ones((32, 64), np.int32))
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "small.tif"],
                       capsys)
    assert_user_error(code, err, "64x64 px", "32x64 px", "same micrograph")


@pytest.mark.parametrize("iou, fragment", [("0", "outside (0, 1)"), ("1.2", "outside (0, 1)"),
                                           ("half", "not a number list"),
                                           ("0.9:0.5:0.1", "STOP >= START"),
                                           ("0.5:0.9", "not a number list")])
def test_bad_iou(files, capsys, iou, fragment):
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.tif",
                        "--iou", iou], capsys)
    assert_user_error(code, err, fragment)


def test_missing_or_unknown_files(files, capsys):
    code, _, err = run_cli(["score", "--truth", files / "nope.tif", "--pred", files / "pred.tif"],
                       capsys)
    assert_user_error(code, err, "nope.tif", "no such file")
    (files / "pred.xyz").write_text("1 2 3\n")
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.xyz"],
                       capsys)
    assert_user_error(code, err, "pred.xyz", "unknown region file type")
    code, _, err = run_cli(["score", "--truth", files / "pred.box", "--pred", files / "pred.box"],
                       capsys)
    assert_user_error(code, err, "--image-shape")


def test_malformed_box_file_is_one_line(files, capsys):
    (files / "bad.box").write_text("5\t5\tten\t10\n")
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "bad.box",
                        "--truth-shape", "box"], capsys)
    assert_user_error(code, err, "bad.box")


def test_parse_iou_thresholds():
    assert parse_iou_thresholds("0.5:0.95:0.05")[-1] == 0.95
    assert len(parse_iou_thresholds("0.5:0.95:0.05")) == 10
    assert parse_iou_thresholds(" 0.3 ") == [0.3]
    with pytest.raises(UserError):
        parse_iou_thresholds("0.5:0.9:0")


def test_roi_set_truth(files, capsys):
    from lipobench.roi import write_roi_zip

    write_roi_zip(files / "truth.zip", RegionSet.from_labels(_truth_labels()))
    code, out, err = run_cli(["score", "--truth", files / "truth.zip", "--pred", files / "pred.tif",
                          "--iou", "0.5", "--format", "json"], capsys)
    assert code == 0, err
    row = json.loads(out)["rows"][0]
    assert (row["tp"], row["n_true"], row["n_pred"]) == (2, 3, 3)


def test_report_by_size(files, capsys):
    code, out, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.tif",
                          "--report", "by-size", "--bins", "2", "--pixel-size", "0.5",
                          "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["iou_threshold"] == 0.5
    rows = data["rows"]
    assert {row["unit"] for row in rows} == {"nm"}
    assert sum(row["n_true"] for row in rows) == 3
    assert sum(row["matched_true"] for row in rows) == 2
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.tif",
                        "--report", "by-size", "--iou", "0.5,0.7"], capsys)
    assert_user_error(code, err, "one IoU threshold")


def test_report_curve(files, capsys):
    code, out, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.box",
                          "--truth-shape", "box", "--report", "curve", "--format", "csv"],
                         capsys)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "score_threshold,tp,fp,fn,n_pred,precision,recall"
    assert [line.split(",")[:3] for line in lines[1:]] == [["0.9", "1", "0"], ["0.5", "2", "0"]]
    code, out, _ = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.box",
                        "--truth-shape", "box", "--report", "curve", "--format", "json"], capsys)
    assert json.loads(out)["average_precision"] == pytest.approx(2 / 3)
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.tif",
                        "--report", "curve"], capsys)
    assert_user_error(code, err, "pred.tif", "no scores")
    code, _, err = run_cli(["score", "--truth", files / "truth.tif", "--pred", files / "pred.tif",
                        "--bins", "3"], capsys)
    assert_user_error(code, err, "--report by-size only")
