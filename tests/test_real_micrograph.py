"""``lipobench segment --model default`` on a real micrograph, at its native pixels, no options.

The vendored vesicle micrograph (tests/data/vesicles/, MIT, see its README) has no pixel size,
so the scale must come from the image: the first pass estimates how wide the vesicles look and
the pipeline runs on the micrograph zoomed to the default model's pixels. To keep the suite
fast the test reads an 1108² quarter (native pixels; 13 of the 39 expert boxes have their centre
in it, clipped to it) and scores against those boxes, box IoU > 0.5 as in the issue.

The same quarter checks ``lipobench pick`` (the shipped Topaz detector, downsampled to the
width the first pass measures). The whole-image numbers of both (F1 at native size and 2x
binned) are in the README, with the commands.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lipobench.testing import run_cli

DATA = __import__("pathlib").Path(__file__).parent / "data" / "vesicles"
#: The 1108² quarter (native pixels) that holds the most expert boxes' centres: 13.
ROW0, COL0, CROP = 100, 200, 1108
#: The shipped Topaz detector's floor on the quarter (measured 0.69, see its test).
FLOOR_TOPAZ = 0.55


def _quarter(tmp_path):
    """The quarter written as a PNG, and the expert boxes centred in it (clipped to it)."""
    import imageio.v3 as iio

    from lipobench.regions import RegionSet

    image = iio.imread(DATA / "12758756789755284571_raw.png")[ROW0:ROW0 + CROP, COL0:COL0 + CROP]
    path = tmp_path / "quarter.png"
    iio.imwrite(path, image)
    boxes = pd.read_csv(DATA / "12758756789755284571_boxes.csv")
    corners = boxes[["row0", "col0", "row1", "col1"]].to_numpy() - [ROW0, COL0, ROW0, COL0]
    centres = (corners[:, :2] + corners[:, 2:]) / 2
    corners = corners[((centres >= 0) & (centres < CROP)).all(axis=1)].clip(0, CROP)
    return path, RegionSet.from_boxes(corners, image_shape=(CROP, CROP))


@pytest.mark.slow
def test_default_model_on_a_real_micrograph_at_native_size_with_no_options(tmp_path, capsys):
    from lipobench.imageio import read_labels
    from lipobench.metrics import match
    from lipobench.regions import RegionSet

    path, truth = _quarter(tmp_path)
    code, out, err = run_cli(["segment", str(path), "--model", "default",
                              "--out", str(tmp_path / "seg")], capsys)
    assert code == 0, err
    assert "pixel size unknown: particles look" in out
    scale = pd.read_csv(tmp_path / "seg" / "scales.csv").iloc[0]
    # The expert boxes' median side is 184 px (boxes are drawn a little loose).
    assert scale.source == "estimate" and 140 <= scale.estimated_diameter_px <= 230
    labels = read_labels(tmp_path / "seg" / "labels" / "quarter.tif")
    assert labels.shape == (CROP, CROP)
    result = match(truth, RegionSet.from_labels(labels).to_boxes(), (0.5,))
    f1 = float(np.asarray(result.f1)[0])
    # Measured 0.64 (8 of 13 found, 4 false; the paper-only model of the previous release:
    # 0.50); at the micrograph's own pixels the shipped models found almost nothing (F1 0-0.05
    # on the whole image, issue 14). The README has the whole image, native and 2x binned.
    assert len(truth) == 13 and f1 >= 0.55, (result, f1)


@pytest.mark.slow
def test_shipped_topaz_detector_on_a_real_micrograph_at_native_size_with_no_options(
        tmp_path, capsys):
    """``lipobench pick`` downsamples the micrograph so its vesicles look as wide as the
    detector's training particles. Measured: 11 of 13 found, 8 false (F1 0.69); with
    --scale none (the detector's own 4x and 75-px circles) F1 0, 249 picks."""
    from lipobench.metrics import match
    from lipobench.regionfiles import read_regions

    path, truth = _quarter(tmp_path)
    code, out, err = run_cli(["pick", str(path), "--out", str(tmp_path / "picks")], capsys)
    assert code == 0, err
    assert "particles look" in out and "downsampled" in out
    scale = pd.read_csv(tmp_path / "picks" / "scales.csv").iloc[0]
    assert scale.source == "estimate" and 8 <= scale.downsample <= 12
    picks = read_regions(tmp_path / "picks" / "picks" / "quarter.csv", image_shape=(CROP, CROP))
    assert picks.kind.value == "circle" and np.all(picks.scores >= 0)
    result = match(truth, picks.to_boxes(), (0.5,))
    f1 = float(np.asarray(result.f1)[0])
    assert len(truth) == 13 and f1 >= FLOOR_TOPAZ, (result, f1)
