"""LipoPose's algorithms: one Cellpose model run at many diameters, merged through a confidence map.

The method of Basu et al. 2023 ("LipoPose: Adapting Cellpose to Lipid Nanoparticle
Segmentation"):

1. *Multi-inference*: one trained Cellpose model segments each micrograph at many diameters
   spanning the training set's size range (every ~5 px), one mask per diameter
   (:class:`DiameterRange`; :func:`~lipobench.lipopose.pipeline.iter_masks` runs them through
   an on-disk cache).
2. *Confidence map*: per pixel, the percentage of diameters that detected it
   (:func:`confidence_map`, :class:`ConfidenceMethod`).
3. *Merge from thresholds*: the connected components of the highest-threshold mask, then, at
   each lower threshold, every component that shares no pixel with an object already merged
   (:func:`merge_until`). Each object's score is the threshold at which it entered.

Beyond the study, :func:`merge_instances` keeps Cellpose's instances apart instead of
binarizing them, so touching particles are not fused (:class:`MergeMethod`).

Public functions return ``(labels, scores)``: an int32 instance label image (0 = background,
objects numbered ``1..N``) and a float64 array of N entry thresholds, ``scores[k]`` belonging
to label ``k + 1``; ``RegionSet.from_labels(labels, scores=scores)`` turns them into regions.

Modules: :mod:`~lipobench.lipopose.methods` (the choices), :mod:`~lipobench.lipopose.diameters`,
:mod:`~lipobench.lipopose.confidence`, :mod:`~lipobench.lipopose.thresholds`,
:mod:`~lipobench.lipopose.merge` (the study's merge), :mod:`~lipobench.lipopose.instances`
(the instance merge) and :mod:`~lipobench.lipopose.pipeline` (the steps on micrographs, given a
segment function). The package imports numpy and pydantic only; Cellpose is bound in by the
caller (:class:`lipobench.adapters.lipopose.LipoPoseAdapter`), and OpenCV and SciPy load inside
the functions that use them.
"""

from lipobench.lipopose.confidence import DetectionCounts, confidence_map, detection_counts
from lipobench.lipopose.diameters import DiameterRange, parse_diameter_range
from lipobench.lipopose.instances import merge_instances
from lipobench.lipopose.merge import merge_masks, merge_until
from lipobench.lipopose.methods import ConfidenceMethod, MergeMethod
from lipobench.lipopose.pipeline import MaskCache, SegmentFn, iter_masks, iter_merged
from lipobench.lipopose.thresholds import DEFAULT_THRESHOLDS, thresholds_until

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ConfidenceMethod",
    "MergeMethod",
    "DetectionCounts",
    "DiameterRange",
    "parse_diameter_range",
    "detection_counts",
    "confidence_map",
    "merge_until",
    "merge_instances",
    "merge_masks",
    "thresholds_until",
    "MaskCache",
    "SegmentFn",
    "iter_masks",
    "iter_merged",
]
