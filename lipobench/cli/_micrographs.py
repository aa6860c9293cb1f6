"""What the commands that run a method on a user's micrographs share (``segment``, ``pick``):
reading the micrographs, and the overlay PNG each writes."""

from __future__ import annotations

from pathlib import Path

from lipobench.errors import UserError

__all__ = ["read_micrographs", "write_overlay"]


def read_micrographs(paths: list[Path], pixel_size_nm: float | None):
    """Micrographs named by their file stems, every file read and every name checked first
    (``pixel_size_nm`` overrides the files' own)."""
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


def write_overlay(path: Path, image, regions) -> None:
    """A PNG of ``image`` with ``regions`` drawn on it, written atomically."""
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
