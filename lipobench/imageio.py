"""Reading and writing micrographs and instance label images.

Every reader returns plain numpy arrays in lipobench's frame: rows x cols, row 0 at the top as
the file stores it. Every reader turns an unreadable file into a
:class:`~lipobench.errors.UserError` that names the file and the fix; every writer is atomic
(:mod:`lipobench.fsutil`).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> image = np.arange(12, dtype=np.float32).reshape(3, 4)
>>> write_mrc(folder / "mic.mrc", image, pixel_size_nm=0.888)
>>> pixels, pixel_size_nm = read_image(folder / "mic.mrc")
>>> bool(np.array_equal(pixels, image)), round(pixel_size_nm, 3)
(True, 0.888)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lipobench.errors import UserError
from lipobench.fsutil import atomic_path

__all__ = [
    "IMAGE_SUFFIXES",
    "LABEL_SUFFIXES",
    "read_image",
    "read_labels",
    "read_cellpose_seg",
    "write_mrc",
    "write_tiff",
    "write_labels_tiff",
]

#: File name endings :func:`read_image` understands (lower case).
IMAGE_SUFFIXES = (".mrc", ".mrcs", ".tif", ".tiff", ".png", ".jpg", ".jpeg")
#: File name endings :func:`read_labels` understands (lower case).
LABEL_SUFFIXES = (".tif", ".tiff", ".png")

_MRC_SUFFIXES = (".mrc", ".mrcs")
_TIFF_SUFFIXES = (".tif", ".tiff")
_ANGSTROM_PER_NM = 10.0


def _existing_file(path) -> Path:
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise UserError(f"{path}: is not a file; give the path of an image file")
        raise UserError(f"{path}: no such file; check the path")
    return path


# ---------------------------------------------------------------------------- images
def read_image(path: str | os.PathLike) -> tuple[np.ndarray, float | None]:
    """Read a 2-D micrograph as float32 and its pixel size in nm (None when unknown).

    MRC files (``.mrc``, ``.mrcs``) carry their pixel size in the header (Å, converted to nm;
    0 means unknown). A stack of one section is accepted; a real stack is not. TIFF, PNG and
    JPEG carry no pixel size. An RGB(A) file whose channels are equal is read as grey.

    Parameters
    ----------
    path : path-like
        The image file.

    Returns
    -------
    image : numpy.ndarray
        float32, rows x cols.
    pixel_size_nm : float or None

    Raises
    ------
    UserError
        Missing, truncated or malformed file, a stack, colour, or an unknown extension.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "mic.tif"
    >>> write_tiff(out, np.ones((2, 3), dtype=np.uint16))
    >>> image, pixel_size_nm = read_image(out)
    >>> image.dtype.name, image.shape, pixel_size_nm
    ('float32', (2, 3), None)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise UserError(
            f"{path}: unsupported image type {suffix or '(no extension)'!r}; "
            f"convert it to one of {', '.join(IMAGE_SUFFIXES)}"
        )
    path = _existing_file(path)
    if suffix in _MRC_SUFFIXES:
        data, pixel_size_nm = _read_mrc(path)
    elif suffix in _TIFF_SUFFIXES:
        data, pixel_size_nm = _read_tiff(path), None
    else:
        data, pixel_size_nm = _read_cv2(path), None
    image = _as_grey_2d(path, data)
    if image.size == 0:
        raise UserError(f"{path}: the image has no pixels ({image.shape[0]} x "
                        f"{image.shape[1]}); re-export the micrograph")
    if not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
        raise UserError(f"{path}: pixels of type {image.dtype} are not real numbers; "
                        "save the micrograph as real-valued (float32 or integer)")
    image = image.astype(np.float32, copy=False)
    if not np.all(np.isfinite(image)):
        raise UserError(f"{path}: holds NaN or infinite pixels; fix or re-export the micrograph")
    return image, pixel_size_nm


def _read_mrc(path: Path) -> tuple[np.ndarray, float | None]:
    import mrcfile  # only MRC readers pay for it

    try:
        with mrcfile.open(path, mode="r", permissive=False) as mrc:
            data = np.array(mrc.data)  # copy: the file closes below
            voxel_x = float(mrc.voxel_size.x)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"{path}: not a readable MRC file ({reason}); re-export it as MRC2014, "
            "or give it the extension of its real format"
        ) from None
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise UserError(
            f"{path}: is a stack of shape {data.shape}, not one micrograph; "
            "split it into one MRC file per micrograph"
        )
    pixel_size_nm = voxel_x / _ANGSTROM_PER_NM if voxel_x > 0 else None
    return data, pixel_size_nm


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        data = tifffile.imread(path)
    except Exception as exc:  # tifffile raises many types for a broken file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a readable TIFF file ({reason}); re-export it") from None
    if data.size == 0:
        raise UserError(f"{path}: not a readable TIFF file (no pixels); re-export it")
    return data


def _read_cv2(path: Path) -> np.ndarray:
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise UserError(f"{path}: not a readable {path.suffix.lstrip('.').upper()} image; "
                        "re-export it, or give it the extension of its real format")
    if data.ndim == 3:
        # OpenCV orders colour channels BGR(A); only equality of channels matters below,
        # but keep alpha last either way.
        data = data[..., [2, 1, 0, *range(3, data.shape[2])]]
    return data


