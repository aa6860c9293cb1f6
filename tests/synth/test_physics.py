"""Image formation checks: Thon rings, Fresnel fringes at an edge, shot noise statistics."""

import numpy as np
from scipy import ndimage

from lipobench.synth import physics, simulate_micrograph
from lipobench.synth.params import LNPClass
from lipobench.synth.render import render_scene
from lipobench.synth.scene import build_scene, make_particle


def _background_spectrum(params, n=2):
    power = None
    for index in range(n):
        m = simulate_micrograph(params, index=index)
        k, p = physics.radial_power_spectrum(m.image, pixel_size_a=params.output.pixel_size_nm * 10)
        power = p if power is None else power + p
    return k, power, m.meta


def test_thon_ring_minima_sit_where_chi_plus_arcsin_a_is_n_pi(background_params):
    k, power, meta = _background_spectrum(background_params)
    nyquist = k[-1]
    zeros = physics.ctf_zeros(defocus_a=meta["defocus_nm"] * 10, amplitude_contrast=0.08,
                              k_max=0.9 * nyquist)
    assert len(zeros) >= 5
    # Midway (in chi) between zeros the CTF peaks: the power must be far higher there.
    peaks = np.sqrt(zeros[:-1] * zeros[1:])
    lows = np.interp(zeros[:-1], k, power)
    highs = np.interp(peaks, k, power)
    assert np.all(lows < 0.5 * highs), (lows / highs).round(2)
    # And each zero is a local minimum of the profile within +-2 Fourier bins.
    step = k[1] - k[0]
    for z in zeros[1:-1]:
        window = (k > z - 6 * step) & (k < z + 6 * step)
        k_min = k[window][np.argmin(power[window])]
        assert abs(k_min - z) <= 2 * step


def test_defocus_fit_recovers_the_input_within_2_percent(background_params):
    k, power, meta = _background_spectrum(background_params)
    fitted = physics.fit_defocus(k, power, amplitude_contrast=0.08,
                                 k_range=(0.03, 0.9 * k[-1]))
    truth = meta["defocus_nm"] * 10
    assert abs(fitted - truth) / truth < 0.02


def test_defocus_fit_on_a_random_defocus(make_params):
    params = make_params(quiet=True, **{
        "sample.count_per_um2": 0.0, "optics.astigmatism_nm": (0.0, 0.0),
        "optics.amplitude_contrast": (0.1, 0.1), "output.size_px": 512, "seed": 7})
    m = simulate_micrograph(params, index=3)
    k, power = physics.radial_power_spectrum(m.image, pixel_size_a=4.44)
    fitted = physics.fit_defocus(k, power, amplitude_contrast=0.1, k_range=(0.03, 0.1))
    truth = m.meta["defocus_nm"] * 10
    assert abs(fitted - truth) / truth < 0.02


def _radial_profile(image, centre, step=0.5, reach=60):
    rows, cols = np.indices(image.shape)
    dist = np.hypot(rows + 0.5 - centre[0], cols + 0.5 - centre[1])
    bins = (dist / step).astype(int)
    keep = bins < int(reach / step)
    sums = np.bincount(bins[keep], weights=image[keep])
    counts = np.bincount(bins[keep])
    return (np.arange(len(sums)) + 0.5) * step, sums / np.maximum(counts, 1)


def test_edge_profile_at_2um_underfocus_has_dark_dip_inside_and_bright_fringe_outside(
        make_params):
    params = make_params(quiet=True, **{
        "sample.count_per_um2": 0.0, "optics.defocus_um": (2.0, 2.0),
        "optics.astigmatism_nm": (0.0, 0.0), "optics.dose_e_per_a2": 5000.0,
        "ice.phase_noise_rad_nm": 0.0, "ice.thickness_nm": (150.0, 150.0),
        "optics.illumination_ramp": (0.0, 0.0)})
    scene = build_scene(params, index=0)
    field = params.output.field_nm
    radius_nm = 25.0
    scene.particles = [make_particle(LNPClass.SOLID, [field / 2, field / 2, 75.0],
                                     2 * radius_nm, np.random.default_rng(1), params)]
    image = render_scene(scene).image
    px = params.output.pixel_size_nm
    r_px, profile = _radial_profile(image, (field / 2 / px, field / 2 / px), reach=120)
    radius = radius_nm / px
    background = profile[(r_px > 1.4 * radius) & (r_px < 1.9 * radius)].mean()
    interior = profile[r_px < 0.6 * radius].mean()
    dip = profile[(r_px > 0.9 * radius) & (r_px < radius)].min()
    shoulder = profile[(r_px > 0.75 * radius) & (r_px < 0.9 * radius)].max()
    fringe = profile[(r_px > radius) & (r_px < radius + 3.0 / px)].max()
    noise = np.sqrt(background) / np.sqrt(2 * np.pi * radius / 2)  # counts, ring-averaged
    assert interior < background - 5 * noise
    # The dark Fresnel fringe (and rim) inside the edge is a local minimum of the profile.
    assert dip < shoulder - 5 * noise
    assert dip < background - 5 * noise
    assert fringe > background + 5 * noise


def test_shot_noise_variance_equals_dqe_scaled_counts(make_params):
    params = make_params(quiet=True, **{"sample.count_per_um2": 0.0})
    first = simulate_micrograph(params, index=0)
    second = simulate_micrograph(params, index=0, noise_seed=123)
    # Same scene, new noise draw: the difference is pure shot noise, twice the variance.
    variance = np.var(first.image.astype(np.float64) - second.image) / 2
    mean = first.image.mean()
    assert abs(variance / mean - 1.0) < 0.05
    expected = first.meta["electrons_per_pixel"] * first.meta["dqe"]
    assert 0.8 < mean / expected < 1.02  # aperture loss of 60-250 nm of ice, ramp


def test_high_passed_background_variance_over_mean_matches_dose_and_dqe(make_params):
    params = make_params(quiet=True, **{"sample.count_per_um2": 0.0,
                                                "ice.phase_noise_rad_nm": 0.0})
    m = simulate_micrograph(params, index=2)
    image = m.image.astype(np.float64)

    def high_pass(x):
        return x - ndimage.gaussian_filter(x, 2.0)

    white = np.random.default_rng(0).normal(size=image.shape)
    gain = np.var(high_pass(white))
    ratio = np.var(high_pass(image)) / gain / image.mean()
    assert abs(ratio - 1.0) < 0.08
