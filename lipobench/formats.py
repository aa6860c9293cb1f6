"""The wrapped tools' native coordinate files, read into and written from RegionSets.

Every function here converts at the border between a tool's convention and lipobench's
(row, col) frame with the origin at the top-left corner (see :mod:`lipobench.regions`):

=========  =====================================  ==========================================
format     tool's coordinates                     in lipobench
=========  =====================================  ==========================================
``.box``   ``x y w h [score]``, (x, y) = box      ``col0 = x``; ``row0 = y``, or with
           corner with the smallest x and y in    ``flip_rows`` ``row0 = H - (y + h)``
           crYOLO's frame ("lower-left")
``.cbox``  STAR, ``_CoordinateX/_CoordinateY``    as ``.box``; ``_Confidence`` -> scores
           = same corner as ``.box``
``.star``  RELION ``_rlnCoordinateX/Y`` = centre  ``col = x``; ``row = y`` or ``H - y``
Topaz      ``image_name x_coord y_coord [score]`` ``col = x + 0.5``, ``row = y + 0.5``
           integer pixel indices, top-left        (the centre of pixel index i is i + 0.5)
CSV        boxes ``row0,col0,row1,col1``, or      as written (``row`` or ``H - row`` with
           centres ``row,col`` or CryoSegNet's    ``flip_rows``); ``X-Coordinate`` = col,
           ``X-Coordinate,Y-Coordinate``          ``Y-Coordinate`` = row
=========  =====================================  ==========================================

crYOLO's y counts from the bottom of the array crYOLO has read (1.9.9,
``preprocessing.parse_annotation``: ``box_ymin = img_size[1] - (y + h)``; ``predict.rescale``:
``y_ll = image_height - y * image_height - h / 2``), and crYOLO flips MRC arrays on reading
(``imagereader.read_mrc``: ``np.flipud``) while TIFF, PNG and JPEG stay as they are. The two
cancel for MRC: counted in the array lipobench reads (mrcfile's, unflipped), crYOLO's y is the
row from the top for MRC input and from the bottom for TIFF/PNG/JPEG input. Pass
``flip_rows=cryolo_flips_rows(image)`` for the file crYOLO reads.
crYOLO and RELION coordinates are continuous (a box's corner, a box's centre); Topaz's are
integer pixel indices, which is why only Topaz gets the half-pixel shift.

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

Malformed input raises :class:`~lipobench.errors.UserError` whose one-line message names the
file, the line and what was expected. Empty files and files without particles are valid and
give empty RegionSets (crYOLO writes such files with ``--write_empty``). Writers replace the
target atomically, so a failed write leaves no half-written file.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lipobench.errors import UserError
from lipobench.fsutil import atomic_write_text
from lipobench.regions import RegionKind, RegionSet

__all__ = [
    "CBOX_COLUMNS",
    "cryolo_flips_rows",
    "read_box",
    "write_box",
    "read_cbox_table",
    "read_cbox",
    "write_cbox",
    "read_star_centres",
    "read_star",
    "write_star",
    "read_topaz",
    "write_topaz",
    "read_region_csv",
    "CSV_BOX_COLUMNS",
    "CSV_CENTRE_COLUMNS",
]

#: The ``data_cryolo`` columns crYOLO 1.9 writes, in its order (without the leading ``_``).
CBOX_COLUMNS = ("CoordinateX", "CoordinateY", "CoordinateZ", "Width", "Height", "Depth",
                "EstWidth", "EstHeight", "Confidence", "NumBoxes", "Angle")

# The suffixes crYOLO 1.9.9 reads through imagereader.read_mrc, which flips rows.
_CRYOLO_FLIPPED_ON_READ = frozenset({".mrc", ".mrcs", ".rec"})
# Tokens STAR writers use for a missing value: pyStarDB and starfile write "<NA>".
_STAR_MISSING = frozenset({"<NA>", "NA", "nan", "NaN", "None"})
_TOPAZ_COLUMNS = ("image_name", "x_coord", "y_coord")


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


# ---------------------------------------------------------------------------- text helpers
def _read_text(path: Path, what: str) -> str:
    if not path.exists():
        raise UserError(f"{path}: {what} not found; check the path")
    if not path.is_file():
        raise UserError(f"{path}: is not a file; give the path of a {what}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: is not a text file; give a {what}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror}); check its permissions") \
            from None


def _number(token: str, path: Path, lineno: int, expected: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise UserError(f"{path}: line {lineno}: {token!r} is not a number; "
                        f"expected {expected}") from None
    if not math.isfinite(value):
        raise UserError(f"{path}: line {lineno}: {token!r} is not a finite number; "
                        f"expected {expected}")
    return value


def _fmt(value: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without a dot."""
    value = float(value)
    if value.is_integer() and abs(value) < 2 ** 53:
        return str(int(value))
    return repr(value)


