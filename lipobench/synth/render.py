"""From a :class:`~lipobench.synth.scene.Scene` to pixels: image, labels, distractors, table.

Image formation (SYNTHETIC.md, "Image formation"):

1. The exit wave ``psi = exp((i - a) phi)``, ``a = A / sqrt(1 - A^2)``, on the physical pixel
   grid. Each particle is rendered in its own bounding box from nested ellipsoid shells with
   closed-form chord lengths, ``L(s) = 2 / sqrt(M_zz) * sqrt(s^2 - d^T Q d)``, and multiplied
   into ``psi`` (phases of overlapping objects add, as in the projection approximation).
2. One complex64 FFT pair applies ``exp(i chi) * exp(-B k^2 / 4)`` (on the wave padded by
   edge replication, so that nothing wraps around the borders).
3. The intensity gets the detector's sinc MTF (one real FFT pair) and is binned by summing
   ``binning x binning`` physical pixels, so output pixel ``i`` covers physical pixels
   ``i*b .. i*b+b-1``. The weak phase noise of amorphous ice (and carbon) is added to first
   order on the output grid: ``-2 F^-1[Phi (sin chi + a cos chi) env MTF]``.
4. Unfiltered inelastic background: a fraction ``1 - exp(-t / L_in)`` of the electrons carries
   only the amplitude image ``|psi|^2``, blurred by ``inelastic_blur_nm``; the aperture keeps
   ``exp(-t / L_ap)``. Both vary slowly with the ice thickness ``t`` and act on the output grid.
5. Counts ``N * DQE * I`` (``N`` = dose x output pixel area) with an illumination ramp, plus
   Gaussian shot noise of the same variance.

Labels are evaluated exactly at output pixel centres: a pixel belongs to a particle when its
centre lies inside the projected outline; where outlines overlap the front-most (largest z)
particle wins. Distractor codes (:class:`~lipobench.synth.scene.DistractorCode`) never cover a
labelled pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.fft as sfft
from scipy import ndimage

from lipobench.synth import physics
from lipobench.synth.scene import DistractorCode, Scene

__all__ = ["Rendered", "render_scene", "PARTICLE_COLUMNS"]

#: Margin added around the exit wave before the CTF; more than the delocalisation
#: lambda * df * k_max (about 6 nm at 3 um and 0.222 nm/px) of the simulated defocus range.
_PAD_NM = 12.0

PARTICLE_COLUMNS = [
    "id", "class", "axis_1_nm", "axis_2_nm", "axis_3_nm", "z_nm", "diameter_px", "diameter_nm",
    "area_px", "centroid_row", "centroid_col", "bbox_row0", "bbox_col0", "bbox_row1",
    "bbox_col1", "visible_fraction", "truncated", "touching_ids",
]


@dataclass
class Rendered:
    """One simulated micrograph: ``image`` (float32 counts), ``labels`` (int32),
    ``distractors`` (uint8 codes), ``particles`` (one row per label) and acquisition ``meta``."""

    image: np.ndarray
    labels: np.ndarray
    distractors: np.ndarray
    particles: pd.DataFrame
    meta: dict = field(default_factory=dict)

    def to_micrograph(self, name: str = "synth_0000"):
        """A :class:`~lipobench.micrograph.Micrograph` with the labels as ground truth."""
        from lipobench.micrograph import Micrograph
        from lipobench.regions import RegionSet

        return Micrograph(name, self.image, self.meta.get("pixel_size_nm"),
                          RegionSet.from_labels(self.labels))


# --------------------------------------------------------------------------- phase rendering
def _box(center, half, pixel, limit):
    lo = max(int(np.floor((center - half) / pixel - 0.5)), 0)
    hi = min(int(np.ceil((center + half) / pixel + 0.5)) + 1, limit)
    return lo, hi


def body_phase(body, d_row, d_col, sigma_a):
    """Projected phase (rad) of one body at offsets ``d_row, d_col`` (nm) from its centre."""
    q2, m33 = body.projected_form()
    q = (np.float32(q2[0, 0]) * d_row * d_row + np.float32(2 * q2[0, 1]) * d_row * d_col
         + np.float32(q2[1, 1]) * d_col * d_col)
    scale = np.float32(2.0 / np.sqrt(m33) * 10.0 * sigma_a)  # nm -> Å
    phase = np.zeros(np.broadcast(d_row, d_col).shape, dtype=np.float32)
    previous = 0.0
    for s, volts in zip(body.radii, body.potentials):
        step = volts - previous
        if step:
            chord = np.sqrt(np.maximum(np.float32(s * s) - q, 0))
            phase += np.float32(step) * chord
        previous = volts
        last_chord_s = s
    if body.texture is not None and body.potentials[-1]:
        chord = np.sqrt(np.maximum(np.float32(last_chord_s ** 2) - q, 0))
        phase += np.float32(body.potentials[-1]) * chord * body.texture.evaluate(d_row, d_col)
    return phase * scale, q


def _apply(psi, r0, r1, c0, c1, phase, a, loss=None):
    damp = -np.float32(a) * phase
    if loss is not None:
        damp -= loss
    amp = np.exp(damp)
    factor = np.empty(phase.shape, dtype=np.complex64)
    factor.real = amp * np.cos(phase)
    factor.imag = amp * np.sin(phase)
    psi[r0:r1, c0:c1] *= factor


def _render_bodies(psi, bodies, pixel, sigma_a, a):
    rows, cols = psi.shape
    for body in bodies:
        half = body.half_extent_nm()
        r0, r1 = _box(body.center_nm[0], half[0], pixel, rows)
        c0, c1 = _box(body.center_nm[1], half[1], pixel, cols)
        if r1 <= r0 or c1 <= c0:
            continue
        d_row = ((np.arange(r0, r1, dtype=np.float32) + 0.5) * np.float32(pixel)
                 - np.float32(body.center_nm[0]))[:, None]
        d_col = ((np.arange(c0, c1, dtype=np.float32) + 0.5) * np.float32(pixel)
                 - np.float32(body.center_nm[1]))[None, :]
        phase, _ = body_phase(body, d_row, d_col, sigma_a)
        _apply(psi, r0, r1, c0, c1, phase, a)


def _render_polygon(psi, distractor, pixel, a):
    from skimage.draw import polygon

    rows, cols = psi.shape
    verts = distractor.polygon_nm / pixel
    r0, r1 = max(int(verts[:, 0].min()) - 4, 0), min(int(verts[:, 0].max()) + 5, rows)
    c0, c1 = max(int(verts[:, 1].min()) - 4, 0), min(int(verts[:, 1].max()) + 5, cols)
    if r1 <= r0 or c1 <= c0:
        return
    cover = np.zeros((r1 - r0, c1 - c0), dtype=np.float32)
    rr, cc = polygon(verts[:, 0] - r0 - 0.5, verts[:, 1] - c0 - 0.5, shape=cover.shape)
    cover[rr, cc] = 1.0
    cover = ndimage.gaussian_filter(cover, 1.0 / pixel)  # ~1 nm soft facet
    _apply(psi, r0, r1, c0, c1, cover * np.float32(distractor.phase_rad), a,
           loss=cover * np.float32(distractor.loss))


def _render_carbon(psi, scene, pixel, sigma_a, a):
    r_c, c_c, radius = scene.carbon
    phase = sigma_a * 4.5 * scene.params.artifacts.carbon_thickness_nm * 10.0  # ~4.5 V vs ice
    factor = np.complex64(np.exp((1j - a) * phase))
    rows, cols = psi.shape
    for i in range(rows):
        dr = (i + 0.5) * pixel - r_c
        if abs(dr) >= radius:
            psi[i, :] *= factor
            continue
        half = np.sqrt(radius * radius - dr * dr)
        j0 = int(np.clip(np.ceil((c_c - half) / pixel - 0.5), 0, cols))
        j1 = int(np.clip(np.floor((c_c + half) / pixel - 0.5) + 1, 0, cols))
        psi[i, :j0] *= factor
        psi[i, j1:] *= factor


# --------------------------------------------------------------------------- image formation
def _ctf_filter(shape, pixel_a, optics, voltage_kv, cs_mm, *, real=False):
    """exp(i chi) * envelope (complex64), or (sin chi + a cos chi) * envelope if ``real``."""
    kr, kc = physics.frequency_grid(shape, pixel_a, real=real)
    lam = physics.wavelength_a(voltage_kv)
    k2 = kr * kr + kc * kc
    df = optics.defocus_nm * 10.0
    ast = optics.astigmatism_nm * 10.0 / 2.0
    ang = optics.astigmatism_angle_rad
    # df(theta) k^2 with theta from the row axis, written without trigonometry per pixel.
    defocus_term = (np.float32(df) * k2
                    + np.float32(ast * np.cos(2 * ang)) * (kr * kr - kc * kc)
                    + np.float32(ast * np.sin(2 * ang) * 2.0) * (kr * kc))
    chi = (np.float32(np.pi * lam) * defocus_term
           - np.float32(0.5 * np.pi * cs_mm * 1e7 * lam ** 3) * k2 * k2)
    env = np.exp(np.float32(-optics.b_factor_a2 / 4.0) * k2)
    if real:
        a = _a(optics.amplitude_contrast)
        return (np.sin(chi) + np.float32(a) * np.cos(chi)) * env
    out = np.empty(k2.shape, dtype=np.complex64)
    out.real = np.cos(chi) * env
    out.imag = np.sin(chi) * env
    return out


def _a(amplitude_contrast):
    return amplitude_contrast / np.sqrt(1.0 - amplitude_contrast ** 2)


def _bin_mean(image, b):
    if b == 1:
        return image
    h, w = image.shape[0] // b, image.shape[1] // b
    return image.reshape(h, b, w, b).mean(axis=(1, 3), dtype=np.float32)


def render_scene(scene: Scene) -> Rendered:
    """Render ``scene`` into an image, labels, distractor codes and the particle table."""
    params = scene.params
    out, optics_p = params.output, params.optics
    b = out.binning
    n_phys = out.physical_size_px
    p_nm = out.physical_pixel_size_nm
    p_a = p_nm * 10.0
    sigma_a = physics.interaction_constant(optics_p.voltage_kv)
    a = _a(scene.optics.amplitude_contrast)

    psi = np.ones((n_phys, n_phys), dtype=np.complex64)
    for particle in scene.particles:
        _render_bodies(psi, particle.bodies, p_nm, sigma_a, a)
    for d in scene.distractors:
        if d.polygon_nm is not None:
            _render_polygon(psi, d, p_nm, a)
        else:
            _render_bodies(psi, d.bodies, p_nm, sigma_a, a)
    if scene.carbon is not None:
        _render_carbon(psi, scene, p_nm, sigma_a, a)

    amplitude2 = _bin_mean(np.abs(psi) ** 2, b)

    # Pad by edge replication, so the CTF's delocalisation does not wrap one border's objects
    # (a carbon film, a cut particle) onto the opposite border.
    margin = int(np.ceil(_PAD_NM / p_nm))
    padded = sfft.next_fast_len(n_phys + 2 * margin)
    lo = (padded - n_phys) // 2
    psi = np.pad(psi, ((lo, padded - n_phys - lo),) * 2, mode="edge")
    spectrum = sfft.fft2(psi, workers=-1, overwrite_x=True)
    del psi
    spectrum *= _ctf_filter(spectrum.shape, p_a, scene.optics, optics_p.voltage_kv,
                            optics_p.cs_mm)
    wave = sfft.ifft2(spectrum, workers=-1, overwrite_x=True)
    del spectrum
    intensity = np.abs(wave[lo:lo + n_phys, lo:lo + n_phys]) ** 2
    del wave
    # Detector MTF on the physical grid, then binning by summation (as a camera bins).
    real_spec = sfft.rfft2(intensity, workers=-1)
    del intensity
    kr, kc = physics.frequency_grid((n_phys, n_phys), p_a, real=True)
    real_spec *= np.sinc(kr * np.float32(p_a)) * np.sinc(kc * np.float32(p_a))
    detected = sfft.irfft2(real_spec, s=(n_phys, n_phys), workers=-1)
    del real_spec
    h = w = out.size_px
    elastic = _bin_mean(detected.astype(np.float32, copy=False), b)
    del detected
    kr, kc = physics.frequency_grid((h, w), out.pixel_size_nm * 10.0, real=True)
    mtf = np.sinc(kr * np.float32(p_a)) * np.sinc(kc * np.float32(p_a))
    ice_spec = sfft.rfft2(scene.ice_noise, workers=-1)
    ice_spec *= np.float32(-2.0) * _ctf_filter((h, w), out.pixel_size_nm * 10.0, scene.optics,
                                               optics_p.voltage_kv, optics_p.cs_mm, real=True) * mtf
    elastic = elastic + sfft.irfft2(ice_spec, s=(h, w), workers=-1).astype(np.float32)

    blur_px = params.ice.inelastic_blur_nm / out.pixel_size_nm
    inelastic = ndimage.gaussian_filter(amplitude2, blur_px) if blur_px > 0 else amplitude2

    thickness = scene.thickness_nm.astype(np.float32)
    rows = (np.arange(h, dtype=np.float32) + 0.5)[:, None] * np.float32(out.pixel_size_nm)
    cols = (np.arange(w, dtype=np.float32) + 0.5)[None, :] * np.float32(out.pixel_size_nm)
    carbon = scene.carbon_mask(rows, cols)
    if scene.carbon is not None:
        # Carbon scatters about twice as strongly per nm as vitreous ice.
        thickness = thickness + carbon * np.float32(2.0 * params.artifacts.carbon_thickness_nm)
    transmit = np.exp(-thickness / np.float32(params.ice.aperture_mean_free_path_nm))
    elastic_fraction = np.exp(-thickness / np.float32(params.ice.inelastic_mean_free_path_nm))
    fld = out.field_nm
    along = ((rows - fld / 2) * np.float32(np.cos(scene.optics.ramp_angle_rad))
             + (cols - fld / 2) * np.float32(np.sin(scene.optics.ramp_angle_rad))) / fld
    ramp = 1.0 + np.float32(2 * scene.optics.ramp) * along
    relative = ramp * transmit * (elastic_fraction * elastic
                                  + (1 - elastic_fraction) * inelastic)
    electrons = optics_p.dose_e_per_a2 * (out.pixel_size_nm * 10.0) ** 2
    mean_counts = np.maximum(np.float32(electrons * scene.optics.dqe) * relative, 0)
    noise = scene.streams["noise"].standard_normal(mean_counts.shape, dtype=np.float32)
    image = (mean_counts + np.sqrt(mean_counts) * noise).astype(np.float32)

    labels, table = _labels_and_table(scene, carbon)
    distractors = _distractor_mask(scene, carbon, labels)
    meta = {
        "pixel_size_nm": out.pixel_size_nm,
        "defocus_nm": scene.optics.defocus_nm,
        "astigmatism_nm": scene.optics.astigmatism_nm,
        "astigmatism_angle_deg": float(np.degrees(scene.optics.astigmatism_angle_rad)),
        "b_factor_a2": scene.optics.b_factor_a2,
        "amplitude_contrast": scene.optics.amplitude_contrast,
        "dqe": scene.optics.dqe,
        "electrons_per_pixel": float(electrons),
        "mean_ice_thickness_nm": float(scene.thickness_nm.mean()),
        "carbon_edge": scene.carbon is not None,
        "n_particles": int(len(table)),
        "n_distractors": len(scene.distractors),
    }
    return Rendered(image, labels, distractors, table, meta)


# --------------------------------------------------------------------------- ground truth
def _outline(body, pixel, size, clip=True):
    """(r0, c0, inside) of a body's projected outline at output pixel centres."""
    half = body.half_extent_nm() + pixel
    r0 = int(np.floor((body.center_nm[0] - half[0]) / pixel))
    r1 = int(np.ceil((body.center_nm[0] + half[0]) / pixel)) + 1
    c0 = int(np.floor((body.center_nm[1] - half[1]) / pixel))
    c1 = int(np.ceil((body.center_nm[1] + half[1]) / pixel)) + 1
    if clip:
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, size), min(c1, size)
    if r1 <= r0 or c1 <= c0:
        return r0, c0, np.zeros((0, 0), dtype=bool)
    d_row = ((np.arange(r0, r1) + 0.5) * pixel - body.center_nm[0])[:, None]
    d_col = ((np.arange(c0, c1) + 0.5) * pixel - body.center_nm[1])[None, :]
    q2, _ = body.projected_form()
    q = q2[0, 0] * d_row ** 2 + 2 * q2[0, 1] * d_row * d_col + q2[1, 1] * d_col ** 2
    return r0, c0, q <= body.radii[0] ** 2


