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
   only the amplitude image ``|psi|^2``, blurred by ``inelastic_blur_nm`` (a blur of 6 output
   pixels or more is computed on a binned grid and interpolated back, see ``_WideBlur``); the
   aperture keeps ``exp(-t / L_ap)``. Both vary slowly with the ice thickness ``t`` and act on
   the output grid.
5. Counts ``N * DQE * I`` (``N`` = dose x output pixel area) with an illumination ramp, plus
   Gaussian shot noise of the same variance.

Labels are evaluated exactly at output pixel centres: a pixel belongs to a particle when its
centre lies inside the projected outline; where outlines overlap the front-most (largest z)
particle wins. Distractor codes (:class:`~lipobench.synth.scene.DistractorCode`) never cover a
labelled pixel.

The ground truth, the ice noise's filtered spectrum and the shot noise's draw depend on the
scene only: they are made on helper threads (:mod:`lipobench.synth._parallel`) while the wave
is formed; the results do not depend on the threads' timing.

Why one module of this length: image formation is one chain (exit wave, CTF, MTF and binning,
dose and shot noise, ground truth on a second thread) whose steps share buffers to stay within
one complex64 FFT pair of memory; split, the buffer hand-offs would cross module borders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.fft as sfft

from lipobench.synth import physics
from lipobench.synth._filters import gaussian_filter
from lipobench.synth._grid import LinearZoom
from lipobench.synth._parallel import Background, row_blocks, standard_normal
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
    ``distractors`` (uint8 codes), ``particles`` (a DataFrame, one row per label) and
    acquisition ``meta``.

    ``particle_rows`` holds the table as dicts in :data:`PARTICLE_COLUMNS` order; the
    DataFrame is built (and pandas imported) on first use of ``particles`` only, so that
    writing a dataset does without pandas' import.
    """

    image: np.ndarray
    labels: np.ndarray
    distractors: np.ndarray
    particle_rows: list[dict]
    meta: dict = field(default_factory=dict)

    @cached_property
    def particles(self):
        """The particle table: a pandas DataFrame with :data:`PARTICLE_COLUMNS`."""
        import pandas as pd

        if not self.particle_rows:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in PARTICLE_COLUMNS})
        return pd.DataFrame.from_records(self.particle_rows, columns=PARTICLE_COLUMNS)

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
    cover = gaussian_filter(cover, 1.0 / pixel)  # ~1 nm soft facet
    _apply(psi, r0, r1, c0, c1, cover * np.float32(distractor.phase_rad), a,
           loss=cover * np.float32(distractor.loss))


def _render_carbon(psi, scene, pixel, sigma_a, a):
    r_c, c_c, radius = scene.carbon
    phase = sigma_a * 4.5 * scene.params.artifacts.carbon_thickness_nm * 10.0  # ~4.5 V vs ice
    factor = np.complex64(np.exp((1j - a) * phase))
    rows, cols = psi.shape
    # Per row, the hole is the columns j0 <= j < j1 (computed for all rows at once: numpy's
    # scalar clip and sqrt, 8000 calls on 4096 rows, cost more than the products).
    dr = (np.arange(rows) + 0.5) * pixel - r_c
    off = np.abs(dr) >= radius
    half = np.sqrt(np.maximum(radius * radius - dr * dr, 0.0))
    j0 = np.clip(np.ceil((c_c - half) / pixel - 0.5), 0, cols).astype(np.intp)
    j1 = np.clip(np.floor((c_c + half) / pixel - 0.5) + 1, 0, cols).astype(np.intp)
    j0[off], j1[off] = cols, cols
    for i, (start, stop) in enumerate(zip(j0.tolist(), j1.tolist())):
        if start:
            psi[i, :start] *= factor
        if stop < cols:
            psi[i, stop:] *= factor


# --------------------------------------------------------------------------- image formation
def _ctf_filter(shape, pixel_a, optics, voltage_kv, cs_mm, *, real=False):
    """exp(i chi) * envelope (complex64), or (sin chi + a cos chi) * envelope if ``real``."""
    kr, kc = physics.frequency_grid(shape, pixel_a, real=real)
    return _ctf_on_grid(kr, kc, optics, physics.wavelength_a(voltage_kv), cs_mm, real=real)


#: Full-size products are computed this many rows at a time: the temporaries of a block stay
#: in cache and their memory is reused, where a fresh 4096^2 temporary per step costs its page
#: faults (measured up to 0.2 s each in a new process on a busy machine).
_ROWS = 128


def _multiply_ctf(spectrum, shape, pixel_a, optics, voltage_kv, cs_mm, *, real=False,
                  factor=None):
    """``spectrum *= _ctf_filter(shape, ...)`` (times ``factor(rows)`` if given), by rows.

    ``shape`` is the image's: the spectrum's own for ``fft2``, the image's for ``rfft2``.
    """
    kr, kc = physics.frequency_grid(shape, pixel_a, real=real)
    lam = physics.wavelength_a(voltage_kv)
    n_rows, n_cols = spectrum.shape
    if real or factor is not None or n_rows < 4 or n_cols < 4:
        def multiply(rows):
            block = spectrum[rows]
            block *= _ctf_on_grid(kr[rows], kc, optics, lam, cs_mm, real=real)
            if factor is not None:
                block *= factor(rows)

        row_blocks(multiply, n_rows, _ROWS)
        return
    # On the full fft2 grid the filter is point-symmetric: chi and the envelope are even in
    # (kr, kc), and fftfreq's negative frequencies are exactly the positive ones negated, so
    # H[-r, -c] == H[r, c] to the bit. It is computed for rows 0 .. n/2 and each of those
    # (but 0 and n/2) also multiplies its mirror row n - r, columns reversed (c -> n - c),
    # half the trigonometry. The Nyquist column (even n) has no mirror on the grid: the
    # mirror rows get it computed.
    last = n_rows // 2  # rows 0 .. last are computed
    mirror_cols = (-np.arange(n_cols)) % n_cols
    nyquist = n_cols // 2 if n_cols % 2 == 0 else None

    def multiply_pair(rows):
        start, stop, _ = rows.indices(last + 1)
        block = _ctf_on_grid(kr[start:stop], kc, optics, lam, cs_mm)
        spectrum[start:stop] *= block
        # The mirrors n - r of rows r = lo .. hi - 1 (not row 0, nor row n/2 of an even n).
        lo, hi = max(start, 1), min(stop, n_rows - last)
        if hi <= lo:
            return
        mirrored = np.take(block[lo - start:hi - start][::-1], mirror_cols, axis=1)
        targets = slice(n_rows - hi + 1, n_rows - lo + 1)
        if nyquist is not None:
            mirrored[:, nyquist] = _ctf_on_grid(kr[targets], kc[:, nyquist:nyquist + 1],
                                                optics, lam, cs_mm)[:, 0]
        spectrum[targets] *= mirrored

    row_blocks(multiply_pair, last + 1, _ROWS)


def _ctf_on_grid(kr, kc, optics, lam, cs_mm, *, real=False):
    df = optics.defocus_nm * 10.0
    ast = optics.astigmatism_nm * 10.0 / 2.0
    ang = optics.astigmatism_angle_rad
    f32 = np.float32
    # chi = pi lam (df k^2 + ast cos(2 ang) (kr^2 - kc^2) + 2 ast sin(2 ang) kr kc)
    #       - pi/2 cs lam^3 k^4, with df(theta) k^2 written without trigonometry per pixel.
    # The terms in kr or kc alone are 1-D; the 2-D ones are built in place.
    defocus, cs_term = np.pi * lam, 0.5 * np.pi * cs_mm * 1e7 * lam ** 3
    along_rows = f32(defocus * (df + ast * np.cos(2 * ang))) * (kr * kr)
    along_cols = f32(defocus * (df - ast * np.cos(2 * ang))) * (kc * kc)
    k2 = kr * kr + kc * kc
    chi = k2 * k2
    chi *= f32(-cs_term)
    chi += along_rows
    chi += along_cols
    chi += (f32(defocus * ast * np.sin(2 * ang) * 2.0) * kr) * kc
    # The envelope exp(-B k^2 / 4) is separable: an outer product of two 1-D factors.
    damping = -optics.b_factor_a2 / 4.0
    env = np.exp(damping * kr.astype(np.float64) ** 2).astype(np.float32)
    env = env * np.exp(damping * kc.astype(np.float64) ** 2).astype(np.float32)
    del k2
    if real:
        a = _a(optics.amplitude_contrast)
        out = np.cos(chi)
        out *= f32(a)
        out += np.sin(chi)
        out *= env
        return out
    part = np.cos(chi)
    part *= env
    # astype writes the new array contiguously; filling a fresh np.empty through its strided
    # .real view measured 10x slower in a new process.
    out = part.astype(np.complex64)
    np.sin(chi, out=part)
    part *= env
    out.imag = part
    return out


def _a(amplitude_contrast):
    return amplitude_contrast / np.sqrt(1.0 - amplitude_contrast ** 2)


def _fill_edges(padded, lo, size):
    """Replicate the edges of ``padded[lo:lo+size, lo:lo+size]`` outward, as np.pad "edge"."""
    inner = np.s_[lo:lo + size]
    padded[:lo, inner] = padded[lo, inner]
    padded[lo + size:, inner] = padded[lo + size - 1, inner]
    padded[:, :lo] = padded[:, lo:lo + 1]
    padded[:, lo + size:] = padded[:, lo + size - 1:lo + size]


def _abs2(z, out=None):
    """``|z|^2`` of a complex64 array; np.abs squares after a hypot and costs ~4x as much.

    ``out`` may share memory with ``z`` as :func:`_into_own_buffer` lays it out: the blocks of
    rows are then done in order, each read before its result is written, and the results never
    reach rows not yet read. Into a new array the blocks are shared by two threads.
    """
    # Squaring the interleaved (real, imag) floats of whole rows is contiguous, so SIMD:
    # 1.8x faster than squaring the strided .real and .imag views.
    pairs = z.view(np.float32)

    def square_rows(rows):
        square = np.square(pairs[rows])
        np.add(square[:, 0::2], square[:, 1::2], out=out[rows])

    if out is None:
        out = np.empty(z.shape, dtype=np.float32)
        row_blocks(square_rows, z.shape[0], _ROWS)
        return out
    for r0 in range(0, z.shape[0], _ROWS):
        square_rows(slice(r0, r0 + _ROWS))
    return out


def _into_own_buffer(wave, n):
    """An n x n float32 array in the first bytes of the C-contiguous complex64 ``wave``
    (at least n x n / 2 elements), for |wave|^2 without a new full-size array (whose page
    faults cost as much as squaring it); a new array if ``wave`` is not contiguous."""
    if not (wave.flags.c_contiguous and wave.dtype == np.complex64 and 2 * wave.size >= n * n
            and wave.shape[1] * 2 > n):
        return None
    return wave.reshape(-1).view(np.float32)[:n * n].reshape(n, n)


#: Above this sigma (pixels) a Gaussian blur goes through one real FFT pair: the direct
#: filter's cost grows with its 8 sigma + 1 taps (13.5 px on 4096^2: 1.3 s against ~0.1 s).
_FFT_BLUR_SIGMA = 4.0


def _gaussian_blur(image, sigma, *, fft=None):
    """``ndimage.gaussian_filter(image, sigma)`` (mirror borders), by FFT for wide kernels
    (``fft``: True or False to choose)."""
    if not (sigma > _FFT_BLUR_SIGMA if fft is None else fft):
        from scipy import ndimage  # full-size images: its C filter (imported when needed)

        return ndimage.gaussian_filter(image, sigma)
    # Reflect-padding by the kernel's reach keeps the FFT's wrap-around away from the image,
    # which gives gaussian_filter's "reflect" borders to within its 4-sigma truncation.
    reach = int(np.ceil(4 * sigma))
    rows, cols = image.shape
    shape = (sfft.next_fast_len(rows + 2 * reach, real=True),
             sfft.next_fast_len(cols + 2 * reach, real=True))
    padded = np.pad(image, ((reach, shape[0] - rows - reach), (reach, shape[1] - cols - reach)),
                    mode="symmetric")
    spectrum = sfft.rfft2(padded, workers=-1)
    # The Gaussian's transfer function is separable: an outer product of two 1-D ones.
    scale = -2 * np.pi ** 2 * sigma ** 2
    spectrum *= np.exp(scale * sfft.fftfreq(shape[0]) ** 2).astype(np.float32)[:, None]
    spectrum *= np.exp(scale * sfft.rfftfreq(shape[1]) ** 2).astype(np.float32)[None, :]
    blurred = sfft.irfft2(spectrum, s=shape, workers=-1)
    return blurred[reach:reach + rows, reach:reach + cols].astype(image.dtype, copy=False)


def _bin_mean(image, b):
    """Means of ``b x b`` blocks (float32), a block of rows at a time: strided adds, 8x
    faster than ``reshape(h, b, w, b).mean(axis=(1, 3))``, which reduces non-contiguous axes."""
    if b == 1:
        return image
    h, w = image.shape[0] // b, image.shape[1] // b
    out = np.zeros((h, w), dtype=np.float32)
    step = max(_ROWS // b, 1) * b
    for r0 in range(0, h * b, step):
        block = image[r0:r0 + step, :w * b]
        cols = block[:, 0::b].astype(np.float32)  # a copy: the sum of the b columns
        for k in range(1, b):
            cols += block[:, k::b]
        target = out[r0 // b:(r0 + step) // b]
        for k in range(b):
            target += cols[k::b]
    out *= np.float32(1.0 / (b * b))
    return out


#: A blur this many pixels wide or more is computed on a coarser grid (see _WideBlur).
_COARSE_BLUR_SIGMA = 6.0


class _WideBlur:
    """A Gaussian blur of ``sigma`` >= 6 px, computed on a grid ``factor`` times coarser.

    The image is binned (box means), blurred there with the remaining width
    (``sigma^2 - (factor^2 - 1) / 12``, the box's own variance taken off) and linearly
    interpolated back a block of rows at a time (:meth:`rows`), so no full-size temporary is
    made. Against the full-size blur (a padded real FFT pair of the full grid, ~0.45 s at
    4096^2) the difference is below 0.1% of the blurred image's modulation (rms): a Gaussian
    of sigma >= 1.5 coarse pixels leaves almost nothing near the coarse grid's Nyquist.
    """

    def __init__(self, image, sigma):
        factor = 1
        while sigma / (factor * 2) >= 3.0 and all(n % (factor * 2) == 0 for n in image.shape):
            factor *= 2
        width = np.sqrt(max(sigma ** 2 - (factor ** 2 - 1) / 12.0, 0.0)) / factor
        # By FFT even below _FFT_BLUR_SIGMA: on the binned grid of a 4096^2 image (sigma
        # ~3.4 px) 0.014 s against the direct filter's 0.025 s.
        coarse = _gaussian_blur(_bin_mean(image, factor), width, fft=width >= 2.0)
        self.rows = LinearZoom(coarse, factor).rows


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
    # The ground truth needs the scene only: it is made on a second thread while this one
    # forms the image (numpy lets go of the GIL in its loops, so the two overlap).
    h = w = out.size_px
    carbon = scene.output_carbon_mask()
    truth = Background(_ground_truth, scene, carbon)
    # So are the ice noise's filtered spectrum and the shot noise's draw.
    ice = Background(_ice_term, scene, p_a)
    shot_noise = Background(standard_normal, scene.streams["noise"], (h, w))

    # Pad by edge replication, so the CTF's delocalisation does not wrap one border's objects
    # (a carbon film, a cut particle) onto the opposite border. The wave is rendered straight
    # into the middle of the padded array (np.pad would copy the whole wave once more).
    margin = int(np.ceil(_PAD_NM / p_nm))
    padded = sfft.next_fast_len(n_phys + 2 * margin)
    lo = (padded - n_phys) // 2
    wave_padded = np.empty((padded, padded), dtype=np.complex64)
    psi = wave_padded[lo:lo + n_phys, lo:lo + n_phys]
    psi[...] = 1
    for particle in scene.particles:
        _render_bodies(psi, particle.bodies, p_nm, sigma_a, a)
    for d in scene.distractors:
        if d.polygon_nm is not None:
            _render_polygon(psi, d, p_nm, a)
        else:
            _render_bodies(psi, d.bodies, p_nm, sigma_a, a)
    if scene.carbon is not None:
        _render_carbon(psi, scene, p_nm, sigma_a, a)

    amplitude2 = _bin_mean(_abs2(psi), b)
    # The inelastic image needs only |psi|^2: made now, so that its full-size memory is free
    # again (and reused) before the FFTs allocate theirs.
    blur_px = params.ice.inelastic_blur_nm / out.pixel_size_nm
    if blur_px >= _COARSE_BLUR_SIGMA:
        inelastic_rows = _WideBlur(amplitude2, blur_px).rows
    else:
        inelastic = _gaussian_blur(amplitude2, blur_px) if blur_px > 0 else amplitude2
        inelastic_rows = inelastic.__getitem__
    del amplitude2

    _fill_edges(wave_padded, lo, n_phys)
    del psi
    spectrum = sfft.fft2(wave_padded, workers=-1, overwrite_x=True)
    del wave_padded
    _multiply_ctf(spectrum, spectrum.shape, p_a, scene.optics, optics_p.voltage_kv,
                  optics_p.cs_mm)
    wave = sfft.ifft2(spectrum, workers=-1, overwrite_x=True)
    del spectrum
    intensity = _abs2(wave[lo:lo + n_phys, lo:lo + n_phys],
                      out=_into_own_buffer(wave, n_phys))
    del wave
    # Detector MTF on the physical grid, then binning by summation (as a camera bins).
    real_spec = sfft.rfft2(intensity, workers=-1)
    del intensity
    kr, kc = physics.frequency_grid((n_phys, n_phys), p_a, real=True)
    # The MTF is separable: two broadcast products, no full-size filter.
    real_spec *= np.sinc(kr * np.float32(p_a))
    real_spec *= np.sinc(kc * np.float32(p_a))
    if b == 1:
        # Same grid: both filtered spectra add up before one inverse FFT instead of two.
        real_spec += ice.result()
        elastic = sfft.irfft2(real_spec, s=(n_phys, n_phys), workers=-1).astype(np.float32,
                                                                               copy=False)
        del real_spec
    else:
        detected = sfft.irfft2(real_spec, s=(n_phys, n_phys), workers=-1)
        del real_spec
        elastic = _bin_mean(detected.astype(np.float32, copy=False), b)
        del detected
        elastic += ice.result()

    rows = (np.arange(h, dtype=np.float32) + 0.5)[:, None] * np.float32(out.pixel_size_nm)
    cols = (np.arange(w, dtype=np.float32) + 0.5)[None, :] * np.float32(out.pixel_size_nm)
    fld = out.field_nm
    # The ramp is linear in row and column: a sum of two 1-D terms.
    angle, slope = scene.optics.ramp_angle_rad, 2 * scene.optics.ramp / fld
    electrons = optics_p.dose_e_per_a2 * (out.pixel_size_nm * 10.0) ** 2
    # The counts per unit intensity (electrons x DQE) go into the ramp's two 1-D terms.
    dose = np.float32(electrons * scene.optics.dqe)
    ramp_rows = ((rows - np.float32(fld / 2)) * np.float32(slope * np.cos(angle))
                 + np.float32(1.0)) * dose
    ramp_cols = (cols - np.float32(fld / 2)) * np.float32(slope * np.sin(angle)) * dose
    per_nm_aperture = np.float32(-1.0 / params.ice.aperture_mean_free_path_nm)
    per_nm_inelastic = np.float32(-1.0 / params.ice.inelastic_mean_free_path_nm)
    image = shot_noise.result()

    def expose(part):
        thickness = scene.thickness_nm[part]
        if scene.carbon is not None:
            # Carbon scatters about twice as strongly per nm as vitreous ice.
            thickness = thickness + carbon[part] * np.float32(
                2.0 * params.artifacts.carbon_thickness_nm)
        transmit = np.exp(thickness * per_nm_aperture)
        elastic_fraction = np.exp(thickness * per_nm_inelastic)
        ramp = ramp_rows[part] + ramp_cols
        # ramp * transmit * (f elastic + (1 - f) inelastic), f the elastic fraction
        inelastic_part = inelastic_rows(part)
        mean_counts = elastic[part] - inelastic_part
        mean_counts *= elastic_fraction
        mean_counts += inelastic_part
        mean_counts *= transmit
        mean_counts *= ramp
        np.maximum(mean_counts, 0, out=mean_counts)
        # Shot noise: Gaussian with the Poisson variance.
        image[part] *= np.sqrt(mean_counts)
        image[part] += mean_counts

    row_blocks(expose, h, _ROWS)

    labels, table, distractors = truth.result()
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


def _ice_term(scene, p_a):
    """The weak phase noise of ice (and carbon) through the CTF and MTF, to first order:
    ``-2 F^-1[Phi (sin chi + a cos chi) env MTF]`` on the output grid. Without binning its
    spectrum (the render adds it to the intensity's before their one inverse FFT); with
    binning the image term (float32)."""
    out, optics_p = scene.params.output, scene.params.optics
    h = w = out.size_px
    kr, kc = physics.frequency_grid((h, w), out.pixel_size_nm * 10.0, real=True)
    mtf_rows, mtf_cols = np.sinc(kr * np.float32(p_a)), np.sinc(kc * np.float32(p_a))
    ice_spec = sfft.rfft2(scene.ice_noise, workers=-1)
    _multiply_ctf(ice_spec, (h, w), out.pixel_size_nm * 10.0, scene.optics,
                  optics_p.voltage_kv, optics_p.cs_mm, real=True,
                  factor=lambda rows: np.float32(-2.0) * mtf_rows[rows] * mtf_cols)
    if out.binning == 1:
        return ice_spec
    return sfft.irfft2(ice_spec, s=(h, w), workers=-1).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- ground truth
def _ground_truth(scene, carbon):
    """(labels, particle table rows, distractor codes) of ``scene``."""
    labels, table, boxes = _labels_and_table(scene, carbon)
    return labels, table, _distractor_mask(scene, carbon, labels, boxes)


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
    # Pixels of each label, kept up to date while painting: a bincount of the finished image
    # would read (and widen to intp) all of it again.
    counts = np.zeros(len(scene.particles) + 1, dtype=np.int64)
    full_area, truncated, painted = {}, {}, {}
    min_visible = scene.params.sample.min_visible_fraction
    order = sorted(range(len(scene.particles)), key=lambda i: scene.particles[i].center_nm[2])
    for i in order:
        particle = scene.particles[i]
        whole = _particle_footprint(particle, pixel, size, clip=False)
        if whole is None:
            continue
        # The clipped footprint is the whole one cut to the image: the same pixel centres,
        # so cut rather than computed twice.
        w0, v0, full = whole
        r0, c0 = max(w0, 0), max(v0, 0)
        r1, c1 = min(w0 + full.shape[0], size), min(v0 + full.shape[1], size)
        if r1 <= r0 or c1 <= c0:
            continue
        full_area[i] = int(full.sum())
        mask = full[r0 - w0:r1 - w0, c0 - v0:c1 - v0]
        if min_visible and mask.sum() < min_visible * full_area[i]:
            # A border sliver: drawn in the image, left out of the truth (as if unpicked).
            continue
        window = labels[r0:r0 + mask.shape[0], c0:c0 + mask.shape[1]]
        covered = window[mask]
        counts -= np.bincount(covered, minlength=counts.size)
        counts[i + 1] += covered.size
        np.copyto(window, np.int32(i + 1), where=mask)
        painted[i] = (r0, r1, c0, c1)
        on_carbon = carbon[r0:r0 + mask.shape[0], c0:c0 + mask.shape[1]][mask]
        truncated[i] = bool(int(mask.sum()) < full_area[i] or (on_carbon.any()
                                                               and not on_carbon.all()))
    present = [i for i in range(len(scene.particles)) if counts[i + 1] > 0]
    # Renumber 1..n in particle order. Label i + 1 only ever lies inside the box it was
    # painted in, so each renumbering touches that box, not the whole image (a lookup of
    # 4096^2 int32); new ids are smaller than old ones, so in ascending order no pixel is
    # renumbered twice.
    for new, i in enumerate(present, start=1):
        if new != i + 1:
            r0, r1, c0, c1 = painted[i]
            window = labels[r0:r1, c0:c1]
            window[window == i + 1] = new
    boxes = [painted[i] for i in present]
    return labels, _table(scene, labels, present, full_area, truncated, boxes), boxes


def _touching(labels, boxes):
    """Ids of the labels that share an edge with each label; ``boxes`` (r0, r1, c0, c1) hold
    every labelled pixel, so only they (grown by one pixel) are searched."""
    pairs = set()
    size_r, size_c = labels.shape
    for r0, r1, c0, c1 in boxes:
        window = labels[max(r0 - 1, 0):min(r1 + 1, size_r), max(c0 - 1, 0):min(c1 + 1, size_c)]
        for a, b in ((window[:, :-1], window[:, 1:]), (window[:-1, :], window[1:, :])):
            hit = (a != b) & (a > 0) & (b > 0)
            for x, y in zip(a[hit].tolist(), b[hit].tolist()):
                pairs.add((min(x, y), max(x, y)))
    neighbours: dict[int, list[int]] = {}
    for x, y in sorted(pairs):
        neighbours.setdefault(x, []).append(y)
        neighbours.setdefault(y, []).append(x)
    return neighbours


def _table(scene, labels, present, full_area, truncated, painted):
    pixel = scene.params.output.pixel_size_nm
    n = len(present)
    if n == 0:
        return []
    ids = np.arange(1, n + 1)
    # Sums over the box each particle was painted in (which holds all its pixels), not
    # bincounts weighted by full-image index grids (two float64 images of 4096^2, 0.5 s), nor
    # find_objects over the whole image; integer sums, so the centroids are the same, and the
    # bounding box is that of the pixels found.
    area = np.zeros(n, dtype=np.int64)
    row_c, col_c = np.zeros(n), np.zeros(n)
    boxes = []
    for k, (r0, r1, c0, c1) in enumerate(painted):
        inside = labels[r0:r1, c0:c1] == k + 1
        per_row = np.count_nonzero(inside, axis=1)
        per_col = np.count_nonzero(inside, axis=0)
        area[k] = per_row.sum()
        row_c[k] = per_row @ np.arange(r0, r1)
        col_c[k] = per_col @ np.arange(c0, c1)
        rows_hit, cols_hit = np.flatnonzero(per_row), np.flatnonzero(per_col)
        boxes.append((slice(r0 + int(rows_hit[0]), r0 + int(rows_hit[-1]) + 1),
                      slice(c0 + int(cols_hit[0]), c0 + int(cols_hit[-1]) + 1)))
    row_c = row_c / area + 0.5
    col_c = col_c / area + 0.5
    neighbours = _touching(labels, painted)
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
    return records


def _distractor_mask(scene, carbon, labels, boxes):
    out = scene.params.output
    size, pixel = out.size_px, out.pixel_size_nm
    mask = np.zeros((size, size), dtype=np.uint8)
    np.copyto(mask, np.uint8(DistractorCode.CARBON), where=carbon)
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
    # Labels lie only inside the boxes they were painted in: clear them there.
    for r0, r1, c0, c1 in boxes:
        window = mask[r0:r1, c0:c1]
        np.copyto(window, np.uint8(DistractorCode.NONE), where=labels[r0:r1, c0:c1] > 0)
    return mask
