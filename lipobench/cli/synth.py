"""``lipobench synth OUT``: simulate a synthetic LNP dataset with exact ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from lipobench.cli._app import app


@app.command("synth")
def synth_command(
    out: Path = typer.Argument(..., help="Dataset folder to write: new, empty, or an earlier "
                               "synthetic dataset (replaced)."),
    preset: str = typer.Option("quick", "--preset", help="quick (16 x 512^2), paper "
                               "(38 x 1024^2, 4x binned from 4096^2 at 0.222 nm/px) or "
                               "realistic (38 x 1024^2, randomised per image: 0.6-1.4 nm/px, "
                               "faint vesicles, cut particles, display renderings)."),
    params: Path = typer.Option(None, "--params", help="A synth_params.json to start from "
                                "instead of a preset (e.g. from an earlier dataset)."),
    n_images: int = typer.Option(None, "--n-images", help="Number of micrographs."),
    size: int = typer.Option(None, "--size", help="Output micrograph side, pixels."),
    pixel_size: float = typer.Option(None, "--pixel-size", help="Output pixel size, nm. "
                                     "Without --binning, the binning that keeps the preset's "
                                     "physical pixel (0.222 nm on both presets): "
                                     "round(pixel size / physical pixel), at least 1."),
    binning: int = typer.Option(None, "--binning", help="Binning of the physical simulation "
                                "(keeps the physical grid: --binning 1 on paper gives 4096^2)."),
    count: float = typer.Option(None, "--count", help="Mean number of LNPs per micrograph."),
    seed: int = typer.Option(None, "--seed", help="Random seed (default: the preset's, 0)."),
    preview: bool = typer.Option(False, "--preview", help="Also write OUT/preview.png."),
) -> None:
    """Simulate cryo-EM micrographs of lipid nanoparticles with instance masks."""
    from lipobench.fsutil import check_output_dir
    from lipobench.synth.dataset import make_dataset, resolve_params
    from lipobench.synth.params import SynthParams, preset as get_preset

    check_output_dir(out, key="OUT")

    base = SynthParams.from_json(params) if params is not None else get_preset(preset)
    plan = resolve_params(preset=base, seed=seed, n_images=n_images, size=size,
                          pixel_size_nm=pixel_size, binning=binning, count=count).output
    if base.domain is not None:
        low, high = base.domain.pixel_size_nm
        typer.echo(f"simulating {plan.size_px}^2 px micrographs, each at its own pixel size "
                   f"({low:g}-{high:g} nm/px, in its MRC header)")
    else:
        typer.echo(f"simulating {plan.physical_size_px}^2 px at "
                   f"{plan.physical_pixel_size_nm:.4g} nm/px, binned {plan.binning}x to "
                   f"{plan.size_px}^2 px at {plan.pixel_size_nm:.4g} nm/px")
    root = make_dataset(out, preset=base, seed=seed, n_images=n_images, size=size,
                        pixel_size_nm=pixel_size, binning=binning, count=count,
                        preview=preview)
    typer.echo(f"wrote {root}")


@app.command("synth-realism")
def synth_realism_command(
    preset: str = typer.Option("realistic", "--preset", help="Preset to simulate: quick, "
                               "paper or realistic."),
    n_images: int = typer.Option(4, "--n-images", help="Number of simulated micrographs."),
    reference: Path = typer.Option(None, "--reference", help="Real display rendering (8-bit "
                                   "PNG); default: the shipped vesicle micrograph."),
    boxes: Path = typer.Option(None, "--boxes", help="Its boxes CSV (row0,col0,row1,col1); "
                               "default: <reference stem minus _raw>_boxes.csv beside it."),
    sigma: float = typer.Option(3.0, "--sigma", help="Gaussian blur of the reference's "
                                "rendering, physical pixels."),
    binning: int = typer.Option(4, "--binning", help="Binning of the reference's rendering."),
) -> None:
    """Side by side with a real micrograph: noise / contrast and the radial rim profile."""
    from lipobench.errors import UserError
    from lipobench.synth.params import preset as get_preset
    from lipobench.synth.realism import (format_table, reference_numbers,
                                         simulated_numbers)

    if n_images <= 0:
        raise UserError(f"--n-images must be positive, got {n_images}")
    if binning <= 0:
        raise UserError(f"--binning must be positive, got {binning}")
    if not sigma >= 0:
        raise UserError(f"--sigma must be zero or positive, got {sigma}")
    params = get_preset(preset)
    if reference is None:
        reference = (Path(__file__).resolve().parents[2] / "tests" / "data" / "vesicles"
                     / "12758756789755284571_raw.png")
    if boxes is None:
        boxes = reference.with_name(reference.stem.removesuffix("_raw") + "_boxes.csv")
    for path, flag in ((reference, "--reference"), (boxes, "--boxes")):
        if not path.is_file():
            raise UserError(f"{path}: no such file; give {flag}")
    try:
        real = reference_numbers(reference, boxes)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{reference}, {boxes}: not a readable image and boxes CSV ({exc})")
    simulated = simulated_numbers(params, n_images, sigma_px=sigma, binning=binning)
    typer.echo(f"rendered like the reference (sigma {sigma:g} px, {binning}x binning, 8 bit); "
               f"{preset}: {n_images} micrograph(s)")
    typer.echo(format_table({"reference": real, preset: simulated}))
