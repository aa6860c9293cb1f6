"""Region files: the one place lipobench reads and writes files of particle regions.

Reading picks the kind from the suffix:

=====================================  ====================================================
suffix                                 holds
=====================================  ====================================================
``.tif``, ``.tiff``, ``.png``          an instance label image (masks)
``.zip``, ``.roi``                     a Fiji ROI set (masks; needs ``image_shape``)
``.box``, ``.cbox``                    crYOLO/EMAN boxes
``.star``                              RELION centres (boxes of ``box_size``)
``.txt``, ``.tsv``                     Topaz picks (circles of ``radius``; one image)
``.csv``                               a table of boxes or centres
                                       (:func:`lipobench.formats.read_region_csv`)
``.npz``                               lipobench's own RegionSet file (:func:`save_regions`)
=====================================  ====================================================

- :func:`read_regions` reads one file as a :class:`~lipobench.regions.RegionSet`;
  :func:`read_pair` a truth and a prediction onto one image shape and one kind (what
  ``lipobench score`` scores), and :func:`score_files` matches them.
- :func:`write_regions` writes a RegionSet in the format its suffix names, and
  :func:`save_regions`/:func:`load_regions` are the ``.npz`` file of the cache and of a
  run's results.
- The dataset layouts lipobench writes itself for ``lipobench convert`` live in
  :mod:`lipobench.exports`.

Row flips (``flip_rows``: rows counted from the bottom edge, row = height - y) apply to
coordinate files only; label images, ROI sets and ``.npz`` files count rows from the top.

The module imports numpy and the format readers inside its functions, so the command line
that imports it starts fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lipobench.errors import UserError

if TYPE_CHECKING:
    from lipobench.regions import RegionSet

__all__ = ["FLIPPABLE_SUFFIXES", "READABLE_SUFFIXES",
           "WRITABLE_SUFFIXES", "load_regions", "read_pair", "read_regions", "save_regions",
           "score_files", "write_regions"]

LABEL_SUFFIXES = (".tif", ".tiff", ".png")
ROI_SUFFIXES = (".zip", ".roi")
TOPAZ_SUFFIXES = (".txt", ".tsv")
CSV_SUFFIXES = (".csv",)
#: Files whose rows ``--flip-rows`` (both files, the older option) flips.
CRYOLO_SUFFIXES = (".box", ".cbox", ".star")
#: Coordinate files, whose rows ``flip_rows`` may flip.
FLIPPABLE_SUFFIXES = CRYOLO_SUFFIXES + CSV_SUFFIXES + TOPAZ_SUFFIXES
#: Every suffix :func:`read_regions` reads.
READABLE_SUFFIXES = LABEL_SUFFIXES + ROI_SUFFIXES + FLIPPABLE_SUFFIXES + (".npz",)
#: Every suffix :func:`write_regions` writes (PNG label images and single ``.roi`` files are
#: read only).
WRITABLE_SUFFIXES = (".npz", ".tif", ".tiff", ".zip", ".box", ".cbox", ".star", ".txt",
                     ".tsv", ".csv")
#: Files that carry their own image size, so that the other file of a pair can use it.
_SIZED_SUFFIXES = LABEL_SUFFIXES + (".npz",)
_PLURAL = {"mask": "masks", "box": "boxes", "circle": "circles"}


def _stem(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


# ------------------------------------------------------------------------------ reading


def read_regions(path: str | os.PathLike, *, image_shape=None, box_size: float | None = None,
                 radius: float | None = None, image_name: str | None = None,
                 flip_rows: bool = False) -> RegionSet:
    """Read any region file lipobench understands as a RegionSet; the suffix picks the kind.

    ``image_shape`` is needed for every file but label images and ``.npz`` files;
    ``box_size`` for ``.star``; ``radius`` for Topaz files (and centre tables without a
    radius or Diameter column); ``image_name`` picks one image of a Topaz file or CSV table
    that holds several (default: the only one, or for Topaz the file's own name).
    ``flip_rows`` (coordinate files only) reads rows counted from the bottom edge.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "picks.box"
    >>> _ = path.write_text("10\\t20\\t8\\t8\\n")
    >>> read_regions(path, image_shape=(64, 64)).boxes.tolist()
    [[20.0, 10.0, 28.0, 18.0]]
    """
    import numpy as np

    from lipobench import formats
    from lipobench.regions import RegionSet

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READABLE_SUFFIXES:
        raise UserError(
            f"{path}: unknown region file type {suffix or '(no extension)'!r}; give a label "
            "image (.tif/.png), a ROI set (.zip/.roi), .box, .cbox, .star, a Topaz .txt, a "
            ".csv table or .npz"
        )
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path")
    if suffix in LABEL_SUFFIXES:
        from lipobench.imageio import read_labels

        return RegionSet.from_labels(read_labels(path), copy=False)
    if suffix == ".npz":
        try:
            return load_regions(path)
        except OSError as exc:
            raise UserError(f"{path}: not a lipobench region file ({exc}); write it with "
                            "lipobench.cache.save_regions") from None
    if image_shape is None:
        raise UserError(f"{path}: the image size is unknown; pass --image-shape ROWSxCOLS "
                        "(or score against a label image, which has one)")
    if suffix in ROI_SUFFIXES:
        from lipobench.roi import read_roi_set

        return RegionSet.from_labels(read_roi_set(path, image_shape), copy=False)
    if suffix in CSV_SUFFIXES:
        return formats.read_region_csv(path, image_shape=image_shape, radius=radius,
                                       image_name=image_name, flip_rows=flip_rows)
    if suffix == ".box":
        return formats.read_box(path, image_shape=image_shape, flip_rows=flip_rows)
    if suffix == ".cbox":
        return formats.read_cbox(path, image_shape=image_shape, flip_rows=flip_rows)
    if suffix == ".star":
        if box_size is None:
            raise UserError(f"{path}: a STAR file holds centres only; pass --box-size PX to "
                            "score boxes of that size around them")
        return formats.read_star(path, image_shape=image_shape, box_size=box_size,
                                 flip_rows=flip_rows)
    if radius is None:
        raise UserError(f"{path}: Topaz picks are centres only; pass --radius PX (the "
                        "extraction radius) to score circles of that radius")
    picks = formats.read_topaz(path, radius=radius)
    if image_name is None:
        if not picks:
            return RegionSet.empty("circle", image_shape).with_scores([])
        if len(picks) == 1:
            image_name = next(iter(picks))
        elif _stem(path) in picks:
            image_name = _stem(path)
        else:
            raise UserError(f"{path}: holds picks for {len(picks)} images; choose one with "
                            f"--image NAME (e.g. {sorted(picks)[0]!r})")
    if image_name not in picks:
        # Topaz writes no line for an image without picks: that is an empty prediction.
        return RegionSet.empty("circle", image_shape).with_scores([])
    found = picks[image_name]
    circles = np.array(found.circles, dtype=np.float64)
    if flip_rows:
        circles[:, 0] = image_shape[0] - circles[:, 0]
    return RegionSet.from_circles(circles, image_shape=image_shape, scores=found.scores)


def read_pair(truth_path: str | os.PathLike, pred_path: str | os.PathLike, *,
              truth_shape: Any = None, image_shape=None, box_size: float | None = None,
              radius: float | None = None, image_name: str | None = None,
              flip_rows: bool = False, flip_truth_rows: bool = False,
              flip_pred_rows: bool = False, same_kind: bool = True
              ) -> tuple[RegionSet, RegionSet]:
    """Read a truth and a prediction file as RegionSets on one image shape.

    ``truth_shape`` (``"mask"``, ``"box"`` or ``"circle"``, or an enum of those values)
    converts the truth (tight boxes or minimal enclosing circles); a mask prediction against
    a box or circle truth is converted to the truth's kind the same way. A mask truth
    against boxes or circles without ``truth_shape`` is an error that names the option.
    ``flip_truth_rows``/``flip_pred_rows`` flip one coordinate file's rows
    (row = height - y); ``flip_rows`` is the older option that flips the .box, .cbox and
    .star files among both. ``same_kind=False`` (centre matching) accepts different kinds.
    The other options are those of :func:`read_regions`; a label image or ``.npz`` file is
    read first, so the other file may take its image size.
    """
    from lipobench.regions import RegionKind

    truth_path, pred_path = Path(truth_path), Path(pred_path)
    if flip_rows and (flip_truth_rows or flip_pred_rows):
        raise UserError("--flip-rows flips both files; give it alone, or give "
                        "--flip-truth-rows and/or --flip-pred-rows instead")
    flips = []
    for path, flag, option in ((truth_path, flip_truth_rows, "--flip-truth-rows"),
                               (pred_path, flip_pred_rows, "--flip-pred-rows")):
        suffix = path.suffix.lower()
        if flag and suffix in READABLE_SUFFIXES and suffix not in FLIPPABLE_SUFFIXES:
            raise UserError(f"{option}: {path} is a label image, ROI set or .npz file, whose "
                            "rows count from the top already; drop the option (it applies "
                            "to .box, .cbox, .star, .csv and Topaz files)")
        flips.append(bool(flag or (flip_rows and suffix in CRYOLO_SUFFIXES)))
    flip_truth, flip_pred = flips
    options = dict(box_size=box_size, radius=radius, image_name=image_name)
    first_is_pred = (pred_path.suffix.lower() in _SIZED_SUFFIXES
                     and truth_path.suffix.lower() not in _SIZED_SUFFIXES)
    if first_is_pred:
        pred = read_regions(pred_path, image_shape=image_shape, flip_rows=flip_pred,
                            **options)
        truth = read_regions(truth_path, image_shape=image_shape or pred.image_shape,
                             flip_rows=flip_truth, **options)
    else:
        truth = read_regions(truth_path, image_shape=image_shape,
                             flip_rows=flip_truth, **options)
        pred = read_regions(pred_path, image_shape=image_shape or truth.image_shape,
                            flip_rows=flip_pred, **options)
    if truth_shape is not None:
        shape = RegionKind(getattr(truth_shape, "value", truth_shape))
        if shape is RegionKind.BOX:
            truth = truth.to_boxes()
        elif shape is RegionKind.CIRCLE:
            truth = truth.to_circles()
        elif truth.kind is not RegionKind.MASK:
            raise UserError(f"--truth-shape mask: {truth_path} holds "
                            f"{_PLURAL[truth.kind.value]}, which cannot become masks; use "
                            "--truth-shape box or circle")
    if truth.kind is not pred.kind and pred.kind is RegionKind.MASK and same_kind:
        # A mask prediction against boxes or circles: the truth's shape, as for the truth.
        pred = pred.to_boxes() if truth.kind is RegionKind.BOX else pred.to_circles()
    if truth.kind is RegionKind.BOX and pred.kind is RegionKind.CIRCLE and same_kind:
        # A pick's circle against boxes: its bounding square, how a picker's centre and
        # radius are drawn as a box. (A box has no such circle: its circumscribed one is
        # twice a circle's area too large, so boxes against circles stay an error.)
        pred = pred.to_boxes()
    if truth.kind is not pred.kind and same_kind:
        if truth.kind is RegionKind.MASK:
            raise UserError(
                f"{truth_path} holds masks but {pred_path} holds {_PLURAL[pred.kind.value]}: "
                f"convert the truth with --truth-shape {pred.kind.value}"
            )
        raise UserError(
            f"{truth_path} holds {_PLURAL[truth.kind.value]} but {pred_path} holds "
            f"{_PLURAL[pred.kind.value]}: score files of the same kind (--truth-shape "
            f"{pred.kind.value} converts the truth), or match centres with --match centre "
            "--max-distance PX"
        )
    if tuple(truth.image_shape) != tuple(pred.image_shape):
        raise UserError(
            f"{truth_path} is {truth.image_shape[0]}x{truth.image_shape[1]} px but {pred_path} "
            f"is {pred.image_shape[0]}x{pred.image_shape[1]} px: score a prediction made on "
            "the same micrograph at the same scale"
        )
    return truth, pred


def score_files(truth_path, pred_path, *, iou_thresholds, inclusive: bool = False, **options):
    """Read both files (see :func:`read_pair`) and :func:`~lipobench.metrics.match` them.

    Returns the :class:`~lipobench.metrics.MatchResult`.
    """
    from lipobench.metrics import match

    truth, pred = read_pair(truth_path, pred_path, **options)
    return match(truth, pred, iou_thresholds, inclusive=inclusive)


# ------------------------------------------------------------------------------ writing


def write_regions(path: str | os.PathLike, regions: RegionSet, *, flip_rows: bool = False,
                  image_name: str | None = None) -> Path:
    """Write ``regions`` in the format the suffix of ``path`` names; return the path.

    ``.npz``: :func:`save_regions` (every kind, scores kept). ``.tif``/``.tiff``: the
    label image (:meth:`RegionSet.to_label_image`). ``.zip``: a Fiji ROI set. ``.box``,
    ``.cbox``: boxes (masks and circles as their tight boxes). ``.star``: centres.
    ``.txt``/``.tsv``: a Topaz file of one image, named ``image_name`` (default: the file's
    stem). ``.csv``: a table :func:`read_regions` reads back, boxes as
    ``row0,col0,row1,col1`` and circles as ``row,col,radius`` (masks: write their
    ``to_boxes()`` or ``to_circles()``). ``flip_rows`` applies to .box, .cbox, .star and
    .csv. Every file appears whole or not at all.

    >>> import pathlib, tempfile
    >>> from lipobench.regions import RegionSet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "picks.csv"
    >>> circles = RegionSet.from_circles([[5, 6, 2]], image_shape=(16, 16), scores=[0.7])
    >>> print(write_regions(path, circles).read_text(), end="")
    row,col,radius,score
    5.0,6.0,2.0,0.7
    >>> read_regions(path, image_shape=(16, 16)).circles.tolist()
    [[5.0, 6.0, 2.0]]
    """
    from lipobench import formats

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITABLE_SUFFIXES:
        raise UserError(f"{path}: lipobench does not write {suffix or '(no extension)'!r} "
                        f"region files; use one of {', '.join(WRITABLE_SUFFIXES)}")
    if flip_rows and suffix not in (".box", ".cbox", ".star", ".csv"):
        raise UserError(f"{path}: rows of a {suffix} file count from the top; drop flip_rows "
                        "(it applies to .box, .cbox, .star and .csv files)")
    if suffix == ".npz":
        return save_regions(path, regions)
    if suffix in (".tif", ".tiff"):
        from lipobench.imageio import write_labels_tiff

        write_labels_tiff(path, regions.to_label_image())
        return path
    if suffix == ".zip":
        from lipobench.roi import write_roi_zip

        write_roi_zip(path, regions)
        return path
    if suffix == ".box":
        return formats.write_box(path, regions, flip_rows=flip_rows)
    if suffix == ".cbox":
        return formats.write_cbox(path, regions, flip_rows=flip_rows)
    if suffix == ".star":
        return formats.write_star(path, regions, flip_rows=flip_rows)
    if suffix in TOPAZ_SUFFIXES:
        return formats.write_topaz(path, {image_name or _stem(path): regions})
    return _write_csv(path, regions, flip_rows=flip_rows)


def _write_csv(path: Path, regions: RegionSet, *, flip_rows: bool) -> Path:
    import numpy as np

    from lipobench.fsutil import atomic_write_text
    from lipobench.regions import RegionKind

    height = regions.image_shape[0]
    if regions.kind is RegionKind.BOX:
        header, table = ["row0", "col0", "row1", "col1"], np.array(regions.boxes, np.float64)
        if flip_rows:
            table = table[:, [2, 1, 0, 3]]
            table[:, [0, 2]] = height - table[:, [0, 2]]
    elif regions.kind is RegionKind.CIRCLE:
        header, table = ["row", "col", "radius"], np.array(regions.circles, np.float64)
        if flip_rows:
            table[:, 0] = height - table[:, 0]
    else:
        raise UserError(f"{path}: a CSV table holds boxes or circles, not masks; write "
                        "regions.to_boxes() or regions.to_circles(), or a .tif/.zip/.npz file")
    if regions.scores is not None:
        header.append("score")
        table = np.column_stack([table, regions.scores])
    lines = [",".join(header)] + [",".join(repr(float(v)) for v in row) for row in table]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def save_regions(path: str | os.PathLike, regions: RegionSet) -> Path:
    """Write a RegionSet to an ``.npz`` (atomically): kind, image_shape, its table, scores.

    Keys: ``kind`` (``"mask"``, ``"box"`` or ``"circle"``), ``image_shape`` (rows, cols),
    ``labels`` or ``boxes`` or ``circles`` (see :mod:`lipobench.regions`), and ``scores`` when
    the regions are scored.

    >>> import tempfile, pathlib
    >>> from lipobench.regions import RegionSet
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> circles = RegionSet.from_circles([[5, 6, 2]], image_shape=(16, 16), scores=[0.7])
    >>> back = load_regions(save_regions(path, circles))
    >>> back.kind.value, back.circles.tolist(), back.scores.tolist()
    ('circle', [[5.0, 6.0, 2.0]], [0.7])
    """
    import numpy as np

    from lipobench.fsutil import atomic_path
    from lipobench.regions import RegionKind

    arrays: dict[str, Any] = {"kind": np.array(regions.kind.value),
                              "image_shape": np.asarray(regions.image_shape, dtype=np.int64)}
    if regions.kind is RegionKind.MASK:
        arrays["labels"] = regions.labels
    elif regions.kind is RegionKind.BOX:
        arrays["boxes"] = regions.boxes
    else:
        arrays["circles"] = regions.circles
    if regions.scores is not None:
        arrays["scores"] = regions.scores
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return Path(path)


def load_regions(path: str | os.PathLike) -> RegionSet:
    """Read a RegionSet written by :func:`save_regions`; a damaged file is a UserError."""
    import zipfile

    try:
        return _load_regions(path)
    except (EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"{path}: not a lipobench region file, or damaged ({type(exc).__name__}"
                        f": {exc}); write it again with lipobench") from None


def _load_regions(path: str | os.PathLike) -> RegionSet:
    import numpy as np

    from lipobench.regions import RegionKind, RegionSet

    with np.load(path, allow_pickle=False) as data:
        kind = RegionKind(str(data["kind"]))
        shape = tuple(int(v) for v in data["image_shape"])
        scores = data["scores"] if "scores" in data.files else None
        if kind is RegionKind.MASK:
            return RegionSet.from_labels(data["labels"], scores=scores)
        if kind is RegionKind.BOX:
            return RegionSet.from_boxes(data["boxes"], image_shape=shape, scores=scores)
        return RegionSet.from_circles(data["circles"], image_shape=shape, scores=scores)
