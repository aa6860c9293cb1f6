"""Side-by-side numbers against a real micrograph (``reference/vesicles/`` of the shared data).

The real vesicle micrograph was rendered by its authors with a Gaussian blur (sigma = 3 px),
4x binning and 8-bit scaling. :func:`render_like_reference` renders a simulated micrograph the
same way; :func:`noise_to_contrast` then measures, on either, the background standard deviation
over the particles' contrast. The contrast of one particle is the background mean minus the
minimum of its rotationally averaged profile (the dark membrane or rim): averaging over angle
removes the noise that a percentile inside the box would pick up.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["render_like_reference", "noise_to_contrast", "radial_profile", "PROFILE_BINS"]


def render_like_reference(image, *, sigma_px: float = 3.0, binning: int = 4) -> np.ndarray:
    """Gaussian blur, bin by ``binning`` (mean), scale the 0.1-99.9 percentiles to 8 bits.

    >>> out = render_like_reference(np.arange(64.0).reshape(8, 8), sigma_px=0, binning=2)
    >>> out.shape, out.dtype.name
    ((4, 4), 'uint8')
    """
    image = np.asarray(image, dtype=np.float64)
    if sigma_px > 0:
        image = ndimage.gaussian_filter(image, sigma_px)
    h, w = (s // binning * binning for s in image.shape)
    image = image[:h, :w].reshape(h // binning, binning, w // binning, binning).mean(axis=(1, 3))
    lo, hi = np.percentile(image, [0.1, 99.9])
    return np.clip(np.rint((image - lo) / max(hi - lo, 1e-12) * 255), 0, 255).astype(np.uint8)


def _smooth(image, sigma):
    """A wide Gaussian blur, computed on a coarser grid (the trend is smooth anyway)."""
    step = max(1, int(sigma // 8))
    h, w = image.shape
    ph, pw = -h % step, -w % step
    padded = np.pad(image, ((0, ph), (0, pw)), mode="edge")
    coarse = padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step)
    coarse = ndimage.gaussian_filter(coarse.mean(axis=(1, 3)), sigma / step, mode="nearest")
    fine = ndimage.zoom(coarse, step, order=1, mode="nearest", grid_mode=True)
    return fine[:h, :w]


def _detrended(image, boxes, trend_sigma_px):
    """(image less its slow background trend, mask of the padded boxes, boxes as n x 4)."""
    image = np.asarray(image, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    inside = np.zeros(image.shape, dtype=bool)
    for r0, c0, r1, c1 in boxes:
        pad_r, pad_c = 0.1 * (r1 - r0), 0.1 * (c1 - c0)
        inside[max(int(r0 - pad_r), 0):int(np.ceil(r1 + pad_r)),
               max(int(c0 - pad_c), 0):int(np.ceil(c1 + pad_c))] = True
    if trend_sigma_px > 0:
        weight = _smooth((~inside).astype(np.float64), trend_sigma_px)
        trend = _smooth(np.where(inside, 0.0, image), trend_sigma_px)
        image = image - trend / np.maximum(weight, 1e-6)
    return image, inside, boxes


def noise_to_contrast(image, boxes, *, trend_sigma_px: float = 60.0) -> dict:
    """Background std over the median particle contrast, for boxes ``row0, col0, row1, col1``.

    Slow background trends (ice thickness, illumination) are first removed by a Gaussian of
    ``trend_sigma_px`` averaged over background pixels only, so the std measures the noise grain
    and the particles do not leak into the trend. Returns
    ``{"background_std", "contrast", "ratio", "n"}``; a larger ratio is a harder image.

    >>> img = np.full((60, 60), 100.0); rr, cc = np.indices(img.shape)
    >>> img[np.abs(np.hypot(rr - 30, cc - 30) - 12) < 1.5] = 80.0
    >>> img += np.random.default_rng(0).normal(0, 5, img.shape)
    >>> r = noise_to_contrast(img, [[16, 16, 44, 44]])
    >>> bool(15 < r["contrast"] < 25), bool(4 < r["background_std"] < 6)
    (True, True)
    """
    image, inside, boxes = _detrended(image, boxes, trend_sigma_px)
    background = image[~inside]
    bg_mean, bg_std = float(background.mean()), float(background.std())
    rows, cols = np.indices(image.shape)
    contrasts = []
    for r0, c0, r1, c1 in boxes:
        centre_r, centre_c = (r0 + r1) / 2, (c0 + c1) / 2
        radius = min(r1 - r0, c1 - c0) / 2
        reach = int(np.ceil(1.2 * radius)) + 1
        sl = (slice(max(int(centre_r) - reach, 0), int(centre_r) + reach + 1),
              slice(max(int(centre_c) - reach, 0), int(centre_c) + reach + 1))
        dist = np.hypot(rows[sl] + 0.5 - centre_r, cols[sl] + 0.5 - centre_c)
        ring = np.rint(dist).astype(np.int64)
        keep = (dist >= 0.3 * radius) & (dist <= 1.2 * radius)
        if not keep.any():
            continue
        sums = np.bincount(ring[keep], weights=image[sl][keep])
        counts = np.bincount(ring[keep])
        profile = sums[counts > 0] / counts[counts > 0]
        contrasts.append(bg_mean - float(profile.min()))
    contrast = float(np.median(contrasts)) if contrasts else float("nan")
    return {"background_std": bg_std, "contrast": contrast,
            "ratio": bg_std / contrast if contrast > 0 else float("inf"), "n": len(contrasts)}


#: r/R at which :func:`radial_profile` reports (bins 0.1 wide, centred here).
PROFILE_BINS = np.round(np.arange(0.0, 1.31, 0.1), 2)


def radial_profile(image, boxes, *, trend_sigma_px: float = 60.0) -> np.ndarray:
    """Mean rotationally averaged profile of the particles in ``boxes`` against r/R.

    Each box (``row0, col0, row1, col1``) gives a circle of radius R, the mean of its half
    sides, about its centre; pixels are binned by r/R at :data:`PROFILE_BINS` and averaged over
    angle, then over particles. The intensity is normalised as (I - background mean) /
    background std after the trend removal of :func:`noise_to_contrast`: 0 is background,
    -1 one noise standard deviation darker. Bins that no particle reaches are NaN.

    >>> img = np.full((80, 80), 100.0); rr, cc = np.indices(img.shape)
    >>> img[np.abs(np.hypot(rr - 40 + 0.5, cc - 40 + 0.5) - 20) < 1.5] = 80.0
    >>> img += np.random.default_rng(0).normal(0, 5, img.shape)
    >>> prof = radial_profile(img, [[20, 20, 60, 60]])
    >>> float(PROFILE_BINS[np.nanargmin(prof)]), bool(abs(prof[:5].mean()) < 0.5)
    (1.0, True)
    """
    image, inside, boxes = _detrended(image, boxes, trend_sigma_px)
    background = image[~inside]
    bg_mean, bg_std = float(background.mean()), max(float(background.std()), 1e-12)
    n_bins = len(PROFILE_BINS)
    sums, counts = np.zeros(n_bins), np.zeros(n_bins)
    for r0, c0, r1, c1 in boxes:
        centre_r, centre_c = (r0 + r1) / 2, (c0 + c1) / 2
        radius = ((r1 - r0) + (c1 - c0)) / 4
        if radius < 2:
            continue
        reach = int(np.ceil(1.4 * radius)) + 1
        rows = np.arange(max(int(centre_r) - reach, 0), min(int(centre_r) + reach + 1,
                                                            image.shape[0]))
        cols = np.arange(max(int(centre_c) - reach, 0), min(int(centre_c) + reach + 1,
                                                            image.shape[1]))
        dist = np.hypot(rows[:, None] + 0.5 - centre_r, cols[None, :] + 0.5 - centre_c)
        ring = np.rint(dist / radius / 0.1).astype(np.int64)
        keep = ring < n_bins
        values = (image[np.ix_(rows, cols)][keep] - bg_mean) / bg_std
        per = np.bincount(ring[keep], weights=values, minlength=n_bins)
        hits = np.bincount(ring[keep], minlength=n_bins)
        seen = hits > 0
        # Each particle counts once per bin, whatever its size.
        sums[seen] += per[seen] / hits[seen]
        counts[seen] += 1
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def reference_numbers(png, boxes_csv, *, trend_sigma_px: float = 60.0) -> dict:
    """:func:`noise_to_contrast` and :func:`radial_profile` of a real display rendering
    (``png``, 8-bit) with its expert boxes (``boxes_csv``: columns row0, col0, row1, col1)."""
    import pandas as pd
    from PIL import Image

    image = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    boxes = pd.read_csv(boxes_csv)[["row0", "col0", "row1", "col1"]].to_numpy()
    numbers = noise_to_contrast(image, boxes, trend_sigma_px=trend_sigma_px)
    numbers["profile"] = radial_profile(image, boxes, trend_sigma_px=trend_sigma_px)
    return numbers


def simulated_numbers(params, n_images: int, *, sigma_px: float = 3.0,
                      binning: int = 4) -> dict:
    """The numbers of :func:`reference_numbers` for the first ``n_images`` micrographs of
    ``params``, each rendered like the reference.

    Each micrograph is simulated raw (no display rendering) and written at its physical
    pixel (camera binning 1, the same physical grid), then blurred by ``sigma_px`` and binned
    by ``binning`` as the reference's authors did: for the presets' 4x camera binning this
    lands on the written pixel, with particles about as many pixels wide as in the reference.
    Only particles wholly inside the field are measured. Ratios and profiles are averaged
    over the micrographs (mean), the particle count summed.
    """
    from lipobench.synth.dataset import render_planned
    from lipobench.synth.domain import image_plan

    ratios, stds, contrasts, profiles, count = [], [], [], [], 0
    for index in range(n_images):
        plan = image_plan(params, index, display=False)
        out = plan.params.output
        fine = plan.params.with_overrides(**{
            "output.size_px": out.physical_size_px,
            "output.pixel_size_nm": out.physical_pixel_size_nm, "output.binning": 1})
        plan = type(plan)(fine, fine)
        m = render_planned(plan, index=index)
        rendered = render_like_reference(m.image, sigma_px=sigma_px, binning=binning)
        rows = [r for r in m.particle_rows if r["visible_fraction"] >= 1.0]
        boxes = np.array([[r["bbox_row0"], r["bbox_col0"], r["bbox_row1"], r["bbox_col1"]]
                          for r in rows], dtype=np.float64).reshape(-1, 4) / binning
        if not len(boxes):
            continue
        numbers = noise_to_contrast(rendered.astype(np.float64), boxes)
        ratios.append(numbers["ratio"])
        stds.append(numbers["background_std"])
        contrasts.append(numbers["contrast"])
        profiles.append(radial_profile(rendered.astype(np.float64), boxes))
        count += numbers["n"]
    if not ratios:
        nan = float("nan")
        return {"background_std": nan, "contrast": nan, "ratio": nan, "n": 0,
                "profile": np.full(len(PROFILE_BINS), np.nan), "ratios": []}
    return {"background_std": float(np.mean(stds)), "contrast": float(np.mean(contrasts)),
            "ratio": float(np.mean(ratios)), "n": count,
            "profile": np.nanmean(np.vstack(profiles), axis=0), "ratios": ratios}


def format_table(columns: dict[str, dict]) -> str:
    """A plain-text table: one column per source (name -> numbers), rows for the ratio, its
    parts and the radial profile at each r/R of :data:`PROFILE_BINS`."""
    names = list(columns)
    width = max(12, *(len(n) + 2 for n in names))
    lines = ["".ljust(22) + "".join(n.rjust(width) for n in names)]

    def row(label, values, fmt):
        cells = ("nan" if not np.isfinite(v) else fmt % v for v in values)
        lines.append(label.ljust(22) + "".join(c.rjust(width) for c in cells))

    row("particles measured", [float(columns[n]["n"]) for n in names], "%.0f")
    row("background std", [columns[n]["background_std"] for n in names], "%.3g")
    row("particle contrast", [columns[n]["contrast"] for n in names], "%.3g")
    row("std / contrast", [columns[n]["ratio"] for n in names], "%.3f")
    lines.append("radial profile, (I - bg) / bg std:")
    for k, x in enumerate(PROFILE_BINS):
        row(f"  r/R = {x:.1f}", [float(columns[n]["profile"][k]) for n in names], "%+.2f")
    return "\n".join(lines)
