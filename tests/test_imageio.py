"""Image and label readers/writers (lipobench/imageio.py)."""

import cv2
import mrcfile
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lipobench.errors import UserError
from lipobench.imageio import (
    read_cellpose_seg,
    read_image,
    read_labels,
    write_labels_tiff,
    write_mrc,
    write_tiff,
)

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
shapes = st.tuples(st.integers(1, 16), st.integers(1, 16))
finite_floats = st.floats(-1e6, 1e6, allow_nan=False, width=32)


# ---------------------------------------------------------------------------- round trips
@SETTINGS
@given(arrays(np.float32, shapes, elements=finite_floats),
       st.one_of(st.none(), st.floats(0.01, 100)))
def test_mrc_round_trip(tmp_path, image, pixel_size_nm):
    path = tmp_path / "mic.mrc"
    write_mrc(path, image, pixel_size_nm=pixel_size_nm)
    back, size = read_image(path)
    assert back.dtype == np.float32
    assert np.array_equal(back, image)
    if pixel_size_nm is None:
        assert size is None
    else:
        assert size == pytest.approx(pixel_size_nm, rel=1e-6)


@SETTINGS
@given(st.sampled_from([np.uint8, np.uint16, np.int16, np.float32]), shapes, st.data())
def test_tiff_round_trip(tmp_path, dtype, shape, data):
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    elements = (st.integers(int(info.min), int(info.max)) if info is not None
                else finite_floats)
    image = data.draw(arrays(dtype, shape, elements=elements))
    path = tmp_path / "mic.tif"
    write_tiff(path, image)
    back, size = read_image(path)
    assert size is None and back.dtype == np.float32
    assert np.array_equal(back, image.astype(np.float32))


@SETTINGS
@given(arrays(np.int32, shapes, elements=st.integers(0, 2**31 - 1)))
def test_label_tiff_round_trip(tmp_path, labels):
    path = tmp_path / "labels.tif"
    write_labels_tiff(path, labels)
    back = read_labels(path)
    assert back.dtype == np.int32 and np.array_equal(back, labels)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression == 8  # zlib (ADOBE_DEFLATE)


def test_writers_leave_no_temporary_files(tmp_path):
    write_mrc(tmp_path / "a.mrc", np.zeros((3, 3)))
    write_tiff(tmp_path / "b.tif", np.zeros((3, 3), np.uint8))
    write_labels_tiff(tmp_path / "c.tif", np.zeros((3, 3), np.int32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mrc", "b.tif", "c.tif"]


def test_mrc_with_unknown_pixel_size_and_single_section_stack(tmp_path):
    path = tmp_path / "stack1.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.arange(12, dtype=np.float32).reshape(1, 3, 4))
    image, size = read_image(path)
    assert image.shape == (3, 4) and size is None
    assert image[2, 3] == 11  # row order as stored: no flip


def test_png_grey_rgb_is_read_as_one_channel(tmp_path):
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    cv2.imwrite(str(tmp_path / "rgb.png"), np.dstack([grey, grey, grey]))
    for name in ("grey.png", "rgb.png"):
        image, size = read_image(tmp_path / name)
        assert np.array_equal(image, grey.astype(np.float32)) and size is None


def test_png_16_bit_keeps_its_values(tmp_path):
    image = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), image)
    assert np.array_equal(read_image(tmp_path / "deep.png")[0], image.astype(np.float32))


# ---------------------------------------------------------------------------- bad images
def _mrc_bytes(tmp_path):
    write_mrc(tmp_path / "good.mrc", np.ones((8, 8)), pixel_size_nm=1.0)
    return (tmp_path / "good.mrc").read_bytes()


def test_missing_image_names_the_file(tmp_path):
    with pytest.raises(UserError, match=r"nothere\.mrc: no such file"):
        read_image(tmp_path / "nothere.mrc")


def test_truncated_mrc_is_a_user_error(tmp_path):
    (tmp_path / "cut.mrc").write_bytes(_mrc_bytes(tmp_path)[:-20])
    with pytest.raises(UserError, match=r"cut\.mrc: not a readable MRC file"):
        read_image(tmp_path / "cut.mrc")


