"""Electron-optical physics of the simulator: wavelength, interaction constant, CTF, analysis.

Units: lengths in ångström (Å) unless a name says otherwise, spatial frequencies in 1/Å,
potentials in volts. Underfocus is positive. The phase aberration follows the convention of
CTFFIND/RELION,

    chi(k) = pi * lambda * df * k**2 - pi/2 * Cs * lambda**3 * k**4,

and the wave leaving the objective is multiplied by ``exp(+i chi)``, so that under underfocus a
positive projected potential (a particle denser than ice) images dark. The power spectrum of a
weak-phase object with amplitude contrast ``A`` then vanishes where ``chi + arcsin(A) = n pi``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "wavelength_a",
    "interaction_constant",
    "chi",
    "ctf_zeros",
    "frequency_grid",
    "radial_power_spectrum",
    "fit_defocus",
]

_ELECTRON_REST_ENERGY_KEV = 510.99895


def wavelength_a(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Å.

    >>> round(wavelength_a(200.0), 5)
    0.02508
    >>> round(wavelength_a(300.0), 5)
    0.01969
    """
    volts = voltage_kv * 1e3
    return float(12.2643 / np.sqrt(volts * (1.0 + 0.978476e-6 * volts)))


def interaction_constant(voltage_kv: float) -> float:
    """Interaction constant sigma in rad / (V * Å): phase shift per volt-ångström of potential.

    >>> round(interaction_constant(200.0) * 1e4, 3)
    7.288
    """
    rest = _ELECTRON_REST_ENERGY_KEV
    lam = wavelength_a(voltage_kv)
    volts = voltage_kv * 1e3
    return float(2 * np.pi / (lam * volts) * (rest + voltage_kv) / (2 * rest + voltage_kv))


def chi(k, *, defocus_a: float, voltage_kv: float = 200.0, cs_mm: float = 2.7):
    """Phase aberration chi(k) in radians at spatial frequency ``k`` (1/Å), underfocus positive.

    >>> z1 = 1 / 22.7  # about the first zero at 2 um underfocus, 200 kV
    >>> bool(abs(chi(z1, defocus_a=2e4) - np.pi) < 0.15)
    True
    """
    lam = wavelength_a(voltage_kv)
    k2 = np.asarray(k, dtype=np.float64) ** 2
    return np.pi * lam * defocus_a * k2 - 0.5 * np.pi * cs_mm * 1e7 * lam ** 3 * k2 ** 2


def ctf_zeros(*, defocus_a: float, amplitude_contrast: float, k_max: float,
              voltage_kv: float = 200.0, cs_mm: float = 2.7) -> np.ndarray:
    """Spatial frequencies (1/Å, ascending, up to ``k_max``) where ``chi + arcsin(A) = n pi``.

    Only the branch where chi still rises with k (below the Scherzer turn-over) is returned.

    >>> zeros = ctf_zeros(defocus_a=2e4, amplitude_contrast=0.07, k_max=0.1)
    >>> round(float(1 / zeros[0]), 1)  # first zero, Å
    22.6
    """
    lam = wavelength_a(voltage_kv)
    cs = cs_mm * 1e7
    offset = np.arcsin(amplitude_contrast)
    zeros = []
    n = 1
    while True:
        target = n * np.pi - offset
        # chi(k) = a u - b u^2 with u = k^2; take the smaller root.
        a, b = np.pi * lam * defocus_a, 0.5 * np.pi * cs * lam ** 3
        disc = a * a - 4 * b * target
        if disc < 0:
            break
        u = (a - np.sqrt(disc)) / (2 * b) if b > 0 else target / a
        k = np.sqrt(u)
        if k > k_max:
            break
        zeros.append(k)
        n += 1
    return np.asarray(zeros)