def _check_regions(regions, what: str) -> RegionSet:
    if not isinstance(regions, RegionSet):
        raise TypeError(f"{what} needs a RegionSet, got {type(regions).__name__}")
    return regions


def _image_height(image_shape) -> int:
    try:
        rows, cols = (int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise UserError(f"image_shape must be (rows, cols), got {image_shape!r}") from None
    if rows <= 0 or cols <= 0:
        raise UserError(f"image_shape must be two positive sizes, got {image_shape!r}")
    return rows


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive number of pixels, got {value!r}")
    return float(value)


def _check_positive_sizes(sizes: np.ndarray, linenos, path: Path, what: str) -> None:
    bad = np.flatnonzero(sizes <= 0)
    if bad.size:
        row = int(bad[0])
        raise UserError(f"{path}: line {linenos[row]}: {what} is {sizes[row]:g}; "
                        "box sizes must be positive")


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


# ---------------------------------------------------------------------------- STAR scanning
@dataclass(frozen=True)
class _StarLoop:
    """The rows of one STAR loop as text, with their line numbers, for error messages."""

    columns: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]


def _scan_star_loops(text: str) -> dict[str, _StarLoop]:
    """Find every ``loop_`` block: its column names (no ``_``) and its data lines.

    starfile parses the values; this scan exists so that a bad line can be reported by its
    line number, which starfile (through pandas) does not give.
    """
    loops: dict[str, _StarLoop] = {}
    block = None
    columns: list[str] = []
    rows: list[tuple[int, tuple[str, ...]]] = []
    state = "outside"  # outside a loop, reading its column names, or reading its rows

    def finish():
        if block is not None and state != "outside":
            loops[block] = _StarLoop(tuple(columns), tuple(rows))

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if line.startswith("data_"):
            finish()
            block, columns, rows, state = line[len("data_"):].strip(), [], [], "outside"
        elif line == "loop_":
            finish()
            columns, rows, state = [], [], "columns"
        elif state == "columns" and line.startswith("_"):
            columns.append(line.split()[0][1:])
        elif state == "columns" and line:
            state = "rows"
            rows.append((lineno, tuple(line.split())))
        elif state == "rows" and line and not line.startswith("_"):
            rows.append((lineno, tuple(line.split())))
        elif state == "rows":
            finish()
            state = "outside"
    finish()
    return loops


def _check_star_rows(path: Path, loop: _StarLoop, numeric: tuple[str, ...],
                     required: tuple[str, ...]) -> list[int]:
    """Check column counts and numbers in ``numeric`` columns; return the rows' line numbers.

    Values in ``required`` columns must be numbers; elsewhere in ``numeric`` a missing
    value (``<NA>``) is allowed.
    """
    width = len(loop.columns)
    position = {name: k for k, name in enumerate(loop.columns)}
    expected_fields = " ".join(f"_{c}" for c in loop.columns)
    for lineno, fields in loop.rows:
        if len(fields) != width:
            raise UserError(f"{path}: line {lineno}: got {len(fields)} values; expected "
                            f"{width}, one per column ({expected_fields})")
        for name in numeric:
            if name not in position:
                continue
            token = fields[position[name]]
            if token in _STAR_MISSING and name not in required:
                continue
            _number(token, path, lineno, f"a number in column _{name}")
    return [lineno for lineno, _ in loop.rows]


def _read_star_blocks(path: Path) -> dict:
    import starfile  # pulls in pandas readers; only the STAR formats need it

    try:
        return starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises bare pandas/parser errors
        raise UserError(f"{path}: is not a readable STAR file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); "
                        "check that it is the file the tool wrote") from None


def _star_text(blocks: Mapping[str, object]) -> str:
    from starfile.writer import StarWriter

    # StarWriter.to_string() starts with a time-stamped comment; leave it out so the same
    # regions always give the same bytes (cache keys and diffs stay stable).
    writer = StarWriter(dict(blocks), float_format="%.6f", separator="\t", na_rep="<NA>")
    return "".join(line + "\n" for line in writer.data_block_generator())


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


