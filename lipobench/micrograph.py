"""One micrograph as the framework passes it around: pixels, pixel size and ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lipobench.regions import RegionSet

__all__ = ["Micrograph"]


@dataclass(frozen=True, eq=False)
class Micrograph:
    """A 2-D image (float32, rows x cols) with optional pixel size and ground-truth masks.

    ``name`` is the file stem, unique within a dataset; adapters use it as the image name in
    the tools' coordinate files. ``truth`` is a mask RegionSet of the same shape, or None for an
    unlabelled micrograph.
    """

    name: str
    image: np.ndarray = field(repr=False)
    pixel_size_nm: float | None = None
    truth: RegionSet | None = None
    path: Path | None = None

    def __post_init__(self):
        if self.image.ndim != 2:
            raise ValueError(f"{self.name}: a micrograph must be 2-D, got shape {self.image.shape}")
        if self.truth is not None and tuple(self.truth.image_shape) != tuple(self.image.shape):
            raise ValueError(
                f"{self.name}: ground truth shape {self.truth.image_shape} differs from "
                f"image shape {self.image.shape}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.image.shape)
