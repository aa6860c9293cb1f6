"""Size-stratified recall (by true size) and precision (by predicted size)."""

from __future__ import annotations

import numpy as np
import pytest

from lipobench.metrics import MetricInputError, stratify_by_size
from lipobench.regions import RegionSet


def _scene():
    # True diameters 6, 10, 20, 30 px; the method finds the two large ones and invents a 4 px one.
    truth = RegionSet.from_circles([[10, 10, 3], [10, 40, 5], [40, 20, 10], [70, 70, 15]],
                                   image_shape=(100, 100))
    pred = RegionSet.from_circles([[40, 20, 10], [70, 71, 15], [90, 5, 2]],
                                  image_shape=(100, 100))
    return truth, pred


def test_recall_by_true_size_precision_by_predicted_size():
    truth, pred = _scene()
    table = stratify_by_size(truth, pred, bins=[0, 15, 40])
    assert table["bin_low"].tolist() == [0, 15] and table["unit"].tolist() == ["px", "px"]
    assert table["n_true"].tolist() == [2, 2] and table["matched_true"].tolist() == [0, 2]
    assert table["recall"].tolist() == [0.0, 1.0]
    assert table["n_pred"].tolist() == [1, 2] and table["precision"].tolist() == [0.0, 1.0]


def test_nanometres_and_out_of_range_rows():
    truth, pred = _scene()
    table = stratify_by_size([truth, truth], [pred, pred], bins=[5, 15, 25], pixel_size_nm=0.5)
    assert set(table["unit"]) == {"nm"}
    # In nm the diameters are 3, 5, 10, 15 (truth) and 10, 15, 2 (pred).
    assert table["bin_low"].tolist() == [-np.inf, 5, 15]
    assert table["n_true"].tolist() == [2, 4, 2]  # 3 nm below the edges; 15 nm in the last bin
    assert table["n_pred"].tolist() == [2, 2, 2]
    assert table["recall"].tolist() == [0.0, 0.5, 1.0]
    assert table["precision"].tolist() == [0.0, 1.0, 1.0]


def test_bin_count_and_empty_bins_are_nan():
    truth, pred = _scene()
    table = stratify_by_size(truth, pred, bins=3)
    assert len(table) == 3
    assert table["n_true"].sum() == 4 and table["n_pred"].sum() == 3
    assert table["bin_low"].iloc[0] == pytest.approx(4.0)  # the smallest diameter
    empty = table[table["n_true"] == 0]
    assert empty["recall"].isna().all()


@pytest.mark.parametrize("kwargs, message", [
    ({"bins": [10, 5]}, "increasing"),
    ({"bins": 0}, "at least 1"),
    ({"bins": "wide"}, "count or a list"),
    ({"pixel_size_nm": -1.0}, "positive"),
    ({"pixel_size_nm": [1.0, 2.0]}, "2 pixel sizes for 1 images"),
])
def test_bad_options(kwargs, message):
    truth, pred = _scene()
    with pytest.raises(MetricInputError, match=message):
        stratify_by_size(truth, pred, **kwargs)


def test_strata_totals_agree_with_match():
    from lipobench.metrics import match

    truth, pred = _scene()
    table = stratify_by_size(truth, pred, bins=4, iou_threshold=0.5)
    res = match(truth, pred, 0.5)
    assert table["matched_true"].sum() == res.tp[0] == table["matched_pred"].sum()
    assert table["n_true"].sum() == res.n_true and table["n_pred"].sum() == res.n_pred
