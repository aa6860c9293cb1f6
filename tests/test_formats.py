"""Tests for lipobench.formats: round trips, real crYOLO/Topaz files, crYOLO 1.9 CBOX, bad input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from lipobench.errors import UserError
from lipobench.formats import (
    CBOX_COLUMNS,
    cryolo_flips_rows,
    read_box,
    read_cbox,
    read_cbox_table,
    read_star,
    read_star_centres,
    read_topaz,
    write_box,
    write_cbox,
    write_star,
    write_topaz,
)
from lipobench.regions import RegionKind, RegionSet

DATA = Path(__file__).parent / "data" / "formats"
MICROGRAPH = "Falcon_2012_06_12-14_33_35_0"
FALCON_SHAPE = (4096, 4096)

FAST = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------- strategies
# Quarter pixels are exact in binary and in the 6 decimals STAR files keep, so round trips
# can be compared tightly without hiding real errors.
def _quarters(lo, hi):
    return st.integers(lo * 4, hi * 4).map(lambda v: v / 4)


@st.composite
def box_sets(draw, *, scored=None):
    shape = (draw(st.integers(20, 300)), draw(st.integers(20, 300)))
    n = draw(st.integers(0, 12))
    rows = []
    for _ in range(n):
        r0, c0 = draw(_quarters(-10, shape[0])), draw(_quarters(-10, shape[1]))
        h, w = draw(_quarters(1, 60)), draw(_quarters(1, 60))
        rows.append([r0, c0, r0 + h, c0 + w])
    with_scores = draw(st.booleans()) if scored is None else scored
    scores = [draw(_quarters(-20, 20)) for _ in range(n)] if with_scores else None
    return RegionSet.from_boxes(np.array(rows).reshape(-1, 4), image_shape=shape, scores=scores)


def _same_boxes(got: RegionSet, want: RegionSet, *, atol=1e-9):
    assert got.kind is RegionKind.BOX
    assert got.image_shape == want.image_shape
    np.testing.assert_allclose(got.boxes, want.boxes, atol=atol, rtol=0)
    if len(want) == 0:
        return  # an empty file cannot say whether its (absent) particles had scores
    if want.scores is None:
        assert got.scores is None
    else:
        np.testing.assert_allclose(got.scores, want.scores, atol=atol, rtol=0)


# ---------------------------------------------------------------------------- round trips
@FAST
@given(regions=box_sets(), flip=st.booleans())
def test_box_round_trip(regions, flip):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_box(Path(tmp) / "m.box", regions, flip_rows=flip)
        _same_boxes(read_box(path, image_shape=regions.image_shape, flip_rows=flip), regions)


@FAST
@given(regions=box_sets(), flip=st.booleans())
def test_cbox_round_trip_own_sizes(regions, flip):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_cbox(Path(tmp) / "m.cbox", regions, flip_rows=flip)
        _same_boxes(read_cbox(path, image_shape=regions.image_shape, flip_rows=flip), regions,
                    atol=1e-6)


@FAST
@given(regions=box_sets(), flip=st.booleans(), box_size=st.integers(8, 200))
def test_cbox_round_trip_fixed_box_size_keeps_centres_and_estimates(regions, flip, box_size):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_cbox(Path(tmp) / "m.cbox", regions, flip_rows=flip, box_size=box_size)
        fixed = read_cbox(path, image_shape=regions.image_shape, flip_rows=flip)
        estimated = read_cbox(path, image_shape=regions.image_shape, flip_rows=flip,
                              use_estimated_size=True)
    np.testing.assert_allclose(fixed.boxes[:, 2] - fixed.boxes[:, 0], box_size)
    np.testing.assert_allclose(fixed.boxes[:, 3] - fixed.boxes[:, 1], box_size)
    np.testing.assert_allclose(fixed.centroids(), regions.centroids(), atol=1e-6)
    _same_boxes(estimated, regions, atol=1e-6)


@FAST
@given(regions=box_sets(), flip=st.booleans())
def test_star_round_trip_centres(regions, flip):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_star(Path(tmp) / "m.star", regions, flip_rows=flip)
        centres = read_star_centres(path, image_shape=regions.image_shape, flip_rows=flip)
        boxes = read_star(path, image_shape=regions.image_shape, box_size=10, flip_rows=flip)
    np.testing.assert_allclose(centres.reshape(-1, 2), regions.centroids(), atol=1e-6)
    np.testing.assert_allclose(boxes.centroids(), regions.centroids(), atol=1e-6)
    np.testing.assert_allclose(boxes.areas(), 100.0)
    if regions.scores is None or len(regions) == 0:
        assert boxes.scores is None
    else:
        np.testing.assert_allclose(boxes.scores, regions.scores, atol=1e-6)


@st.composite
def topaz_picks(draw):
    names = draw(st.lists(st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True),
                          min_size=1, max_size=4, unique=True))
    scored = draw(st.booleans())
    out = {}
    for name in names:
        shape = (draw(st.integers(5, 500)), draw(st.integers(5, 500)))
        n = draw(st.integers(0, 10))
        rows = [draw(st.integers(0, shape[0] - 1)) for _ in range(n)]
        cols = [draw(st.integers(0, shape[1] - 1)) for _ in range(n)]
        circles = np.column_stack([np.add(rows, 0.5), np.add(cols, 0.5), np.full(n, 7.0)])
        scores = [draw(_quarters(-30, 30)) for _ in range(n)] if scored else None
        out[name] = RegionSet.from_circles(circles.reshape(-1, 3), image_shape=shape,
                                           scores=scores)
    return out


@FAST
@given(picks=topaz_picks())
def test_topaz_round_trip_several_images(picks):
    shapes = {name: regions.image_shape for name, regions in picks.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_topaz(Path(tmp) / "picks.txt", picks)
        got = read_topaz(path, image_shapes=shapes, radius=7.0)
    assert list(got) == list(picks)
    for name, want in picks.items():
        assert got[name].kind is RegionKind.CIRCLE
        assert got[name].image_shape == want.image_shape
        np.testing.assert_array_equal(got[name].circles, want.circles)
        has_scores = any(r.scores is not None and len(r) for r in picks.values())
        if has_scores and len(want):
            np.testing.assert_allclose(got[name].scores, want.scores)


def test_topaz_writes_masks_by_centroid_in_integer_pixels(tmp_path):
    labels = np.zeros((10, 12), dtype=np.int32)
    labels[2:5, 3:6] = 1  # centroid at pixel centre (3.5, 4.5) -> pixel index (3, 4)
    labels[6:8, 8:10] = 2  # centroid on a pixel corner (7.0, 9.0) -> index (7, 9)
    path = write_topaz(tmp_path / "p.txt", {"mic": RegionSet.from_labels(labels)})
    assert path.read_text() == "image_name\tx_coord\ty_coord\nmic\t4\t3\nmic\t9\t7\n"
    got = read_topaz(path, radius=2)["mic"]
    assert got.circles[:, :2].tolist() == [[3.5, 4.5], [7.5, 9.5]]
    assert got.scores is None


def test_topaz_without_image_shapes_gives_each_image_a_shape_holding_its_picks(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("image_name\tx_coord\ty_coord\na\t9\t4\na\t2\t19\nb\t0\t0\n")
    got = read_topaz(path, radius=3)
    assert got["a"].image_shape == (20, 10)
    assert got["b"].image_shape == (1, 1)


def test_write_box_masks_as_tight_boxes_with_flip(tmp_path):
    labels = np.zeros((10, 12), dtype=np.int32)
    labels[2:5, 3:7] = 4
    path = write_box(tmp_path / "m.box", RegionSet.from_labels(labels), flip_rows=True)
    # rows 2..5 of 10 counted from the bottom edge start at 10 - 5 = 5
    assert path.read_text() == "3\t5\t4\t3\n"


# ---------------------------------------------------------------------------- real files
def _fraction_near_truth(regions: RegionSet, *, radius=27.0) -> float:
    truth = pd.read_csv(DATA / f"{MICROGRAPH}.csv")
    tree = cKDTree(truth[["Y-Coordinate", "X-Coordinate"]].to_numpy(np.float64))
    distance, _ = tree.query(regions.centroids())
    return float(np.mean(distance <= radius))


@pytest.mark.parametrize("picker, flipped_min", [("cryolo", 0.8), ("topaz", 0.6)])
def test_real_repic_box_files_match_annotations_only_with_row_flip(picker, flipped_min):
    # REPIC ran crYOLO and Topaz on the MRC files, so their y is the row of mrcfile's array
    # (cryolo_flips_rows("x.mrc") is False); the annotated JPG is that array upside down, so
    # in the JPG's frame the rows flip once: what flip_rows=True reads.
    path = DATA / f"{MICROGRAPH}.{picker}.box"
    flipped = read_box(path, image_shape=FALCON_SHAPE, flip_rows=True)
    unflipped = read_box(path, image_shape=FALCON_SHAPE, flip_rows=False)
    assert len(flipped) == {"cryolo": 719, "topaz": 789}[picker]
    assert flipped.scores is not None and np.all(np.isfinite(flipped.scores))
    assert _fraction_near_truth(flipped) > flipped_min
    assert _fraction_near_truth(unflipped) < 0.25


def test_real_box_file_first_line_conversion():
    # first line of REPIC's crYOLO file: 2889 3885 180 180 0.6598718762397766
    boxes = read_box(DATA / f"{MICROGRAPH}.cryolo.box", image_shape=FALCON_SHAPE,
                     flip_rows=True)
    assert boxes.boxes[0].tolist() == [4096 - 3885 - 180, 2889, 4096 - 3885, 2889 + 180]
    assert boxes.scores[0] == pytest.approx(0.6598718762397766)


# ---------------------------------------------------------------------------- crYOLO 1.9 CBOX
def test_cryolo19_cbox_fixture_table():
    table = read_cbox_table(DATA / "cryolo19_example.cbox")
    assert tuple(table.columns) == CBOX_COLUMNS
    assert len(table) == 3
    assert table["CoordinateX"].tolist() == [1463.0, 339.0, 2889.5]
    assert table["CoordinateY"].tolist() == [2877.0, 3861.0, 25.25]
    assert table["EstWidth"].tolist() == [191.0, 176.0, 160.0]
    assert table["EstHeight"].tolist() == [187.0, 176.0, 152.0]
    assert table[["CoordinateZ", "Depth", "NumBoxes", "Angle"]].isna().all().all()
    assert all(dtype == np.float64 for dtype in table.dtypes)


def test_cryolo19_cbox_fixture_regions_bottom_up_rows():
    path = DATA / "cryolo19_example.cbox"
    regions = read_cbox(path, image_shape=FALCON_SHAPE, flip_rows=True)
    assert regions.boxes[0].tolist() == [4096 - 2877 - 180, 1463, 4096 - 2877, 1463 + 180]
    np.testing.assert_allclose(regions.scores, [0.856438, 0.828084, 0.101372])
    estimated = read_cbox(path, image_shape=FALCON_SHAPE, flip_rows=True,
                          use_estimated_size=True)
    np.testing.assert_allclose(estimated.centroids(), regions.centroids())
    assert estimated.boxes[2].tolist() == pytest.approx(
        [4096 - 25.25 - 90 - 76, 2889.5 + 90 - 80, 4096 - 25.25 - 90 + 76, 2889.5 + 90 + 80])


def test_write_cbox_has_cryolo_blocks_and_columns(tmp_path):
    regions = RegionSet.from_boxes([[20, 10, 26, 18]], image_shape=(100, 50))
    text = write_cbox(tmp_path / "m.cbox", regions).read_text()
    lines = [line.strip() for line in text.splitlines()]
    blocks = [line for line in lines if line.startswith("data_")]
    assert blocks == ["data_global", "data_cryolo", "data_cryolo_include"]
    assert lines[lines.index("data_global") + 2].split() == ["_cbox_format_version", "1.0"]
    columns = [line.split()[0][1:] for line in lines
               if line.startswith("_") and "#" in line and not line.startswith("_slice")]
    assert tuple(columns) == CBOX_COLUMNS
    assert "_slice_index #1" in lines
    assert not text.startswith("#"), "no time-stamped comment: same regions, same bytes"
    # no scores: confidence is missing, as crYOLO writes for hand-made boxes
    assert read_cbox(tmp_path / "m.cbox", image_shape=(100, 50)).scores is None


# ---------------------------------------------------------------------------- empty input
@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_box_file_is_valid(tmp_path, text):
    path = tmp_path / "m.box"
    path.write_text(text)
    regions = read_box(path, image_shape=(10, 20))
    assert len(regions) == 0 and regions.kind is RegionKind.BOX
    assert regions.image_shape == (10, 20)


def test_empty_cbox_files_are_valid(tmp_path):
    zero_bytes = tmp_path / "zero.cbox"
    zero_bytes.write_text("")
    written = write_cbox(tmp_path / "none.cbox", RegionSet.empty(RegionKind.BOX, (10, 20)))
    for path in (zero_bytes, written):
        assert len(read_cbox(path, image_shape=(10, 20))) == 0
        assert len(read_cbox_table(path)) == 0


def test_empty_star_and_topaz_files_are_valid(tmp_path):
    star = write_star(tmp_path / "m.star", RegionSet.empty(RegionKind.CIRCLE, (10, 20)))
    assert len(read_star(star, image_shape=(10, 20), box_size=4)) == 0
    header_only = write_topaz(tmp_path / "p.txt", {"a": RegionSet.empty(RegionKind.BOX, (5, 5))})
    assert header_only.read_text() == "image_name\tx_coord\ty_coord\n"
    got = read_topaz(header_only, image_shapes={"a": (5, 5)}, radius=2)
    assert len(got["a"]) == 0 and got["a"].image_shape == (5, 5)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert read_topaz(empty, radius=2) == {}


def test_cryolo_rows_count_from_the_bottom_except_for_mrc():
    # crYOLO flips MRC arrays on reading and counts y from the bottom: the two cancel for MRC.
    assert not cryolo_flips_rows("a/b.mrc") and not cryolo_flips_rows(Path("x.MRCS"))
    assert all(cryolo_flips_rows(p) for p in ("a.tif", "a.tiff", "a.png", "a.jpg", "a.JPEG"))


# ---------------------------------------------------------------------------- bad input
def _error(call) -> str:
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, "user errors are one line"
    return message


@pytest.mark.parametrize("content, line, expected", [
    ("1 2 3 4\n5 6 7\n", 2, "expected 4 or 5 numbers"),
    ("1 2 3 4\n\n5 six 7 8\n", 3, "'six' is not a number"),
    ("1 2 3 4 0.5 9\n", 1, "expected 4 or 5 numbers"),
    ("1 2 3 4 0.5\n1 2 3 4\n", 2, "same columns"),
    ("1 2 0 4\n", 1, "must be positive"),
    ("1 2 nan 4\n", 1, "not a finite number"),
])
def test_malformed_box_names_path_and_line(tmp_path, content, line, expected):
    path = tmp_path / "bad.box"
    path.write_text(content)
    message = _error(lambda: read_box(path, image_shape=(10, 10)))
    assert str(path) in message and f"line {line}:" in message and expected in message


def test_malformed_cbox_names_path_and_line(tmp_path):
    good = (DATA / "cryolo19_example.cbox").read_text().splitlines()
    row = next(k for k, line in enumerate(good) if line.startswith("  339.000000"))
    for bad_row, expected in [
        (good[row].replace("3861.000000", "x3861"), "'x3861' is not a number"),
        (good[row].replace("<NA>", "", 1), "expected 11, one per column"),
        (good[row].replace("176.000000", "<NA>", 1).replace("339.000000", "<NA>"),
         "'<NA>' is not a number"),
    ]:
        path = tmp_path / "bad.cbox"
        path.write_text("\n".join(good[:row] + [bad_row] + good[row + 1:]) + "\n")
        message = _error(lambda: read_cbox(path, image_shape=FALCON_SHAPE))
        assert str(path) in message and f"line {row + 1}:" in message and expected in message


def test_cbox_without_cryolo_block_or_columns(tmp_path):
    path = tmp_path / "old.cbox"
    path.write_text("10\t20\t180\t180\t0.5\t170\t170\n")  # pre-1.8 tab-separated CBOX
    assert "no data_cryolo loop" in _error(lambda: read_cbox(path, image_shape=(99, 99)))
    path.write_text("data_cryolo\n\nloop_\n_CoordinateX #1\n_CoordinateY #2\n1 2\n")
    assert "_Width, _Height" in _error(lambda: read_cbox(path, image_shape=(99, 99)))


def test_cbox_estimated_size_missing_is_reported(tmp_path):
    path = write_cbox(tmp_path / "m.cbox",
                      RegionSet.from_boxes([[0, 0, 5, 5]], image_shape=(10, 10)))
    lines = path.read_text().splitlines()
    row = next(k for k, line in enumerate(lines) if line.startswith("0.000000"))
    fields = lines[row].split("\t")
    fields[CBOX_COLUMNS.index("EstHeight")] = "<NA>"
    lines[row] = "\t".join(fields)
    path.write_text("\n".join(lines) + "\n")
    message = _error(lambda: read_cbox(path, image_shape=(10, 10), use_estimated_size=True))
    assert f"line {row + 1}: _EstHeight is missing" in message
    assert len(read_cbox(path, image_shape=(10, 10))) == 1


def test_malformed_star_names_path_and_line(tmp_path):
    path = tmp_path / "bad.star"
    path.write_text("data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n1 2\n3\n")
    message = _error(lambda: read_star(path, image_shape=(10, 10), box_size=4))
    assert str(path) in message and "line 7:" in message
    path.write_text("data_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n1 2\n3 y\n")
    message = _error(lambda: read_star_centres(path, image_shape=(10, 10)))
    assert "line 7:" in message and "'y' is not a number" in message
    path.write_text("data_\n\nloop_\n_rlnX #1\n_rlnY #2\n1 2\n")
    assert "_rlnCoordinateX and _rlnCoordinateY" in _error(
        lambda: read_star(path, image_shape=(10, 10), box_size=4))


@pytest.mark.parametrize("content, expected", [
    ("name\tx\ty\na\t1\t2\n", "line 1: header is"),
    ("image_name\tx_coord\ty_coord\na\t1\n", "line 2: got 2 tab-separated fields"),
    ("image_name\tx_coord\ty_coord\tscore\n\na\t1\t2\tbig\n", "line 3: 'big' is not a number"),
    ("image_name\tx_coord\ty_coord\n\t1\t2\n", "line 2: the image_name is empty"),
])
def test_malformed_topaz_names_path_and_line(tmp_path, content, expected):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    message = _error(lambda: read_topaz(path, radius=3))
    assert str(path) in message and expected in message


def test_topaz_image_not_in_image_shapes(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("image_name\tx_coord\ty_coord\nmic_7\t1\t2\n")
    message = _error(lambda: read_topaz(path, image_shapes={"mic_1": (9, 9)}, radius=3))
    assert "'mic_7'" in message and "image_shapes" in message


@pytest.mark.parametrize("reader", [
    lambda p: read_box(p, image_shape=(5, 5)),
    lambda p: read_cbox(p, image_shape=(5, 5)),
    lambda p: read_cbox_table(p),
    lambda p: read_star(p, image_shape=(5, 5), box_size=3),
    lambda p: read_topaz(p, radius=3),
])
def test_missing_file_is_a_user_error(tmp_path, reader):
    path = tmp_path / "nowhere" / "m.box"
    message = _error(lambda: reader(path))
    assert str(path) in message and "not found" in message


def test_failed_write_leaves_nothing(tmp_path):
    scored = RegionSet.from_circles([[2.5, 2.5, 1]], image_shape=(5, 5), scores=[1.0])
    plain = RegionSet.from_circles([[1.5, 1.5, 1]], image_shape=(5, 5))
    target = tmp_path / "picks.txt"
    assert "has no scores" in _error(lambda: write_topaz(target, {"a": scored, "b": plain}))
    assert "tabs" in _error(lambda: write_topaz(target, {"a\tb": plain}))
    assert "box_size" in _error(
        lambda: write_cbox(tmp_path / "m.cbox", scored, box_size=-1))
    assert list(tmp_path.iterdir()) == []


def test_writers_do_not_mutate_regions(tmp_path):
    regions = RegionSet.from_boxes([[1, 2, 5, 7]], image_shape=(10, 10), scores=[0.5])
    before = regions.boxes.copy(), regions.scores.copy()
    write_box(tmp_path / "a.box", regions, flip_rows=True)
    write_cbox(tmp_path / "a.cbox", regions, box_size=4)
    write_star(tmp_path / "a.star", regions)
    write_topaz(tmp_path / "a.txt", {"a": regions})
    np.testing.assert_array_equal(regions.boxes, before[0])
    np.testing.assert_array_equal(regions.scores, before[1])


def test_sizes_accept_numpy_numbers_and_reject_nonsense(tmp_path):
    regions = RegionSet.from_boxes([[1, 2, 5, 7]], image_shape=(10, 10))
    path = write_cbox(tmp_path / "a.cbox", regions, box_size=np.int64(6))
    assert read_cbox(path, image_shape=(10, 10)).boxes.tolist() == [[0.0, 1.5, 6.0, 7.5]]
    star = write_star(tmp_path / "a.star", regions)
    for bad in (0, -3, float("nan"), True, "8"):
        assert "box_size" in _error(lambda: read_star(star, image_shape=(10, 10),
                                                      box_size=bad))
    assert "radius" in _error(lambda: read_topaz(star, radius=0))