# ---------------------------------------------------------------------------- RELION STAR
def _read_star_table(path: Path) -> tuple[pd.DataFrame, list[int]]:
    text = _read_text(path, "STAR file")
    if not text.strip():
        return pd.DataFrame({"rlnCoordinateX": [], "rlnCoordinateY": []}), []
    loops = _scan_star_loops(text)
    names = [name for name, loop in loops.items()
             if {"rlnCoordinateX", "rlnCoordinateY"} <= set(loop.columns)]
    if not names:
        raise UserError(f"{path}: no loop has _rlnCoordinateX and _rlnCoordinateY; give a "
                        "RELION coordinate STAR file (crYOLO's STAR/ output folder)")
    required = ("rlnCoordinateX", "rlnCoordinateY")
    linenos = _check_star_rows(path, loops[names[0]],
                               required + ("rlnAutopickFigureOfMerit",), required)
    table = _read_star_blocks(path).get(names[0])
    if not isinstance(table, pd.DataFrame) or len(table) != len(linenos):
        raise UserError(f"{path}: its coordinate loop could not be read as a table; check "
                        "that it is the file the tool wrote")
    return table.reset_index(drop=True), linenos


def read_star_centres(path: str | os.PathLike, *, image_shape,
                      flip_rows: bool = False) -> np.ndarray:
    """Particle centres from a RELION coordinate STAR file, as N x 2 (row, col).

    ``_rlnCoordinateX`` is the column; ``_rlnCoordinateY`` the row, or with ``flip_rows``
    (crYOLO on MRC input) ``rows - y``.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mic.star"
    >>> _ = path.write_text("data_\\nloop_\\n_rlnCoordinateX #1\\n_rlnCoordinateY #2\\n"
    ...                     "12.5 30\\n")
    >>> read_star_centres(path, image_shape=(100, 50), flip_rows=True).tolist()
    [[70.0, 12.5]]
    """
    height = _image_height(image_shape)
    table, _ = _read_star_table(Path(path))
    return _star_centres(table, height=height, flip_rows=flip_rows)


def _star_centres(table: pd.DataFrame, *, height: int, flip_rows: bool) -> np.ndarray:
    x = table["rlnCoordinateX"].to_numpy(np.float64)
    y = table["rlnCoordinateY"].to_numpy(np.float64)
    return np.column_stack([height - y if flip_rows else y, x]).reshape(-1, 2)


def read_star(path: str | os.PathLike, *, image_shape, box_size: float,
              flip_rows: bool = False) -> RegionSet:
    """Read a RELION coordinate STAR file as boxes of ``box_size`` around each centre.

    Scores come from ``_rlnAutopickFigureOfMerit`` when the file has that column.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mic.star"
    >>> _ = path.write_text("data_\\nloop_\\n_rlnCoordinateX #1\\n_rlnCoordinateY #2\\n"
    ...                     "12.5 30\\n")
    >>> read_star(path, image_shape=(100, 50), box_size=10).boxes.tolist()
    [[25.0, 7.5, 35.0, 17.5]]
    """
    path = Path(path)
    box_size = _positive(box_size, "box_size")
    height = _image_height(image_shape)
    table, linenos = _read_star_table(path)
    centres = _star_centres(table, height=height, flip_rows=flip_rows)
    scores = None
    if "rlnAutopickFigureOfMerit" in table:
        scores = pd.to_numeric(table["rlnAutopickFigureOfMerit"], errors="coerce") \
            .to_numpy(np.float64)
        missing = np.isnan(scores)
        if missing.any() and not missing.all():
            raise UserError(f"{path}: line {linenos[int(np.flatnonzero(missing)[0])]}: "
                            "_rlnAutopickFigureOfMerit is missing while other particles "
                            "have one; give every particle a value or none")
        scores = None if missing.all() else scores
    half = box_size / 2
    boxes = np.column_stack([centres - half, centres + half]).reshape(-1, 4)
    return RegionSet.from_boxes(boxes, image_shape=image_shape, scores=scores)


