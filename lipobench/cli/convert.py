"""``lipobench convert DATASET --to TOOL OUT``: ground truth in each tool's training format.

Layouts written under OUT (all at once: a failure leaves no OUT behind):

- ``cryolo``: ``images/<name>.<ext>`` (copies of the micrographs) and
  ``annotations/<name>.box``; point crYOLO's ``train_image_folder`` and
  ``train_annot_folder`` at them. Boxes are squares of ``--box-size`` centred on each
  particle's centroid, or with ``--tight`` each particle's tight box. For MRC images the
  rows are counted from the bottom, as crYOLO expects (it flips MRC images when reading).
- ``topaz``: ``images/<name>.<ext>`` and ``particles.txt`` (one file of centroids for all
  images): ``topaz train --train-images OUT/images --train-targets OUT/particles.txt``.
- ``star``: ``<name>.star`` per image, particle centroids as ``_rlnCoordinateX/Y`` in
  crYOLO's frame (rows counted from the bottom for MRC images, as crYOLO's own STAR output).
- ``cellpose``: ``<name>.tif`` (float32 image) beside ``<name>_masks.tif`` (int32 labels),
  the layout of a Cellpose training folder (``--mask_filter _masks``).
- ``roi``: ``<name>.zip`` Fiji ROI sets, one ROI per particle.
"""

from __future__ import annotations

import enum
import shutil
from pathlib import Path

import numpy as np
import typer

from lipobench.cli._app import app
from lipobench.errors import UserError

__all__ = ["ConvertTarget", "convert_dataset"]


class ConvertTarget(str, enum.Enum):
    """The training-data formats ``lipobench convert`` writes."""

    CRYOLO = "cryolo"
    TOPAZ = "topaz"
    STAR = "star"
    CELLPOSE = "cellpose"
    ROI = "roi"


def _square_boxes(truth, box_size: float):
    from lipobench.regions import RegionSet

    centres = truth.centroids()
    half = box_size / 2.0
    return RegionSet.from_boxes(np.column_stack([centres - half, centres + half]).reshape(-1, 4),
                                image_shape=truth.image_shape)


def _check_out(out: Path, dataset_root: Path, overwrite: bool) -> None:
    resolved_out, resolved_root = out.resolve(), dataset_root.resolve()
    if resolved_out == resolved_root or resolved_out in resolved_root.parents \
            or resolved_root in resolved_out.parents:
        raise UserError(f"{out}: the output folder overlaps the dataset folder {dataset_root}; "
                        "choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose another output path")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: folder exists and is not empty; choose a new folder or pass "
                        "--overwrite to replace it")
    from lipobench.fsutil import check_output_dir

    # OUT is written by renaming a folder made beside it: its parent must be writable.
    check_output_dir(out.parent if out.parent != out else out, key="OUT")


def convert_dataset(dataset, target: ConvertTarget, out: Path, *, box_size: float | None = None,
                    tight: bool = False, names: list[str] | None = None,
                    overwrite: bool = False) -> Path:
    """Write the ground truth of ``dataset`` (a :class:`lipobench.data.Dataset`) for ``target``.

    ``box_size`` or ``tight`` (exactly one) is needed for crYOLO only. ``names`` limits the
    images (default: all). OUT appears complete or not at all.
    """
    from lipobench import formats
    from lipobench.fsutil import atomic_dir
    from lipobench.imageio import write_labels_tiff, write_tiff
    from lipobench.roi import write_roi_zip

    target = ConvertTarget(target)
    out = Path(out)
    if not dataset.labelled:
        raise UserError(f"{dataset.root}: dataset has no masks, so there is no ground truth to "
                        "convert; set 'masks' in [dataset] of its dataset.toml")
    if target is ConvertTarget.CRYOLO:
        if (box_size is None) == (not tight):
            raise UserError("convert --to cryolo: give exactly one of --box-size PX (square "
                            "boxes centred on each particle) or --tight (each particle's "
                            "tight box)")
    elif box_size is not None or tight:
        raise UserError(f"convert --to {target.value}: --box-size and --tight apply to "
                        "--to cryolo only; drop them")
    if box_size is not None and not box_size > 0:
        raise UserError(f"--box-size {box_size}: must be a positive number of pixels")
    _check_out(out, dataset.root, overwrite)
    names = dataset.names if names is None else names

    with atomic_dir(out) as tmp:
        topaz_targets = {}
        for name in names:
            mic = dataset.micrograph(name)
            image_path = dataset.image_path(name)
            truth = mic.truth
            if target is ConvertTarget.CRYOLO:
                (tmp / "images").mkdir(exist_ok=True)
                shutil.copyfile(image_path, tmp / "images" / image_path.name)
                boxes = truth.to_boxes() if tight else _square_boxes(truth, box_size)
                formats.write_box(tmp / "annotations" / f"{name}.box", boxes,
                                  flip_rows=formats.cryolo_flips_rows(image_path))
            elif target is ConvertTarget.TOPAZ:
                (tmp / "images").mkdir(exist_ok=True)
                shutil.copyfile(image_path, tmp / "images" / image_path.name)
                topaz_targets[name] = truth
            elif target is ConvertTarget.STAR:
                formats.write_star(tmp / f"{name}.star", truth,
                                   flip_rows=formats.cryolo_flips_rows(image_path))
            elif target is ConvertTarget.CELLPOSE:
                write_tiff(tmp / f"{name}.tif", mic.image)
                write_labels_tiff(tmp / f"{name}_masks.tif", truth.labels)
            else:
                write_roi_zip(tmp / f"{name}.zip", truth)
        if target is ConvertTarget.TOPAZ:
            formats.write_topaz(tmp / "particles.txt", topaz_targets)
    return out


@app.command("convert")
def convert(
    dataset: Path = typer.Argument(..., help="Dataset folder (or its dataset.toml)."),
    out: Path = typer.Argument(..., help="Output folder to create."),
    to: ConvertTarget = typer.Option(..., "--to", help="Format to write.",
                                     case_sensitive=False),
    box_size: float = typer.Option(None, "--box-size", metavar="PX",
                                   help="crYOLO: square boxes of this size (pixels)."),
    tight: bool = typer.Option(False, "--tight", help="crYOLO: each particle's tight box."),
    split: str = typer.Option(None, "--split", help="Convert only this split's images."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUT."),
) -> None:
    """Write a dataset's ground truth as a tool's training data (crYOLO, Topaz, STAR,
    Cellpose, Fiji ROI sets)."""
    from lipobench.data import load_dataset

    data = load_dataset(dataset)
    names = None
    if split is not None:
        if split not in data.split:
            raise UserError(f"--split {split}: dataset {data.name} has splits "
                            f"{', '.join(data.split)}; choose one of them")
        names = data.split[split]
    convert_dataset(data, to, out, box_size=box_size, tight=tight, names=names,
                    overwrite=overwrite)
    typer.echo(f"wrote {to.value} training data for {len(names or data.names)} images to {out}")