def _as_grey_2d(path: Path, data: np.ndarray) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        colour = data[..., :3]
        if data.shape[-1] == 4:
            alpha = data[..., 3]
            if np.any(alpha != alpha.flat[0]):
                raise UserError(f"{path}: has a transparency channel that varies; "
                                "save the micrograph as greyscale")
        if not (np.array_equal(colour[..., 0], colour[..., 1])
                and np.array_equal(colour[..., 0], colour[..., 2])):
            raise UserError(f"{path}: is a colour image; save the micrograph as greyscale")
        data = colour[..., 0]
    squeezed = data.squeeze() if data.ndim > 2 else data
    if squeezed.ndim != 2:
        raise UserError(
            f"{path}: has shape {data.shape}, not one 2-D micrograph; "
            "save one greyscale image per file"
        )
    return squeezed


def write_mrc(path: str | os.PathLike, image, *, pixel_size_nm: float | None = None) -> None:
    """Write a 2-D image as a float32 MRC file, atomically.

    The header's voxel size is ``pixel_size_nm`` in Å (0, meaning unknown, when None).
    """
    import mrcfile

    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"write_mrc needs a 2-D image, got shape {image.shape}")
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(image, dtype=np.float32))
            angstrom = 0.0 if pixel_size_nm is None else float(pixel_size_nm) * _ANGSTROM_PER_NM
            mrc.voxel_size = angstrom


def write_tiff(path: str | os.PathLike, image) -> None:
    """Write a 2-D image as TIFF, keeping its dtype, atomically."""
    import tifffile

    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"write_tiff needs a 2-D image, got shape {image.shape}")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, image)


# ---------------------------------------------------------------------------- labels
def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read an instance label image (TIFF or PNG) as int32; 0 is background.

    An all-zero image is valid (no particles). Floats are accepted only when every value is a
    whole number.

    Raises
    ------
    UserError
        Missing or unreadable file, colour, a stack, fractional or negative values, a binary
        (True/False) image, or labels too large for int32.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "mic.tif"
    >>> labels = np.zeros((4, 5), dtype=np.uint16); labels[1:3, 1:3] = 7
    >>> write_labels_tiff(out, labels)
    >>> read_labels(out).dtype.name, int(read_labels(out).max())
    ('int32', 7)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise UserError(
            f"{path}: unsupported label image type {suffix or '(no extension)'!r}; "
            f"save instance labels as {' or '.join(LABEL_SUFFIXES)}"
        )
    path = _existing_file(path)
    if suffix in _TIFF_SUFFIXES:
        data = _read_tiff(path)
    else:
        import cv2

        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if data is None:
            raise UserError(f"{path}: not a readable PNG image; re-export the labels")
    data = np.asarray(data)
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        raise UserError(f"{path}: is a colour image, not instance labels; save one integer "
                        "label per particle in a single-channel image (0 = background)")
    if data.ndim > 2:
        data = data.squeeze()
    if data.ndim != 2:
        raise UserError(f"{path}: has shape {data.shape}, not one 2-D label image; "
                        "save one label image per micrograph")
    return _as_int32_labels(path, data)


def _as_int32_labels(path: Path, data: np.ndarray) -> np.ndarray:
    if data.dtype == bool:
        raise UserError(f"{path}: is a binary mask; give each particle its own integer label "
                        "(e.g. scipy.ndimage.label) and save that")
    if np.iscomplexobj(data) or not np.issubdtype(data.dtype, np.number):
        raise UserError(f"{path}: labels of type {data.dtype}; save integer labels")
    if np.issubdtype(data.dtype, np.floating):
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            raise UserError(f"{path}: holds fractional label values; instance labels must be "
                            "whole numbers (save the labels as an integer image)")
    if data.size and data.min() < 0:
        raise UserError(f"{path}: holds negative labels (min {data.min()}); labels must be "
                        "0 for background and positive for particles")
    if data.size and data.max() > np.iinfo(np.int32).max:
        raise UserError(f"{path}: label {data.max()} does not fit int32; relabel 1..N "
                        "(skimage.segmentation.relabel_sequential)")
    return data.astype(np.int32)


def write_labels_tiff(path: str | os.PathLike, labels) -> None:
    """Write an instance label image as a zlib-compressed int32 TIFF, atomically."""
    import tifffile

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"write_labels_tiff needs a 2-D label image, got shape {labels.shape}")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"write_labels_tiff needs integer labels, got {labels.dtype}")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.int32), compression="zlib")


def read_cellpose_seg(path: str | os.PathLike, *, trust_pickles: bool) -> np.ndarray:
    """Read the ``masks`` of a Cellpose ``_seg.npy`` file as an int32 label image.

    A ``_seg.npy`` file is a Python pickle, and loading a pickle can run any code its author
    put in it, so this refuses unless ``trust_pickles`` is True.
    """
    path = _existing_file(path)
    if not trust_pickles:
        raise UserError(
            f"{path}: Cellpose _seg.npy files are Python pickles, which can run arbitrary code "
            "when loaded; if you trust where it came from, set trust_pickles = true in "
            "dataset.toml (or export the masks as label TIFFs instead)"
        )
    try:
        content = np.load(path, allow_pickle=True)
        content = content.item() if content.dtype == object and content.shape == () else content
        masks = content["masks"]
    except Exception as exc:  # a broken pickle raises almost anything
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a Cellpose _seg.npy file with 'masks' ({reason}); "
                        "re-save it from Cellpose") from None
    masks = np.asarray(masks)
    if masks.ndim != 2:
        raise UserError(f"{path}: masks of shape {masks.shape} are not one 2-D label image; "
                        "save one micrograph per _seg.npy file")
    return _as_int32_labels(path, masks)