def write_star(path: str | os.PathLike, regions: RegionSet, *, flip_rows: bool = False) -> Path:
    """Write the regions' centres as a RELION coordinate STAR file.

    One ``data_`` loop of ``_rlnCoordinateX _rlnCoordinateY`` (as crYOLO's ``STAR/``
    output), plus ``_rlnAutopickFigureOfMerit`` when the regions have scores. Centres are
    :meth:`RegionSet.centroids`. Returns the path written.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mic.star"
    >>> circles = RegionSet.from_circles([[70, 12.5, 4]], image_shape=(100, 50))
    >>> read_star_centres(write_star(path, circles, flip_rows=True), image_shape=(100, 50),
    ...                   flip_rows=True).tolist()
    [[70.0, 12.5]]
    """
    regions = _check_regions(regions, "write_star")
    centres = regions.centroids()
    height = regions.image_shape[0]
    data = {"rlnCoordinateX": centres[:, 1],
            "rlnCoordinateY": height - centres[:, 0] if flip_rows else centres[:, 0]}
    if regions.scores is not None:
        data["rlnAutopickFigureOfMerit"] = regions.scores
    return atomic_write_text(path, _star_text({"": pd.DataFrame(data)}))


# ---------------------------------------------------------------------------- Topaz
def read_topaz(path: str | os.PathLike, *,
               image_shapes: Mapping[str, tuple[int, int]] | None = None,
               radius: float) -> dict[str, RegionSet]:
    """Read a Topaz coordinate file (several images per file) as circles per image.

    Parameters
    ----------
    path : path-like
        Tab-separated, with the header ``image_name x_coord y_coord [score]``; x is the
        column and y the row pixel index, origin top-left. The circle is centred on the
        pick's pixel centre, ``(y + 0.5, x + 0.5)``.
    image_shapes : mapping of str to (int, int), optional
        ``(rows, cols)`` of each image by name (without extension). Every image named in
        the file must be in it, and each image in it gets a RegionSet, empty when Topaz
        picked nothing there. None: only the images in the file, each with the smallest
        shape that holds its picks.
    radius : float
        Radius of every circle, in pixels (the paper draws the extraction radius).

    Returns
    -------
    dict of str to RegionSet
        Kind CIRCLE; scores from the ``score`` column when present.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "picks.txt"
    >>> _ = path.write_text("image_name\\tx_coord\\ty_coord\\tscore\\na\\t3\\t7\\t-1.5\\n")
    >>> picks = read_topaz(path, image_shapes={"a": (20, 20), "b": (20, 20)}, radius=4)
    >>> picks["a"].circles.tolist(), picks["a"].scores.tolist(), len(picks["b"])
    ([[7.5, 3.5, 4.0]], [-1.5], 0)
    """
    path = Path(path)
    radius = _positive(radius, "radius")
    lines = _read_text(path, "Topaz coordinate file").splitlines()
    numbered = [(k, line) for k, line in enumerate(lines, start=1) if line.strip()]
    picks: dict[str, list[list[float]]] = {}
    has_score = False
    if numbered:
        header_no, header_line = numbered[0]
        header = header_line.strip().split("\t")
        if tuple(header[:3]) != _TOPAZ_COLUMNS or not set(header[3:]) <= {"score"}:
            raise UserError(f"{path}: line {header_no}: header is {header_line.strip()!r}; "
                            "expected image_name<TAB>x_coord<TAB>y_coord[<TAB>score]")
        has_score = len(header) == 4
        numbers = "x_coord, y_coord" + (", score" if has_score else "")
        expected = "image_name, " + numbers
        for lineno, line in numbered[1:]:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != len(header):
                raise UserError(f"{path}: line {lineno}: got {len(fields)} tab-separated "
                                f"fields; expected {len(header)} ({expected})")
            name = fields[0].strip()
            if not name:
                raise UserError(f"{path}: line {lineno}: the image_name is empty; "
                                "name the image the pick belongs to")
            values = [_number(f.strip(), path, lineno, f"numbers for {numbers}")
                      for f in fields[1:]]
            picks.setdefault(name, []).append(values)
    if image_shapes is not None:
        unknown = sorted(set(picks) - set(image_shapes))
        if unknown:
            raise UserError(f"{path}: image {unknown[0]!r} is not among the images given "
                            f"({len(image_shapes)}); give its shape in image_shapes or "
                            "check the image names (Topaz drops the extension)")
        names = list(image_shapes)
    else:
        names = list(picks)
    result: dict[str, RegionSet] = {}
    for name in names:
        table = np.asarray(picks.get(name, []), dtype=np.float64).reshape(-1, 2 + has_score)
        centres = table[:, [1, 0]] + 0.5
        if image_shapes is not None:
            shape = image_shapes[name]
        else:
            shape = tuple(int(v) for v in np.maximum(np.ceil(centres.max(axis=0)), 1))
        circles = np.column_stack([centres, np.full(len(table), float(radius))])
        result[name] = RegionSet.from_circles(circles.reshape(-1, 3), image_shape=shape,
                                              scores=table[:, 2] if has_score else None)
    return result