def test_non_mrc_bytes_named_mrc_is_a_user_error(tmp_path):
    (tmp_path / "fake.mrc").write_bytes(b"\x89PNG not an mrc at all" * 100)
    with pytest.raises(UserError, match=r"fake\.mrc: not a readable MRC file"):
        read_image(tmp_path / "fake.mrc")


def test_real_stack_is_refused(tmp_path):
    with mrcfile.new(tmp_path / "stack.mrcs") as mrc:
        mrc.set_data(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(UserError, match="stack"):
        read_image(tmp_path / "stack.mrcs")


def test_unsupported_extension_and_folder(tmp_path):
    (tmp_path / "mic.dm4").write_bytes(b"x")
    with pytest.raises(UserError, match=r"mic\.dm4: unsupported image type '\.dm4'"):
        read_image(tmp_path / "mic.dm4")
    (tmp_path / "dir.tif").mkdir()
    with pytest.raises(UserError, match="is not a file"):
        read_image(tmp_path / "dir.tif")


def test_colour_png_and_broken_tiff_are_refused(tmp_path):
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 2] = 200
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    with pytest.raises(UserError, match="colour"):
        read_image(tmp_path / "colour.png")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(UserError, match=r"broken\.tif: not a readable TIFF"):
        read_image(tmp_path / "broken.tif")
    (tmp_path / "broken.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"broken\.png: not a readable PNG"):
        read_image(tmp_path / "broken.png")


def test_nan_pixels_are_refused(tmp_path):
    image = np.ones((3, 3), np.float32)
    image[1, 1] = np.nan
    write_tiff(tmp_path / "nan.tif", image)
    with pytest.raises(UserError, match="NaN"):
        read_image(tmp_path / "nan.tif")


# ---------------------------------------------------------------------------- bad labels
def test_empty_label_image_is_valid(tmp_path):
    write_labels_tiff(tmp_path / "empty.tif", np.zeros((5, 5), np.int32))
    assert not read_labels(tmp_path / "empty.tif").any()


def test_whole_float_labels_are_accepted(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.array([[0.0, 2.0], [3.0, 0.0]], np.float32))
    assert read_labels(tmp_path / "f.tif").tolist() == [[0, 2], [3, 0]]


@pytest.mark.parametrize("array, fragment", [
    (np.array([[0.0, 1.5]], np.float32), "fractional"),
    (np.array([[0, -2]], np.int16), "negative"),
    (np.zeros((4, 4, 3), np.uint8), "colour"),
    (np.zeros((2, 8, 8), np.uint16), "not one 2-D label image"),
    (np.array([[np.nan, 1]], np.float32), "fractional"),
    (np.array([[0, 2**40]], np.int64), "int32"),
])
def test_bad_label_tiffs_name_the_file(tmp_path, array, fragment):
    tifffile.imwrite(tmp_path / "bad.tif", array)
    with pytest.raises(UserError, match=fragment) as info:
        read_labels(tmp_path / "bad.tif")
    assert "bad.tif" in str(info.value)


def test_png_labels_and_bad_label_extension(tmp_path):
    labels = np.array([[0, 1], [2, 300]], np.uint16)
    cv2.imwrite(str(tmp_path / "l.png"), labels)
    assert read_labels(tmp_path / "l.png").tolist() == labels.tolist()
    with pytest.raises(UserError, match="unsupported label image type"):
        read_labels(tmp_path / "l.mrc")


def test_cellpose_seg_needs_trust(tmp_path):
    masks = np.zeros((6, 6), np.uint16)
    masks[1:3, 1:3] = 4
    path = tmp_path / "mic_seg.npy"
    np.save(path, {"masks": masks, "outlines": masks * 0}, allow_pickle=True)
    with pytest.raises(UserError, match="pickles.*trust_pickles"):
        read_cellpose_seg(path, trust_pickles=False)
    labels = read_cellpose_seg(path, trust_pickles=True)
    assert labels.dtype == np.int32 and np.array_equal(labels, masks)
    np.save(tmp_path / "other_seg.npy", {"flows": 1}, allow_pickle=True)
    with pytest.raises(UserError, match="'masks'"):
        read_cellpose_seg(tmp_path / "other_seg.npy", trust_pickles=True)
