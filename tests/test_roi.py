"""Fiji/ImageJ ROI sets (lipobench/roi.py)."""

import zipfile

import numpy as np
import pytest
import roifile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from lipobench.errors import UserError
from lipobench.regions import RegionSet
from lipobench.roi import mask_outlines, read_roi_set, write_roi_zip

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
shapes = st.tuples(st.integers(1, 14), st.integers(1, 14))


def _write_zip(path, rois):
    with zipfile.ZipFile(path, "w") as archive:
        for k, roi in enumerate(rois):
            archive.writestr(f"{k:04d}.roi", roi.tobytes())


# ---------------------------------------------------------------------------- round trips
@SETTINGS
@given(arrays(bool, shapes))
def test_simply_connected_mask_is_one_traced_roi_and_round_trips_exactly(tmp_path, raw):
    # the largest 4-connected component with its holes filled: simply connected
    components, count = ndimage.label(raw)
    if count == 0:
        return
    sizes = np.bincount(components.ravel())[1:]
    mask = ndimage.binary_fill_holes(components == 1 + int(np.argmax(sizes)))
    labels = mask.astype(np.int32) * 7
    path = tmp_path / "one.zip"
    write_roi_zip(path, RegionSet.from_labels(labels))
    (roi,) = roifile.roiread(path)
    assert roi.roitype == roifile.ROI_TYPE.TRACED and not roi.composite
    assert roi.name == "0001-7"
    assert np.array_equal(read_roi_set(path, labels.shape), mask.astype(np.int32))


@SETTINGS
@given(arrays(np.int32, shapes, elements=st.integers(0, 5)))
def test_any_label_image_round_trips_exactly(tmp_path, labels):
    # holes, several pieces per label, diagonal touches: composite ROIs, even-odd filled
    regions = RegionSet.from_labels(labels)
    path = tmp_path / "any.zip"
    write_roi_zip(path, regions)
    assert np.array_equal(read_roi_set(path, labels.shape), regions.to_label_image())


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 20),
                          st.integers(1, 20)), max_size=4))
def test_boxes_round_trip_on_the_quarter_pixel_grid(tmp_path, rows):
    table = np.array([[r / 4, c / 4, (r + h) / 4, (c + w) / 4] for r, c, h, w in rows])
    boxes = RegionSet.from_boxes(table.reshape(-1, 4), image_shape=(16, 16))
    write_roi_zip(tmp_path / "b.zip", boxes)
    _same_labels_or_refused(tmp_path / "b.zip", boxes)


def _same_labels_or_refused(path, regions):
    """The ROI set reads back as the regions' label image, or, when a region has no pixel of
    its own there (outside, sub-pixel, or drawn over by a later one), it is refused."""
    expected = regions.to_label_image()
    if np.unique(expected[expected > 0]).size == len(regions):
        assert np.array_equal(read_roi_set(path, expected.shape), expected)
    else:
        with pytest.raises(UserError, match="covers no pixel|lies wholly under later ROIs"):
            read_roi_set(path, expected.shape)


def test_decimal_boxes_survive_float32_storage(tmp_path):
    # 5.5 is a pixel centre; stored as float32 it reads 5.5000002 unless rounded off
    boxes = RegionSet.from_boxes([[1.2, 2.7, 5.5, 9.1]], image_shape=(10, 12))
    write_roi_zip(tmp_path / "b.zip", boxes)
    assert np.array_equal(read_roi_set(tmp_path / "b.zip", (10, 12)), boxes.to_label_image())


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 64), st.integers(0, 64), st.integers(2, 24)),
                max_size=3))
def test_circles_round_trip_as_ovals(tmp_path, rows):
    table = np.array([[r / 4, c / 4, radius / 4] for r, c, radius in rows]).reshape(-1, 3)
    circles = RegionSet.from_circles(table, image_shape=(16, 16))
    write_roi_zip(tmp_path / "c.zip", circles)
    written = roifile.roiread(tmp_path / "c.zip") if len(table) else []
    assert all(roi.roitype == roifile.ROI_TYPE.OVAL for roi in written)
    _same_labels_or_refused(tmp_path / "c.zip", circles)


def test_outline_runs_along_pixel_edges():
    mask = np.zeros((4, 5), bool)
    mask[1:3, 1:4] = True
    (outline,) = mask_outlines(mask)
    assert sorted(map(tuple, outline.tolist())) == [(1, 1), (1, 3), (4, 1), (4, 3)]
    assert mask_outlines(np.zeros((3, 3), bool)) == []


def test_empty_regions_write_an_empty_set(tmp_path):
    write_roi_zip(tmp_path / "e.zip", RegionSet.empty("mask", (5, 5)))
    assert not read_roi_set(tmp_path / "e.zip", (5, 5)).any()


