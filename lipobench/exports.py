"""Training-set layouts lipobench writes itself: ``lipobench convert --to cryolo|star|roi``.

:data:`EXPORT_FORMATS` names each layout; its :meth:`ExportFormat.write` writes every
micrograph's ground truth into a folder, beside each adapter's own
:meth:`~lipobench.adapters.base.Adapter.to_native`. The single region files they are made of
are written by :mod:`lipobench.formats` and :mod:`lipobench.roi`; :mod:`lipobench.regionfiles`
re-exports both names for its callers.

Like :mod:`lipobench.regionfiles`, the module imports numpy and the format writers inside its
functions, so the command line that imports it starts fast.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lipobench.errors import UserError

if TYPE_CHECKING:
    from lipobench.micrograph import Micrograph
    from lipobench.regions import RegionSet

__all__ = ["EXPORT_FORMATS", "ExportFormat"]


@dataclass(frozen=True)
class ExportFormat:
    """A layout of a whole training set that lipobench writes itself (no adapter's).

    ``write(micrographs, folder, box_size=...)`` writes every micrograph's ground truth
    into ``folder`` (which exists). ``boxes`` says whether the format writes boxes whose
    size the caller chooses: ``box_size`` squares around each particle's centroid, or with
    ``box_size=None`` each particle's tight box; the others take no ``box_size``.
    """

    name: str
    summary: str
    writer: Callable[..., None]
    boxes: bool = False

    def write(self, micrographs: Sequence[Micrograph], folder: str | os.PathLike, *,
              box_size: float | None = None) -> None:
        folder = Path(folder)
        if self.boxes:
            self.writer(micrographs, folder, box_size=box_size)
        elif box_size is not None:
            raise UserError(f"{self.name}: writes no boxes, so box_size does not apply")
        else:
            self.writer(micrographs, folder)


def _truth(micrograph: Micrograph) -> RegionSet:
    if micrograph.truth is None:
        raise UserError(f"micrograph {micrograph.name!r} has no ground truth to write; give "
                        "annotated micrographs")
    return micrograph.truth


def _image_file(micrograph: Micrograph) -> Path:
    """The image file a tool is given: the micrograph's own, else the TIFF written for it."""
    return micrograph.path if micrograph.path is not None else Path(f"{micrograph.name}.tif")


def _write_cryolo_boxes(micrographs: Sequence[Micrograph], folder: Path, *,
                        box_size: float | None) -> None:
    import numpy as np

    from lipobench import formats
    from lipobench.regions import RegionSet

    if box_size is not None and not box_size > 0:
        raise UserError(f"box_size {box_size}: must be a positive number of pixels")
    (folder / "images").mkdir(exist_ok=True)
    for micrograph in micrographs:
        truth = _truth(micrograph)
        image = folder / "images" / _image_file(micrograph).name
        if micrograph.path is not None:
            shutil.copyfile(micrograph.path, image)
        else:
            from lipobench.imageio import write_tiff

            write_tiff(image, micrograph.image)
        if box_size is None:
            boxes = truth.to_boxes()
        else:
            centres, half = truth.centroids(), box_size / 2.0
            boxes = RegionSet.from_boxes(
                np.column_stack([centres - half, centres + half]).reshape(-1, 4),
                image_shape=truth.image_shape)
        formats.write_box(folder / "annotations" / f"{micrograph.name}.box", boxes,
                          flip_rows=formats.cryolo_flips_rows(image))


def _write_star_files(micrographs: Sequence[Micrograph], folder: Path) -> None:
    from lipobench import formats

    for micrograph in micrographs:
        formats.write_star(folder / f"{micrograph.name}.star", _truth(micrograph),
                           flip_rows=formats.cryolo_flips_rows(_image_file(micrograph)))


def _write_roi_sets(micrographs: Sequence[Micrograph], folder: Path) -> None:
    from lipobench import roi

    for micrograph in micrographs:
        roi.write_roi_zip(folder / f"{micrograph.name}.zip", _truth(micrograph))


#: The layouts lipobench writes without an adapter, by name (``lipobench convert --to``).
#: ``cryolo`` is crYOLO's ``.box`` training layout with a box size of the caller's choice;
#: the crYOLO adapter's own :meth:`~lipobench.adapters.cryolo.CryoloAdapter.to_native` (tight
#: ``.cbox`` boxes, from which its ``train`` derives squares of its TRAIN ``box_size``) needs
#: crYOLO installed.
EXPORT_FORMATS: Mapping[str, ExportFormat] = {
    fmt.name: fmt for fmt in (
        ExportFormat("cryolo", "images/<name>.<ext> (copies) and annotations/<name>.box: "
                     "crYOLO's train_image_folder and train_annot_folder",
                     _write_cryolo_boxes, boxes=True),
        ExportFormat("star", "<name>.star per image: particle centroids in crYOLO's frame",
                     _write_star_files),
        ExportFormat("roi", "<name>.zip per image: Fiji ROI sets, one ROI per particle",
                     _write_roi_sets),
    )
}
