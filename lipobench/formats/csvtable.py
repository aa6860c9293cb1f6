"""CSV tables of boxes or particle centres (lipobench's own columns, CryoSegNet's/CryoPPP's).

Read by ``lipobench score`` and :func:`lipobench.regionfiles.read_regions`; the writer of
lipobench's own CSV tables is :func:`lipobench.regionfiles.write_regions`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lipobench.errors import UserError
from lipobench.formats._common import (
    _check_positive_sizes,
    _image_height,
    _number,
    _positive,
    _read_text,
)
from lipobench.regions import RegionKind, RegionSet

__all__ = ["read_region_csv", "CSV_BOX_COLUMNS", "CSV_CENTRE_COLUMNS"]

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
        table, linenos = table[keep], [n for n, k in zip(linenos, keep, strict=True) if k]
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
