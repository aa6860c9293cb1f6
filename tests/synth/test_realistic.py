"""The ``realistic`` preset: rim-only vesicles, border-cut particles, display renderings,
per-micrograph randomisation; and the older presets' bytes left as they were."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from lipobench.cli import main
from lipobench.synth import PRESETS, simulate_micrograph
from lipobench.synth.domain import image_plan
from lipobench.synth.dataset import render_planned
from lipobench.synth.params import LNPClass
from lipobench.synth.realism import (PROFILE_BINS, radial_profile, reference_numbers,
                                     render_like_reference, simulated_numbers)
from lipobench.synth.render import render_scene
from lipobench.synth.scene import build_scene, make_particle

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "vesicles"


def _small_realistic(**changes):
    # 256^2 written from 1024^2 physical: the preset's physics on a quarter of its field.
    return PRESETS["realistic"].with_overrides(**{"output.size_px": 256, **changes})


def test_old_presets_are_not_randomised():
    for name in ("quick", "paper"):
        plan = image_plan(PRESETS[name], 2)
        assert plan.params is PRESETS[name] and not plan.display


# Pinned from the code before the realistic preset was added (same values after): a 128^2
# quick render, labels by hash and a few pixels.
PINNED = {"labels": "3ebec3a0d87b61ffdf1782f86d56805e68e71f5193a4bc6695b0a1ad38f52152",
          "pixels": [5770.42333984375, 5972.86376953125, 5191.8623046875, 5180.572265625]}


def test_quick_render_is_unchanged():
    m = simulate_micrograph(PRESETS["quick"].with_overrides(**{"output.size_px": 128}),
                            index=1)
    assert hashlib.sha256(m.labels.tobytes()).hexdigest() == PINNED["labels"]
    np.testing.assert_allclose(m.image[[0, 17, 64, 127], [0, 90, 64, 127]],
                               PINNED["pixels"], rtol=1e-4)


def test_realistic_draws_vary_per_micrograph_and_stay_1024():
    plans = [image_plan(PRESETS["realistic"], i) for i in range(8)]
    pixels = [p.written.output.pixel_size_nm for p in plans]
    assert all(p.written.output.size_px == 1024 for p in plans)
    assert max(pixels) / min(pixels) > 1.4
    assert all(0.6 <= p <= 1.4 for p in pixels)
    assert any(p.display for p in plans) and not all(p.display for p in plans)
    assert all(p.params.output.physical_size_px == 4096 for p in plans)
    medians = [p.written.sample.diameter_median_nm for p in plans]
    assert all(50 <= m <= 120 for m in medians)


def test_display_binned_masks_stay_aligned():
    params = _small_realistic()
    index = next(i for i in range(40) if image_plan(params, i).display_binning == 2)
    plan = image_plan(params, index)
    m = render_planned(plan, index=index)
    assert m.image.shape == m.labels.shape == (256, 256)
    assert set(np.unique(m.image)) <= set(range(256))
    pixel = plan.written.output.pixel_size_nm
    assert m.meta["pixel_size_nm"] == pytest.approx(pixel)
    scene = build_scene(plan.params, index=index)
    centres = np.array([p.center_nm[:2] for p in scene.particles]) / pixel
    whole = [r for r in m.particle_rows if r["visible_fraction"] == 1.0]
    assert whole
    for r in whole:
        gap = np.hypot(*(centres - [r["centroid_row"], r["centroid_col"]]).T).min()
        assert gap < 1.5, r


def test_border_cut_particles_exist_and_their_masks_touch_the_border():
    params = _small_realistic()
    cut, ids_match = 0, True
    for index in range(3):
        m = simulate_micrograph(params, index=index)
        ids = sorted(np.unique(m.labels[m.labels > 0]).tolist())
        ids_match &= ids == [r["id"] for r in m.particle_rows]
        edge = set(np.unique(np.concatenate([m.labels[0], m.labels[-1], m.labels[:, 0],
                                             m.labels[:, -1]])).tolist()) - {0}
        for r in m.particle_rows:
            # (A mask may also just reach the border with its whole outline inside.)
            if r["id"] in edge and r["visible_fraction"] < 1.0:
                cut += 1
                assert r["truncated"]
                # Slivers under min_visible_fraction are left out of the truth (an overlap
                # in front may still hide more of one).
                assert r["visible_fraction"] >= 0.2 - 1e-9 or r["touching_ids"]
    assert ids_match
    assert cut >= 3


def test_rim_only_vesicle_profile_has_its_minimum_at_the_rim():
    # One 90 nm unilamellar vesicle at the physical pixel, rendered like the reference.
    params = _small_realistic(**{
        "artifacts.carbon_edge_probability": 0.0, "artifacts.crystalline_ice_probability": 0.0,
        "artifacts.droplet_count_per_um2": 0.0, "artifacts.grain_count_per_um2": 0.0,
        "artifacts.debris_count_per_um2": 0.0, "output.display.probability": 0.0,
        "domain": None, "output.size_px": 1024, "output.pixel_size_nm": 0.222,
        "output.binning": 1, "optics.defocus_um": (2.0, 2.0), "optics.dose_e_per_a2": 40.0})
    scene = build_scene(params, index=0)
    centre = np.array([512 * 0.222, 512 * 0.222, 60.0])
    scene.particles = [make_particle(LNPClass.UNILAMELLAR, centre, 120.0,
                                     np.random.default_rng(0), params)]
    scene.distractors = []
    m = render_scene(scene)
    r = m.particle_rows[0]
    box = np.array([[r["bbox_row0"], r["bbox_col0"], r["bbox_row1"], r["bbox_col1"]]]) / 4
    profile = radial_profile(render_like_reference(m.image).astype(np.float64), box)
    rim = np.nanmin(profile)
    at = float(PROFILE_BINS[np.nanargmin(profile)])
    assert 0.8 <= at <= 1.05, profile
    # The interior is about the grey of the ice outside, far from the rim's depth.
    outside = np.nanmean(profile[PROFILE_BINS >= 1.2])
    interior = np.nanmean(profile[PROFILE_BINS <= 0.5])
    assert abs(interior - outside) < 0.5 * abs(rim - outside), profile


@pytest.fixture(scope="module")
def real():
    return reference_numbers(REFERENCE / "12758756789755284571_raw.png",
                             REFERENCE / "12758756789755284571_boxes.csv")


def test_realistic_noise_to_contrast_is_near_the_reference(real):
    # Band: within a factor 1.5 of the reference's std / contrast (1.74).
    sim = simulated_numbers(PRESETS["realistic"], 2)
    assert sim["n"] >= 10
    assert 1 / 1.5 < sim["ratio"] / real["ratio"] < 1.5, (sim["ratios"], real["ratio"])


def test_reference_profile_is_a_dark_rim(real):
    at = float(PROFILE_BINS[np.nanargmin(real["profile"])])
    assert 0.7 <= at <= 1.05


@pytest.mark.parametrize("argv", [["--n-images", "0"], ["--preset", "nope"],
                                  ["--binning", "0"], ["--reference", "/no/such.png"]])
def test_realism_command_bad_input_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["synth-realism", *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lipobench: error:") and "\n" not in err
