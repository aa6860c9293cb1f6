"""``lipobench convert DATASET OUT --to NAME``: ground truth in a tool's training format.

NAME is an installed adapter (``lipobench adapters`` lists them, third-party plugins
included), whose :meth:`~lipobench.adapters.base.Adapter.to_native` writes what it trains
from, or one of the layouts lipobench writes itself
(:data:`lipobench.exports.EXPORT_FORMATS`), which take precedence over an adapter of the
same name. OUT holds what was written, complete or not at all.

- ``cryolo``: ``images/<name>.<ext>`` (copies of the micrographs) and
  ``annotations/<name>.box``; point crYOLO's ``train_image_folder`` and
  ``train_annot_folder`` at them. Boxes are squares of ``--box-size`` centred on each
  particle's centroid, or with ``--tight`` each particle's tight box. For MRC images the
  rows are counted from the bottom, as crYOLO expects (it flips MRC images when reading).
- ``star``: ``<name>.star`` per image, particle centroids as ``_rlnCoordinateX/Y`` in
  crYOLO's frame (rows counted from the bottom for MRC images, as crYOLO's own STAR output).
- ``roi``: ``<name>.zip`` Fiji ROI sets, one ROI per particle.
- ``topaz`` (its adapter): ``images/<name>.mrc`` (float32) and ``targets.txt`` (one file
  of centroids for all images): ``topaz train --train-images OUT/images
  --train-targets OUT/targets.txt``.
- ``cellpose`` and ``lipopose`` (their adapters): ``<name>.tif`` (float32 image) beside
  ``<name>_masks.tif`` (int32 labels), a Cellpose training folder (``--mask_filter _masks``).
- any other adapter: whatever its ``to_native`` writes. An adapter that learns nothing
  from ground truth (``log``) writes nothing, which is refused.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from lipobench.choices import choose
from lipobench.cli._app import app
from lipobench.errors import UserError

__all__ = ["convert_dataset", "convert_targets"]

#: The folder inside OUT's temporary twin where an adapter's to_native writes.
_NATIVE_WORK = ".to_native"


def convert_targets(registry=None) -> list[str]:
    """Every name ``--to`` accepts: lipobench's export formats, then the installed adapters."""
    from lipobench.exports import EXPORT_FORMATS

    if registry is None:
        from lipobench.plugins import load_registry

        registry = load_registry()
    return [*EXPORT_FORMATS, *(n for n in registry.names() if n not in EXPORT_FORMATS)]


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


def _box_options(target: str, box_size: float | None, tight: bool) -> float | None:
    """The box size a box-writing format is given (None: tight boxes), checked."""
    from lipobench.exports import EXPORT_FORMATS

    export = EXPORT_FORMATS.get(target.lower())
    if export is not None and export.boxes:
        if (box_size is None) == (not tight):
            raise UserError(f"convert --to {export.name}: give exactly one of --box-size PX "
                            "(square boxes centred on each particle) or --tight (each "
                            "particle's tight box)")
        if box_size is not None and not box_size > 0:
            raise UserError(f"--box-size {box_size}: must be a positive number of pixels")
        return box_size
    if box_size is not None or tight:
        takes = ", ".join(f"--to {f.name}" for f in EXPORT_FORMATS.values() if f.boxes)
        raise UserError(f"convert --to {target}: --box-size and --tight apply to {takes} "
                        "only; drop them")
    return None


def _adopt(native, work: Path, folder: Path, target: str) -> None:
    """Move what ``to_native`` returned (inside ``work``) into ``folder``; drop ``work``."""
    native = Path(native)
    work_real = work.resolve()
    native_real = native.resolve()
    if native_real != work_real and work_real not in native_real.parents:
        raise UserError(f"convert --to {target}: the adapter's to_native returned {native}, "
                        f"outside the folder it was given ({work}); fix the adapter to write "
                        "inside its workdir")
    if native_real.is_dir():
        for child in sorted(native_real.iterdir()):
            os.replace(child, folder / child.name)
    elif native_real.is_file():
        os.replace(native_real, folder / native_real.name)
    shutil.rmtree(work, ignore_errors=True)
    if not any(folder.iterdir()):
        from lipobench.exports import EXPORT_FORMATS

        raise UserError(f"convert --to {target}: adapter {target!r} wrote no training data "
                        "(it learns nothing from ground truth); choose an adapter that "
                        f"trains, or one of the formats {', '.join(EXPORT_FORMATS)}")


