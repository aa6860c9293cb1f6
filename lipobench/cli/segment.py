"""``lipobench segment``: LipoPose on micrographs, written for inspection and correction in Fiji.

Per micrograph ``<stem>``: ``labels/<stem>.tif`` (int32 instance labels), ``rois/<stem>.zip``
(a Fiji ROI set: correct it in Fiji, then use the folder as a dataset's ``masks`` folder with
``mask_format = "roi"``) and ``overlays/<stem>.png``; for all of them ``particles.csv``.
The per-diameter Cellpose masks are cached under ``OUT/.lipopose-cache/<model fingerprint>/``,
so a second run with another ``--until`` (or merge) reruns only the merge. The LipoPose steps
are those PREDICT runs (:meth:`~lipobench.adapters.lipopose.LipoPoseAdapter.iter_labels`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from lipobench.cli._app import app
from lipobench.errors import UserError

#: The columns of particles.csv, in order.
PARTICLE_COLUMNS = ("micrograph", "particle", "area_px", "diameter_px", "diameter_nm",
                    "entry_threshold", "centroid_row", "centroid_col")


def _model_fingerprint(model: Path) -> str:
    digest = hashlib.sha256()
    with open(model, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _read_micrographs(paths: list[Path], pixel_size_nm: float | None):
    from lipobench.fsutil import check_name
    from lipobench.imageio import read_image
    from lipobench.micrograph import Micrograph

    micrographs, seen = [], {}
    for path in paths:
        check_name(path.stem, where=str(path), what="micrograph")
        if path.stem in seen:
            raise UserError(f"{path}: has the same name as {seen[path.stem]}; outputs are "
                            "named by file stem, so rename one of them")
        seen[path.stem] = path
        image, size = read_image(path)
        micrographs.append(Micrograph(path.stem, image, pixel_size_nm or size, path=path))
    return micrographs


def _write_overlay(path: Path, image, regions) -> None:
    from matplotlib.figure import Figure

    from lipobench.fsutil import atomic_path
    from lipobench.report.overlays import draw_micrograph, draw_regions

    rows, cols = image.shape
    fig = Figure(figsize=(6, 6 * rows / cols), layout="constrained")
    ax = fig.subplots()
    draw_micrograph(ax, image)
    draw_regions(ax, regions, color="#009E73")
    ax.set_title(f"{path.stem}: {len(regions)} particles",
                 fontsize="medium")
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_axis_off()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")


def _particle_rows(micrograph, regions) -> list[dict]:
    areas = regions.areas()
    diameters = regions.equivalent_diameters()
    centroids = regions.centroids()
    size = micrograph.pixel_size_nm
    rows = []
    for k, label in enumerate(regions.ids):
        rows.append({
            "micrograph": micrograph.name,
            "particle": int(label),
            "area_px": float(areas[k]),
            "diameter_px": round(float(diameters[k]), 3),
            "diameter_nm": round(float(diameters[k]) * size, 3) if size else None,
            "entry_threshold": float(regions.scores[k]),
            "centroid_row": round(float(centroids[k, 0]), 2),
            "centroid_col": round(float(centroids[k, 1]), 2),
        })
    return rows


@app.command("segment")
def segment_command(
    micrographs: Annotated[list[Path], typer.Argument(
        help="Micrographs (MRC, TIFF, PNG, JPEG).")],
    model: Annotated[Path, typer.Option(
        "--model", help="A trained Cellpose model file, or 'default' (the model lipobench "
                        "ships).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    diameters: Annotated[str | None, typer.Option(
        "--diameters",
        help="START:STOP:STEP in pixels, stop included (default: 0.5 to 2 times the model's "
             "mean training diameter, every 5 px).")] = None,
    until: Annotated[float, typer.Option(
        "--until", help="Merge down to this confidence threshold (percent): low favours "
                        "recall, high precision.")] = 0.0,
    merge: Annotated[str, typer.Option(
        "--merge", help="instances (keeps touching particles apart) or connected (the "
                        "study's merge).")] = "instances",
    confidence: Annotated[str, typer.Option(
        "--confidence", help="average (the study) or sliding_window.")] = "average",
    window: Annotated[int | None, typer.Option(
        "--window", help="Diameters per window, with sliding_window.")] = None,
    pixel_size_nm: Annotated[float | None, typer.Option(
        "--pixel-size-nm", help="Pixel size for diameters in nm (MRC headers give it).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Segment micrographs with LipoPose: labels/<name>.tif, rois/<name>.zip (Fiji) and
    overlays/<name>.png per micrograph, and particles.csv."""
    import pandas as pd

    from lipobench.adapters.lipopose import LipoPoseAdapter, LipoPosePredictParams
    from lipobench.choices import choose
    from lipobench.fsutil import atomic_path
    from lipobench.imageio import write_labels_tiff
    from lipobench.lipopose import (
        ConfidenceMethod,
        MergeMethod,
        parse_diameter_range,
        thresholds_until,
    )
    from lipobench.regions import RegionSet
    from lipobench.roi import write_roi_zip

    # Every input is checked before anything is computed or written.
    thresholds = thresholds_until(until, key="--until")
    merge_method = choose(MergeMethod, merge, key="--merge", what="merge")
    confidence_method = choose(ConfidenceMethod, confidence, key="--confidence",
                               what="confidence method")
    if confidence_method is ConfidenceMethod.SLIDING_WINDOW and window is None:
        raise UserError("--window: --confidence sliding_window needs --window K, the number "
                        "of consecutive diameters per window")
    if window is not None and confidence_method is not ConfidenceMethod.SLIDING_WINDOW:
        raise UserError(f"--window {window}: only used with --confidence sliding_window; "
                        "add that or drop --window")
    if window is not None and window < 1:
        raise UserError(f"--window {window}: must be at least 1 diameter")
    from lipobench.adapters.device import Device, resolve_torch_device

    chosen_device = choose(Device, device, key="--device", what="device")
    if pixel_size_nm is not None and not pixel_size_nm > 0:
        raise UserError(f"--pixel-size-nm {pixel_size_nm:g} must be positive")
    if str(model) == "default":
        from lipobench.shipped import packaged_model

        model = packaged_model("cellpose")
    if not model.is_file():
        raise UserError(f"--model {model}: no such model file; give a Cellpose model trained "
                        "with lipobench (train/.../cellpose_model) or by Cellpose, or "
                        "'default' for the model lipobench ships")
    from lipobench.fsutil import check_output_dir

    check_output_dir(out, key="--out")
    span = parse_diameter_range(diameters) if diameters is not None else None
    images = _read_micrographs(list(micrographs), pixel_size_nm)
    if chosen_device is Device.CUDA:
        resolve_torch_device(chosen_device)  # no GPU: say so before the first Cellpose run
    if span is not None:
        for micrograph in images:
            span.check_fits(micrograph.shape, where=f"--diameters for {micrograph.path}")
    params = LipoPosePredictParams(
        diameter_start=span.start if span else None, diameter_stop=span.stop if span else None,
        diameter_step=span.step if span else 5.0, confidence=confidence_method,
        window=window, merge=merge_method)

    adapter = LipoPoseAdapter(device=chosen_device.value)
    workdir = out / ".lipopose-cache" / _model_fingerprint(model)
    # The pipeline PREDICT runs, down to --until. One micrograph's masks at a time: at 4096²
    # each diameter's labels take 16-64 MB, and they are dropped once merged.
    used, merged = adapter.iter_labels(model, images, params, workdir, thresholds=thresholds)
    rows = []
    for micrograph, (labels, scores) in zip(images, merged, strict=False):
        regions = RegionSet.from_labels(labels, scores=scores, copy=False)
        write_labels_tiff(out / "labels" / f"{micrograph.name}.tif", labels)
        write_roi_zip(out / "rois" / f"{micrograph.name}.zip", regions)
        _write_overlay(out / "overlays" / f"{micrograph.name}.png", micrograph.image, regions)
        rows.extend(_particle_rows(micrograph, regions))
    with atomic_path(out / "particles.csv") as tmp:
        pd.DataFrame(rows, columns=list(PARTICLE_COLUMNS)).to_csv(tmp, index=False)
    typer.echo(f"{len(rows)} particles in {len(images)} micrograph(s) at {len(used)} diameters "
               f"({used[0]:g}..{used[-1]:g} px), merged until {until:g} %; "
               f"Cellpose runs: {adapter.cellpose_runs}; wrote {out}")