def write_topaz(path: str | os.PathLike, regions_by_image: Mapping[str, RegionSet]) -> Path:
    """Write picks for several images as one Topaz coordinate file.

    Each region's centre (:meth:`RegionSet.centroids`) becomes the integer index of the
    pixel that contains it (``x = floor(col)``, ``y = floor(row)``: the nearest pixel
    centre, ties to the higher index). A ``score`` column is written when the regions have
    scores; then every non-empty RegionSet needs them. Images without regions write no
    line. Returns the path written.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "picks.txt"
    >>> regions = RegionSet.from_circles([[7.5, 3.5, 4]], image_shape=(20, 20), scores=[0.5])
    >>> print(write_topaz(path, {"a": regions}).read_text(), end="")
    image_name	x_coord	y_coord	score
    a	3	7	0.5
    """
    items = [(name, _check_regions(regions, "write_topaz"))
             for name, regions in regions_by_image.items()]
    for name, _ in items:
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "\t\r\n"):
            raise UserError(f"image name {name!r} cannot be written to a Topaz file; use a "
                            "non-empty name without tabs or line breaks")
    scored = [regions.scores is not None for _, regions in items if len(regions)]
    with_score = any(scored)
    if with_score and not all(scored):
        name = next(n for n, r in items if len(r) and r.scores is None)
        raise UserError(f"image {name!r} has no scores while others have; give every image "
                        "scores, or none")
    header = list(_TOPAZ_COLUMNS) + (["score"] if with_score else [])
    lines = ["\t".join(header)]
    for name, regions in items:
        centres = np.floor(regions.centroids()).astype(np.int64)
        for k, (row, col) in enumerate(centres):
            fields = [name, str(col), str(row)]
            if with_score:
                fields.append(_fmt(regions.scores[k]))
            lines.append("\t".join(fields))
    return atomic_write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------- CSV tables
#: CSV columns of boxes in lipobench's frame (half-open, pixels, origin top-left).
CSV_BOX_COLUMNS = ("row0", "col0", "row1", "col1")
#: CSV centre columns, each pair as (row column, col column): lipobench's own names, and
#: CryoSegNet's/CryoPPP's particle tables (``X-Coordinate`` = column, ``Y-Coordinate`` = row).
CSV_CENTRE_COLUMNS = (("row", "col"), ("Y-Coordinate", "X-Coordinate"))
_CSV_EXPECTED = ("expected the columns row0,col0,row1,col1 (boxes) or row,col or "
                 "X-Coordinate,Y-Coordinate (centres; with radius or Diameter, or --radius), "
                 "optionally score and image")


