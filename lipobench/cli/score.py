"""``lipobench score --truth T --pred P``: precision, recall and F1 of one prediction file.

``--report by-size`` gives recall by true diameter and precision by predicted diameter;
``--report curve`` the precision-recall curve over prediction scores and its area.
``--match centre --max-distance PX`` matches by centre distance instead of IoU (the particle
pickers' convention: a pick within PX pixels of a true centre), with ``--report counts``.

The region kind follows from each file: label images (``.tif``, ``.tiff``, ``.png``) and Fiji
ROI sets (``.zip``, ``.roi``) hold masks; ``.box``, ``.cbox`` and ``.star`` hold boxes; a Topaz
coordinate file (``.txt``, ``.tsv``) holds circles; a ``.csv`` table holds boxes
(``row0,col0,row1,col1``) or centres (``row,col`` or ``X-Coordinate,Y-Coordinate``, read as
circles; see :func:`lipobench.formats.read_region_csv`); ``.npz`` is lipobench's own RegionSet
file. A mask truth is scored against boxes or circles only after ``--truth-shape box|circle``
turns it into tight boxes (crYOLO's ground truth in the paper) or minimal enclosing circles
(Topaz's); a mask prediction against a box or circle truth is converted the same way.

``--flip-truth-rows`` and ``--flip-pred-rows`` say that one file's y counts from the bottom
edge (row = height - y): crYOLO's files for TIFF, PNG or JPEG input, or picks made on an MRC
array that is upside down relative to the annotated image. ``--flip-rows`` (the older
spelling) flips the .box, .cbox and .star files among both.
"""

from __future__ import annotations

import enum
import json
import math
from pathlib import Path

import typer

from lipobench.cli._app import app
from lipobench.errors import UserError

__all__ = ["Matching", "OutputFormat", "Report", "TruthShape", "parse_iou_thresholds",
           "read_pair", "read_regions", "score_files"]

_LABEL_SUFFIXES = (".tif", ".tiff", ".png")
_ROI_SUFFIXES = (".zip", ".roi")
_TOPAZ_SUFFIXES = (".txt", ".tsv")
_CSV_SUFFIXES = (".csv",)
#: Files whose rows ``--flip-rows`` (both files, the older option) flips.
_CRYOLO_SUFFIXES = (".box", ".cbox", ".star")
#: Coordinate files, whose rows ``--flip-truth-rows``/``--flip-pred-rows`` may flip; label
#: images, ROI sets and .npz files count rows from the top by definition.
_FLIPPABLE = _CRYOLO_SUFFIXES + _CSV_SUFFIXES + _TOPAZ_SUFFIXES
_KNOWN = _LABEL_SUFFIXES + _ROI_SUFFIXES + _FLIPPABLE + (".npz",)