# ---------------------------------------------------------------------------- ImageJ-made ROIs
def test_imagej_polygon_rectangle_and_oval(tmp_path):
    polygon = roifile.ImagejRoi.frompoints([[1, 1], [5, 1], [5, 3], [1, 3]], name="poly")
    polygon.roitype = roifile.ROI_TYPE.POLYGON
    rectangle = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, top=5, left=0, bottom=7,
                                  right=2, name="rect")
    oval = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.OVAL, top=4, left=4, bottom=9, right=9,
                             name="oval")
    _write_zip(tmp_path / "set.zip", [polygon, rectangle, oval])
    labels = read_roi_set(tmp_path / "set.zip", (10, 10))
    expected = np.zeros((10, 10), np.int32)
    expected[1:3, 1:5] = 1
    expected[5:7, 0:2] = 2
    rows, cols = np.indices((10, 10)) + 0.5
    expected[(rows - 6.5) ** 2 + (cols - 6.5) ** 2 <= 2.5 ** 2] = 3  # later ROI on top
    assert np.array_equal(labels, expected)


def test_single_roi_file(tmp_path):
    rectangle = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, top=1, left=2, bottom=3,
                                  right=5)
    rectangle.tofile(tmp_path / "one.roi")
    labels = read_roi_set(tmp_path / "one.roi", (4, 6))
    assert labels.sum() == 6 and np.all(labels[1:3, 2:5] == 1)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("roitype", [roifile.ROI_TYPE.LINE, roifile.ROI_TYPE.POINT,
                                     roifile.ROI_TYPE.ANGLE, roifile.ROI_TYPE.POLYLINE])
def test_roi_without_area_is_refused_by_name(tmp_path, roitype):
    roi = roifile.ImagejRoi.frompoints([[1, 1], [4, 4], [6, 2]], name="stray-mark")
    roi.roitype = roitype
    _write_zip(tmp_path / "set.zip", [roi])
    with pytest.raises(UserError, match=rf"set\.zip: ROI 'stray-mark' is a "
                                        rf"{roitype.name.lower()} ROI"):
        read_roi_set(tmp_path / "set.zip", (8, 8))


def test_text_roi_is_refused(tmp_path):
    text = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, subtype=roifile.ROI_SUBTYPE.TEXT,
                             top=0, left=0, bottom=2, right=2, name="note", text="hi")
    _write_zip(tmp_path / "set.zip", [text])
    with pytest.raises(UserError, match="text ROI"):
        read_roi_set(tmp_path / "set.zip", (4, 4))


@pytest.mark.parametrize("member", ["../evil.roi", "/abs/evil.roi", "a/../../evil.roi",
                                    "..\\evil.roi"])
def test_unsafe_zip_member_names_are_refused(tmp_path, member):
    roi = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, top=0, left=0, bottom=2, right=2)
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as archive:
        archive.writestr(member, roi.tobytes())
    with pytest.raises(UserError, match="unsafe path"):
        read_roi_set(tmp_path / "set.zip", (4, 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set.zip"]  # nothing extracted


def test_broken_files_are_user_errors(tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(UserError, match=r"junk\.zip: not a readable zip"):
        read_roi_set(tmp_path / "junk.zip", (4, 4))
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        archive.writestr("x.roi", b"garbage!")
    with pytest.raises(UserError, match="not an ImageJ ROI"):
        read_roi_set(tmp_path / "bad.zip", (4, 4))
    with pytest.raises(UserError, match="no such ROI file"):
        read_roi_set(tmp_path / "missing.zip", (4, 4))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UserError, match="unsupported ROI file"):
        read_roi_set(tmp_path / "x.txt", (4, 4))


def test_rois_reaching_outside_the_image_are_clipped(tmp_path):
    partly = roifile.ImagejRoi.frompoints([[-3, -3], [3, -3], [3, 2], [-3, 2]], name="edge")
    partly.roitype = roifile.ROI_TYPE.POLYGON
    _write_zip(tmp_path / "set.zip", [partly])
    labels = read_roi_set(tmp_path / "set.zip", (6, 6))
    expected = np.zeros((6, 6), np.int32)
    expected[0:2, 0:3] = 1
    assert np.array_equal(labels, expected)


def test_an_roi_wholly_outside_the_image_is_an_error_not_a_lost_particle(tmp_path):
    partly = roifile.ImagejRoi.frompoints([[-3, -3], [3, -3], [3, 2], [-3, 2]], name="edge")
    partly.roitype = roifile.ROI_TYPE.POLYGON
    outside = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.OVAL, top=20, left=20, bottom=25,
                                right=25, name="gone")
    _write_zip(tmp_path / "set.zip", [partly, outside])
    with pytest.raises(UserError, match=r"set\.zip: ROI 'gone' covers no pixel of the 6 x 6"):
        read_roi_set(tmp_path / "set.zip", (6, 6))


def test_stacked_rois_are_an_error_not_one_particle(tmp_path):
    rois = []
    for index in range(3):
        roi = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.OVAL, top=2, left=2, bottom=9,
                                right=9, name=f"copy{index}")
        rois.append(roi)
    _write_zip(tmp_path / "set.zip", rois)
    with pytest.raises(UserError, match=r"ROI 'copy0' lies wholly under later ROIs \(2 such"):
        read_roi_set(tmp_path / "set.zip", (12, 12))
