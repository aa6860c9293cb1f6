"""Ground truth and predictions drawn on a micrograph: true positives, false positives, misses.

As in the study's Figs. 1 and 3: the micrograph is contrast-stretched between two percentiles,
matched predictions (true positives) are outlined in one colour, unmatched predictions (false
positives) in another, and unmatched ground-truth particles (false negatives) in a third.
Masks are drawn by their boundary pixels, boxes and circles as shapes, all in the image's
(row, col) pixel frame: pixel (i, j) covers [i, i+1) x [j, j+1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lipobench.regions import RegionKind, RegionSet

__all__ = ["OUTCOME_COLORS", "OverlayPanel", "contrast_stretch", "display_image",
           "draw_micrograph", "draw_regions", "overlay_figure"]

#: The longest side, in array elements, of any picture handed to matplotlib. Figures are
#: saved under a thousand pixels wide and matplotlib resamples to that anyway, but it first
#: colour-maps the whole array in float64: a 4096² micrograph with one outline layer cost
#: about 1.9 GB there. Larger images are averaged (outlines: max-pooled) down in blocks first.
DISPLAY_SIDE = 1024

#: Okabe-Ito colours, distinct for colour-blind readers and against a grey micrograph.
OUTCOME_COLORS = {
    "true positive": "#009E73",
    "false positive": "#D55E00",
    "false negative": "#F0E442",
}


def contrast_stretch(image, *, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """``image`` rescaled so its ``low`` and ``high`` percentiles map to 0 and 1, clipped.

    >>> contrast_stretch(np.arange(101.0), low=10, high=90)[[0, 50, 100]].tolist()
    [0.0, 0.5, 1.0]
    """
    image = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(image, [low, high])
    if not hi > lo:
        return np.zeros_like(image)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0)


def _display_factor(shape) -> int:
    """The block side that brings ``shape`` to at most DISPLAY_SIDE along its longer side."""
    return max(1, -(-max(shape) // DISPLAY_SIDE))


def _reduce_blocks(array: np.ndarray, factor: int, reducer) -> np.ndarray:
    """``reducer`` over ``factor``² blocks; edge values pad a partial last block."""
    if factor == 1:
        return array
    h, w = array.shape
    padded = np.pad(array, ((0, -h % factor), (0, -w % factor)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return reducer(blocks, axis=(1, 3))


def _extent(shape, factor: int) -> tuple[int, int, int, int]:
    """imshow's extent for a block-reduced picture of an image of ``shape``, in its pixels."""
    h, w = shape
    return (0, -(-w // factor) * factor, -(-h // factor) * factor, 0)


def display_image(image, *, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """:func:`contrast_stretch` of ``image``, block-averaged to at most DISPLAY_SIDE a side.

    The percentiles are those of the full image, so the contrast does not depend on the
    reduction. Draw it with ``extent`` covering whole blocks (see :func:`draw_micrograph`).

    >>> display_image(np.arange(4096.0 * 2).reshape(2, 4096)).shape
    (1, 1024)
    """
    image = np.asarray(image)
    lo, hi = np.percentile(image, [low, high])
    reduced = _reduce_blocks(np.asarray(image, dtype=np.float32), _display_factor(image.shape),
                             np.mean)
    if not hi > lo:
        return np.zeros(reduced.shape)
    return np.clip((reduced - lo) / (hi - lo), 0.0, 1.0)


def draw_micrograph(ax, image, *, low: float = 1.0, high: float = 99.0) -> None:
    """``image`` in grey on ``ax``, in its (row, col) pixel frame, contrast-stretched."""
    shape = np.shape(image)
    ax.imshow(display_image(image, low=low, high=high), cmap="gray",
              extent=_extent(shape, _display_factor(shape)), interpolation="nearest")


def _outline(regions: RegionSet, color: str, factor: int) -> np.ndarray:
    """An RGBA layer (uint8) with the masks' boundary pixels in ``color``, max-pooled."""
    from matplotlib.colors import to_rgba
    from skimage.segmentation import find_boundaries

    edges = _reduce_blocks(find_boundaries(regions.labels, mode="inner"), factor, np.any)
    layer = np.zeros((*edges.shape, 4), dtype=np.uint8)
    layer[edges] = np.round(np.multiply(to_rgba(color), 255)).astype(np.uint8)
    return layer


def draw_regions(ax, regions: RegionSet, *, color: str, linewidth: float = 1.2) -> None:
    """Outline every region of ``regions`` on ``ax`` (an image drawn in pixel coordinates).

    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> draw_regions(ax, RegionSet.from_circles([[5, 5, 3], [12, 9, 2]], image_shape=(20, 20)),
    ...              color="red")
    >>> len(ax.patches)
    2
    """
    if len(regions) == 0:
        return
    if regions.kind is RegionKind.MASK:
        factor = _display_factor(regions.image_shape)
        ax.imshow(_outline(regions, color, factor), extent=_extent(regions.image_shape, factor),
                  interpolation="nearest")
        return
    from matplotlib.patches import Circle, Rectangle

    if regions.kind is RegionKind.BOX:
        for r0, c0, r1, c1 in regions.boxes:
            ax.add_patch(Rectangle((c0, r0), c1 - c0, r1 - r0, fill=False, edgecolor=color,
                                   linewidth=linewidth))
    else:
        for r, c, radius in regions.circles:
            ax.add_patch(Circle((c, r), radius, fill=False, edgecolor=color,
                                linewidth=linewidth))


@dataclass(frozen=True, eq=False)
class OverlayPanel:
    """One method's predictions on the micrograph, with the matching that classified them.

    ``truth`` is the ground truth in the shape the method is scored against; ``truth_hit``
    and ``pred_hit`` are boolean flags (one per region, in ``ids`` order) of the regions in
    a matched pair.
    """

    title: str
    truth: RegionSet
    pred: RegionSet
    truth_hit: np.ndarray
    pred_hit: np.ndarray

    def counts(self) -> tuple[int, int, int]:
        """(true positives, false positives, false negatives)."""
        tp = int(np.count_nonzero(self.pred_hit))
        return tp, int(len(self.pred_hit) - tp), int(np.count_nonzero(~self.truth_hit))


def overlay_figure(image, panels: Sequence[OverlayPanel], *, title: str | None = None,
                   percentiles: tuple[float, float] = (1.0, 99.0)):
    """One panel per method: the micrograph with TP, FP and FN outlined in distinct colours.

    Parameters
    ----------
    image : ndarray
        The 2-D micrograph (not modified); shown contrast-stretched between ``percentiles``.
    panels : sequence of OverlayPanel
        One per method, drawn left to right.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> truth = RegionSet.from_circles([[10, 10, 4], [30, 30, 4]], image_shape=(40, 40))
    >>> pred = RegionSet.from_circles([[10, 11, 4], [5, 30, 3]], image_shape=(40, 40))
    >>> panel = OverlayPanel("log", truth, pred, np.array([True, False]),
    ...                      np.array([True, False]))
    >>> fig = overlay_figure(np.random.default_rng(0).normal(size=(40, 40)), [panel])
    >>> panel.counts(), len(fig.axes[0].patches)
    ((1, 1, 1), 3)
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = -(-n // cols)
    h, w = np.shape(image)
    side = 4.6
    fig = Figure(figsize=(side * cols, side * rows * h / w + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        draw_micrograph(ax, image, low=percentiles[0], high=percentiles[1])
        draw_regions(ax, panel.pred.select(panel.pred_hit), color=OUTCOME_COLORS["true positive"])
        draw_regions(ax, panel.pred.select(~panel.pred_hit),
                     color=OUTCOME_COLORS["false positive"])
        draw_regions(ax, panel.truth.select(~panel.truth_hit),
                     color=OUTCOME_COLORS["false negative"])
        tp, fp, fn = panel.counts()
        ax.set_title(f"{panel.title}\nTP {tp}  FP {fp}  FN {fn}", fontsize="medium")
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=color, linewidth=2.5, label=name)
               for name, color in OUTCOME_COLORS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig
