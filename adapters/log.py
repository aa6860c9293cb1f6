"""Laplacian-of-Gaussian blob detection (scikit-image ``blob_log``): a training-free baseline.

Lipid nanoparticles are roughly round and, in cryo-EM, darker than the surrounding ice, so a
scale-normalised LoG finds them as blobs. Each blob becomes a circle of radius
``sigma * sqrt(2)`` (the radius at which a disk's LoG response peaks), scored by that response.
The detection threshold of ``blob_log`` is kept low and fixed; the benchmark sweeps the
SELECT-stage ``threshold`` offline instead, so one detection run serves every threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lipobench.adapters.base import (
    Adapter,
    Availability,
    ModelRef,
    Stage,
    keep_scores_at_least,
    validate_parameters,
)
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet

__all__ = ["LogAdapter", "LogPredictParams", "LogSelectParams", "detect_blobs"]

#: Floor passed to blob_log: low enough that the SELECT threshold grid decides, high enough
#: that pure noise does not yield thousands of candidates to prune.
DETECTION_FLOOR = 0.02


def _normalise(image: np.ndarray, *, dark_particles: bool) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    std = image.std()
    out = (image - image.mean()) / (std if std > 0 else 1.0)
    return -out if dark_particles else out


def detect_blobs(
    image: np.ndarray,
    *,
    min_sigma: float,
    max_sigma: float,
    num_sigma: int = 10,
    downsample: int = 1,
    dark_particles: bool = True,
    floor: float = DETECTION_FLOOR,
) -> RegionSet:
    """Blobs of ``image`` as scored circles (row, col, radius) in the image's own pixels.

    Parameters
    ----------
    image : ndarray
        2-D micrograph; it is not modified.
    min_sigma, max_sigma : float
        Range of Gaussian scales, in pixels of ``image``.
    num_sigma : int
        Number of scales between them.
    downsample : int
        Integer binning factor applied before detection, for speed.
    dark_particles : bool
        True when particles are darker than the background (cryo-EM), so the image is inverted.
    floor : float
        Minimum scale-normalised LoG response of the image normalised to unit variance.

    Returns
    -------
    RegionSet
        Circles scored by the scale-normalised LoG response at each blob divided by the
        standard deviation of that response over the image at the blob's scale.

    Examples
    --------
    >>> yy, xx = np.mgrid[:64, :64]
    >>> image = np.where((yy - 31) ** 2 + (xx - 20) ** 2 < 8 ** 2, 0.0, 1.0)  # one dark disk
    >>> blobs = detect_blobs(image, min_sigma=3, max_sigma=9)
    >>> len(blobs), blobs.circles[0, :2].tolist(), bool(6 < blobs.circles[0, 2] < 10)
    (1, [31.5, 20.5], True)
    """
    from scipy import ndimage
    from skimage.feature import blob_log
    from skimage.transform import downscale_local_mean

    factor = int(downsample)
    if factor < 1:
        raise ValueError(f"downsample must be a positive integer, got {downsample!r}")
    work = np.asarray(image, dtype=np.float64)
    if factor > 1:
        work = downscale_local_mean(work, (factor, factor))
    work = _normalise(work, dark_particles=dark_particles)
    blobs = blob_log(work, min_sigma=min_sigma / factor, max_sigma=max_sigma / factor,
                     num_sigma=int(num_sigma), threshold=floor, exclude_border=False)
    blobs = np.asarray(blobs, dtype=np.float64).reshape(-1, 3)
    scores = np.zeros(len(blobs))
    # blob_log does not return the response; recompute it at each distinct scale found. Pixel
    # noise gives small scales far larger responses than large ones, so each response is
    # divided by its scale's spread: a score is "how many standard deviations above this
    # scale's typical response", comparable across particle sizes.
    for sigma in np.unique(blobs[:, 2]):
        response = -ndimage.gaussian_laplace(work, sigma) * sigma ** 2
        at = blobs[:, 2] == sigma
        spread = response.std()
        peak = response[blobs[at, 0].astype(int), blobs[at, 1].astype(int)]
        scores[at] = peak / spread if spread > 0 else peak
    circles = np.column_stack([
        (blobs[:, 0] + 0.5) * factor,
        (blobs[:, 1] + 0.5) * factor,
        blobs[:, 2] * math.sqrt(2) * factor,
    ])
    return RegionSet.from_circles(circles, image_shape=np.shape(image), scores=scores)


class LogPredictParams(BaseModel):
    """PREDICT-stage parameters of :class:`LogAdapter`."""

    model_config = ConfigDict(extra="forbid")

    min_sigma: float = Field(4.0, gt=0,
                             json_schema_extra={"grid": (4.0, 8.0), "abbreviation": "σmin"},
                             description="smallest Gaussian scale, pixels (radius ~ 1.41 sigma)")
    max_sigma: float = Field(24.0, gt=0,
                             json_schema_extra={"grid": (24.0, 48.0), "abbreviation": "σmax"},
                             description="largest Gaussian scale, pixels")
    num_sigma: int = Field(10, ge=1, json_schema_extra={"abbreviation": "nσ"},
                           description="number of scales between min and max")
    downsample: int = Field(2, ge=1, json_schema_extra={"grid": (2, 1), "abbreviation": "bin"},
                            description="integer binning before detection")
    dark_particles: bool = Field(True,
                                 description="particles darker than the ice (cryo-EM contrast)")

    @model_validator(mode="after")
    def _scales_in_order(self) -> LogPredictParams:
        if self.min_sigma > self.max_sigma:
            raise ValueError(f"min_sigma {self.min_sigma:g} is above max_sigma "
                             f"{self.max_sigma:g}; give min_sigma <= max_sigma")
        return self


class LogSelectParams(BaseModel):
    """SELECT-stage parameters of :class:`LogAdapter`."""

    model_config = ConfigDict(extra="forbid")

    # None (no cut) is what select() does when called without a threshold; an experiment
    # that names none sweeps the grid.
    threshold: float | None = Field(
        None, json_schema_extra={"grid": (3.0, 4.0, 6.0, 8.0), "abbreviation": "t"},
        description="minimum score: LoG response in standard deviations of its scale")


class LogAdapter(Adapter):
    """Training-free LoG blob detector (scikit-image), circles scored by LoG response."""

    name = "log"
    region_kind = RegionKind.CIRCLE
    trainable = False
    citation = ("Lindeberg, T. (1998). Feature detection with automatic scale selection. "
                "IJCV 30, 79-116; scikit-image skimage.feature.blob_log.")
    schemas = {Stage.PREDICT: LogPredictParams, Stage.SELECT: LogSelectParams}

    def availability(self) -> Availability:
        from importlib.metadata import version

        return Availability(True, tool_version=f"scikit-image {version('scikit-image')}")

    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        """Nothing to convert: the detector learns nothing from ground truth."""
        return Path(workdir)

    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        """No training; the model reference is the string ``"none"``."""
        return "none"

    def predict(self, model: ModelRef, micrographs: Sequence[Micrograph],
                params: Mapping[str, Any], workdir: Path) -> list[RegionSet]:
        options = validate_parameters("log", LogPredictParams, params, "predict")
        return [detect_blobs(m.image, **options.model_dump()) for m in micrographs]

    def select(self, regions: RegionSet, params: Mapping[str, Any]) -> RegionSet:
        """Keep the blobs whose LoG response is at least ``threshold`` (all when None)."""
        return keep_scores_at_least(regions, validate_parameters("log", LogSelectParams, params,
                                                                 "select").threshold)
