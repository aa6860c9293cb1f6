"""Ground truth: labels agree with the particle table, distractors stay unlabelled, determinism."""

import numpy as np
import pytest
from scipy import ndimage

from lipobench.regions import RegionSet
from lipobench.synth import PRESETS, simulate_micrograph
from lipobench.synth.params import LNPClass, MorphologyMix
from lipobench.synth.scene import DistractorCode, build_scene


@pytest.fixture(scope="module")
def busy():
    """A crowded micrograph with every artifact switched on (carbon edge included)."""
    params = PRESETS["quick"].with_overrides(**{
        "output.size_px": 256, "output.pixel_size_nm": 0.888, "output.binning": 2,
        "artifacts.carbon_edge_probability": 1.0, "artifacts.crystalline_ice_probability": 1.0,
        "artifacts.droplet_count_per_um2": 60.0, "artifacts.debris_count_per_um2": 80.0,
        "sample.count_per_um2": 85.0, "sample.touching_fraction": 0.5,
    })
    return params, simulate_micrograph(params, index=0)


def test_label_count_and_areas_match_the_table(busy):
    _, m = busy
    table = m.particles
    ids = np.unique(m.labels[m.labels > 0])
    assert len(table) > 5
    assert ids.tolist() == table["id"].tolist() == list(range(1, len(table) + 1))
    areas = np.bincount(m.labels.ravel())[1:]
    assert areas.tolist() == table["area_px"].tolist()
    diameters = 2 * np.sqrt(areas / np.pi)
    np.testing.assert_allclose(table["diameter_px"], diameters)
    np.testing.assert_allclose(table["diameter_nm"], diameters * 0.888)


def test_boxes_and_centroids_match_the_region_model(busy):
    _, m = busy
    regions = RegionSet.from_labels(m.labels)
    boxes = m.particles[["bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1"]].to_numpy()
    np.testing.assert_array_equal(boxes, regions.to_boxes().boxes)
    np.testing.assert_allclose(m.particles[["centroid_row", "centroid_col"]].to_numpy(),
                               regions.centroids())


def test_distractors_never_carry_a_particle_label(busy):
    _, m = busy
    codes = set(np.unique(m.distractors).tolist())
    assert {DistractorCode.CARBON, DistractorCode.DROPLET} <= codes
    assert not np.any((m.distractors > 0) & (m.labels > 0))


def test_visible_fraction_truncation_and_touching_are_consistent(busy):
    _, m = busy
    table = m.particles
    assert ((table["visible_fraction"] > 0) & (table["visible_fraction"] <= 1 + 1e-9)).all()
    edge = ((table["bbox_row0"] == 0) | (table["bbox_col0"] == 0)
            | (table["bbox_row1"] == 256) | (table["bbox_col1"] == 256))
    assert table.loc[edge & (table["visible_fraction"] < 1), "truncated"].all()
    neighbours = {row.id: {int(t) for t in str(row.touching_ids).split(";") if t not in ("", "nan")}
                  for row in table.itertuples()}
    assert any(neighbours.values())
    for a, others in neighbours.items():
        for b in others:
            assert a in neighbours[b]
            grown = ndimage.binary_dilation(m.labels == a)
            assert np.any(grown & (m.labels == b))


def test_front_most_particle_wins_where_projections_overlap(busy):
    from lipobench.synth.render import _particle_footprint

    params, m = busy
    scene = build_scene(params, index=0)
    shape = m.labels.shape
    footprints = []
    for particle in scene.particles:
        full = np.zeros(shape, dtype=bool)
        r0, c0, mask = _particle_footprint(particle, 0.888, shape[0], clip=True)
        full[r0:r0 + mask.shape[0], c0:c0 + mask.shape[1]] = mask
        footprints.append(full)
    # Paint back to front (ascending z) and number the visible particles in scene order.
    painted = np.zeros(shape, dtype=np.int64)
    for i in sorted(range(len(footprints)), key=lambda i: scene.particles[i].center_nm[2]):
        painted[footprints[i]] = i + 1
    visible = [i for i in range(len(footprints)) if np.any(painted == i + 1)]
    expected = np.zeros(shape, dtype=np.int64)
    for new_id, i in enumerate(visible, start=1):
        expected[painted == i + 1] = new_id
    np.testing.assert_array_equal(m.labels, expected)
    overlapping = sum(np.any(footprints[i] & footprints[j])
                      for i in range(len(footprints)) for j in range(i))
    assert overlapping > 0
    assert len(visible) == len(m.particles)


def test_each_morphology_renders_and_is_labelled(make_params):
    for klass in LNPClass:
        mix = {c.value: 0.0 for c in LNPClass}
        mix[klass.value] = 1.0
        params = make_params(quiet=True, **{"sample.morphology": mix, "output.size_px": 128})
        m = simulate_micrograph(params, index=1)
        assert set(m.particles["class"]) <= {klass.value}
        assert np.isfinite(m.image).all()


def test_same_seed_same_pixels_and_new_noise_keeps_the_ground_truth(make_params):
    params = make_params(**{"output.pixel_size_nm": 0.888, "sample.count_per_um2": 80.0})
    a = simulate_micrograph(params, index=4)
    assert len(a.particles) > 0
    b = simulate_micrograph(params, index=4)
    c = simulate_micrograph(params, index=4, noise_seed=99)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.labels.tobytes() == c.labels.tobytes()
    assert a.distractors.tobytes() == c.distractors.tobytes()
    assert a.particles.equals(c.particles)
    assert a.image.tobytes() != c.image.tobytes()
    other_seed = simulate_micrograph(params.with_overrides(seed=1), index=4)
    assert other_seed.labels.tobytes() != a.labels.tobytes()


def test_morphology_mix_must_sum_to_one():
    from lipobench.errors import UserError

    with pytest.raises(UserError, match="sample.morphology: the morphology fractions sum to"):
        PRESETS["quick"].with_overrides(**{"sample.morphology": {"solid": 0.5}})
    assert MorphologyMix(solid=1, bleb=0, lamellar=0, unilamellar=0, multilamellar=0)
