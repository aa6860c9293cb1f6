"""Precision and recall by particle size, so a user sees which sizes a method misses.

Recall is stratified by the size of each *true* particle (which sizes are found), precision by
the size of each *predicted* region (which sizes are invented). Size is the equivalent
diameter ``2 sqrt(area / pi)`` (Cellpose's notion of diameter), in pixels, or in nanometres
when the pixel size is known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lipobench.metrics._inputs import as_image_pairs
from lipobench.metrics.errors import MetricInputError
from lipobench.metrics.matching import match
from lipobench.regions import equivalent_diameter

__all__ = ["stratify_by_size"]


def stratify_by_size(truth, pred, *, bins: int | Sequence[float] = 5,
                     iou_threshold: float = 0.5, inclusive: bool = False,
                     pixel_size_nm: float | Sequence[float] | None = None,
                     true_diameters: Sequence[Any] | None = None) -> pd.DataFrame:
    """Recall by true-particle diameter and precision by predicted diameter.

    Parameters
    ----------
    truth, pred : RegionSet or sequence of RegionSet
        One image, or equally long lists (counts are summed over images).
    bins : int or sequence of float, keyword-only
        A number of equal-width bins spanning every true and predicted diameter, or the
        increasing bin edges (in nm when ``pixel_size_nm`` is given, else px). Bins are
        half-open ``[low, high)`` except the last, which includes its upper edge. Regions
        outside explicit edges are counted in extra open-ended rows (``-inf`` / ``inf``).
    iou_threshold : float, keyword-only
        The matching threshold (see :func:`lipobench.metrics.match`).
    pixel_size_nm : float or sequence of float, keyword-only
        Pixel size of every image (one value) or of each image; sizes are then in nm.
    true_diameters : sequence of array_like, keyword-only
        Per image, the diameter (px) to stratify each true region by, in the order of its
        regions, instead of the equivalent diameter of the region matched: e.g. the
        particles' mask sizes when a box method is scored against their boxes, so that
        every method's bins hold the same particles.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin_low, bin_high, unit, n_true, matched_true, recall, n_pred,
        matched_pred, precision``. A bin with no true (predicted) regions has recall
        (precision) NaN: undefined, rather than a misleading 0 or 1.

    Examples
    --------
    >>> from lipobench.regions import RegionSet
    >>> truth = RegionSet.from_circles([[10, 10, 3], [40, 40, 8]], image_shape=(64, 64))
    >>> pred = RegionSet.from_circles([[40, 40, 8], [10, 40, 2]], image_shape=(64, 64))
    >>> table = stratify_by_size(truth, pred, bins=[0, 10, 20])
    >>> table[["bin_low", "bin_high", "n_true", "recall", "n_pred", "precision"]].values.tolist()
    [[0.0, 10.0, 1.0, 0.0, 1.0, 0.0], [10.0, 20.0, 1.0, 1.0, 1.0, 1.0]]
    """
    pairs = as_image_pairs(truth, pred)
    scales = _pixel_sizes(pixel_size_nm, len(pairs))
    sizes = _true_diameters(true_diameters, pairs)
    true_d, true_hit, pred_d, pred_hit = [], [], [], []
    for (t, p), scale, size in zip(pairs, scales, sizes, strict=True):
        res = match(t, p, iou_threshold, inclusive=inclusive)
        t_idx, p_idx, _ = res.pairs(res.thresholds[0])
        hit = np.zeros(res.n_true, dtype=bool)
        hit[t_idx] = True
        size = equivalent_diameter(res.truth_areas) if size is None else size
        true_d.append(size * scale)
        true_hit.append(hit)
        hit = np.zeros(res.n_pred, dtype=bool)
        hit[p_idx] = True
        pred_d.append(equivalent_diameter(res.pred_areas) * scale)
        pred_hit.append(hit)
    true_d, true_hit = np.concatenate(true_d), np.concatenate(true_hit)
    pred_d, pred_hit = np.concatenate(pred_d), np.concatenate(pred_hit)
    edges = _edges(bins, np.concatenate([true_d, pred_d]))
    unit = "px" if pixel_size_nm is None else "nm"
    n_true, matched_true = _bin_counts(true_d, true_hit, edges)
    n_pred, matched_pred = _bin_counts(pred_d, pred_hit, edges)
    lows = np.concatenate([[-np.inf], edges])
    highs = np.concatenate([edges, [np.inf]])
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(n_true > 0, matched_true / n_true, np.nan)
        precision = np.where(n_pred > 0, matched_pred / n_pred, np.nan)
    table = pd.DataFrame({
        "bin_low": lows, "bin_high": highs, "unit": unit,
        "n_true": n_true, "matched_true": matched_true, "recall": recall,
        "n_pred": n_pred, "matched_pred": matched_pred, "precision": precision,
    })
    # The open-ended rows exist only to catch regions outside explicit edges.
    outer = np.zeros(len(table), dtype=bool)
    outer[[0, -1]] = True
    empty = (table["n_true"] == 0) & (table["n_pred"] == 0)
    return table[~(outer & empty.to_numpy())].reset_index(drop=True)


def _true_diameters(true_diameters, pairs) -> list[np.ndarray | None]:
    if true_diameters is None:
        return [None] * len(pairs)
    sizes = [np.asarray(d, dtype=np.float64).reshape(-1) for d in true_diameters]
    if len(sizes) != len(pairs):
        raise MetricInputError(
            f"got true diameters of {len(sizes)} images for {len(pairs)} images: give one "
            "array per image")
    for k, (size, (t, _)) in enumerate(zip(sizes, pairs, strict=True)):
        if size.shape != (len(t),):
            raise MetricInputError(
                f"image {k}: {size.size} true diameters for {len(t)} true regions: give one "
                "per region, in the regions' order")
    return list(sizes)


def _pixel_sizes(pixel_size_nm, count: int) -> np.ndarray:
    if pixel_size_nm is None:
        return np.ones(count)
    sizes = np.atleast_1d(np.asarray(pixel_size_nm, dtype=np.float64))
    if sizes.size == 1:
        sizes = np.full(count, sizes[0])
    if sizes.shape != (count,):
        raise MetricInputError(
            f"got {sizes.size} pixel sizes for {count} images: give one for all or one each"
        )
    if not np.all(np.isfinite(sizes) & (sizes > 0)):
        raise MetricInputError(
            f"pixel_size_nm must be positive and finite, got {sizes.tolist()}"
        )
    return sizes


def _edges(bins, diameters: np.ndarray) -> np.ndarray:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise MetricInputError(f"bins must be at least 1, got {bins}")
        if diameters.size == 0:
            return np.array([0.0, 1.0])
        low, high = float(diameters.min()), float(diameters.max())
        if math.isclose(low, high):
            low, high = low - 0.5, high + 0.5
        return np.linspace(low, high, int(bins) + 1)
    try:
        edges = np.asarray(bins, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"bins must be a count or a list of edges, got {bins!r}") from exc
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise MetricInputError(
            f"bin edges {edges.tolist()} must be at least two finite, increasing numbers"
        )
    return edges


def _bin_counts(values: np.ndarray, hit: np.ndarray, edges: np.ndarray):
    """Counts per bin, bin 0 below the first edge, the last above the last edge."""
    where = np.searchsorted(edges, values, side="right")
    where[values == edges[-1]] = len(edges) - 1  # the last bin is closed on the right
    size = len(edges) + 1
    total = np.bincount(where, minlength=size)
    hits = np.bincount(where, weights=hit.astype(np.float64), minlength=size).astype(np.int64)
    return total, hits