def _particle_footprint(particle, pixel, size, clip):
    pieces = [_outline(b, pixel, size, clip) for b in particle.bodies if b.outline]
    pieces = [p for p in pieces if p[2].size]
    if not pieces:
        return None
    r0 = min(p[0] for p in pieces)
    c0 = min(p[1] for p in pieces)
    r1 = max(p[0] + p[2].shape[0] for p in pieces)
    c1 = max(p[1] + p[2].shape[1] for p in pieces)
    mask = np.zeros((r1 - r0, c1 - c0), dtype=bool)
    for pr, pc, inside in pieces:
        mask[pr - r0: pr - r0 + inside.shape[0], pc - c0: pc - c0 + inside.shape[1]] |= inside
    return r0, c0, mask


def _labels_and_table(scene, carbon):
    out = scene.params.output
    size, pixel = out.size_px, out.pixel_size_nm
    labels = np.zeros((size, size), dtype=np.int32)
    full_area, truncated = {}, {}
    order = sorted(range(len(scene.particles)), key=lambda i: scene.particles[i].center_nm[2])
    for i in order:
        particle = scene.particles[i]
        whole = _particle_footprint(particle, pixel, size, clip=False)
        clipped = _particle_footprint(particle, pixel, size, clip=True)
        if whole is None or clipped is None:
            continue
        full_area[i] = int(whole[2].sum())
        r0, c0, mask = clipped
        window = labels[r0:r0 + mask.shape[0], c0:c0 + mask.shape[1]]
        window[mask] = i + 1
        on_carbon = carbon[r0:r0 + mask.shape[0], c0:c0 + mask.shape[1]][mask]
        truncated[i] = bool(int(mask.sum()) < full_area[i] or (on_carbon.any()
                                                               and not on_carbon.all()))
    counts = np.bincount(labels.ravel(), minlength=len(scene.particles) + 1)
    present = [i for i in range(len(scene.particles)) if counts[i + 1] > 0]
    lookup = np.zeros(len(scene.particles) + 1, dtype=np.int32)
    for new, i in enumerate(present, start=1):
        lookup[i + 1] = new
    labels = lookup[labels]
    return labels, _table(scene, labels, present, full_area, truncated)


