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

#: The columns of scales.csv, in order: the zoom each micrograph ran at and why.
SCALE_COLUMNS = ("micrograph", "zoom", "source", "estimated_diameter_px", "diameter_start_px",
                 "diameter_stop_px", "n_diameters", "min_diameter_px", "max_diameter_px",
                 "reason")

#: The columns of particles.csv, in order.
PARTICLE_COLUMNS = ("micrograph", "particle", "area_px", "diameter_px", "diameter_nm",
                    "entry_threshold", "centroid_row", "centroid_col")


def _model_fingerprint(model: Path) -> str:
    digest = hashlib.sha256()
    with open(model, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


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


def _scale_row(micrograph, scale, used, size_filter) -> dict:
    estimate = scale.estimate.diameter_px if scale.estimate else None
    return {"micrograph": micrograph.name, "zoom": scale.zoom, "source": scale.source.value,
            "estimated_diameter_px": round(estimate, 2) if estimate else None,
            "diameter_start_px": used[0], "diameter_stop_px": used[-1],
            "n_diameters": len(used),
            "min_diameter_px": _rounded(size_filter.min_diameter_px),
            "max_diameter_px": _rounded(size_filter.max_diameter_px), "reason": scale.reason}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


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
        help="START:STOP:STEP in the micrograph's pixels, stop included; the micrograph is "
             "then not rescaled (default: 0.5 to 2 times the model's mean training diameter "
             "at the model's scale, within --size-nm, every 5 px).")] = None,
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
        "--pixel-size-nm", help="The micrographs' pixel size in nm (else the MRC header's); "
                                "sets the zoom to the model's pixels.")] = None,
    scale: Annotated[str, typer.Option(
        "--scale", help="auto (from the pixel sizes when known, else estimated from the "
                        "image), estimate (always from the image) or none (the micrograph's "
                        "own pixels).")] = "auto",
    size_nm: Annotated[str, typer.Option(
        "--size-nm", help="MIN:MAX: the LNP diameters to look for, in nm; bounds the "
                          "diameters and drops smaller and larger objects.")] = "20:200",
    min_diameter_px: Annotated[float | None, typer.Option(
        "--min-diameter-px", help="Drop objects narrower than this (the micrograph's "
                                  "pixels); replaces --size-nm's minimum.")] = None,
    max_diameter_px: Annotated[float | None, typer.Option(
        "--max-diameter-px", help="Drop objects wider than this (the micrograph's pixels); "
                                  "replaces --size-nm's maximum.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Segment micrographs with LipoPose: labels/<name>.tif, rois/<name>.zip (Fiji) and
    overlays/<name>.png per micrograph, particles.csv and scales.csv (the zoom each ran at)."""
    import pandas as pd

    from lipobench.adapters.base import SizeFilterParams
    from lipobench.adapters.lipopose import LipoPoseAdapter
    from lipobench.adapters.lipopose_scale import ScaledLipoPose
    from lipobench.choices import choose
    from lipobench.cli._micrographs import read_micrographs, write_overlay
    from lipobench.fsutil import atomic_path
    from lipobench.imageio import write_labels_tiff
    from lipobench.lipopose import (
        ConfidenceMethod,
        MergeMethod,
        parse_diameter_range,
        thresholds_until,
    )
    from lipobench.roi import write_roi_zip
    from lipobench.scale import ScaleMode, parse_size_prior

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
    scale_mode = choose(ScaleMode, scale, key="--scale", what="scale mode")
    prior = parse_size_prior(size_nm, key="--size-nm")
    for key, value in (("--min-diameter-px", min_diameter_px),
                       ("--max-diameter-px", max_diameter_px)):
        if value is not None and not value > 0:
            raise UserError(f"{key} {value:g}: must be a positive number of pixels")
    if (min_diameter_px is not None and max_diameter_px is not None
            and min_diameter_px > max_diameter_px):
        raise UserError(f"--min-diameter-px {min_diameter_px:g} exceeds --max-diameter-px "
                        f"{max_diameter_px:g}; give min <= max")
    span = parse_diameter_range(diameters) if diameters is not None else None
    if span is not None and scale_mode is ScaleMode.ESTIMATE:
        raise UserError("--diameters are in the micrograph's pixels and fix its scale; drop "
                        "--scale estimate, or drop --diameters to let the scale be estimated")
    model_pixel_size_nm = None
    if str(model) == "default":
        from lipobench.shipped import packaged_model, training_pixel_size_nm

        model = packaged_model("cellpose")
        model_pixel_size_nm = training_pixel_size_nm()
    if not model.is_file():
        raise UserError(f"--model {model}: no such model file; give a Cellpose model trained "
                        "with lipobench (train/.../cellpose_model) or by Cellpose, or "
                        "'default' for the model lipobench ships")
    from lipobench.fsutil import check_output_dir

    check_output_dir(out, key="--out")
    images = read_micrographs(list(micrographs), pixel_size_nm)
    if chosen_device is Device.CUDA:
        resolve_torch_device(chosen_device)  # no GPU: say so before the first Cellpose run
    if span is not None:
        for micrograph in images:
            span.check_fits(micrograph.shape, where=f"--diameters for {micrograph.path}")

    run = ScaledLipoPose(LipoPoseAdapter(device=chosen_device.value), model,
                         model_pixel_size_nm, prior,
                         out / ".lipopose-cache" / _model_fingerprint(model),
                         merge=merge_method, confidence=confidence_method, window=window,
                         thresholds=thresholds)
    # Every micrograph's scale first: the size bounds follow from it, and a conflict with
    # --min/--max-diameter-px must stop the command before any output is written.
    chosen_scales, filters, runs = [], [], 0
    for micrograph in images:
        # --diameters are the micrograph's pixels: they fix the scale.
        mode = ScaleMode.NONE if span is not None else scale_mode
        chosen = run.scale(micrograph, mode, pixel_size_from=(
            "--pixel-size-nm" if pixel_size_nm else "the file's header"))
        runs += run.cellpose_runs
        typer.echo(f"{micrograph.name}: {chosen.reason}")
        bounds = run.size_bounds_px(micrograph, chosen)
        low = min_diameter_px if min_diameter_px is not None else bounds[0]
        high = max_diameter_px if max_diameter_px is not None else bounds[1]
        if low is not None and high is not None and low > high:
            raise UserError(f"{micrograph.path}: --size-nm {size_nm} is {bounds[0]:.0f}-"
                            f"{bounds[1]:.0f} px at its scale, which conflicts with "
                            f"--min/--max-diameter-px {low:g}-{high:g}; give both pixel bounds "
                            "or widen --size-nm")
        chosen_scales.append(chosen)
        filters.append(SizeFilterParams(min_diameter_px=low, max_diameter_px=high))
    rows, scale_rows = [], []
    for micrograph, chosen, size_filter in zip(images, chosen_scales, filters, strict=True):
        regions, used = run.segment(micrograph, chosen, span)
        runs += run.cellpose_runs
        regions = size_filter.apply(regions)
        write_labels_tiff(out / "labels" / f"{micrograph.name}.tif", regions.to_label_image())
        write_roi_zip(out / "rois" / f"{micrograph.name}.zip", regions)
        write_overlay(out / "overlays" / f"{micrograph.name}.png", micrograph.image, regions)
        rows.extend(_particle_rows(micrograph, regions))
        scale_rows.append(_scale_row(micrograph, chosen, used, size_filter))
    with atomic_path(out / "scales.csv") as tmp:
        pd.DataFrame(scale_rows, columns=list(SCALE_COLUMNS)).to_csv(tmp, index=False)
    with atomic_path(out / "particles.csv") as tmp:
        pd.DataFrame(rows, columns=list(PARTICLE_COLUMNS)).to_csv(tmp, index=False)
    typer.echo(f"{len(rows)} particles in {len(images)} micrograph(s), merged until "
               f"{until:g} %; Cellpose runs: {runs}; wrote {out}")
