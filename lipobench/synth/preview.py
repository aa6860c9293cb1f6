"""A PNG montage of simulated micrographs with their ground-truth outlines.

``docs/synthetic-preview.png`` (the first four ``quick`` micrographs) was written with::

    ms = [simulate_micrograph(PRESETS["quick"], index=i) for i in range(4)]
    write_preview("docs/synthetic-preview.png",
                  [(m.image, m.labels, m.distractors) for m in ms], colors=14)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["overlay", "write_preview"]

PARTICLE_RGB = (255, 40, 40)
DISTRACTOR_RGB = (0, 220, 255)


def overlay(image, labels, distractors=None, *, max_side: int = 512) -> np.ndarray:
    """An RGB uint8 rendering: contrast-stretched image, red particle outlines, cyan distractors.

    >>> lab = np.zeros((32, 32), np.int32); lab[8:20, 8:20] = 1
    >>> rgb = overlay(np.random.default_rng(0).normal(size=(32, 32)), lab)
    >>> rgb.shape, rgb[8, 10].tolist()
    ((32, 32, 3), [255, 40, 40])
    """
    from skimage.segmentation import find_boundaries

    step = max(1, int(np.ceil(max(image.shape) / max_side)))
    img = np.asarray(image, dtype=np.float64)[::step, ::step]
    lab = np.asarray(labels)[::step, ::step]
    lo, hi = np.percentile(img, [0.5, 99.5])
    grey = np.clip((img - lo) / max(hi - lo, 1e-12) * 255, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if distractors is not None:
        dis = np.asarray(distractors)[::step, ::step]
        rgb[find_boundaries(dis, mode="inner") & (dis > 0)] = DISTRACTOR_RGB
    rgb[find_boundaries(lab, mode="inner") & (lab > 0)] = PARTICLE_RGB
    return rgb


def write_preview(path, micrographs, *, max_side: int = 512, colors: int | None = None) -> Path:
    """Write a 2-column montage of ``(image, labels, distractors)`` tuples to ``path`` (PNG).

    ``colors`` quantizes to a palette of that many colours (a much smaller file).
    """
    from PIL import Image

    tiles = [overlay(*m, max_side=max_side) for m in micrographs]
    if not tiles:
        raise ValueError("no micrographs to preview")
    side = max(max(t.shape[:2]) for t in tiles)
    cols = min(2, len(tiles))
    rows = -(-len(tiles) // cols)
    gap = 4
    canvas = np.full((rows * side + (rows - 1) * gap, cols * side + (cols - 1) * gap, 3), 255,
                     dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        canvas[r * (side + gap): r * (side + gap) + tile.shape[0],
               c * (side + gap): c * (side + gap) + tile.shape[1]] = tile
    if colors is None:
        Image.fromarray(canvas).save(path, optimize=True)
        return Path(path)
    # A palette of grey levels plus the two outline colours keeps outlines crisp.
    levels = max(colors - 2, 2)
    index = np.rint(canvas[..., 0].astype(np.float64) / 255 * (levels - 1)).astype(np.uint8)
    index[np.all(canvas == PARTICLE_RGB, axis=2)] = levels
    index[np.all(canvas == DISTRACTOR_RGB, axis=2)] = levels + 1
    greys = np.rint(np.linspace(0, 255, levels)).astype(int)
    palette = [v for g in greys for v in (g, g, g)] + list(PARTICLE_RGB) + list(DISTRACTOR_RGB)
    picture = Image.fromarray(index, mode="P")
    picture.putpalette(palette)
    picture.save(path, optimize=True)
    return Path(path)
