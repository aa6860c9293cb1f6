"""EMAN ``.box`` and crYOLO ``.cbox`` files: boxes given by their corner of smallest x and y.

Both count ``(x, y)`` from the box corner crYOLO calls "lower-left" and, for TIFF, PNG and
JPEG input, rows from the bottom edge (see :func:`cryolo_flips_rows` and the conventions
table of :mod:`lipobench.formats`).

Sources for the CBOX layout (crYOLO 1.9, ``cryolo/CoordsIO.py``: ``write_cbox_file`` and
``box_to_np_array``, written through ``pyStarDB``): a ``data_global`` block holding
``_cbox_format_version 1.0``; a ``data_cryolo`` loop of ``_CoordinateX _CoordinateY
_CoordinateZ _Width _Height _Depth _EstWidth _EstHeight _Confidence _NumBoxes _Angle`` where
X/Y are ``box.x``/``box.y``, the same lower-left corner that ``write_eman1_boxfile`` writes to
``.box`` ("box.x / box.y = Lower left corner"), Width/Height the configured box size and
EstWidth/EstHeight the size crYOLO estimated for the particle; values crYOLO does not have
(Z, Depth, NumBoxes and Angle for 2-D single particles, Confidence for hand-made
annotations) are NaN, which pyStarDB writes as ``<NA>``; and a ``data_cryolo_include`` loop
with one column ``_slice_index``, empty for 2-D images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from lipobench.errors import UserError
from lipobench.formats._common import (
    _check_positive_sizes,
    _check_regions,
    _fmt,
    _image_height,
    _number,
    _positive,
    _read_text,
)
from lipobench.formats._star import (
    _check_star_rows,
    _read_star_blocks,
    _scan_star_loops,
    _star_text,
)
from lipobench.fsutil import atomic_write_text
from lipobench.regions import RegionKind, RegionSet

__all__ = ["CBOX_COLUMNS", "cryolo_flips_rows", "read_box", "write_box", "read_cbox_table",
           "read_cbox", "write_cbox"]

#: The ``data_cryolo`` columns crYOLO 1.9 writes, in its order (without the leading ``_``).
CBOX_COLUMNS = ("CoordinateX", "CoordinateY", "CoordinateZ", "Width", "Height", "Depth",
                "EstWidth", "EstHeight", "Confidence", "NumBoxes", "Angle")

# The suffixes crYOLO 1.9.9 reads through imagereader.read_mrc, which flips rows.
_CRYOLO_FLIPPED_ON_READ = frozenset({".mrc", ".mrcs", ".rec"})


def cryolo_flips_rows(image_path: str | os.PathLike) -> bool:
    """Whether crYOLO's y for this image counts rows from the bottom of lipobench's array.

    True for TIFF, PNG and JPEG, which crYOLO reads as they are and whose y it counts from
    the bottom edge; False for MRC, which crYOLO flips on reading, so that its bottom-up y is
    the row from the top of the array mrcfile (and lipobench) reads. Pass the result as
    ``flip_rows`` to the ``.box``, ``.cbox`` and ``.star`` functions for the image crYOLO was
    given. Checked against crYOLO 1.9.9's own parser and writer in
    ``tests/adapters/test_cryolo_real.py``.

    >>> cryolo_flips_rows("mic_001.MRC"), cryolo_flips_rows("mic_001.tif")
    (False, True)
    >>> cryolo_flips_rows("mic_001.jpg"), cryolo_flips_rows("mic_001.png")
    (True, True)
    """
    return Path(image_path).suffix.lower() not in _CRYOLO_FLIPPED_ON_READ


def _boxes_from_corner(x, y, w, h, *, image_shape, flip_rows: bool) -> np.ndarray:
    """(x, y, w, h) with (x, y) the corner of smallest x and y -> row0, col0, row1, col1."""
    height = _image_height(image_shape)
    row0 = height - (y + h) if flip_rows else y
    return np.column_stack([row0, x, row0 + h, x + w]).reshape(-1, 4)


def _corners(boxes: np.ndarray, *, image_shape, flip_rows: bool) -> np.ndarray:
    """Inverse of :func:`_boxes_from_corner`: N x 4 (x, y, w, h)."""
    height = image_shape[0]
    w = boxes[:, 3] - boxes[:, 1]
    h = boxes[:, 2] - boxes[:, 0]
    y = height - boxes[:, 2] if flip_rows else boxes[:, 0]
    return np.column_stack([boxes[:, 1], y, w, h]).reshape(-1, 4)


# ---------------------------------------------------------------------------- EMAN .box
def read_box(path: str | os.PathLike, *, image_shape, flip_rows: bool = False) -> RegionSet:
    """Read an EMAN/crYOLO ``.box`` file: one ``x y w h [score]`` line per particle.

    Parameters
    ----------
    path : path-like
        The ``.box`` file (tab- or space-separated). A fifth column, as in REPIC's files, is
        read as the scores. Blank lines and lines starting with ``#`` are skipped.
    image_shape : (int, int)
        ``(rows, cols)`` of the micrograph the boxes belong to.
    flip_rows : bool
        True when y counts rows from the bottom edge (crYOLO on TIFF, PNG or JPEG input, see
        :func:`cryolo_flips_rows`): ``row0 = rows - (y + h)``. Otherwise ``row0 = y``.

    Returns
    -------
    RegionSet
        Kind BOX, one box per line, in file order.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mic.box"
    >>> _ = path.write_text("10\\t20\\t8\\t6\\t0.9\\n")
    >>> boxes = read_box(path, image_shape=(100, 50))
    >>> boxes.boxes.tolist(), boxes.scores.tolist()
    ([[20.0, 10.0, 26.0, 18.0]], [0.9])
    >>> read_box(path, image_shape=(100, 50), flip_rows=True).boxes.tolist()
    [[74.0, 10.0, 80.0, 18.0]]
    """
    path = Path(path)
    _image_height(image_shape)
    rows, linenos = [], []
    width = None
    expected = "4 or 5 numbers per line: x y w h [score]"
    for lineno, line in enumerate(_read_text(path, ".box file").splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) not in (4, 5):
            raise UserError(f"{path}: line {lineno}: got {len(fields)} fields; expected "
                            f"{expected}")
        if width is not None and len(fields) != width:
            raise UserError(f"{path}: line {lineno}: got {len(fields)} fields after lines of "
                            f"{width}; every line needs the same columns (x y w h [score])")
        width = len(fields)
        rows.append([_number(f, path, lineno, expected) for f in fields])
        linenos.append(lineno)
    if not rows:
        return RegionSet.empty(RegionKind.BOX, image_shape)
    table = np.asarray(rows, dtype=np.float64)
    _check_positive_sizes(table[:, 2], linenos, path, "the width w")
    _check_positive_sizes(table[:, 3], linenos, path, "the height h")
    boxes = _boxes_from_corner(*table[:, :4].T, image_shape=image_shape, flip_rows=flip_rows)
    scores = table[:, 4] if width == 5 else None
    return RegionSet.from_boxes(boxes, image_shape=image_shape, scores=scores)


def write_box(path: str | os.PathLike, regions: RegionSet, *, flip_rows: bool = False) -> Path:
    """Write regions as an EMAN/crYOLO ``.box`` file (tab-separated ``x y w h [score]``).

    Masks and circles are written as their tight boxes (:meth:`RegionSet.to_boxes`); scores,
    if any, become a fifth column. ``flip_rows`` as in :func:`read_box`, using the height of
    ``regions.image_shape``. Returns the path written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mic.box"
    >>> regions = RegionSet.from_boxes([[20, 10, 26, 18]], image_shape=(100, 50))
    >>> print(write_box(path, regions, flip_rows=True).read_text(), end="")
    10	74	8	6
    """
    regions = _check_regions(regions, "write_box")
    boxes = regions.to_boxes()
    table = _corners(boxes.boxes, image_shape=regions.image_shape, flip_rows=flip_rows)
    if boxes.scores is not None:
        table = np.column_stack([table, boxes.scores])
    text = "".join("\t".join(_fmt(v) for v in row) + "\n" for row in table)
    return atomic_write_text(path, text)


# ---------------------------------------------------------------------------- crYOLO CBOX
def read_cbox_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a crYOLO CBOX file's ``data_cryolo`` loop as a table, one row per box.

    Columns are named as in the file without the leading underscore (:data:`CBOX_COLUMNS`
    for files crYOLO 1.9 writes); missing values (``<NA>``) are NaN. Coordinates are
    crYOLO's own (lower-left corner, rows possibly flipped); use :func:`read_cbox` for
    regions. An empty file gives an empty table with :data:`CBOX_COLUMNS`.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mic.cbox"
    >>> regions = RegionSet.from_boxes([[20, 10, 26, 18]], image_shape=(100, 50),
    ...                                scores=[0.75])
    >>> table = read_cbox_table(write_cbox(path, regions, box_size=10))
    >>> table[["CoordinateX", "CoordinateY", "Width", "EstWidth", "EstHeight",
    ...        "Confidence"]].values.tolist()
    [[9.0, 18.0, 10.0, 8.0, 6.0, 0.75]]
    """
    path = Path(path)
    table, _ = _read_cbox_checked(path)
    return table


