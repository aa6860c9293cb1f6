"""Input checks shared by the metrics that take one image or a list of images."""

from __future__ import annotations

from lipobench.metrics.errors import MetricInputError
from lipobench.regions import RegionSet


def as_image_pairs(truth, pred) -> list[tuple[RegionSet, RegionSet]]:
    """``(truth, pred)`` for one image, or two equally long sequences, as a list of pairs."""
    if isinstance(truth, RegionSet) and isinstance(pred, RegionSet):
        return [(truth, pred)]
    if isinstance(truth, RegionSet) or isinstance(pred, RegionSet):
        raise MetricInputError(
            "pass one RegionSet for both the truth and the prediction, or a list for both"
        )
    truth, pred = list(truth), list(pred)
    if len(truth) != len(pred):
        raise MetricInputError(
            f"got {len(truth)} truth images but {len(pred)} predictions: pass one prediction "
            "per truth image, in the same order"
        )
    return list(zip(truth, pred, strict=True))
