"""Scene statistics: class mix, sizes, elongation and ice fit follow the parameters."""

import numpy as np
import pytest

from lipobench.synth import PRESETS
from lipobench.synth.params import LNPClass
from lipobench.synth.scene import build_scene


@pytest.fixture(scope="module")
def scenes():
    params = PRESETS["quick"]
    return params, [build_scene(params, index=i) for i in range(24)]


def test_class_mix_follows_the_morphology_fractions(scenes):
    params, drawn = scenes
    classes = [p.klass for s in drawn for p in s.particles]
    assert len(classes) > 200
    for klass, share in params.sample.morphology.fractions().items():
        observed = classes.count(klass) / len(classes)
        assert abs(observed - share) < 4 * np.sqrt(share * (1 - share) / len(classes)) + 0.01


def test_sizes_stay_in_range_and_near_the_median(scenes):
    params, drawn = scenes
    diameters = np.array([p.axes_nm[0] for s in drawn for p in s.particles
                          if p.klass is not LNPClass.BLEB and p.axes_nm[0] == p.axes_nm[2]])
    lo, hi = params.sample.diameter_range_nm
    assert diameters.min() >= lo - 1e-6 and diameters.max() <= hi + 1e-6
    assert 55 < np.median(diameters) < 85  # lognormal median 70 nm (thin ice trims the top)


def test_about_30_percent_are_elongated_within_the_axis_ratio(scenes):
    params, drawn = scenes
    candidates = [p for s in drawn for p in s.particles if p.klass is not LNPClass.BLEB]
    ratios = np.array([p.axes_nm[0] / p.axes_nm[2] for p in candidates])
    elongated = ratios > 1.0 + 1e-9
    assert abs(elongated.mean() - 0.3) < 0.1
    assert ratios[elongated].min() >= 1.05 - 1e-6 and ratios.max() <= 1.5 + 1e-6


def test_every_particle_fits_inside_the_local_ice(scenes):
    params, drawn = scenes
    px = params.output.pixel_size_nm
    for scene in drawn:
        for p in scene.particles:
            i, j = (min(int(c / px), params.output.size_px - 1) for c in p.center_nm[:2])
            half = p.half_height_nm()
            assert p.center_nm[2] - half >= 0
            assert p.center_nm[2] + half <= scene.thickness_nm[i, j] + 1e-6


def test_no_two_particles_interpenetrate(scenes):
    _, drawn = scenes
    for scene in drawn:
        for a_index, a in enumerate(scene.particles):
            for b in scene.particles[:a_index]:
                delta = a.center_nm - b.center_nm
                dist = np.linalg.norm(delta)
                unit = delta / dist
                assert dist >= a.radius_along(unit) + b.radius_along(unit) - 1e-6
