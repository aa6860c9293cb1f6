"""``lipobench pick``: the shipped Topaz detector at each micrograph's scale.

The downsampling rule is checked directly (:meth:`ScaledTopaz.at_scale`); the whole command
runs with real Cellpose and real Topaz on the real vesicle micrograph in
tests/test_real_micrograph.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from lipobench.adapters.topaz import TopazAdapter
from lipobench.adapters.topaz_scale import ScaledTopaz, shipped_detector_scale
from lipobench.micrograph import Micrograph
from lipobench.scale import DiameterEstimate, Scale, ScaleSource
from lipobench.testing import run_cli


@pytest.fixture
def image(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "mic.png"
    iio.imwrite(path, np.full((64, 64), 128, np.uint8))
    return path


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--scale", "sideways"], "--scale"),
        (["--pixel-size-nm", "-1"], "--pixel-size-nm -1 must be positive"),
        (["--min-score", "nan"], "--min-score nan: give a finite log-likelihood ratio"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(image, tmp_path, capsys, extra, words):
    out = tmp_path / "out"
    code, _, err = run_cli(["pick", str(image), *extra, "--out", str(out)], capsys)
    assert code == 2
    assert err.startswith("lipobench: error: ") and words in err and err.count("\n") == 1
    assert "Traceback" not in err and not out.exists()


def test_a_missing_micrograph_is_one_line_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(["pick", str(tmp_path / "absent.png"), "--out", str(out)], capsys)
    assert code == 2 and "absent.png" in err and err.count("\n") == 1
    assert not out.exists()


def _scaled(tmp_path) -> ScaledTopaz:
    return ScaledTopaz(TopazAdapter(device="cpu"), workdir=tmp_path)


def test_the_detector_scale_is_the_manifests():
    trained = shipped_detector_scale()
    assert (trained.downsample, trained.particle_width_px) == (4, 75.0)
    assert trained.pixel_size_nm == pytest.approx(0.888)
    assert trained.extract_radius == 8  # the recipe's 30 px at 4x


@pytest.mark.parametrize(
    "pixel_size_nm, factor, width",
    [(0.888, 4, 75.0), (0.444, 8, 150.0), (1.776, 2, 37.5), (8.0, 1, 8.325)],
)
def test_a_known_pixel_size_sets_the_downsampling(tmp_path, pixel_size_nm, factor, width):
    micrograph = Micrograph("m", np.zeros((32, 32)), pixel_size_nm)
    at = _scaled(tmp_path).at_scale(micrograph, Scale(1.0, ScaleSource.PIXEL_SIZE, ""))
    assert at.downsample == factor and at.particle_width_px == pytest.approx(width)


def test_an_estimated_width_sets_the_downsampling(tmp_path):
    estimate = DiameterEstimate(diameter_px=185.0, tried=((200.0, 0.1),), reduction=1.0)
    at = _scaled(tmp_path).at_scale(Micrograph("m", np.zeros((32, 32))),
                                    Scale(0.5, ScaleSource.ESTIMATE, "", estimate))
    # 185 px at the detector's 75 px per 4x: 9.9x.
    assert at.downsample == 10 and at.particle_width_px == 185.0
    assert "185 px wide" in at.reason


def test_no_scale_runs_at_the_detectors_own_downsampling(tmp_path):
    nothing = DiameterEstimate(diameter_px=None, tried=((200.0, 0.0),), reduction=1.0)
    scaled = _scaled(tmp_path)
    for scale in (Scale(1.0, ScaleSource.NONE, ""),
                  Scale(1.0, ScaleSource.ESTIMATE, "", nothing)):
        at = scaled.at_scale(Micrograph("m", np.zeros((32, 32)), 0.3), scale)
        assert (at.downsample, at.particle_width_px) == (4, 75.0)
