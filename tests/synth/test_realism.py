"""Side by side with reality: a liposome-rich simulation against the real vesicle micrograph.

Both are rendered as the reference's authors did (Gaussian sigma = 3 px, 4x binning, 8-bit)
and measured with :func:`lipobench.synth.realism.noise_to_contrast` (background std over
particle contrast; larger = harder). Measured when the defaults were calibrated: real 1.75;
simulated 0.98 (mean of 2 micrographs; 0.16 before calibration, with contrast_scale 1 and
ice phase noise 0.012 rad nm). The band below keeps the simulator from drifting much easier
(or much harder) than reality.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lipobench.synth import PRESETS, simulate_micrograph
from lipobench.synth.realism import noise_to_contrast, render_like_reference

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "vesicles"


@pytest.fixture(scope="module")
def real_ratio():
    from PIL import Image

    png = REFERENCE / "12758756789755284571_raw.png"
    image = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    boxes = pd.read_csv(REFERENCE / "12758756789755284571_boxes.csv")
    return noise_to_contrast(image, boxes[["row0", "col0", "row1", "col1"]].to_numpy())


def test_reference_measure_is_stable(real_ratio):
    assert real_ratio["n"] == 39
    assert 1.4 < real_ratio["ratio"] < 2.1


def test_liposome_rich_simulation_is_not_much_easier_than_real_vesicles(real_ratio):
    params = PRESETS["quick"].with_overrides(**{
        "output.size_px": 2048, "output.pixel_size_nm": 0.222, "output.binning": 1,
        "sample.morphology": {"solid": 0, "bleb": 0, "lamellar": 0, "unilamellar": 1.0,
                              "multilamellar": 0},
        "artifacts.carbon_edge_probability": 0.0, "artifacts.crystalline_ice_probability": 0.0,
        "artifacts.droplet_count_per_um2": 0.0, "artifacts.grain_count_per_um2": 0.0,
        "artifacts.debris_count_per_um2": 0.0,
    })
    m = simulate_micrograph(params, index=0)
    rendered = render_like_reference(m.image).astype(np.float64)
    boxes = m.particles[["bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1"]].to_numpy() / 4
    simulated = noise_to_contrast(rendered, boxes)
    assert simulated["n"] >= 5
    ratio = simulated["ratio"] / real_ratio["ratio"]
    assert 0.4 < ratio < 2.5, (simulated, real_ratio)
