"""Fiji/ImageJ ROI sets (``.zip`` of ``.roi`` files, or one ``.roi``) as instance label images.

Conventions
-----------
ImageJ coordinates are ``x = col``, ``y = row`` in pixel-corner units: pixel ``(i, j)`` covers
``[j, j + 1) x [i, i + 1)`` in (x, y). A pixel belongs to an area ROI when its *centre* lies
inside the shape (ImageJ's own rule for polygon masks). The writer outlines each mask along
pixel edges (integer corner coordinates, like a ROI traced with ImageJ's wand), so no pixel
centre lies on an outline and reading a written set back gives exactly the same pixels:
for a simply connected mask one traced polygon, otherwise (holes, several pieces) one
composite ROI filled with the even-odd rule.

Boxes become rectangle ROIs and circles oval ROIs (sub-pixel bounds when not whole numbers);
read back, they are rasterized with the same pixel-centre rule as
:meth:`lipobench.regions.RegionSet.to_label_image`. (ImageJ draws ovals through a polygon
approximation, so its own mask of an oval can differ from ours by a pixel at the rim.)

>>> import tempfile, pathlib
>>> labels = np.zeros((6, 7), dtype=np.int32); labels[1:4, 2:6] = 5; labels[4, 0] = 9
>>> out = pathlib.Path(tempfile.mkdtemp()) / "mic.zip"
>>> write_roi_zip(out, RegionSet.from_labels(labels))
>>> back = read_roi_set(out, (6, 7))
>>> bool(np.array_equal(back > 0, labels > 0)), np.unique(back).tolist()
(True, [0, 1, 2])
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from lipobench.errors import UserError
from lipobench.fsutil import atomic_path
from lipobench.regions import RegionKind, RegionSet

__all__ = ["read_roi_set", "write_roi_zip", "mask_outlines"]

# A .roi file is a few kB; anything far larger in a zip is not an ROI (or is a zip bomb).
_MAX_MEMBER_BYTES = 64 * 2**20


# ---------------------------------------------------------------------------- reading
def read_roi_set(path: str | os.PathLike, image_shape) -> np.ndarray:
    """Rasterize an ImageJ ROI set into an int32 instance label image.

    The k-th area ROI (in file order) gets label k; later ROIs are drawn on top of earlier
    ones. Polygon, freehand, traced, rectangle (rounded corners are ignored), oval and
    composite ROIs are accepted.

    Parameters
    ----------
    path : path-like
        A ``.zip`` ROI set or a single ``.roi`` file.
    image_shape : tuple of int
        ``(rows, cols)`` of the micrograph the ROIs were drawn on.

    Raises
    ------
    UserError
        Missing or malformed file, an unsafe zip member name, or a ROI that is not an area
        (line, point, angle, text, image).
    """
    import roifile

    path = Path(path)
    shape = tuple(int(s) for s in image_shape)
    if not path.is_file():
        raise UserError(f"{path}: no such ROI file; check the path")
    suffix = path.suffix.lower()
    if suffix == ".zip":
        members = _zip_members(path)
    elif suffix == ".roi":
        members = [(path.name, path.read_bytes())]
    else:
        raise UserError(f"{path}: unsupported ROI file {suffix!r}; give a Fiji ROI set "
                        "(.zip, from the ROI Manager's More > Save) or one .roi file")
    labels = np.zeros(shape, dtype=np.int32)
    names = []
    for index, (member, data) in enumerate(members, start=1):
        try:
            roi = roifile.ImagejRoi.frombytes(data)
        except Exception as exc:  # roifile raises ValueError, struct.error, ...
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"{path}: member {member!r} is not an ImageJ ROI ({reason}); "
                            "re-save the set from Fiji's ROI Manager") from None
        names.append(roi.name or member)
        window, inside = _roi_pixels(roi, shape, where=f"{path}: ROI {names[-1]!r}")
        if not inside.any():
            # Dropping it would silently change the particle count.
            raise UserError(f"{path}: ROI {names[-1]!r} covers no pixel of the "
                            f"{shape[0]} x {shape[1]} image (outside it, or smaller than a "
                            "pixel); delete it or check that the set belongs to this image")
        labels[window][inside] = index
    # A particle drawn over completely by later ones would vanish from the truth unnoticed.
    present = np.bincount(labels.ravel(), minlength=len(names) + 1)[1:]
    if (present == 0).any():
        hidden = names[int(np.flatnonzero(present == 0)[0])]
        raise UserError(f"{path}: ROI {hidden!r} lies wholly under later ROIs "
                        f"({int((present == 0).sum())} such ROI(s)): each particle needs "
                        "pixels of its own; delete the duplicates in Fiji's ROI Manager")
    return labels


def _zip_members(path: Path) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: not a readable zip file ({exc}); "
                        "re-save the ROI set from Fiji's ROI Manager") from None
    members = []
    with archive:
        for info in archive.infolist():
            name = info.filename
            pure = PurePosixPath(name.replace("\\", "/"))
            if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
                raise UserError(f"{path}: zip member {name!r} has an unsafe path (absolute or "
                                "with '..'); re-save the ROI set from Fiji's ROI Manager")
            if info.is_dir() or not name.lower().endswith(".roi"):
                continue
            if info.file_size > _MAX_MEMBER_BYTES:
                raise UserError(f"{path}: zip member {name!r} is {info.file_size} bytes, too "
                                "large for an ROI; re-save the ROI set from Fiji")
            try:
                members.append((name, archive.read(info)))
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise UserError(f"{path}: zip member {name!r} cannot be read ({exc}); "
                                "re-save the ROI set") from None
    return members


def _window(top, left, bottom, right, shape) -> tuple[slice, slice]:
    """The part of the image a shape with these bounds can cover (possibly empty)."""
    r0, c0 = max(int(np.floor(top)), 0), max(int(np.floor(left)), 0)
    r1, c1 = min(int(np.ceil(bottom)) + 1, shape[0]), min(int(np.ceil(right)) + 1, shape[1])
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))


def _roi_pixels(roi, shape, *, where: str) -> tuple[tuple[slice, slice], np.ndarray]:
    """A window of the image and, in it, the pixels whose centres lie inside ``roi``.

    Working in the ROI's bounding window keeps a set of many small ROIs on a large
    micrograph cheap.
    """
    from roifile import ROI_SUBTYPE, ROI_TYPE

    area_types = (ROI_TYPE.POLYGON, ROI_TYPE.FREEHAND, ROI_TYPE.TRACED)
    if roi.subtype in (ROI_SUBTYPE.TEXT, ROI_SUBTYPE.IMAGE, ROI_SUBTYPE.ARROW):
        kind = roi.subtype.name.lower()
    elif roi.composite or roi.roitype in (*area_types, ROI_TYPE.RECT, ROI_TYPE.OVAL):
        kind = None
    else:
        kind = roi.roitype.name.lower()
    if kind is not None:
        raise UserError(f"{where} is a {kind} ROI, which has no area; delete it or redraw the "
                        "particle with an area tool (polygon, freehand, oval, wand)")
    if roi.composite or roi.roitype in area_types:
        polygons = roi.coordinates(multi=True) if roi.composite else [roi.coordinates()]
        polygons = [np.asarray(xy, dtype=np.float64).reshape(-1, 2) for xy in polygons]
        polygons = [xy for xy in polygons if len(xy) >= 3]
        if not polygons:
            return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), dtype=bool)
        everything = np.concatenate(polygons)
        (left, top), (right, bottom) = everything.min(axis=0), everything.max(axis=0)
        window = _window(top, left, bottom, right, shape)
        return window, _even_odd_fill(polygons, window)
    if roi.subpixelrect:
        # Sub-pixel bounds are float32 in the file: round off the float32 noise so a bound
        # written as 5.5 does not come back as 5.5000002 and take in the pixel centred on it.
        left, top = float(roi.xd), float(roi.yd)
        right, bottom = left + float(roi.widthd), top + float(roi.heightd)
        left, top, right, bottom = (round(v, 4) for v in (left, top, right, bottom))
    else:
        left, top, right, bottom = roi.left, roi.top, roi.right, roi.bottom
    window = _window(top, left, bottom, right, shape)
    rows = np.arange(window[0].start, window[0].stop)[:, None] + 0.5
    cols = np.arange(window[1].start, window[1].stop)[None, :] + 0.5
    if roi.roitype == ROI_TYPE.RECT:
        return window, (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    if right <= left or bottom <= top:
        return window, np.zeros((len(rows), cols.shape[1]), dtype=bool)
    # An oval ROI is the ellipse inscribed in its bounds. Multiplied out (no division) so a
    # pixel centre exactly on a circle stays inside, as in RegionSet.to_label_image.
    half_height, half_width = (bottom - top) / 2, (right - left) / 2
    return window, ((((rows - top - half_height) * half_width) ** 2
                     + ((cols - left - half_width) * half_height) ** 2)
                    <= (half_height * half_width) ** 2)


def _even_odd_fill(polygons, window) -> np.ndarray:
    from skimage.draw import polygon as draw_polygon

    r0, c0 = window[0].start, window[1].start
    shape = (window[0].stop - r0, window[1].stop - c0)
    inside = np.zeros(shape, dtype=bool)
    for xy in polygons:
        # skimage tests the integer points (pixel index = centre - 0.5) against the polygon.
        rr, cc = draw_polygon(xy[:, 1] - 0.5 - r0, xy[:, 0] - 0.5 - c0, shape=shape)
        part = np.zeros(shape, dtype=bool)
        part[rr, cc] = True
        inside ^= part
    return inside


# ---------------------------------------------------------------------------- writing
def mask_outlines(mask) -> list[np.ndarray]:
    """Outlines of a boolean mask along pixel edges, as closed (x, y) corner polygons.

    Each outline is an M x 2 int array of ``x = col, y = row`` corner coordinates, without
    the closing repeat of the first vertex and without collinear vertices. Filling the
    outlines with the even-odd rule at pixel centres gives back ``mask`` exactly.

    >>> mask = np.zeros((3, 3), dtype=bool); mask[1, 1] = True
    >>> [o.tolist() for o in mask_outlines(mask)]
    [[[2, 2], [1, 2], [1, 1], [2, 1]]]
    """
    from skimage.measure import find_contours

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    # Doubling the resolution makes marching squares run along pixel edges except for a
    # quarter-pixel cut at each corner, which rounding to the nearest corner removes.
    fine = np.pad(mask, 1).repeat(2, axis=0).repeat(2, axis=1).astype(np.uint8)
    outlines = []
    for contour in find_contours(fine, 0.5, fully_connected="high"):
        corners = np.rint((contour + 0.5) / 2.0 - 1.0).astype(np.int64)[:, ::-1]
        outlines.append(_simplify_closed(corners))
    return [o for o in outlines if len(o) >= 4]


def _simplify_closed(points: np.ndarray) -> np.ndarray:
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)
    points = points[keep]
    if len(points) > 1 and np.array_equal(points[0], points[-1]):
        points = points[:-1]
    while len(points) >= 3:
        before, after = np.roll(points, 1, axis=0), np.roll(points, -1, axis=0)
        cross = ((points[:, 0] - before[:, 0]) * (after[:, 1] - points[:, 1])
                 - (points[:, 1] - before[:, 1]) * (after[:, 0] - points[:, 0]))
        collinear = cross == 0
        if not collinear.any() or collinear.all():
            break
        # Every vertex on a straight run between its neighbours can go at once: the runs
        # it belongs to stay straight lines between the vertices that remain.
        points = points[~collinear]
    return points


def _mask_roi(mask_patch: np.ndarray, offset_rc, name: str):
    import roifile

    outlines = [o + np.array([offset_rc[1], offset_rc[0]]) for o in mask_outlines(mask_patch)]
    if len(outlines) == 1:
        roi = roifile.ImagejRoi.frompoints(outlines[0].astype(np.int32), name=name)
        roi.roitype = roifile.ROI_TYPE.TRACED
        roi.options = roifile.ROI_OPTIONS.NONE
        return roi
    path = []
    for outline in outlines:
        path += [0.0, *map(float, outline[0])]
        for x, y in outline[1:]:
            path += [1.0, float(x), float(y)]
        path.append(4.0)
    everything = np.concatenate(outlines)
    left, top = everything.min(axis=0)
    right, bottom = everything.max(axis=0)
    return roifile.ImagejRoi(
        roitype=roifile.ROI_TYPE.RECT, name=name, left=int(left), top=int(top),
        right=int(right), bottom=int(bottom), shape_roi_size=len(path),
        multi_coordinates=np.asarray(path, dtype=np.float32),
    )


def _bounds_roi(roitype, top, left, bottom, right, name: str):
    import roifile

    bounds = np.array([top, left, bottom, right], dtype=np.float64)
    whole = np.rint(bounds)
    roi = roifile.ImagejRoi(roitype=roitype, name=name, top=int(whole[0]), left=int(whole[1]),
                            bottom=int(whole[2]), right=int(whole[3]))
    if not np.array_equal(whole, bounds):
        roi.options = roifile.ROI_OPTIONS.SUB_PIXEL_RESOLUTION
        roi.xd, roi.yd = float(left), float(top)
        roi.widthd, roi.heightd = float(right - left), float(bottom - top)
    return roi


def write_roi_zip(path: str | os.PathLike, regions: RegionSet) -> None:
    """Write regions as a Fiji ROI set (``.zip``), one ROI per region, atomically.

    ROIs are named ``0001-<label>`` (masks; boxes and circles use their index). Masks
    become traced polygons (composite ROIs when they have holes or several pieces), boxes
    rectangles, circles ovals. Reading the file back with :func:`read_roi_set` gives the
    same pixels for every region (later regions on top, as in the label image).
    """
    import roifile
    from scipy import ndimage

    rois = []
    if regions.kind is RegionKind.MASK:
        slices = ndimage.find_objects(regions.labels)
        for k, label in enumerate(regions.ids, start=1):
            window = slices[label - 1]
            patch = regions.labels[window] == label
            offset = (window[0].start, window[1].start)
            rois.append(_mask_roi(patch, offset, f"{k:04d}-{label}"))
    elif regions.kind is RegionKind.BOX:
        for k, (r0, c0, r1, c1) in enumerate(regions.boxes, start=1):
            rois.append(_bounds_roi(roifile.ROI_TYPE.RECT, r0, c0, r1, c1, f"{k:04d}-{k - 1}"))
    else:
        for k, (row, col, radius) in enumerate(regions.circles, start=1):
            rois.append(_bounds_roi(roifile.ROI_TYPE.OVAL, row - radius, col - radius,
                                    row + radius, col + radius, f"{k:04d}-{k - 1}"))
    with atomic_path(path, suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for roi in rois:
                archive.writestr(f"{roi.name}.roi", roi.tobytes())
