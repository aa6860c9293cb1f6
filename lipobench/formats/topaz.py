"""Topaz coordinate files: ``image_name x_coord y_coord [score]``, several images per file.

Topaz's coordinates are integer pixel indices with the origin top-left, so a pick at index
``(x, y)`` is the circle centred on ``(row, col) = (y + 0.5, x + 0.5)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lipobench.errors import UserError
from lipobench.formats._common import _check_regions, _fmt, _number, _positive, _read_text
from lipobench.fsutil import atomic_write_text
from lipobench.regions import RegionSet

__all__ = ["read_topaz", "write_topaz"]

_TOPAZ_COLUMNS = ("image_name", "x_coord", "y_coord")


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