def read_region_csv(path: str | os.PathLike, *, image_shape, radius: float | None = None,
                    image_name: str | None = None, flip_rows: bool = False) -> RegionSet:
    """Read a CSV table of boxes or particle centres as a RegionSet.

    Parameters
    ----------
    path : path-like
        Comma-separated, one header line; column names are matched without regard to case
        or surrounding spaces. Boxes: ``row0, col0, row1, col1`` (:data:`CSV_BOX_COLUMNS`,
        lipobench's frame). Centres: ``row, col`` or ``X-Coordinate, Y-Coordinate``
        (CryoSegNet's particle tables: X is the column, Y the row, origin top-left), read as
        circles whose radius comes from a ``radius`` column, else half a ``Diameter``
        column, else ``radius``. A ``score`` column gives the scores; an ``image`` column
        names the micrograph of each row (see ``image_name``). Other columns are ignored.
    image_shape : (int, int)
        ``(rows, cols)`` of the micrograph.
    radius : float, optional
        Radius of every circle of a centre table; overrides its ``radius``/``Diameter``.
    image_name : str, optional
        Keep the rows whose ``image`` is this name (with or without its extension); needed
        when the table names several images. Ignored by tables without an ``image`` column.
    flip_rows : bool
        True when the rows count from the bottom edge: ``row -> rows - row``.

    Returns
    -------
    RegionSet
        Kind BOX or CIRCLE, in file order.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "centres.csv"
    >>> _ = path.write_text("X-Coordinate,Y-Coordinate,Diameter\\n30,10,8\\n")
    >>> read_region_csv(path, image_shape=(100, 50)).circles.tolist()
    [[10.0, 30.0, 4.0]]
    >>> read_region_csv(path, image_shape=(100, 50), flip_rows=True).circles.tolist()
    [[90.0, 30.0, 4.0]]
    """
    path = Path(path)
    height = _image_height(image_shape)
    lines = _read_text(path, "CSV table").splitlines()
    numbered = [(k, line) for k, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise UserError(f"{path}: is empty; {_CSV_EXPECTED}")
    import csv

    header_no, header_line = numbered[0]
    header = [name.strip() for name in next(csv.reader([header_line]))]
    position = {name.lower(): k for k, name in enumerate(header)}
    if set(c.lower() for c in CSV_BOX_COLUMNS) <= set(position):
        kind, coords = RegionKind.BOX, list(CSV_BOX_COLUMNS)
    else:
        pair = next((p for p in CSV_CENTRE_COLUMNS if {c.lower() for c in p} <= set(position)),
                    None)
        if pair is None:
            raise UserError(f"{path}: line {header_no}: columns are {header_line.strip()!r}; "
                            f"{_CSV_EXPECTED}")
        kind, coords = RegionKind.CIRCLE, list(pair)
        if radius is not None:
            radius = _positive(radius, "radius")
        elif "radius" in position:
            coords.append("radius")
        elif "diameter" in position:
            coords.append("Diameter")
        else:
            raise UserError(f"{path}: holds centres without a radius or Diameter column; "
                            "pass --radius PX to score circles of that radius")
    numeric = coords + (["score"] if "score" in position else [])
    expected = "numbers in the columns " + ", ".join(numeric)
    rows, linenos, names = [], [], []
    for lineno, line in numbered[1:]:
        fields = [f.strip() for f in next(csv.reader([line]))]
        if len(fields) != len(header):
            raise UserError(f"{path}: line {lineno}: got {len(fields)} comma-separated fields; "
                            f"expected {len(header)}, one per column of the header")
        rows.append([_number(fields[position[c.lower()]], path, lineno, expected)
                     for c in numeric])
        linenos.append(lineno)
        names.append(fields[position["image"]] if "image" in position else "")
    table = np.asarray(rows, dtype=np.float64).reshape(-1, len(numeric))
    if "image" in position and rows:
        keep = _csv_image_rows(path, names, image_name)
        table, linenos = table[keep], [n for n, k in zip(linenos, keep) if k]
    scores = table[:, len(coords)] if "score" in position else None
    if kind is RegionKind.BOX:
        _check_positive_sizes(table[:, 2] - table[:, 0], linenos, path, "row1 - row0")
        _check_positive_sizes(table[:, 3] - table[:, 1], linenos, path, "col1 - col0")
        boxes = table[:, :4]
        if flip_rows:
            boxes = np.column_stack([height - boxes[:, 2], boxes[:, 1], height - boxes[:, 0],
                                     boxes[:, 3]]).reshape(-1, 4)
        return RegionSet.from_boxes(boxes, image_shape=image_shape, scores=scores)
    if radius is None:
        radii = table[:, 2] / (2.0 if coords[2] == "Diameter" else 1.0)
        _check_positive_sizes(radii, linenos, path, "the " + coords[2])
    else:
        radii = np.full(len(table), radius)
    rows_ = height - table[:, 0] if flip_rows else table[:, 0]
    circles = np.column_stack([rows_, table[:, 1], radii]).reshape(-1, 3)
    return RegionSet.from_circles(circles, image_shape=image_shape, scores=scores)


def _csv_image_rows(path: Path, names: list[str], image_name: str | None) -> np.ndarray:
    """Which rows of a CSV table with an ``image`` column belong to the chosen image."""
    known = sorted(set(names))
    if image_name is None:
        if len(known) > 1:
            raise UserError(f"{path}: holds rows for {len(known)} images; choose one with "
                            f"--image NAME (e.g. {known[0]!r})")
        return np.ones(len(names), dtype=bool)
    keep = np.array([n == image_name or Path(n).stem == image_name for n in names])
    if not keep.any():
        raise UserError(f"{path}: no row has image {image_name!r}; its images are "
                        f"{', '.join(repr(n) for n in known[:3])}"
                        f"{', ...' if len(known) > 3 else ''}")
    return keep