def _resolve(target, registry=None):
    """(name, export format or None, adapter or None) for ``--to target``, checked."""
    from lipobench.exports import EXPORT_FORMATS

    target = str(getattr(target, "value", target))
    export = EXPORT_FORMATS.get(target.lower())
    if export is not None:
        return export.name, export, None
    if registry is None:
        from lipobench.plugins import load_registry

        registry = load_registry()
    name = choose(convert_targets(registry), target, key="--to", what="target")
    return name, None, registry.get(name)


def convert_dataset(dataset, target: str, out: Path, *, box_size: float | None = None,
                    tight: bool = False, names: list[str] | None = None,
                    overwrite: bool = False, registry=None) -> Path:
    """Write the ground truth of ``dataset`` (a :class:`lipobench.data.Dataset`) for ``target``.

    ``target`` is an export format of :data:`lipobench.exports.EXPORT_FORMATS` or the
    name of an adapter of ``registry`` (default: the installed plugins'), whose
    ``to_native`` is run. ``box_size`` or ``tight`` (exactly one) is needed by the formats
    that write boxes of a chosen size (``cryolo``) and refused by the others. ``names``
    limits the images (default: all). OUT appears complete or not at all.
    """
    from lipobench.fsutil import atomic_dir

    out = Path(out)
    # The options first: they are wrong whatever the name turns out to be.
    box_size = _box_options(str(getattr(target, "value", target)), box_size, tight)
    name, export, adapter = _resolve(target, registry)
    if not dataset.labelled:
        raise UserError(f"{dataset.root}: dataset has no masks, so there is no ground truth to "
                        "convert; set 'masks' in [dataset] of its dataset.toml")
    _check_out(out, dataset.root, overwrite)
    micrographs = dataset.lazy_micrographs(names)

    with atomic_dir(out) as tmp:
        if export is not None:
            export.write(micrographs, tmp, box_size=box_size)
        else:
            work = tmp / _NATIVE_WORK
            work.mkdir()
            _adopt(adapter.to_native(micrographs, work), work, tmp, name)
    return out


@app.command("convert")
def convert(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (or its dataset.toml).")],
    out: Annotated[Path, typer.Argument(help="Output folder to create.")],
    to: Annotated[str, typer.Option(
        "--to", metavar="NAME", help="An installed adapter (its training format; "
        "`lipobench adapters` lists them) or cryolo (.box files), star or roi.")],
    box_size: Annotated[float | None, typer.Option(
        "--box-size", metavar="PX", help="cryolo: square boxes of this size (pixels).")
    ] = None,
    tight: Annotated[bool, typer.Option(
        "--tight", help="cryolo: each particle's tight box.")] = False,
    split: Annotated[str | None, typer.Option(
        "--split", help="Convert only this split's images.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing OUT.")] = False,
) -> None:
    """Write a dataset's ground truth as a tool's training data (any installed adapter's
    format, crYOLO .box files, STAR files or Fiji ROI sets)."""
    from lipobench.data import load_dataset
    from lipobench.exports import EXPORT_FORMATS
    from lipobench.plugins import load_registry

    # --to and its options first, as a parser would check them; the registry (which imports
    # every plugin) only for a name that is not one of lipobench's own formats.
    _box_options(to, box_size, tight)
    registry = None if to.lower() in EXPORT_FORMATS else load_registry()
    name = _resolve(to, registry)[0]
    data = load_dataset(dataset)
    names = None
    if split is not None:
        if split not in data.split:
            raise UserError(f"--split {split}: dataset {data.name} has splits "
                            f"{', '.join(data.split)}; choose one of them")
        names = data.split[split]
    convert_dataset(data, name, out, box_size=box_size, tight=tight, names=names,
                    overwrite=overwrite, registry=registry)
    typer.echo(f"wrote {name} training data for {len(names or data.names)} images to {out}")
