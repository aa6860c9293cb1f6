"""``lipobench synth OUT``: simulate a synthetic LNP dataset with exact ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from lipobench.cli._app import app


@app.command("synth")
def synth_command(
    out: Path = typer.Argument(..., help="Dataset folder to write: new, empty, or an earlier "
                               "synthetic dataset (replaced)."),
    preset: str = typer.Option("quick", "--preset", help="quick (16 x 512^2) or paper "
                               "(38 x 1024^2, 4x binned from 4096^2 at 0.222 nm/px)."),
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
    typer.echo(f"simulating {plan.physical_size_px}^2 px at {plan.physical_pixel_size_nm:.4g} "
               f"nm/px, binned {plan.binning}x to {plan.size_px}^2 px at "
               f"{plan.pixel_size_nm:.4g} nm/px")
    root = make_dataset(out, preset=base, seed=seed, n_images=n_images, size=size,
                        pixel_size_nm=pixel_size, binning=binning, count=count,
                        preview=preview)
    typer.echo(f"wrote {root}")