def _read_cbox_checked(path: Path) -> tuple[pd.DataFrame, list[int]]:
    text = _read_text(path, "CBOX file")
    if not text.strip():
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in CBOX_COLUMNS}), []
    loop = _scan_star_loops(text).get("cryolo")
    if loop is None:
        raise UserError(f"{path}: has no data_cryolo loop; give a CBOX file written by "
                        "crYOLO 1.8 or later (its CBOX/ output folder)")
    required = ("CoordinateX", "CoordinateY", "Width", "Height")
    missing = [c for c in required if c not in loop.columns]
    if missing:
        raise UserError(f"{path}: data_cryolo lacks column(s) "
                        f"{', '.join('_' + c for c in missing)}; a CBOX file needs "
                        "_CoordinateX _CoordinateY _Width _Height")
    linenos = _check_star_rows(path, loop, CBOX_COLUMNS, required)
    table = _read_star_blocks(path).get("cryolo")
    if not isinstance(table, pd.DataFrame) or len(table) != len(linenos):
        raise UserError(f"{path}: its data_cryolo loop could not be read as a table; "
                        "check that it is the file crYOLO wrote")
    table = table.reset_index(drop=True)
    for column in table.columns:
        if column in CBOX_COLUMNS:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype(np.float64)
    return table, linenos


