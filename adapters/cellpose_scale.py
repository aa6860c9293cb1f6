"""The scale of a micrograph as one Cellpose model sees it: the model's training scale, and
each micrograph's zoom to it, from the pixel sizes or from a first pass of the model.

The algorithms (size prior, estimate, zoom) live in :mod:`lipobench.scale`; this module binds
them to a Cellpose model file, loaded once and only when a Cellpose run is needed. Both scaled
runs use it: LipoPose (:mod:`lipobench.adapters.lipopose_scale`), and Topaz
(:mod:`lipobench.adapters.topaz_scale`), whose detector has no size estimate of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lipobench.adapters.cellpose import CellposeThresholds
from lipobench.adapters.device import Device
from lipobench.lipopose import pipeline
from lipobench.micrograph import Micrograph
from lipobench.scale import ModelScale, Scale, ScaleMode, ScaleSource, choose_scale

__all__ = ["CellposeScaler"]


class CellposeScaler:
    """One Cellpose model's view of micrographs' scale.

    ``model_pixel_size_nm`` is the pixel size the model was trained at (the shipped manifest
    says it for the default model; None for a user's own). A first pass's masks are cached in
    ``workdir/scan`` by micrograph and diameter, so a rerun repeats none of it.
    """

    def __init__(self, model: Path, model_pixel_size_nm: float | None, workdir: Path, *,
                 device: Device | str = Device.AUTO):
        self.model = Path(model)
        self.model_pixel_size_nm = model_pixel_size_nm
        self.workdir = Path(workdir)
        self.device = device
        self._loaded = None
        #: Cellpose runs of the last :meth:`scale` call.
        self.cellpose_runs = 0

    def cellpose(self):
        """The loaded Cellpose model (loaded on first use)."""
        from lipobench.adapters.cellpose import load_cellpose_model

        if self._loaded is None:
            self._loaded = load_cellpose_model(self.model, self.device)
        return self._loaded

    def model_scale(self) -> ModelScale:
        """The model's mean training diameter (its pixels) and training pixel size."""
        model = self.cellpose()
        diameter = float(getattr(model, "diam_labels", 0) or model.diam_mean)
        return ModelScale(diameter_px=diameter, pixel_size_nm=self.model_pixel_size_nm)

    def scale(self, micrograph: Micrograph, mode: ScaleMode, *,
              pixel_size_from: str = "given") -> Scale:
        """The zoom of ``micrograph`` to the model's pixels (``lipobench.scale.choose_scale``)."""
        from lipobench.adapters.cellpose import segment

        self.cellpose_runs = 0  # counts this call's runs
        if mode is ScaleMode.NONE:
            # Needs no model facts: nothing is loaded.
            return choose_scale(micrograph.image, ModelScale(0.0), mode=mode)
        defaults = CellposeThresholds()
        cache = pipeline.MaskCache(self.workdir / "scan", defaults.flow_threshold,
                                   defaults.cellprob_threshold)

        def first_pass(image: np.ndarray, diameter: float) -> np.ndarray:
            path = cache.path(micrograph.name, round(diameter, 3))
            labels = pipeline.load_labels(path)
            if labels is None:
                labels = pipeline.compact_labels(segment(self.cellpose(), image,
                                                         diameter=diameter))
                pipeline.save_labels(path, labels)
                self.cellpose_runs += 1
            return labels

        return choose_scale(micrograph.image, self.model_scale(), mode=mode,
                            pixel_size_nm=micrograph.pixel_size_nm,
                            pixel_size_from=pixel_size_from, segment=first_pass,
                            network_diameter=float(self.cellpose().diam_mean))

    def effective_pixel_size_nm(self, micrograph: Micrograph, scale: Scale) -> float | None:
        """The nm per micrograph pixel the size prior is read at (None: no prior applies).

        The micrograph's own when known (and not overruled by an estimate); after an estimate,
        the model's pixel size seen through the zoom: the estimate says the particles look
        like the model's training particles, so they are read as being their size.
        """
        if scale.source is ScaleSource.ESTIMATE:
            if self.model_pixel_size_nm and scale.estimate and scale.estimate.diameter_px:
                return self.model_pixel_size_nm * scale.zoom
            return None
        return micrograph.pixel_size_nm
