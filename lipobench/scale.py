"""Physical scale: an LNP size prior in nanometres, the scale a model was trained at, and the
zoom that brings a micrograph to it.

A Cellpose model finds particles near the sizes it was trained on, in its own pixels. A user's
micrograph may have pixels twice as fine (particles twice as wide), so running the model at the
diameters of its training pixels finds nothing. Everything here reasons from one number per
micrograph, the **zoom**: model pixels per micrograph pixel.

- When both pixel sizes are known (the micrograph's from ``--pixel-size-nm``, the MRC header or
  dataset.toml; the model's from the shipped manifest), ``zoom = micrograph nm/px / model nm/px``.
- When the micrograph's is not, :func:`estimate_diameter` measures how wide its particles look:
  a first pass of the segmenter over a wide geometric range of diameters, scored by how much of
  the image it covers with masks of the size it was asked for; the zoom then maps that width to
  the model's mean training diameter.

A zoom below 1 shrinks the micrograph once (:func:`resize_image`, area averaging) so that every
diameter and the flow dynamics run on the smaller grid; labels come back to the micrograph's
grid by nearest neighbour (:func:`labels_to_shape`). A zoom above 1 is applied through the
diameters instead (Cellpose rescales internally), which costs nothing extra.

Nothing here loads Cellpose: the caller binds a model into the segment function.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lipobench.errors import UserError
from lipobench.lipopose.pipeline import SegmentFn

__all__ = ["SizePrior", "parse_size_prior", "ModelScale", "ScaleMode", "ScaleSource",
           "Scale", "DiameterEstimate", "estimate_diameter", "resize_image",
           "labels_to_shape", "choose_scale"]



class SizePrior(BaseModel):
    """The diameters LNPs can have, in nanometres (the study's synthetic range by default).

    >>> SizePrior().min_nm, SizePrior().max_nm
    (20.0, 200.0)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_nm: float = Field(20.0, gt=0, description="smallest LNP diameter (nm)")
    max_nm: float = Field(200.0, gt=0, description="largest LNP diameter (nm)")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.min_nm < self.max_nm:
            raise ValueError(f"min_nm {self.min_nm:g} must be below max_nm {self.max_nm:g}")
        return self


def parse_size_prior(text: str, *, key: str = "--size-nm") -> SizePrior:
    """Parse ``MIN:MAX`` (nanometres) into a :class:`SizePrior`.

    >>> parse_size_prior("30:120").max_nm
    120.0
    """
    usage = f"give {key} MIN:MAX in nm, 0 < MIN < MAX, e.g. 20:200"
    parts = str(text).split(":")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise UserError(f"{key} {text}: not MIN:MAX; {usage}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise UserError(f"{key} {text}: {usage}")
    return SizePrior(min_nm=low, max_nm=high)


@dataclass(frozen=True)
class ModelScale:
    """The scale a model was trained at: its mean training diameter in its own pixels, and the
    pixel size of its training micrographs (None: unknown, e.g. a user's own model)."""

    diameter_px: float
    pixel_size_nm: float | None = None


class ScaleMode(str, enum.Enum):
    """How ``lipobench segment`` chooses the micrograph's scale (``--scale``)."""

    #: The pixel sizes when both are known, else an estimate from the image.
    AUTO = "auto"
    #: Always estimate from the image, even with a known pixel size.
    ESTIMATE = "estimate"
    #: Run at the micrograph's own pixels (the study's behaviour).
    NONE = "none"


class ScaleSource(str, enum.Enum):
    """Where a :class:`Scale` came from, for the record and the screen."""

    PIXEL_SIZE = "pixel-size"
    ESTIMATE = "estimate"
    NONE = "none"


@dataclass(frozen=True)
class Scale:
    """A micrograph's zoom to the model's pixels, where it came from, and why (one line)."""

    zoom: float
    source: ScaleSource
    reason: str
    #: The estimate behind an ESTIMATE scale, else None.
    estimate: DiameterEstimate | None = None


@dataclass(frozen=True)
class DiameterEstimate:
    """How wide a micrograph's particles look, from a first pass over many diameters.

    ``diameter_px`` is in the micrograph's pixels, or None when no diameter found particles.
    ``tried`` holds, per diameter of the pass in the order run (micrograph pixels, largest
    first), the fraction of the image covered by masks whose size matches that diameter.
    """

    diameter_px: float | None
    tried: tuple[tuple[float, float], ...]
    #: The micrograph was shrunk by this factor for the pass (1: not shrunk).
    reduction: float


def resize_image(image: np.ndarray, zoom: float) -> np.ndarray:
    """The image resized by ``zoom`` (< 1: shrunk by area averaging, so nothing aliases).

    >>> resize_image(np.ones((10, 8), np.float32), 0.5).shape
    (5, 4)
    """
    import cv2

    image = np.asarray(image, dtype=np.float32)
    rows, cols = (max(1, round(n * zoom)) for n in image.shape)
    if (rows, cols) == image.shape:
        return image
    method = cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (cols, rows), interpolation=method)


def labels_to_shape(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A label image brought to ``shape`` by nearest neighbour (labels are never blended).

    Each output pixel takes the label under its centre, so the result covers the same area.

    >>> labels_to_shape(np.array([[1, 2]]), (2, 4)).tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2]]
    """
    labels = np.asarray(labels)
    if tuple(labels.shape) == tuple(shape):
        return labels
    rows = ((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0]).astype(np.intp)
    cols = ((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1]).astype(np.intp)
    return labels[np.minimum(rows, labels.shape[0] - 1)[:, None],
                  np.minimum(cols, labels.shape[1] - 1)[None, :]]


#: Diameters of the first pass grow by this factor: each size class is asked for at least once
#: within a factor of 1.19 of its own width.
_STEP = math.sqrt(2.0)
#: The pass shrinks the micrograph to about this many pixels on its smaller side.
_SCAN_SIDE = 768
#: Smallest diameter of the pass, in the shrunk micrograph's pixels (below it a particle is a
#: handful of pixels).
_SCAN_MIN_DIAMETER = 12.0
#: The pass's network input stays under this side: a smaller diameter means a larger input.
_MAX_NETWORK_SIDE = 1536
#: Coverage below this fraction of the best so far counts as faded ...
_FADED = 0.25
#: ... once the best covers at least this fraction of the image (else it is noise).
_MIN_COVERAGE = 0.005


def estimate_diameter(image: np.ndarray, segment: SegmentFn, *,
                      network_diameter: float = 30.0) -> DiameterEstimate:
    """How wide the particles of ``image`` look, in its pixels, from a first segmentation pass.

    The image is shrunk to about 768 px on its smaller side; ``segment`` runs at diameters
    from a quarter of the side down to 12 px (or larger, so that the network's input, ``side *
    network_diameter / diameter``, stays under 1536 px), a factor sqrt(2) apart, and stops
    early once the coverage has peaked and then fallen below a quarter of its best twice. Each
    diameter ``d`` scores the fraction of the image its masks cover, counting only masks whose
    equivalent diameter lies within a factor sqrt(2) of ``d``: coverage does not favour small
    diameters (many small masks cover no more than a few large ones), and the size condition
    drops fragments and merged clumps. The estimate is the median size of all masks found at
    the diameters scoring at least a quarter of the best: Cellpose pulls its masks toward the
    diameter it is given, so one diameter's masks lean toward it, and pooling the diameters
    around the peak evens that out (on the real vesicle micrograph the best diameter's
    matching masks alone read 228 px against the expert boxes' median 184 px; pooled, 190).

    ``network_diameter`` is the model's ``diam_mean`` (the size Cellpose rescales objects to).

    >>> def discs(image, diameter):  # a test double: finds 40-px discs only near d = 40
    ...     labels = np.zeros(image.shape, int)
    ...     if 28 <= diameter <= 57:
    ...         rr, cc = np.indices(image.shape)
    ...         labels[np.hypot(rr - 100, cc - 100) < 20] = 1
    ...     return labels
    >>> estimate = estimate_diameter(np.zeros((200, 200), np.float32), discs)
    >>> round(estimate.diameter_px)
    40
    """
    side = min(image.shape)
    reduction = max(1.0, side / _SCAN_SIDE)
    scan = resize_image(image, 1 / reduction) if reduction > 1 else np.asarray(image, np.float32)
    scan_side = min(scan.shape)
    smallest = max(_SCAN_MIN_DIAMETER, network_diameter * scan_side / _MAX_NETWORK_SIDE)
    diameters = []
    d = smallest
    while d <= scan_side / 4 + 1e-9:
        diameters.append(d)
        d *= _STEP
    tried, found, faded = [], [], 0
    # Largest first: they cost least (the network's input shrinks as the diameter grows), and
    # once coverage has peaked and faded for two diameters running, the smaller ones, which
    # cost most, are not run.
    for d in reversed(diameters):
        labels = np.asarray(segment(scan, d))
        areas = np.bincount(labels.ravel())[1:]
        areas = areas[areas > 0]
        sizes = np.sqrt(4 * areas / np.pi)
        matching = (sizes >= d / _STEP) & (sizes <= d * _STEP)
        coverage = float(areas[matching].sum() / labels.size)
        tried.append((round(d * reduction, 3), round(coverage, 5)))
        found.append(sizes)
        best = max(c for _, c in tried)
        faded = faded + 1 if best >= _MIN_COVERAGE and coverage < _FADED * best else 0
        if faded == 2:
            break
    coverages = [c for _, c in tried]
    if max(coverages) <= 0:
        return DiameterEstimate(diameter_px=None, tried=tuple(tried), reduction=reduction)
    peak = [sizes for (_, c), sizes in zip(tried, found, strict=True)
            if c >= _FADED * max(coverages)]
    median = float(np.median(np.concatenate(peak))) * reduction
    return DiameterEstimate(diameter_px=median, tried=tuple(tried), reduction=reduction)


#: A zoom this close to 1 is taken as 1: resizing would change nothing a model can see.
_UNIT_ZOOM_TOLERANCE = 0.05


def choose_scale(image: np.ndarray, model: ModelScale, *, mode: ScaleMode = ScaleMode.AUTO,
                 pixel_size_nm: float | None = None, pixel_size_from: str = "given",
                 segment: SegmentFn | None = None,
                 network_diameter: float = 30.0) -> Scale:
    """The zoom of one micrograph to ``model``'s pixels, and the one line that says why.

    ``mode`` AUTO uses the pixel sizes when both are known, else estimates the particles'
    width from the image (:func:`estimate_diameter`, which needs ``segment``); a model whose
    training pixel size is unknown (a user's own) runs at the micrograph's pixels unless
    ``mode`` is ESTIMATE. ``pixel_size_from`` names where the micrograph's pixel size came
    from, for the line.

    >>> choose_scale(np.zeros((8, 8)), ModelScale(75.0, 0.888), pixel_size_nm=0.444,
    ...              pixel_size_from="--pixel-size-nm").zoom
    0.5
    """
    if mode is ScaleMode.NONE:
        return Scale(1.0, ScaleSource.NONE, "at the micrograph's own pixels (--scale none)")
    if mode is ScaleMode.AUTO and pixel_size_nm and model.pixel_size_nm:
        zoom = _snap(pixel_size_nm / model.pixel_size_nm)
        return Scale(zoom, ScaleSource.PIXEL_SIZE, (
            f"pixel size {pixel_size_nm:g} nm ({pixel_size_from}), the model's "
            f"{model.pixel_size_nm:g} nm: zoom {zoom:.3g}"))
    if mode is ScaleMode.AUTO and not model.pixel_size_nm:
        return Scale(1.0, ScaleSource.NONE, (
            "at the micrograph's own pixels: the model's training pixel size is unknown "
            "(--scale estimate measures the particles' width instead)"))
    if segment is None:
        raise ValueError("estimating the scale needs a segment function")
    estimate = estimate_diameter(image, segment, network_diameter=network_diameter)
    low, high = min(d for d, _ in estimate.tried), max(d for d, _ in estimate.tried)
    why = "pixel size unknown" if not pixel_size_nm else "--scale estimate"
    if estimate.diameter_px is None:
        return Scale(1.0, ScaleSource.ESTIMATE, (
            f"{why}, and a first pass at {len(estimate.tried)} diameters ({low:.0f}-{high:.0f} "
            "px) found no particles: at the micrograph's own pixels"), estimate)
    zoom = _snap(model.diameter_px / estimate.diameter_px)
    return Scale(zoom, ScaleSource.ESTIMATE, (
        f"{why}: particles look {estimate.diameter_px:.0f} px wide (first pass at "
        f"{len(estimate.tried)} diameters, {low:.0f}-{high:.0f} px), the model's mean "
        f"training diameter is {model.diameter_px:.0f} px: zoom {zoom:.3g}"), estimate)


def _snap(zoom: float) -> float:
    return 1.0 if abs(zoom - 1.0) <= _UNIT_ZOOM_TOLERANCE else round(zoom, 4)