def read_cbox(path: str | os.PathLike, *, image_shape, flip_rows: bool = False,
              use_estimated_size: bool = False) -> RegionSet:
    """Read a crYOLO CBOX file as boxes, with ``_Confidence`` as the scores.

    Parameters
    ----------
    path : path-like
        The ``.cbox`` file (crYOLO's ``CBOX/`` folder). Its raw columns, including the
        estimated sizes, are available through :func:`read_cbox_table`.
    image_shape : (int, int)
        ``(rows, cols)`` of the micrograph.
    flip_rows : bool
        As in :func:`read_box`.
    use_estimated_size : bool
        False: boxes of ``_Width x _Height`` (crYOLO's configured box size), as in its
        ``.box`` output. True: boxes of ``_EstWidth x _EstHeight`` (the size crYOLO
        estimated for each particle) around the same centres.

    Returns
    -------
    RegionSet
        Kind BOX; scores are the confidences, or None when the file holds none (as in
        hand-made annotations).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mic.cbox"
    >>> regions = RegionSet.from_boxes([[20, 10, 26, 18]], image_shape=(100, 50),
    ...                                scores=[0.75])
    >>> _ = write_cbox(path, regions, box_size=10)
    >>> read_cbox(path, image_shape=(100, 50)).boxes.tolist()
    [[18.0, 9.0, 28.0, 19.0]]
    >>> read_cbox(path, image_shape=(100, 50), use_estimated_size=True).boxes.tolist()
    [[20.0, 10.0, 26.0, 18.0]]
    """
    path = Path(path)
    _image_height(image_shape)
    table, linenos = _read_cbox_checked(path)
    if len(table) == 0:
        return RegionSet.empty(RegionKind.BOX, image_shape)
    x, y, w, h = (table[c].to_numpy(np.float64) for c in
                  ("CoordinateX", "CoordinateY", "Width", "Height"))
    _check_positive_sizes(w, linenos, path, "_Width")
    _check_positive_sizes(h, linenos, path, "_Height")
    if use_estimated_size:
        for column in ("EstWidth", "EstHeight"):
            values = table[column].to_numpy(np.float64) if column in table else None
            if values is None or np.isnan(values).any():
                where = ("has no column _" + column if values is None else
                         f"line {linenos[int(np.flatnonzero(np.isnan(values))[0])]}: "
                         f"_{column} is missing")
                raise UserError(f"{path}: {where}; read it with use_estimated_size=False")
            _check_positive_sizes(values, linenos, path, "_" + column)
        est_w = table["EstWidth"].to_numpy(np.float64)
        est_h = table["EstHeight"].to_numpy(np.float64)
        x, y, w, h = x + (w - est_w) / 2, y + (h - est_h) / 2, est_w, est_h
    scores = None
    if "Confidence" in table:
        confidence = table["Confidence"].to_numpy(np.float64)
        missing = np.isnan(confidence)
        if missing.any() and not missing.all():
            raise UserError(f"{path}: line {linenos[int(np.flatnonzero(missing)[0])]}: "
                            "_Confidence is missing while other boxes have one; give every "
                            "box a confidence or none")
        scores = None if missing.all() else confidence
    boxes = _boxes_from_corner(x, y, w, h, image_shape=image_shape, flip_rows=flip_rows)
    return RegionSet.from_boxes(boxes, image_shape=image_shape, scores=scores)


