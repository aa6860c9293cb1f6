"""LipoPose at the model's scale: the zoom of each micrograph, the diameters and size bounds that
follow from it, and the pipeline run on the zoomed micrograph (what ``lipobench segment`` runs).

The scale algorithms (size prior, estimate, resizing) live in :mod:`lipobench.scale`; this
module binds them to a Cellpose model and to :meth:`LipoPoseAdapter.iter_labels`.

Everything is computed in the micrograph's pixels first (``model px / zoom``), then, when the
zoom shrinks the micrograph, in the shrunk one's: a zoom below 1 resizes the micrograph once,
so all diameters and Cellpose's flow dynamics run on the smaller grid, and the merged labels
come back to the micrograph's grid by nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lipobench.adapters.cellpose_scale import CellposeScaler
from lipobench.adapters.lipopose import DEFAULT_SPAN, LipoPoseAdapter, LipoPosePredictParams
from lipobench.errors import UserError
from lipobench.lipopose import ConfidenceMethod, DiameterRange, MergeMethod
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionSet
from lipobench.scale import (
    ModelScale,
    Scale,
    ScaleMode,
    SizePrior,
    labels_to_shape,
    resize_image,
)

__all__ = ["ScaledLipoPose", "DEFAULT_STEP_MODEL_PX"]

#: Default spacing of the diameters, in the model's pixels (the study's 5 px).
DEFAULT_STEP_MODEL_PX = 5.0


class ScaledLipoPose:
    """One Cellpose model run as LipoPose, each micrograph at its zoom to the model's pixels.

    ``model_pixel_size_nm`` is the pixel size the model was trained at (the shipped manifest
    says it for the default model; None for a user's own). The scale comes from a
    :class:`~lipobench.adapters.cellpose_scale.CellposeScaler` of the same model, whose first
    pass is cached in ``workdir/scan`` beside the pipeline's masks.
    """

    def __init__(self, adapter: LipoPoseAdapter, model: Path, model_pixel_size_nm: float | None,
                 prior: SizePrior, workdir: Path, *, merge: MergeMethod,
                 confidence: ConfidenceMethod, window: int | None,
                 thresholds: Sequence[float]):
        self.adapter, self.model, self.prior = adapter, Path(model), prior
        self.workdir = Path(workdir)
        self.scaler = CellposeScaler(model, model_pixel_size_nm, self.workdir,
                                     device=adapter.cellpose.device)
        self.merge, self.confidence, self.window = merge, confidence, window
        self.thresholds = list(thresholds)
        #: Cellpose runs of the last :meth:`scale` or :meth:`segment` call.
        self.cellpose_runs = 0

    def model_scale(self) -> ModelScale:
        """The model's mean training diameter (its pixels) and training pixel size."""
        return self.scaler.model_scale()

    def scale(self, micrograph: Micrograph, mode: ScaleMode, *,
              pixel_size_from: str = "given") -> Scale:
        """The zoom of ``micrograph`` to the model's pixels (:meth:`CellposeScaler.scale`)."""
        scale = self.scaler.scale(micrograph, mode, pixel_size_from=pixel_size_from)
        self.cellpose_runs = self.scaler.cellpose_runs
        return scale

    def effective_pixel_size_nm(self, micrograph: Micrograph, scale: Scale) -> float | None:
        """The nm per micrograph pixel the size prior is read at (None: no prior applies)."""
        return self.scaler.effective_pixel_size_nm(micrograph, scale)

    def size_bounds_px(self, micrograph: Micrograph, scale: Scale
                       ) -> tuple[float | None, float | None]:
        """The size prior in the micrograph's pixels, or (None, None) without a pixel size."""
        nm_per_px = self.effective_pixel_size_nm(micrograph, scale)
        if not nm_per_px:
            return None, None
        return self.prior.min_nm / nm_per_px, self.prior.max_nm / nm_per_px

    def default_diameters(self, micrograph: Micrograph, scale: Scale) -> DiameterRange:
        """The study's 0.5-2x span of the model's training diameter, within the size prior,
        every 5 model pixels, in the micrograph's pixels."""
        model = self.model_scale()
        start = model.diameter_px * DEFAULT_SPAN[0] / scale.zoom
        stop = model.diameter_px * DEFAULT_SPAN[1] / scale.zoom
        low, high = self.size_bounds_px(micrograph, scale)
        if low is not None and high is not None:
            start, stop = max(start, low), min(stop, high)
        if start > stop:
            raise UserError(
                f"--size-nm {self.prior.min_nm:g}:{self.prior.max_nm:g}: at {micrograph.name}'s "
                f"scale that is {low:.0f}-{high:.0f} px, outside the diameters the model can "
                f"find ({start:.0f}-{stop:.0f} px); widen --size-nm or give --diameters")
        return DiameterRange(start=round(start, 3), stop=round(stop, 3),
                             step=round(DEFAULT_STEP_MODEL_PX / scale.zoom, 3))

    def segment(self, micrograph: Micrograph, scale: Scale,
                span: DiameterRange | None = None) -> tuple[RegionSet, list[float]]:
        """LipoPose on ``micrograph`` at ``scale``: its regions on the micrograph's grid, and
        the diameters run (the micrograph's pixels).

        ``span`` (the micrograph's pixels) replaces the default diameters.
        """
        span = span or self.default_diameters(micrograph, scale)
        work, factor = micrograph, 1.0
        if scale.zoom < 1:
            factor = scale.zoom
            work = Micrograph(micrograph.name, resize_image(micrograph.image, factor),
                              path=micrograph.path)
        params = LipoPosePredictParams(
            diameter_start=round(span.start * factor, 3),
            diameter_stop=round(span.stop * factor, 3),
            diameter_step=round(span.step * factor, 3),
            confidence=self.confidence, window=self.window, merge=self.merge)
        # Masks of another zoom are other masks: each zoom has its own cache.
        workdir = self.workdir / f"zoom-{factor:g}"
        used, merged = self.adapter.iter_labels(self.model, [work], params, workdir,
                                                thresholds=self.thresholds)
        labels, scores = next(merged)
        self.cellpose_runs = self.adapter.cellpose_runs
        labels = labels_to_shape(labels, micrograph.shape)
        regions = RegionSet.from_labels(labels, scores=scores, copy=False)
        return regions, [round(d / factor, 3) for d in used]