class OutputFormat(str, enum.Enum):
    """How ``lipobench score`` prints its table."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class Report(str, enum.Enum):
    """Which table ``lipobench score`` prints (``--report``)."""

    #: tp, fp, fn, precision, recall and F1 per IoU threshold.
    COUNTS = "counts"
    #: Recall by true diameter and precision by predicted diameter (one IoU threshold).
    BY_SIZE = "by-size"
    #: Precision and recall over the prediction scores, and their area (one IoU threshold).
    CURVE = "curve"


class Matching(str, enum.Enum):
    """How ``lipobench score`` pairs predictions with true particles (``--match``)."""

    #: One-to-one by IoU above each ``--iou`` threshold (the paper's rule).
    IOU = "iou"
    #: One-to-one by centre distance at most ``--max-distance`` pixels (the pickers' rule).
    CENTRE = "centre"


class TruthShape(str, enum.Enum):
    """The shape the truth is scored as (``--truth-shape``).

    The values of :class:`lipobench.regions.RegionKind`, repeated so that the command line
    starts without importing numpy.
    """

    MASK = "mask"
    BOX = "box"
    CIRCLE = "circle"


def parse_iou_thresholds(text: str) -> list[float]:
    """Parse ``--iou``: one value, a comma list, or ``START:STOP:STEP`` (STOP included).

    >>> parse_iou_thresholds("0.5")
    [0.5]
    >>> parse_iou_thresholds("0.5,0.75")
    [0.5, 0.75]
    >>> parse_iou_thresholds("0.5:0.95:0.05")
    [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    """
    usage = "use one value (0.5), a list (0.5,0.75) or START:STOP:STEP (0.5:0.95:0.05)"
    text = str(text).strip()
    parts = text.split(":") if ":" in text else text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UserError(f"--iou {text}: not a number list; {usage}") from None
    if ":" not in text:
        return values
    if len(values) != 3:
        raise UserError(f"--iou {text}: not a number list; {usage}")
    start, stop, step = values
    if not (all(math.isfinite(v) for v in values) and step > 0 and stop >= start):
        raise UserError(f"--iou {text}: STEP must be positive and STOP >= START; {usage}")
    # Rounding keeps 0.5 + 9 * 0.05 at 0.95 rather than 0.9500000000000001.
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    return [round(start + k * step, 10) for k in range(count)]


def _stem(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def read_regions(path, *, image_shape=None, box_size: float | None = None,
                 radius: float | None = None, image_name: str | None = None,
                 flip_rows: bool = False):
    """Read any region file lipobench understands as a RegionSet; the suffix picks the kind.

    ``image_shape`` is needed for every file but label images and ``.npz`` files;
    ``box_size`` for ``.star``; ``radius`` for Topaz files (and centre tables without a
    radius or Diameter column); ``image_name`` picks one image of a Topaz file or CSV table
    that holds several (default: the only one, or for Topaz the file's own name).
    ``flip_rows`` (coordinate files only) reads rows counted from the bottom edge.
    """
    import numpy as np

    from lipobench import formats
    from lipobench.regions import RegionSet

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _KNOWN:
        raise UserError(
            f"{path}: unknown region file type {suffix or '(no extension)'!r}; give a label "
            "image (.tif/.png), a ROI set (.zip/.roi), .box, .cbox, .star, a Topaz .txt, a "
            ".csv table or .npz"
        )
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path")
    if suffix in _LABEL_SUFFIXES:
        from lipobench.imageio import read_labels

        return RegionSet.from_labels(read_labels(path), copy=False)
    if suffix == ".npz":
        from lipobench.cache import load_regions

        try:
            return load_regions(path)
        except (OSError, KeyError, ValueError) as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError(f"{path}: not a lipobench region file ({exc}); write it with "
                            "lipobench.cache.save_regions") from None
    if image_shape is None:
        raise UserError(f"{path}: the image size is unknown; pass --image-shape ROWSxCOLS "
                        "(or score against a label image, which has one)")
    if suffix in _ROI_SUFFIXES:
        from lipobench.roi import read_roi_set

        return RegionSet.from_labels(read_roi_set(path, image_shape), copy=False)
    if suffix in _CSV_SUFFIXES:
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


_PLURAL = {"mask": "masks", "box": "boxes", "circle": "circles"}


def score_files(truth_path, pred_path, *, iou_thresholds, inclusive: bool = False, **options):
    """Read both files (see :func:`read_pair`) and :func:`~lipobench.metrics.match` them.

    Returns the :class:`~lipobench.metrics.MatchResult`.
    """
    from lipobench.metrics import match

    truth, pred = read_pair(truth_path, pred_path, **options)
    return match(truth, pred, iou_thresholds, inclusive=inclusive)


def read_pair(truth_path, pred_path, *, truth_shape: TruthShape | None = None,
              image_shape=None, box_size: float | None = None, radius: float | None = None,
              image_name: str | None = None, flip_rows: bool = False,
              flip_truth_rows: bool = False, flip_pred_rows: bool = False,
              same_kind: bool = True):
    """Read a truth and a prediction file as RegionSets on one image shape.

    ``truth_shape`` converts the truth (tight boxes or minimal enclosing circles); a mask
    prediction against a box or circle truth is converted to the truth's kind the same way.
    A mask truth against boxes or circles without ``truth_shape`` is an error that names the
    option. ``flip_truth_rows``/``flip_pred_rows`` flip one coordinate file's rows
    (row = height - y); ``flip_rows`` is the older option that flips the .box, .cbox and
    .star files among both. ``same_kind=False`` (centre matching) accepts different kinds.
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
        if flag and suffix in _KNOWN and suffix not in _FLIPPABLE:
            raise UserError(f"{option}: {path} is a label image, ROI set or .npz file, whose "
                            "rows count from the top already; drop the option (it applies "
                            "to .box, .cbox, .star, .csv and Topaz files)")
        flips.append(bool(flag or (flip_rows and suffix in _CRYOLO_SUFFIXES)))
    flip_truth, flip_pred = flips
    options = dict(box_size=box_size, radius=radius, image_name=image_name)
    # A label image carries its own size; read it first so the other file can use it.
    first_is_pred = (pred_path.suffix.lower() in _LABEL_SUFFIXES + (".npz",)
                     and truth_path.suffix.lower() not in _LABEL_SUFFIXES + (".npz",))
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
        truth_shape = TruthShape(truth_shape)
        if truth_shape is TruthShape.BOX:
            truth = truth.to_boxes()
        elif truth_shape is TruthShape.CIRCLE:
            truth = truth.to_circles()
        elif truth.kind is not RegionKind.MASK:
            raise UserError(f"--truth-shape mask: {truth_path} holds "
                            f"{_PLURAL[truth.kind.value]}, which cannot become masks; use "
                            "--truth-shape box or circle")
    if truth.kind is not pred.kind and pred.kind is RegionKind.MASK and same_kind:
        # A mask prediction against boxes or circles: the truth's shape, as for the truth.
        pred = pred.to_boxes() if truth.kind is RegionKind.BOX else pred.to_circles()
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


def _check_matching(by_centre: bool, *, max_distance, iou, report, inclusive) -> None:
    """Refuse options that do not go with ``--match``, before any file is read."""
    if not by_centre:
        if max_distance is not None:
            raise UserError("--max-distance applies to --match centre; add --match centre, "
                            "or drop --max-distance to match by IoU")
        return
    if max_distance is None:
        raise UserError("--match centre needs --max-distance PX, the largest centre distance "
                        "of a match (e.g. 27, a quarter of the particle diameter)")
    if not (math.isfinite(max_distance) and max_distance > 0):
        raise UserError(f"--max-distance {max_distance:g}: must be a positive number of "
                        "pixels, e.g. 27")
    if iou is not None:
        raise UserError("--iou applies to --match iou; with --match centre drop it "
                        "(--max-distance sets the rule)")
    if inclusive:
        raise UserError("--inclusive applies to --match iou; centres within --max-distance "
                        "always match inclusively, so drop it")
    if report is not Report.COUNTS:
        raise UserError(f"--report {report.value} scores by IoU; with --match centre use "
                        "--report counts (the default)")


def _parse_shape(text: str | None):
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"--image-shape {text}: write it as ROWSxCOLS, e.g. 4096x4096") from None
    if rows <= 0 or cols <= 0:
        raise UserError(f"--image-shape {text}: rows and columns must be positive")
    return rows, cols


@app.command("score")
def score(
    truth: Path = typer.Option(..., "--truth", help="Ground truth: label image, ROI set, "
                               ".box/.cbox/.star, Topaz .txt, .csv table or .npz."),
    pred: Path = typer.Option(..., "--pred", help="Prediction, in any of the same formats."),
    matching: Matching = typer.Option(Matching.IOU, "--match", case_sensitive=False,
                                      help="iou (pairs by IoU above --iou) or centre (pairs "
                                      "whose centres lie within --max-distance pixels; any "
                                      "two region kinds)."),
    max_distance: float = typer.Option(None, "--max-distance", metavar="PX",
                                       help="--match centre: largest centre distance of a "
                                       "match, in pixels (inclusive)."),
    iou: str = typer.Option(None, "--iou", help="IoU thresholds: 0.5, 0.5,0.75 or "
                            "START:STOP:STEP (STOP included). Default 0.5,0.75,0.9 for "
                            "counts, 0.5 for by-size and curve (which take one)."),
    report: Report = typer.Option(Report.COUNTS, "--report", case_sensitive=False,
                                  help="counts, by-size (recall and precision by diameter) "
                                  "or curve (precision-recall over scores)."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--format",
                                        case_sensitive=False, help="table, csv or json."),
    truth_shape: TruthShape = typer.Option(None, "--truth-shape", case_sensitive=False,
                                           help="Score the truth as its tight boxes (box) or "
                                           "minimal enclosing circles (circle)."),
    inclusive: bool = typer.Option(False, "--inclusive", help="Count IoU equal to the "
                                   "threshold as a match (cellpose's >= rule); default >."),
    bins: int = typer.Option(5, "--bins", min=1, help="by-size: number of diameter bins."),
    pixel_size: float = typer.Option(None, "--pixel-size", metavar="NM",
                                     help="by-size: pixel size, to bin diameters in nm."),
    image_shape: str = typer.Option(None, "--image-shape", metavar="ROWSxCOLS",
                                    help="Image size, when neither file is a label image."),
    box_size: float = typer.Option(None, "--box-size", metavar="PX",
                                   help=".star files: box size around each centre."),
    radius: float = typer.Option(None, "--radius", metavar="PX",
                                 help="Topaz files (and CSV centres without a radius or "
                                 "Diameter column): circle radius around each pick."),
    image: str = typer.Option(None, "--image", metavar="NAME",
                              help="Topaz files and CSV tables with an image column: which "
                              "image's regions to score."),
    flip_truth_rows: bool = typer.Option(False, "--flip-truth-rows", help="The truth's y "
                                         "counts from the bottom edge: row = height - y "
                                         "(coordinate files only)."),
    flip_pred_rows: bool = typer.Option(False, "--flip-pred-rows", help="The prediction's y "
                                        "counts from the bottom edge: row = height - y "
                                        "(coordinate files only), e.g. picks made on an MRC "
                                        "scored against annotations of its flipped JPEG."),
    flip_rows: bool = typer.Option(False, "--flip-rows", help="Both files' .box/.cbox/.star "
                                   "y counts from the bottom edge (crYOLO's output for TIFF, "
                                   "PNG or JPEG input; not for MRC, which crYOLO flips on "
                                   "reading)."),
) -> None:
    """Score one prediction file against one truth file: tp, fp, fn, precision, recall, F1
    (or, with --report, by particle size or over prediction scores)."""
    from lipobench.metrics import match, match_centres, precision_recall_curve, stratify_by_size

    by_centre = matching is Matching.CENTRE
    _check_matching(by_centre, max_distance=max_distance, iou=iou, report=report,
                    inclusive=inclusive)
    if iou is None:
        iou = "0.5,0.75,0.9" if report is Report.COUNTS else "0.5"
    thresholds = parse_iou_thresholds(iou)
    if report is not Report.COUNTS and len(thresholds) != 1:
        raise UserError(f"--report {report.value} scores at one IoU threshold; give one "
                        f"--iou value, not {iou}")
    if report is not Report.BY_SIZE and (pixel_size is not None or bins != 5):
        raise UserError("--bins and --pixel-size apply to --report by-size only; drop them")
    truth_set, pred_set = read_pair(truth, pred, truth_shape=truth_shape,
                                    image_shape=_parse_shape(image_shape), box_size=box_size,
                                    radius=radius, image_name=image, flip_rows=flip_rows,
                                    flip_truth_rows=flip_truth_rows,
                                    flip_pred_rows=flip_pred_rows, same_kind=not by_centre)
    rule = ">=" if inclusive else ">"
    header = {"truth": str(truth), "pred": str(pred), "kind": truth_set.kind.value,
              "inclusive": bool(inclusive)}
    if by_centre:
        result = match_centres(truth_set, pred_set, max_distance=max_distance)
        frame = result.to_frame()
        header = {"truth": str(truth), "pred": str(pred), "match": Matching.CENTRE.value,
                  "truth_kind": truth_set.kind.value, "pred_kind": pred_set.kind.value,
                  "max_distance": result.max_distance}
        summary = (f"{truth} vs {pred}: {result.n_true} true "
                   f"{_PLURAL[truth_set.kind.value]}, {result.n_pred} predicted "
                   f"{_PLURAL[pred_set.kind.value]}; a match needs centres within "
                   f"{result.max_distance:g} px")
    elif report is Report.COUNTS:
        result = match(truth_set, pred_set, thresholds, inclusive=inclusive)
        frame = result.to_frame()
        summary = (f"{truth} vs {pred}: {result.n_true} true, {result.n_pred} predicted "
                   f"{_PLURAL[result.kind.value]}; a match needs IoU {rule} threshold")
    elif report is Report.BY_SIZE:
        frame = stratify_by_size(truth_set, pred_set, bins=bins, iou_threshold=thresholds[0],
                                 inclusive=inclusive, pixel_size_nm=pixel_size)
        header["iou_threshold"] = thresholds[0]
        summary = (f"{truth} vs {pred}: recall by true diameter, precision by predicted "
                   f"diameter; a match needs IoU {rule} {thresholds[0]}")
    else:
        if pred_set.scores is None:
            raise UserError(f"{pred}: holds no scores, so there is no curve over them; use "
                            "a file with a score column (.cbox, Topaz with score, .box with "
                            "a fifth column) or --report counts")
        curve = precision_recall_curve(truth_set, pred_set, iou_threshold=thresholds[0],
                                       inclusive=inclusive)
        frame = curve.to_frame()
        header.update(iou_threshold=thresholds[0], average_precision=curve.area(),
                      average_precision_envelope=curve.area(interpolation="envelope"))
        summary = (f"{truth} vs {pred}: IoU {rule} {thresholds[0]}; area under the curve "
                   f"{curve.area():.4f} (step), {curve.area(interpolation='envelope'):.4f} "
                   "(envelope)")
    if output is OutputFormat.CSV:
        typer.echo(frame.to_csv(index=False), nl=False)
    elif output is OutputFormat.JSON:
        rows = json.loads(frame.to_json(orient="records"))
        typer.echo(json.dumps({**header, "rows": rows}, indent=2))
    else:
        typer.echo(summary)
        typer.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