def frequency_grid(shape, pixel_size_a: float, *, real: bool = False):
    """Sparse spatial-frequency grids (k_row, k_col) in 1/Å for ``fft2`` (or ``rfft2``) output.

    >>> kr, kc = frequency_grid((4, 4), 2.0)
    >>> kr.ravel().tolist(), kc.ravel().tolist()
    ([0.0, 0.125, -0.25, -0.125], [0.0, 0.125, -0.25, -0.125])
    """
    rows, cols = shape
    k_row = np.fft.fftfreq(rows, d=pixel_size_a).astype(np.float32)[:, None]
    if real:
        k_col = np.fft.rfftfreq(cols, d=pixel_size_a).astype(np.float32)[None, :]
    else:
        k_col = np.fft.fftfreq(cols, d=pixel_size_a).astype(np.float32)[None, :]
    return k_row, k_col


def radial_power_spectrum(image, *, pixel_size_a: float):
    """Rotational average of the power spectrum: ``(k, power)``, k in 1/Å, one bin per
    Fourier pixel of the shorter side, from k = 0 to Nyquist.

    >>> rng = np.random.default_rng(0)
    >>> k, p = radial_power_spectrum(rng.normal(size=(64, 64)), pixel_size_a=1.0)
    >>> len(k), round(float(k[-1]), 3), bool(0.8 < p[5:].mean() / (64 * 64) < 1.2)
    (33, 0.5, True)
    """
    image = np.asarray(image, dtype=np.float64)
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    rows, cols = image.shape
    fr = np.fft.fftfreq(rows)[:, None]
    fc = np.fft.fftfreq(cols)[None, :]
    radius = np.sqrt(fr ** 2 + fc ** 2) * min(rows, cols)
    bins = np.rint(radius).astype(np.int64)
    n_bins = min(rows, cols) // 2 + 1
    keep = bins < n_bins
    total = np.bincount(bins[keep], weights=power[keep], minlength=n_bins)
    count = np.bincount(bins[keep], minlength=n_bins)
    k = np.arange(n_bins) / (min(rows, cols) * pixel_size_a)
    return k, total / np.maximum(count, 1)


def fit_defocus(k, power, *, amplitude_contrast: float, k_range: tuple[float, float],
                defocus_range_a: tuple[float, float] = (3e3, 6e4), voltage_kv: float = 200.0,
                cs_mm: float = 2.7) -> float:
    """Defocus (Å) whose Thon rings best match a rotationally averaged power spectrum.

    The spectrum is flattened (log, minus a smooth polynomial trend) inside ``k_range`` and
    correlated with ``-cos(2 (chi + arcsin A))``, the oscillating part of ``sin^2``; a coarse
    grid search is refined by a bounded scalar minimisation.

    >>> k = np.linspace(0.0, 0.1, 400)
    >>> p = np.sin(chi(k, defocus_a=15000) + np.arcsin(0.1)) ** 2 + 0.2
    >>> abs(fit_defocus(k, p, amplitude_contrast=0.1, k_range=(0.02, 0.1)) - 15000) < 30
    True
    """
    from scipy.optimize import minimize_scalar

    k = np.asarray(k, dtype=np.float64)
    power = np.asarray(power, dtype=np.float64)
    inside = (k >= k_range[0]) & (k <= k_range[1]) & (power > 0)
    kk, values = k[inside], np.log(power[inside])
    trend = np.polynomial.Polynomial.fit(kk, values, deg=4)(kk)
    residual = values - trend
    residual = (residual - residual.mean()) / (residual.std() + 1e-12)
    offset = np.arcsin(amplitude_contrast)

    def score(defocus):
        model = -np.cos(2 * (chi(kk, defocus_a=defocus, voltage_kv=voltage_kv, cs_mm=cs_mm)
                             + offset))
        model = (model - model.mean()) / (model.std() + 1e-12)
        return -float(np.mean(model * residual))

    grid = np.arange(defocus_range_a[0], defocus_range_a[1], 20.0)
    scores = np.array([score(d) for d in grid])
    best = grid[int(np.argmin(scores))]
    result = minimize_scalar(score, bounds=(best - 40.0, best + 40.0), method="bounded",
                             options={"xatol": 0.5})
    return float(result.x)
