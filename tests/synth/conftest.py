"""Small simulator settings shared by the synth tests."""

import pytest

from lipobench.synth.params import PRESETS

QUIET_ARTIFACTS = {
    "artifacts.carbon_edge_probability": 0.0,
    "artifacts.crystalline_ice_probability": 0.0,
    "artifacts.droplet_count_per_um2": 0.0,
    "artifacts.grain_count_per_um2": 0.0,
    "artifacts.debris_count_per_um2": 0.0,
}


def small_params(*, quiet=False, **changes):
    """256^2 at 0.444 nm/px (2x binned from 512^2 at 0.222 nm/px), with ``changes``;
    ``quiet`` turns every artifact off."""
    base = {"output.size_px": 256, "output.pixel_size_nm": 0.444, "output.binning": 2}
    if quiet:
        base.update(QUIET_ARTIFACTS)
    base.update(changes)
    return PRESETS["quick"].with_overrides(**base)


@pytest.fixture
def make_params():
    """The :func:`small_params` factory."""
    return small_params


@pytest.fixture
def background_params():
    """No particles, no artifacts, 2 um underfocus without astigmatism."""
    return small_params(quiet=True, **{
        "sample.count_per_um2": 0.0,
        "optics.defocus_um": (2.0, 2.0),
        "optics.astigmatism_nm": (0.0, 0.0),
        "optics.amplitude_contrast": (0.08, 0.08),
        "output.size_px": 512,
    })
