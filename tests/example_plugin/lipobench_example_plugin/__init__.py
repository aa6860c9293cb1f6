"""An example third-party lipobench plugin: Otsu threshold + connected components.

Particles in cryo-EM are darker than the ice, so pixels below the Otsu threshold of a smoothed
micrograph are foreground; each connected component of at least ``min_area`` pixels is one
particle. No training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lipobench.api import (
    Adapter,
    AdapterRegistry,
    Availability,
    Micrograph,
    ModelRef,
    Parameter,
    RegionKind,
    RegionSet,
    Stage,
    hookimpl,
)

__all__ = ["ThresholdAdapter", "lipobench_register_adapters"]


class ThresholdAdapter(Adapter):
    """Otsu threshold of the Gaussian-smoothed image, then connected components."""

    name = "threshold"
    region_kind = RegionKind.MASK
    trainable = False
    citation = "Otsu, N. (1979). A threshold selection method from gray-level histograms."
    parameters = {
        "smoothing": Parameter(Stage.PREDICT, (2.0, 4.0), "Gaussian sigma before thresholding, px"),
        "min_area": Parameter(Stage.SELECT, (20, 100), "smallest particle kept, px"),
    }

    def availability(self) -> Availability:
        from importlib.metadata import version

        return Availability(True, tool_version=f"scikit-image {version('scikit-image')}")

    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        return Path(workdir)

    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        return "none"

    def predict(self, model: ModelRef, micrographs: Sequence[Micrograph],
                params: Mapping[str, Any], workdir: Path) -> list[RegionSet]:
        from scipy import ndimage
        from skimage.filters import gaussian, threshold_otsu

        sigma = float(params.get("smoothing", 2.0))
        results = []
        for micrograph in micrographs:
            smooth = gaussian(micrograph.image, sigma=sigma)
            labels, _ = ndimage.label(smooth < threshold_otsu(smooth))
            # Score = mean darkness of the component, so a threshold on it means something.
            ids = range(1, int(labels.max()) + 1)
            darkness = -ndimage.mean(smooth, labels, list(ids)) if labels.max() else []
            results.append(RegionSet.from_labels(labels.astype("int32"), scores=darkness))
        return results

    def select(self, regions: RegionSet, params: Mapping[str, Any]) -> RegionSet:
        min_area = params.get("min_area")
        if min_area is None:
            return regions
        return regions.select(regions.areas() >= float(min_area))


@hookimpl
def lipobench_register_adapters(registry: AdapterRegistry) -> None:
    registry.register(ThresholdAdapter)