def _touching(labels):
    pairs = set()
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        hit = (a != b) & (a > 0) & (b > 0)
        for x, y in zip(a[hit].tolist(), b[hit].tolist()):
            pairs.add((min(x, y), max(x, y)))
    neighbours: dict[int, list[int]] = {}
    for x, y in sorted(pairs):
        neighbours.setdefault(x, []).append(y)
        neighbours.setdefault(y, []).append(x)
    return neighbours


def _table(scene, labels, present, full_area, truncated):
    pixel = scene.params.output.pixel_size_nm
    n = len(present)
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PARTICLE_COLUMNS})
    ids = np.arange(1, n + 1)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1)[1:].astype(np.int64)
    rows, cols = np.indices(labels.shape)
    row_c = np.bincount(flat, weights=rows.ravel(), minlength=n + 1)[1:] / area + 0.5
    col_c = np.bincount(flat, weights=cols.ravel(), minlength=n + 1)[1:] / area + 0.5
    boxes = ndimage.find_objects(labels)
    neighbours = _touching(labels)
    records = []
    for k, i in enumerate(present):
        particle = scene.particles[i]
        box = boxes[k]
        diameter_px = 2 * np.sqrt(area[k] / np.pi)
        records.append({
            "id": int(ids[k]),
            "class": particle.klass.value,
            "axis_1_nm": round(float(particle.axes_nm[0]), 3),
            "axis_2_nm": round(float(particle.axes_nm[1]), 3),
            "axis_3_nm": round(float(particle.axes_nm[2]), 3),
            "z_nm": round(float(particle.center_nm[2]), 3),
            "diameter_px": float(diameter_px),
            "diameter_nm": float(diameter_px * pixel),
            "area_px": int(area[k]),
            "centroid_row": float(row_c[k]),
            "centroid_col": float(col_c[k]),
            "bbox_row0": int(box[0].start), "bbox_col0": int(box[1].start),
            "bbox_row1": int(box[0].stop), "bbox_col1": int(box[1].stop),
            "visible_fraction": float(area[k] / max(full_area[i], 1)),
            "truncated": truncated[i],
            "touching_ids": ";".join(str(t) for t in neighbours.get(int(ids[k]), [])),
        })
    return pd.DataFrame.from_records(records, columns=PARTICLE_COLUMNS)


def _distractor_mask(scene, carbon, labels):
    out = scene.params.output
    size, pixel = out.size_px, out.pixel_size_nm
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[carbon] = DistractorCode.CARBON
    for d in scene.distractors:
        if d.polygon_nm is not None:
            from skimage.draw import polygon

            rr, cc = polygon(d.polygon_nm[:, 0] / pixel - 0.5, d.polygon_nm[:, 1] / pixel - 0.5,
                             shape=mask.shape)
            mask[rr, cc] = d.code
            continue
        for body in d.bodies:
            r0, c0, inside = _outline(body, pixel, size)
            if inside.size:
                window = mask[r0:r0 + inside.shape[0], c0:c0 + inside.shape[1]]
                window[inside] = d.code
    mask[labels > 0] = DistractorCode.NONE
    return mask
