"""``lipobench info DATASET``: what a dataset holds (images, splits, pixel size, particles)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from lipobench.cli._app import app

__all__ = ["dataset_summary"]


def _quantiles(values: np.ndarray) -> dict[str, float] | None:
    if values.size == 0:
        return None
    q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {key: round(float(v), 3) for key, v in zip(("min", "q1", "median", "q3", "max"), q)}


def dataset_summary(dataset) -> dict:
    """Counts and size statistics of a :class:`lipobench.data.Dataset`, JSON-ready.

    Loads one micrograph at a time, so memory stays that of the largest micrograph.
    """
    shapes: dict[tuple[int, int], int] = {}
    pixel_sizes: set[float | None] = set()
    counts, diameters_px, diameters_nm = [], [], []
    nm_known = True
    for name in dataset.names:
        mic = dataset.micrograph(name)
        shapes[mic.shape] = shapes.get(mic.shape, 0) + 1
        pixel_sizes.add(None if mic.pixel_size_nm is None else round(mic.pixel_size_nm, 6))
        if mic.truth is None:
            continue
        diameters = mic.truth.equivalent_diameters()
        counts.append(len(diameters))
        diameters_px.append(diameters)
        if mic.pixel_size_nm is None:
            nm_known = False
        else:
            diameters_nm.append(diameters * mic.pixel_size_nm)
    labelled = dataset.labelled
    all_px = np.concatenate(diameters_px) if diameters_px else np.zeros(0)
    all_nm = np.concatenate(diameters_nm) if (diameters_nm and nm_known) else np.zeros(0)
    counts = np.asarray(counts, dtype=np.int64)
    return {
        "name": dataset.name,
        "root": str(dataset.root),
        "images": len(dataset),
        "splits": {key: len(names) for key, names in dataset.split.items()},
        "image_shapes": [{"rows": r, "cols": c, "images": n}
                         for (r, c), n in sorted(shapes.items())],
        "pixel_size_nm": sorted(pixel_sizes, key=lambda v: (v is None, v or 0.0)),
        "labelled": labelled,
        "mask_format": dataset.mask_format.value if labelled else None,
        "particles": None if not labelled else {
            "total": int(counts.sum()),
            "per_image_mean": round(float(counts.mean()), 3) if counts.size else 0.0,
            "per_image_min": int(counts.min()) if counts.size else 0,
            "per_image_max": int(counts.max()) if counts.size else 0,
        },
        "equivalent_diameter_px": _quantiles(all_px),
        "equivalent_diameter_nm": _quantiles(all_nm),
    }


def _print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt_quantiles(q):
        if q is None:
            return "-"
        return (f"{q['min']:.1f} / {q['q1']:.1f} / {q['median']:.1f} / {q['q3']:.1f} / "
                f"{q['max']:.1f}")

    table = Table(title=f"dataset {summary['name']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("folder", summary["root"])
    splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    table.add_row("images", f"{summary['images']} ({splits})")
    table.add_row("image size (rows x cols)", ", ".join(
        f"{s['rows']} x {s['cols']} ({s['images']})" for s in summary["image_shapes"]))
    table.add_row("pixel size (nm)", ", ".join(
        "unknown" if p is None else f"{p:g}" for p in summary["pixel_size_nm"]))
    particles = summary["particles"]
    if particles is None:
        table.add_row("ground truth", "none (unlabelled dataset)")
    else:
        table.add_row("ground truth", f"{summary['mask_format']} masks")
        table.add_row("particles", f"{particles['total']}")
        table.add_row("per image (mean, min, max)",
                      f"{particles['per_image_mean']:.1f}, {particles['per_image_min']}, "
                      f"{particles['per_image_max']}")
        table.add_row("diameter px (min/q1/med/q3/max)",
                      fmt_quantiles(summary["equivalent_diameter_px"]))
        table.add_row("diameter nm (min/q1/med/q3/max)",
                      fmt_quantiles(summary["equivalent_diameter_nm"]))
    Console().print(table)


@app.command("info")
def info(
    dataset: Path = typer.Argument(..., help="Dataset folder (or its dataset.toml)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Summarize a dataset: images per split, sizes, pixel size, particles and diameters."""
    from lipobench.data import load_dataset

    summary = dataset_summary(load_dataset(dataset))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_table(summary)
