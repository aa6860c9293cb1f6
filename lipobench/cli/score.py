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
(Topaz's); a mask prediction against a box or circle truth is converted the same way,
and a circle prediction (picks) against boxes becomes its bounding square.

``--flip-truth-rows`` and ``--flip-pred-rows`` say that one file's y counts from the bottom
edge (row = height - y): crYOLO's files for TIFF, PNG or JPEG input, or picks made on an MRC
array that is upside down relative to the annotated image. ``--flip-rows`` (the older
spelling) flips the .box, .cbox and .star files among both.

The files are read by :mod:`lipobench.regionfiles` (:func:`~lipobench.regionfiles.read_pair`);
this module parses the options and prints the tables.
"""

from __future__ import annotations

import enum
import json
import math
from pathlib import Path
from typing import Annotated

import typer

from lipobench.cli._app import app
from lipobench.errors import UserError
from lipobench.regionfiles import read_pair

__all__ = ["Matching", "OutputFormat", "Report", "TruthShape", "parse_iou_thresholds"]


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


_PLURAL = {"mask": "masks", "box": "boxes", "circle": "circles"}


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
    truth: Annotated[Path, typer.Option("--truth", help="Ground truth: label image, ROI set, "
                                        ".box/.cbox/.star, Topaz .txt, .csv table or .npz.")],
    pred: Annotated[Path, typer.Option("--pred",
                                       help="Prediction, in any of the same formats.")],
    matching: Annotated[Matching, typer.Option(
        "--match", case_sensitive=False, help="iou (pairs by IoU above --iou) or centre (pairs "
        "whose centres lie within --max-distance pixels; any two region kinds).")
    ] = Matching.IOU,
    max_distance: Annotated[float | None, typer.Option(
        "--max-distance", metavar="PX", help="--match centre: largest centre distance of a "
        "match, in pixels (inclusive).")] = None,
    iou: Annotated[str | None, typer.Option(
        "--iou", help="IoU thresholds: 0.5, 0.5,0.75 or START:STOP:STEP (STOP included). "
        "Default 0.5,0.75,0.9 for counts, 0.5 for by-size and curve (which take one).")
    ] = None,
    report: Annotated[Report, typer.Option(
        "--report", case_sensitive=False, help="counts, by-size (recall and precision by "
        "diameter) or curve (precision-recall over scores).")] = Report.COUNTS,
    output: Annotated[OutputFormat, typer.Option(
        "--format", case_sensitive=False, help="table, csv or json.")] = OutputFormat.TABLE,
    truth_shape: Annotated[TruthShape | None, typer.Option(
        "--truth-shape", case_sensitive=False, help="Score the truth as its tight boxes (box) "
        "or minimal enclosing circles (circle).")] = None,
    inclusive: Annotated[bool, typer.Option(
        "--inclusive", help="Count IoU equal to the threshold as a match (cellpose's >= "
        "rule); default >.")] = False,
    bins: Annotated[int, typer.Option(
        "--bins", min=1, help="by-size: number of diameter bins.")] = 5,
    pixel_size: Annotated[float | None, typer.Option(
        "--pixel-size", metavar="NM", help="by-size: pixel size, to bin diameters in nm.")
    ] = None,
    image_shape: Annotated[str | None, typer.Option(
        "--image-shape", metavar="ROWSxCOLS",
        help="Image size, when neither file is a label image.")] = None,
    box_size: Annotated[float | None, typer.Option(
        "--box-size", metavar="PX", help=".star files: box size around each centre.")] = None,
    radius: Annotated[float | None, typer.Option(
        "--radius", metavar="PX", help="Topaz files (and CSV centres without a radius or "
        "Diameter column): circle radius around each pick.")] = None,
    image: Annotated[str | None, typer.Option(
        "--image", metavar="NAME", help="Topaz files and CSV tables with an image column: "
        "which image's regions to score.")] = None,
    flip_truth_rows: Annotated[bool, typer.Option(
        "--flip-truth-rows", help="The truth's y counts from the bottom edge: row = height - "
        "y (coordinate files only).")] = False,
    flip_pred_rows: Annotated[bool, typer.Option(
        "--flip-pred-rows", help="The prediction's y counts from the bottom edge: row = "
        "height - y (coordinate files only), e.g. picks made on an MRC scored against "
        "annotations of its flipped JPEG.")] = False,
    flip_rows: Annotated[bool, typer.Option(
        "--flip-rows", help="Both files' .box/.cbox/.star y counts from the bottom edge "
        "(crYOLO's output for TIFF, PNG or JPEG input; not for MRC, which crYOLO flips on "
        "reading).")] = False,
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
