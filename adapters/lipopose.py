"""LipoPose as an adapter: one trained Cellpose model run at many diameters, merged.

The algorithms (diameters, confidence map, merges, the cached multi-diameter pipeline) live in
:mod:`lipobench.lipopose`; this module binds them to Cellpose: :class:`LipoPoseAdapter`, its
parameter schemas, and :meth:`LipoPoseAdapter.iter_labels`, the pipeline on micrographs that
PREDICT and ``lipobench segment`` both run. The algorithms' public names are importable from
here as well (``DEFAULT_THRESHOLDS``, ``merge_masks``, ...), as they were before the split.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from lipobench.adapters.base import (
    Adapter,
    Availability,
    ModelRef,
    SizeFilterParams,
    Stage,
    keep_scores_at_least,
    validate_parameters,
)
from lipobench.adapters.cellpose import (
    CellposeAdapter,
    CellposeThresholds,
    CellposeTrainParams,
)
from lipobench.errors import UserError
from lipobench.lipopose import (
    DEFAULT_THRESHOLDS,
    ConfidenceMethod,
    DiameterRange,
    MergeMethod,
    pipeline,
)
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet

__all__ = [
    "LipoPoseAdapter",
    "LipoPosePredictParams",
    "LipoPoseSelectParams",
]


class LipoPosePredictParams(CellposeThresholds):
    """PREDICT-stage parameters of :class:`LipoPoseAdapter`."""

    diameter_start: float | None = Field(None, gt=0, description=(
        "smallest diameter (px); None: half the model's mean training diameter"))
    diameter_stop: float | None = Field(None, gt=0, description=(
        "largest diameter (px, inclusive); None: twice the model's mean training diameter"))
    diameter_step: float = Field(5.0, gt=0, description="spacing of the diameters (px)")
    confidence: ConfidenceMethod = Field(
        ConfidenceMethod.AVERAGE, json_schema_extra={"grid": tuple(ConfidenceMethod)},
        description="confidence map: average (the study) or sliding_window")
    window: int | None = Field(None, ge=1, description=(
        "consecutive diameters per window (sliding_window only)"))
    merge: MergeMethod = Field(
        MergeMethod.INSTANCES,
        json_schema_extra={"grid": (MergeMethod.INSTANCES, MergeMethod.CONNECTED)},
        description=("instances (default: per-diameter instances grouped by overlap, touching "
                     "particles kept apart) or connected (the study: components of the "
                     "thresholded map)"))


class LipoPoseSelectParams(SizeFilterParams):
    """SELECT-stage parameters of :class:`LipoPoseAdapter`: the merge threshold, then sizes."""

    until: float = Field(
        0.0, ge=0, le=100, json_schema_extra={"grid": tuple(sorted(DEFAULT_THRESHOLDS))},
        description="merge until this threshold (%): low favours recall, high precision")


def _validated(model_cls, params: Mapping[str, Any], stage: str):
    return validate_parameters("lipopose", model_cls, params, stage)


#: Default diameter range, as factors of the model's mean training diameter.
DEFAULT_SPAN = (0.5, 2.0)


class LipoPoseAdapter(Adapter):
    """LipoPose: a Cellpose model run at many diameters, merged through a confidence map.

    TRAIN parameters are Cellpose's (training is delegated to
    :class:`~lipobench.adapters.cellpose.CellposeAdapter`). PREDICT parameters choose the
    diameters (``diameter_start``..``diameter_stop`` every ``diameter_step`` px; without a
    start or stop, 0.5 and 2 times the model's mean training diameter), the confidence map and
    the merge. The SELECT parameter ``until`` keeps the objects that entered at that threshold
    or above: merging down to ``T`` gives exactly those objects (the merge never revisits a
    higher threshold), so sweeping ``until`` reruns nothing. ``until`` must be one of
    :data:`DEFAULT_THRESHOLDS`.

    The per-diameter masks are cached in the predict workdir, one file per image and
    diameter, so changing the confidence map or the merge does not rerun Cellpose.
    """

    name: ClassVar[str] = "lipopose"
    region_kind: ClassVar[RegionKind] = RegionKind.MASK
    #: The pipeline runs a plain Cellpose model: one training serves both methods.
    trains_as: ClassVar[str | None] = "cellpose"
    schemas: ClassVar[Mapping[Stage, type[BaseModel]]] = {
        Stage.TRAIN: CellposeTrainParams, Stage.PREDICT: LipoPosePredictParams,
        Stage.SELECT: LipoPoseSelectParams}
    citation: ClassVar[str] = (
        "Basu S, Bajcsy P, Cleveland P, Carrasco MJ, Bahar I, et al. LipoPose: Adapting "
        "Cellpose to Lipid Nanoparticle Segmentation (2023)"
    )

    def __init__(self, device: str = "auto"):
        self.cellpose = CellposeAdapter(device=device)
        #: Cellpose runs of the last predict call (0 when every mask came from the cache).
        self.cellpose_runs = 0

    def availability(self) -> Availability:
        return self.cellpose.availability()

    def test_parameters(self) -> dict[str, Any]:
        return {**super().test_parameters(), "n_epochs": 1,
                "diameter_start": 20.0, "diameter_stop": 30.0, "diameter_step": 10.0}

    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        """Cellpose's training folder (LipoPose trains a plain Cellpose model)."""
        return self.cellpose.to_native(micrographs, workdir)

    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        """Cellpose training with the TRAIN parameters."""
        return self.cellpose.train(native, params, workdir)

    def diameters(self, params: LipoPosePredictParams, model=None) -> list[float]:
        """The diameters to run, validated; the model fills a missing start or stop."""
        start, stop = params.diameter_start, params.diameter_stop
        if start is None or stop is None:
            mean = float(getattr(model, "diam_labels", 0) or getattr(model, "diam_mean", 30.0))
            start = start if start is not None else round(mean * DEFAULT_SPAN[0], 3)
            stop = stop if stop is not None else round(mean * DEFAULT_SPAN[1], 3)
        try:
            return DiameterRange(start=start, stop=stop, step=params.diameter_step).values()
        except ValidationError as exc:
            raise UserError(
                f"lipopose diameter_start/diameter_stop/diameter_step ({start:g}, {stop:g}, "
                f"{params.diameter_step:g}): {exc.errors()[0]['msg']}; give start <= stop, "
                "all positive, in pixels"
            ) from None

    def masks_at_diameters(self, model_ref: ModelRef, micrographs: Sequence[Micrograph],
                           params: LipoPosePredictParams, workdir: Path
                           ) -> tuple[list[float], list[list[np.ndarray]]]:
        """Per micrograph, the label image at each diameter, from the cache where present.

        The model is loaded once, and only when some mask is missing from the cache.
        """
        diameters, per_micrograph = self.iter_masks(model_ref, micrographs, params, workdir)
        return diameters, list(per_micrograph)

    def iter_masks(self, model_ref: ModelRef, micrographs: Sequence[Micrograph],
                   params: LipoPosePredictParams, workdir: Path
                   ) -> tuple[list[float], Iterator[list[np.ndarray]]]:
        """Like :meth:`masks_at_diameters`, one micrograph's masks at a time, in order.

        The diameters are checked at the call; the iterator runs Cellpose as it advances
        (:func:`lipobench.lipopose.pipeline.iter_masks`, with this model bound in).

        Memory stays that of one Cellpose evaluation, then of one micrograph's masks: each
        diameter's masks go to the cache as soon as Cellpose returns them and are read back
        for the merge only once every diameter has run.
        """
        from lipobench.adapters.cellpose import load_cellpose_model, segment

        model = None
        if params.diameter_start is None or params.diameter_stop is None:
            model = load_cellpose_model(model_ref, self.cellpose.device)
        diameters = self.diameters(params, model)
        for micrograph in micrographs:
            limit = min(micrograph.shape)
            if diameters[-1] > limit:
                raise UserError(
                    f"lipopose diameter {diameters[-1]:g} px exceeds micrograph "
                    f"{micrograph.name!r} ({limit} px); lower diameter_stop"
                )
        self.cellpose_runs = 0

        def run_cellpose(image: np.ndarray, diameter: float) -> np.ndarray:
            nonlocal model
            if model is None:  # loaded once, and only when some mask is missing
                model = load_cellpose_model(model_ref, self.cellpose.device)
            labels = segment(model, image, diameter=diameter,
                             flow_threshold=params.flow_threshold,
                             cellprob_threshold=params.cellprob_threshold)
            self.cellpose_runs += 1
            return labels

        cache = pipeline.MaskCache(Path(workdir), params.flow_threshold,
                                   params.cellprob_threshold)
        return diameters, pipeline.iter_masks(run_cellpose, micrographs, diameters, cache)

    def iter_labels(self, model_ref: ModelRef, micrographs: Sequence[Micrograph],
                    params: LipoPosePredictParams, workdir: Path, *,
                    thresholds: Sequence[float] = DEFAULT_THRESHOLDS
                    ) -> tuple[list[float], Iterator[tuple[np.ndarray, np.ndarray]]]:
        """The LipoPose pipeline: ``(diameters, iterator of (labels, scores) per micrograph)``.

        Cellpose at every diameter through the mask cache (:meth:`iter_masks`), then the
        confidence map and merge of ``params`` down to the lowest of ``thresholds``
        (:func:`lipobench.lipopose.pipeline.iter_merged`), one micrograph at a time. PREDICT
        runs it with :data:`DEFAULT_THRESHOLDS`; ``lipobench segment`` down to ``--until``.
        """
        if params.confidence is ConfidenceMethod.SLIDING_WINDOW and params.window is None:
            raise UserError("lipopose window: the sliding_window confidence needs window = "
                            "a number of consecutive diameters, e.g. 3")
        diameters, per_micrograph = self.iter_masks(model_ref, micrographs, params,
                                                    Path(workdir))
        return diameters, pipeline.iter_merged(per_micrograph, thresholds, merge=params.merge,
                                               confidence=params.confidence,
                                               window=params.window)

    def predict(self, model: ModelRef, micrographs: Sequence[Micrograph],
                params: Mapping[str, Any], workdir: Path) -> list[RegionSet]:
        """Masks merged down to the lowest default threshold, scored by entry threshold."""
        p = _validated(LipoPosePredictParams, params, "predict")
        _, merged = self.iter_labels(model, micrographs, p, Path(workdir))
        return [RegionSet.from_labels(labels, scores=scores, copy=False)
                for labels, scores in merged]

    def select(self, regions: RegionSet, params: Mapping[str, Any]) -> RegionSet:
        """Keep the objects merged at ``until`` or above (entry threshold >= until)."""
        p = _validated(LipoPoseSelectParams, params, "select")
        if p.until not in DEFAULT_THRESHOLDS:
            allowed = ", ".join(f"{t:g}" for t in DEFAULT_THRESHOLDS)
            raise UserError(f"lipopose until {p.until:g}: merge-until thresholds are "
                            f"{allowed}; pick one of them")
        return p.apply(keep_scores_at_least(regions, p.until))
