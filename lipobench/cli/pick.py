"""``lipobench pick``: lipobench's shipped Topaz detector on micrographs, at their scale.

Per micrograph ``<stem>``: ``picks/<stem>.csv`` (``row,col,radius,score``: a circle of half
the particles' width per pick, Topaz's log-likelihood ratio as score; ``lipobench score``
reads it) and ``overlays/<stem>.png``; for all of them ``scales.csv`` (the downsampling each
ran at and why). How the downsampling follows from the scale: :mod:`lipobench.adapters.topaz_scale`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from lipobench.cli._app import app
from lipobench.errors import UserError

#: The columns of scales.csv, in order.
PICK_SCALE_COLUMNS = ("micrograph", "source", "estimated_diameter_px", "particle_width_px",
                      "downsample", "n_picks", "reason")


@app.command("pick")
def pick_command(
    micrographs: Annotated[list[Path], typer.Argument(
        help="Micrographs (MRC, TIFF, PNG, JPEG).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    pixel_size_nm: Annotated[float | None, typer.Option(
        "--pixel-size-nm", help="The micrographs' pixel size in nm (else the MRC header's); "
                                "sets the downsampling from the detector's training pixel "
                                "size.")] = None,
    scale: Annotated[str, typer.Option(
        "--scale", help="auto (from the pixel sizes when known, else the particles' width "
                        "measured by the shipped Cellpose model), estimate (always measured) "
                        "or none (the detector's own downsampling).")] = "auto",
    min_score: Annotated[float | None, typer.Option(
        "--min-score", help="Keep picks scoring at least this log-likelihood ratio (default: "
                            "the one the detector was validated at, in its manifest).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Pick particles with lipobench's shipped Topaz detector: picks/<name>.csv and
    overlays/<name>.png per micrograph, scales.csv (the downsampling each ran at)."""
    import pandas as pd

    from lipobench.adapters.cellpose_scale import CellposeScaler
    from lipobench.adapters.device import Device, resolve_torch_device
    from lipobench.adapters.topaz import TopazAdapter
    from lipobench.adapters.topaz_scale import ScaledTopaz
    from lipobench.choices import choose
    from lipobench.cli._micrographs import read_micrographs, write_overlay
    from lipobench.fsutil import atomic_path, check_output_dir
    from lipobench.regionfiles import write_regions
    from lipobench.scale import ScaleMode
    from lipobench.shipped import packaged_model, read_manifest, training_pixel_size_nm

    # Every input is checked before anything is computed or written.
    chosen_device = choose(Device, device, key="--device", what="device")
    if pixel_size_nm is not None and not pixel_size_nm > 0:
        raise UserError(f"--pixel-size-nm {pixel_size_nm:g} must be positive")
    scale_mode = choose(ScaleMode, scale, key="--scale", what="scale mode")
    if min_score is not None and not math.isfinite(min_score):
        raise UserError(f"--min-score {min_score}: give a finite log-likelihood ratio, e.g. 0")
    if min_score is None:
        min_score = float(read_manifest()["models"]["topaz"]["validation_min_score"])
    cellpose_model = packaged_model("cellpose")
    check_output_dir(out, key="--out")
    images = read_micrographs(list(micrographs), pixel_size_nm)
    if chosen_device is Device.CUDA:
        resolve_torch_device(chosen_device)  # no GPU: say so before the first run

    scaler = CellposeScaler(cellpose_model, training_pixel_size_nm(),
                            out / ".topaz-cache" / "cellpose", device=chosen_device.value)
    topaz = ScaledTopaz(TopazAdapter(device=chosen_device.value), out / ".topaz-cache" / "topaz")
    plans = []
    for micrograph in images:
        chosen = scaler.scale(micrograph, scale_mode, pixel_size_from=(
            "--pixel-size-nm" if pixel_size_nm else "the file's header"))
        at = topaz.at_scale(micrograph, chosen)
        typer.echo(f"{micrograph.name}: {at.reason}")
        plans.append((chosen, at))
    rows, total = [], 0
    for micrograph, (chosen, at) in zip(images, plans, strict=True):
        picks = topaz.pick(micrograph, at)
        picks = picks.select(picks.scores >= min_score)
        total += len(picks)
        write_regions(out / "picks" / f"{micrograph.name}.csv", picks)
        write_overlay(out / "overlays" / f"{micrograph.name}.png", micrograph.image, picks)
        estimate = chosen.estimate.diameter_px if chosen.estimate else None
        rows.append({"micrograph": micrograph.name, "source": chosen.source.value,
                     "estimated_diameter_px": round(estimate, 2) if estimate else None,
                     "particle_width_px": round(at.particle_width_px, 2),
                     "downsample": at.downsample, "n_picks": len(picks), "reason": at.reason})
    with atomic_path(out / "scales.csv") as tmp:
        pd.DataFrame(rows, columns=list(PICK_SCALE_COLUMNS)).to_csv(tmp, index=False)
    typer.echo(f"{total} picks in {len(images)} micrograph(s) with score >= {min_score:g}; "
               f"wrote {out}")
