"""RELION coordinate ``.star`` files: particle centres, ``_rlnCoordinateX/Y``.

crYOLO writes them to its ``STAR/`` folder with y counted as in its ``.box`` files, so pass
``flip_rows=cryolo_flips_rows(image)`` (:func:`lipobench.formats.cryolo_flips_rows`) for
crYOLO's output.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from lipobench.errors import UserError
from lipobench.formats._common import _check_regions, _image_height, _positive, _read_text
from lipobench.formats._star import (
    _check_star_rows,
    _read_star_blocks,
    _scan_star_loops,
    _star_text,
)
from lipobench.fsutil import atomic_write_text
from lipobench.regions import RegionSet

__all__ = ["read_star_centres", "read_star", "write_star"]


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
    (crYOLO on TIFF, PNG or JPEG input: :func:`~lipobench.formats.cryolo_flips_rows`)
    ``rows - y``.

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