def write_cbox(path: str | os.PathLike, regions: RegionSet, *, flip_rows: bool = False,
               box_size: float | None = None) -> Path:
    """Write regions as a crYOLO 1.9 CBOX file (``data_global``, ``data_cryolo``,
    ``data_cryolo_include``).

    Parameters
    ----------
    path : path-like
        Target file (replaced atomically).
    regions : RegionSet
        Boxes, or masks and circles (written as their tight boxes). Scores become
        ``_Confidence``; without scores it is ``<NA>``, as crYOLO writes for hand-made boxes.
    flip_rows : bool
        As in :func:`write_box`.
    box_size : float, optional
        None: ``_Width``/``_Height`` are each region's own size. A number: every box is
        ``box_size`` square around the region's centre, as crYOLO writes its predictions.
        ``_EstWidth``/``_EstHeight`` are always the region's own width and height.

    Returns
    -------
    pathlib.Path
        The path written. See :func:`read_cbox` for an example.
    """
    regions = _check_regions(regions, "write_cbox")
    boxes = regions.to_boxes()
    table = boxes.boxes
    est_w = table[:, 3] - table[:, 1]
    est_h = table[:, 2] - table[:, 0]
    if box_size is not None:
        box_size = _positive(box_size, "box_size")
        centres = boxes.centroids()
        half = box_size / 2
        table = np.column_stack([centres[:, 0] - half, centres[:, 1] - half,
                                 centres[:, 0] + half, centres[:, 1] + half]).reshape(-1, 4)
    corners = _corners(table, image_shape=regions.image_shape, flip_rows=flip_rows)
    n = len(corners)
    missing = np.full(n, np.nan)
    data = pd.DataFrame({
        "CoordinateX": corners[:, 0], "CoordinateY": corners[:, 1], "CoordinateZ": missing,
        "Width": corners[:, 2], "Height": corners[:, 3], "Depth": missing,
        "EstWidth": est_w, "EstHeight": est_h,
        "Confidence": missing if boxes.scores is None else boxes.scores,
        "NumBoxes": missing, "Angle": missing,
    }, columns=list(CBOX_COLUMNS))
    include = pd.DataFrame({"slice_index": pd.Series(dtype=np.float64)})
    text = _star_text({"global": {"cbox_format_version": "1.0"}, "cryolo": data,
                       "cryolo_include": include})
    return atomic_write_text(path, text)
