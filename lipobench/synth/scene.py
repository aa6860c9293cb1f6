"""What is in one micrograph: LNPs, artifacts, ice and optics, drawn from separate streams.

A :class:`Scene` holds geometry only (no pixels). Coordinates are ``(row, col, z)`` in nm from
the field's top-left corner; z runs from the bottom of the ice slab upwards, and a particle with
larger z is nearer the viewer ("front-most") where projections overlap.

Random streams (``np.random.SeedSequence(seed, spawn_key=(index,)).spawn(5)``): geometry
(count, positions), morphology (class, size, shape, inner structure), artifacts (ice, carbon,
droplets, crystals, debris), optics (defocus, astigmatism, B, DQE, ramp) and noise (shot noise,
used by the renderer only). Redrawing the noise stream leaves everything here unchanged.

Why one module of this length: every draw of a micrograph's content comes from one of the five
streams above in a fixed order, which is what makes a seed reproduce a micrograph byte for
byte; keeping the draws together keeps that order in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lipobench.synth._filters import gaussian_filter
from lipobench.synth._grid import LinearZoom, zoom_matrix
from lipobench.synth._parallel import NOISE_BLOCKS, Background, draw_normal
from lipobench.synth.params import LNPClass, SynthParams

__all__ = [
    "DistractorCode", "Texture", "Body", "Particle", "Distractor", "OpticsDraw", "Scene",
    "streams", "build_scene", "ellipsoid_matrix", "make_particle",
]


class DistractorCode:
    """uint8 codes of the distractor mask (0 = none)."""

    NONE = 0
    DROPLET = 1       # hydrocarbon droplet: uniform dark sphere, no rim
    CRYSTAL = 2       # crystalline ice: faceted blob or grain
    CARBON = 3        # carbon film beyond the hole edge
    DEBRIS = 4        # small dense debris


STREAMS = ("geometry", "morphology", "artifacts", "optics", "noise")


def streams(seed: int, index: int, *,
            noise_seed: int | None = None) -> dict[str, np.random.Generator]:
    """The five independent generators of micrograph ``index``; ``noise_seed`` redraws noise only.

    >>> a = streams(0, 3); b = streams(0, 3, noise_seed=9)
    >>> a["geometry"].random() == b["geometry"].random(), a["noise"].random() == b["noise"].random()
    (True, False)
    """
    children = np.random.SeedSequence(seed, spawn_key=(index,)).spawn(len(STREAMS))
    gens = {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}
    if noise_seed is not None:
        gens["noise"] = np.random.default_rng(
            np.random.SeedSequence(noise_seed, spawn_key=(index, len(STREAMS))))
    return gens


@dataclass
class Texture:
    """In-plane modulation of a body's innermost region: sum of cosines (mottle or stripes)."""

    amplitude: float
    wavevectors: np.ndarray   # n x 2, cycles per nm, (row, col)
    phases: np.ndarray        # n

    def evaluate(self, d_row, d_col):
        # The phase of each wave is a sum of a term in d_row and one in d_col (1-D where the
        # offsets are a column and a row): one broadcast add, one cosine and one add per wave.
        two_pi = np.float32(2 * np.pi)
        out = None
        for (kr, kc), ph in zip(self.wavevectors, self.phases):
            wave = np.asarray(np.add(two_pi * np.float32(kr) * d_row + np.float32(ph),
                                     two_pi * np.float32(kc) * d_col))
            np.cos(wave, out=wave)
            if out is None:
                out = wave
            else:
                out += wave
        return np.float32(self.amplitude * np.sqrt(2.0 / len(self.phases))) * out


@dataclass
class Body:
    """Nested ellipsoid shells: ``x^T M x <= s^2`` for each normalised radius ``s``.

    ``potentials[i]`` (volts above ice) fills ``radii[i+1] <= s < radii[i]`` (the last one fills
    the centre). ``texture`` modulates the innermost region. ``outline`` bodies make the mask.
    """

    center_nm: np.ndarray
    matrix: np.ndarray
    radii: np.ndarray
    potentials: np.ndarray
    texture: Texture | None = None
    outline: bool = True

    def projected_form(self):
        """(Q2, m33): the projected ellipse ``d^T Q2 d <= s^2`` and ``M_zz``."""
        m = self.matrix
        q2 = m[:2, :2] - np.outer(m[:2, 2], m[2, :2]) / m[2, 2]
        return q2, float(m[2, 2])

    def half_extent_nm(self):
        """Half sizes of the projected outline along row and col."""
        q2, _ = self.projected_form()
        inv = np.linalg.inv(q2)
        return np.sqrt(np.diag(inv)) * float(self.radii[0])


@dataclass
class Particle:
    klass: LNPClass
    center_nm: np.ndarray     # row, col, z
    axes_nm: np.ndarray       # full principal diameters, descending
    envelope: np.ndarray      # 3 x 3 matrix of an ellipsoid enclosing every body
    bodies: list[Body]

    def radius_along(self, unit):
        return 1.0 / np.sqrt(float(unit @ self.envelope @ unit))

    def half_height_nm(self):
        return float(np.sqrt(np.linalg.inv(self.envelope)[2, 2]))

    def bounding_radius_nm(self):
        # Asked once per particle for every distractor placement try (thousands of times on
        # 4096^2); the envelope never changes after construction, so it is computed once.
        radius = self.__dict__.get("_bounding_radius")
        if radius is None:
            radius = float(np.sqrt(np.max(np.linalg.eigvalsh(np.linalg.inv(self.envelope)))))
            self.__dict__["_bounding_radius"] = radius
        return radius


@dataclass
class Distractor:
    code: int
    center_nm: np.ndarray          # row, col
    radius_nm: float               # bounding circle
    bodies: list[Body] = field(default_factory=list)
    polygon_nm: np.ndarray | None = None   # k x 2 vertices (row, col), absolute
    phase_rad: float = 0.0         # polygon: phase inside
    loss: float = 0.0              # polygon: amplitude loss (-log) inside


@dataclass
class OpticsDraw:
    defocus_nm: float
    astigmatism_nm: float
    astigmatism_angle_rad: float
    b_factor_a2: float
    amplitude_contrast: float
    dqe: float
    ramp: float
    ramp_angle_rad: float


@dataclass
class Scene:
    params: SynthParams
    index: int
    particles: list[Particle]
    distractors: list[Distractor]
    thickness_nm: np.ndarray                    # output grid
    ice_noise: np.ndarray                       # output grid, phase (rad), ice + carbon
    carbon: tuple[float, float, float] | None   # hole centre row, col and radius, nm
    optics: OpticsDraw
    streams: dict = field(repr=False, default_factory=dict)

    @property
    def field_nm(self) -> float:
        return self.params.output.field_nm

    def carbon_mask(self, points_row, points_col):
        if self.carbon is None:
            return np.zeros(np.broadcast(points_row, points_col).shape, dtype=bool)
        r0, c0, radius = self.carbon
        return (points_row - r0) ** 2 + (points_col - c0) ** 2 > radius ** 2

    def output_carbon_mask(self) -> np.ndarray:
        """:meth:`carbon_mask` at the output pixel centres (float32 grids, as the renderer
        uses), computed once: the scene's ice noise and the renderer both need it."""
        out = self.params.output
        key = (self.carbon, out.size_px, out.pixel_size_nm)
        cached = self.__dict__.get("_output_carbon")
        if cached is not None and cached[0] == key:
            return cached[1]
        rows = (np.arange(out.size_px, dtype=np.float32) + 0.5)[:, None] * np.float32(
            out.pixel_size_nm)
        cols = (np.arange(out.size_px, dtype=np.float32) + 0.5)[None, :] * np.float32(
            out.pixel_size_nm)
        mask = self.carbon_mask(rows, cols)
        self.__dict__["_output_carbon"] = (key, mask)
        return mask


# --------------------------------------------------------------------------- geometry helpers
def random_rotation(rng) -> np.ndarray:
    """A uniformly random 3-D rotation matrix (from a random unit quaternion)."""
    w, x, y, z = rng.normal(size=4)
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def ellipsoid_matrix(semi_axes, rotation=None) -> np.ndarray:
    """``M`` with ``x^T M x <= 1`` inside the ellipsoid of the given semi-axes, rotated.

    >>> np.allclose(ellipsoid_matrix([2.0, 1.0, 1.0]), np.diag([0.25, 1.0, 1.0]))
    True
    """
    rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    return rot @ np.diag(1.0 / np.asarray(semi_axes, dtype=np.float64) ** 2) @ rot.T


def _bilayer(depth0: float, head_spacing: float, head_v: float, tail_v: float):
    """(depth, potential) steps of one bilayer starting at ``depth0`` nm below the surface."""
    return [(depth0, head_v), (depth0 + 1.0, tail_v), (depth0 + head_spacing, head_v),
            (depth0 + head_spacing + 1.0, 0.0)]


def _profile(steps, radius_nm):
    """Turn (depth nm, potential) steps into normalised radii and potentials."""
    radii, potentials = [], []
    for depth, volts in steps:
        s = 1.0 - depth / radius_nm
        if s <= 0.02:
            break
        radii.append(s)
        potentials.append(volts)
    return np.asarray(radii), np.asarray(potentials)


def _mottle(rng, amplitude, k_low=1 / 12, k_high=1 / 4, n=10):
    angles = rng.uniform(0, 2 * np.pi, n)
    mags = rng.uniform(k_low, k_high, n)
    return Texture(amplitude, np.column_stack([mags * np.cos(angles), mags * np.sin(angles)]),
                   rng.uniform(0, 2 * np.pi, n))


def make_particle(klass: LNPClass, center_nm, diameter_nm: float, rng, params: SynthParams,
                  *, axis_ratio: float = 1.0, rotation=None) -> Particle:
    """One LNP of class ``klass``: its bodies, shells and textures (morphology stream ``rng``).

    >>> p = make_particle(LNPClass.UNILAMELLAR, [100, 100, 80], 60.0,
    ...                   np.random.default_rng(0), SynthParams())
    >>> p.klass.value, p.axes_nm.round(1).tolist(), len(p.bodies[0].radii)
    ('unilamellar', [60.0, 60.0, 60.0], 4)
    """
    sample = params.sample
    scale = sample.contrast_scale
    rim, core = sample.potential_rim_v * scale, sample.potential_core_v * scale
    head, tail = sample.potential_head_v * scale, sample.potential_tail_v * scale
    rot = random_rotation(rng) if rotation is None else np.asarray(rotation)
    center = np.asarray(center_nm, dtype=np.float64)
    radius = diameter_nm / 2.0
    semi = np.array([radius * axis_ratio ** (2 / 3), radius * axis_ratio ** (-1 / 3),
                     radius * axis_ratio ** (-1 / 3)])
    matrix = ellipsoid_matrix(semi, rot)
    mean_r = float(np.exp(np.mean(np.log(semi))))
    bodies: list[Body] = []
    if klass in (LNPClass.SOLID, LNPClass.LAMELLAR):
        radii, pots = _profile([(0.0, rim), (2.5, core)], mean_r)
        if klass is LNPClass.SOLID:
            texture = _mottle(rng, 0.15)
        else:
            period = rng.uniform(5.0, 6.5)
            angle = rng.uniform(0, np.pi)
            texture = Texture(0.3 / np.sqrt(2.0), np.array([[np.cos(angle), np.sin(angle)]])
                              / period, rng.uniform(0, 2 * np.pi, 1))
        bodies.append(Body(center, matrix, radii, pots, texture))
    elif klass is LNPClass.UNILAMELLAR:
        radii, pots = _profile(_bilayer(0.0, rng.uniform(3.5, 4.0), head, tail), mean_r)
        bodies.append(Body(center, matrix, radii, pots))
    elif klass is LNPClass.MULTILAMELLAR:
        layers = int(rng.integers(2, 5))
        repeat = rng.uniform(6.0, 7.0)
        layers = max(1, min(layers, int((mean_r - 6.0) // repeat)))
        spacing = rng.uniform(3.5, 4.0)
        steps = []
        for j in range(layers):
            steps += _bilayer(j * repeat, spacing, head, tail)
        radii, pots = _profile(steps, mean_r)
        bodies.append(Body(center, matrix, radii, pots))
    elif klass is LNPClass.BLEB:
        semi = np.full(3, radius)
        core_r = radius * rng.uniform(0.55, 0.75)
        comp_r = radius * rng.uniform(0.5, 0.8)
        axis = rot[:, 0]
        core_c = center - (radius - core_r) * axis
        comp_c = center + (radius - comp_r) * axis
        radii, pots = _profile([(0.0, rim), (2.5, core)], core_r)
        bodies.append(Body(core_c, ellipsoid_matrix([core_r] * 3), radii, pots,
                           _mottle(rng, 0.15)))
        radii, pots = _profile(_bilayer(0.0, rng.uniform(3.5, 4.0), head, tail), comp_r)
        bodies.append(Body(comp_c, ellipsoid_matrix([comp_r] * 3), radii, pots))
        for _ in range(int(rng.integers(0, 6))):
            blob_r = rng.uniform(3.0, 8.0)
            room = comp_r - 5.0 - blob_r
            if room <= 0:
                continue
            offset = rng.normal(size=3)
            offset *= rng.uniform(0, room) / np.linalg.norm(offset)
            bodies.append(Body(comp_c + offset, ellipsoid_matrix([blob_r] * 3), np.array([1.0]),
                               np.array([sample.potential_blob_v * scale]), outline=False))
        matrix = ellipsoid_matrix(semi)
    else:  # pragma: no cover - the enum is closed
        raise ValueError(klass)
    axes = np.sort(2 * semi)[::-1]
    return Particle(klass, center, axes, matrix, bodies)


# --------------------------------------------------------------------------- ice and carbon
def _smooth_field(rng, shape, sigma_px, coarse=48):
    """A smooth random field in [0, 1] on ``shape``, built on a coarse grid then zoomed."""
    sigma_coarse = max(sigma_px * coarse / max(shape), 0.5)
    noise = gaussian_filter(rng.normal(size=(coarse, coarse)), sigma_coarse, mode="wrap")
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-12)
    # Linear interpolation is separable: the 2-D zoom is one 1-D zoom matrix per axis, two
    # small matrix products instead of ndimage.zoom's per-pixel loop (0.4 s on 4096^2).
    along_rows = zoom_matrix(coarse, shape[0])
    along_cols = zoom_matrix(coarse, shape[1])
    return (along_rows @ noise.astype(np.float32)) @ along_cols.T


#: The thickness map varies over hundreds of nm (ice.correlation_nm, the 300 nm rise toward
#: a carbon edge): on output grids finer than this it is computed on a power-of-two binning
#: of them with pixels at most this size and linearly interpolated (LinearZoom), which
#: differs from evaluating it per output pixel by under 0.1 nm of 60-250 nm (4096^2 at 0.222
#: nm: 0.07 s instead of 0.2 s). The 0.888 nm grids of the presets are computed directly.
_THICKNESS_PIXEL_NM = 1.0


def _ice_and_carbon(params: SynthParams, rng):
    out = params.output
    fld = out.field_nm
    factor = 1
    while (out.size_px % (factor * 2) == 0
           and out.pixel_size_nm * factor * 2 <= _THICKNESS_PIXEL_NM):
        factor *= 2
    size, px = out.size_px // factor, out.pixel_size_nm * factor
    carbon = None
    # float32 grids: these full-size maps are float32 in the end, and float64 doubles their cost.
    f32 = np.float32
    rows = ((np.arange(size) + 0.5) * px).astype(f32)[:, None]
    cols = ((np.arange(size) + 0.5) * px).astype(f32)[None, :]
    direction = rng.uniform(0, 2 * np.pi)
    unit = np.array([np.cos(direction), np.sin(direction)])
    if rng.random() < params.artifacts.carbon_edge_probability:
        hole_r = rng.uniform(500.0, 1000.0)
        edge = np.array([fld / 2, fld / 2]) + unit * rng.uniform(0.1, 0.4) * fld
        centre = edge - hole_r * unit
        carbon = (float(centre[0]), float(centre[1]), float(hole_r))

        def toward_edge(r):
            dist_to_edge = np.clip(f32(hole_r) - np.hypot(r - f32(centre[0]),
                                                          cols - f32(centre[1])), 0, None)
            return np.exp(dist_to_edge * f32(-1 / 300.0))
    else:
        strength = f32(rng.uniform(0.3, 1.0))

        def toward_edge(r):
            proj = ((r - f32(fld / 2)) * f32(unit[0] / fld)
                    + (cols - f32(fld / 2)) * f32(unit[1] / fld) + f32(0.5))
            return np.clip(proj, 0, 1) * strength
    lumpy = _smooth_field(rng, (size, size), params.ice.correlation_nm / px)
    lo, hi = params.ice.thickness_nm
    base = rng.uniform(0.0, 0.5)
    # base + 0.5 toward_edge + 0.3 (lumpy - 0.5), clipped to [0, 1], then scaled to [lo, hi];
    # a block of rows at a time, so the temporaries stay small and their memory is reused.
    thickness = lumpy
    for r0 in range(0, size, 128):
        part = slice(r0, r0 + 128)
        frac = toward_edge(rows[part])
        frac *= f32(0.5)
        frac += lumpy[part] * f32(0.3)
        frac += f32(base - 0.15)
        np.clip(frac, 0, 1, out=frac)
        frac *= f32(hi - lo)
        frac += f32(lo)
        thickness[part] = frac
    if factor > 1:
        thickness = LinearZoom(thickness, factor).full()
    return thickness, carbon


# --------------------------------------------------------------------------- sampling
def _diameter(rng, sample, cap_nm):
    lo, hi = sample.diameter_range_nm
    hi = min(hi, cap_nm)
    for _ in range(100):
        d = sample.diameter_median_nm * np.exp(sample.diameter_sigma_ln * rng.normal())
        if lo <= d <= hi:
            return float(d)
    return float(np.clip(sample.diameter_median_nm, lo, max(lo, hi)))


def _place_particles(params, thickness, carbon_fn, geo, morph):
    sample = params.sample
    out = params.output
    fld = out.field_nm
    area_um2 = (fld * 1e-3) ** 2
    mean = sample.count_per_um2 * area_um2
    k = sample.count_dispersion
    count = int(geo.negative_binomial(k, k / (k + mean))) if mean > 0 else 0
    n_clusters = 1 + int(geo.poisson(count * sample.clustered_fraction / 8.0))
    centres = geo.uniform(0, fld, size=(n_clusters, 2))
    classes = list(sample.morphology.fractions())
    probs = np.array([sample.morphology.fractions()[c] for c in classes])
    max_t = float(thickness.max())
    placed: list[Particle] = []
    # Centres and envelope matrices of the placed particles, for _overlaps.
    placed_at, placed_envelopes = np.empty((count, 3)), np.empty((count, 3, 3))
    for _ in range(count):
        klass = classes[int(morph.choice(len(classes), p=probs / probs.sum()))]
        diameter = _diameter(morph, sample, cap_nm=max_t - 4.0)
        ratio = morph.uniform(*sample.axis_ratio) if (
            klass is not LNPClass.BLEB and morph.random() < sample.elongated_fraction) else 1.0
        rotation = random_rotation(morph)
        particle = None
        shape = None  # the particle at the origin; the same until the diameter shrinks
        for attempt in range(60):
            if attempt and attempt % 20 == 0:
                diameter = max(sample.diameter_range_nm[0], 0.85 * diameter)
                shape = None
            if shape is None:
                # A fresh default_rng(0) each time, as every try had: the same shape.
                shape = make_particle(klass, [0, 0, 0], diameter, np.random.default_rng(0),
                                      params, axis_ratio=ratio, rotation=rotation)
                half = shape.half_height_nm()
            # Zero overhang gives the bounds and draws of a field without cut particles.
            overhang = sample.border_overhang * shape.bounding_radius_nm()
            mode = geo.random()
            if placed and mode < sample.touching_fraction:
                partner = placed[int(geo.integers(len(placed)))]
                angle = geo.uniform(0, 2 * np.pi)
                unit = np.array([np.cos(angle), np.sin(angle), 0.0])
                dist = (shape.radius_along(unit) + partner.radius_along(unit)
                        + geo.uniform(*sample.touching_gap_nm))
                centre = partner.center_nm + dist * unit
            elif geo.random() < sample.clustered_fraction:
                c = centres[int(geo.integers(len(centres)))]
                centre = np.append(c + geo.normal(0, sample.cluster_sigma_nm, 2), 0.0)
            else:
                centre = np.append(geo.uniform(-overhang, fld + overhang, 2), 0.0)
            if not (-overhang <= centre[0] < fld + overhang
                    and -overhang <= centre[1] < fld + overhang):
                continue
            if carbon_fn(centre[0], centre[1]):
                continue
            # A centre beyond the border takes the ice thickness of the nearest edge pixel.
            i = min(max(int(centre[0] / out.pixel_size_nm), 0), out.size_px - 1)
            j = min(max(int(centre[1] / out.pixel_size_nm), 0), out.size_px - 1)
            t_local = float(thickness[i, j])
            if 2 * half + 2.0 > t_local:
                continue
            z_lo, z_hi = half + 1.0, t_local - half - 1.0
            centre[2] = np.clip(centre[2], z_lo, z_hi) if mode < sample.touching_fraction \
                else geo.uniform(z_lo, z_hi)
            if placed and _overlaps(centre, shape.envelope, placed_at[:len(placed)],
                                    placed_envelopes[:len(placed)]):
                continue
            particle = make_particle(klass, centre, diameter, morph, params,
                                     axis_ratio=ratio, rotation=rotation)
            break
        if particle is not None:
            placed_at[len(placed)] = particle.center_nm
            placed_envelopes[len(placed)] = particle.envelope
            placed.append(particle)
    return placed


def _overlaps(centre, envelope, centres, envelopes) -> bool:
    """Whether a particle (envelope matrix ``envelope``) at ``centre`` overlaps any placed
    one: closer than the sum of the two envelopes' radii along the line between the centres
    (:meth:`Particle.radius_along`), or at the same centre. All placed particles at once."""
    delta = centre - centres
    dist = np.sqrt(np.einsum("ij,ij->i", delta, delta))
    if not dist.all():
        return True
    unit = delta / dist[:, None]
    own = 1.0 / np.sqrt(np.einsum("ij,jk,ik->i", unit, envelope, unit))
    theirs = 1.0 / np.sqrt(np.einsum("ij,ijk,ik->i", unit, envelopes, unit))
    return bool((dist < own + theirs).any())


def _free(centre, radius, particles, margin=2.0):
    for p in particles:
        if np.hypot(*(centre - p.center_nm[:2])) < radius + p.bounding_radius_nm() + margin:
            return False
    return True


def _sphere_body(centre_rc, radius, volts):
    return Body(np.r_[centre_rc, 0.0], ellipsoid_matrix([radius] * 3), np.array([1.0]),
                np.array([volts]), outline=False)


def _polygon(rng, centre, size):
    k = int(rng.integers(5, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = size / 2 * rng.uniform(0.7, 1.0, k)
    return centre + np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])


def _distractors(params, particles, carbon_fn, rng):
    art = params.artifacts
    fld = params.output.field_nm
    area_um2 = (fld * 1e-3) ** 2
    found: list[Distractor] = []

    def spot(radius, around=None, spread=0.0):
        for _ in range(20):
            if around is None:
                centre = rng.uniform(0, fld, 2)
            else:
                centre = around + rng.normal(0, spread, 2)
            if not (0 <= centre[0] < fld and 0 <= centre[1] < fld):
                continue
            if _free(centre, radius, particles) and all(
                    np.hypot(*(centre - d.center_nm)) >= radius + d.radius_nm for d in found
                    if d.code == DistractorCode.DROPLET):
                return centre
        return None

    n_drops = int(rng.poisson(art.droplet_count_per_um2 * area_um2))
    clusters = rng.uniform(0, fld, size=(1 + int(rng.integers(0, 2)), 2))
    lo, hi = art.droplet_diameter_nm
    for _ in range(n_drops):
        d = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        d = min(d, 0.4 * fld)
        centre = spot(d / 2, clusters[int(rng.integers(len(clusters)))], 80.0)
        if centre is not None:
            volts = art.droplet_potential_v * params.sample.contrast_scale
            found.append(Distractor(DistractorCode.DROPLET, centre, d / 2,
                                    [_sphere_body(centre, d / 2, volts)]))
    if rng.random() < art.crystalline_ice_probability:
        lo, hi = art.crystal_size_nm
        for _ in range(int(rng.integers(1, 3))):
            size = min(float(rng.uniform(lo, hi)), 0.6 * fld)
            centre = spot(size / 2)
            if centre is not None:
                found.append(Distractor(DistractorCode.CRYSTAL, centre, size / 2,
                                        polygon_nm=_polygon(rng, centre, size),
                                        phase_rad=float(rng.uniform(0.05, 0.2)),
                                        loss=float(rng.uniform(0.03, 0.12))))
    lo, hi = art.grain_size_nm
    for _ in range(int(rng.poisson(art.grain_count_per_um2 * area_um2))):
        size = float(rng.uniform(lo, hi))
        centre = spot(size / 2)
        if centre is not None:
            found.append(Distractor(DistractorCode.CRYSTAL, centre, size / 2,
                                    polygon_nm=_polygon(rng, centre, size),
                                    phase_rad=float(rng.uniform(0.05, 0.2)),
                                    loss=float(rng.uniform(0.05, 0.2))))
    lo, hi = art.debris_size_nm
    for _ in range(int(rng.poisson(art.debris_count_per_um2 * area_um2))):
        size = float(rng.uniform(lo, hi))
        centre = spot(size / 2)
        if centre is None:
            continue
        bodies = []
        for _ in range(int(rng.integers(1, 4))):
            r = size / 2 * rng.uniform(0.4, 0.7)
            offset = rng.uniform(-1, 1, 2) * (size / 2 - r)
            bodies.append(_sphere_body(centre + offset, r, 3.0 * params.sample.contrast_scale))
        found.append(Distractor(DistractorCode.DEBRIS, centre, size / 2, bodies))
    return found


def _optics(params, rng) -> OpticsDraw:
    o = params.optics
    return OpticsDraw(
        defocus_nm=float(rng.uniform(*o.defocus_um) * 1e3),
        astigmatism_nm=float(rng.uniform(*o.astigmatism_nm)),
        astigmatism_angle_rad=float(rng.uniform(0, np.pi)),
        b_factor_a2=float(rng.uniform(*o.b_factor_a2)),
        amplitude_contrast=float(rng.uniform(*o.amplitude_contrast)),
        dqe=float(rng.uniform(*o.dqe)),
        ramp=float(rng.uniform(*o.illumination_ramp)),
        ramp_angle_rad=float(rng.uniform(0, 2 * np.pi)),
    )


def build_scene(params: SynthParams, *, index: int = 0, seed: int | None = None,
                noise_seed: int | None = None) -> Scene:
    """Draw the scene of micrograph ``index`` (seed defaults to ``params.seed``).

    >>> from lipobench.synth.params import PRESETS
    >>> p = PRESETS["quick"].with_overrides(**{"output.size_px": 128})
    >>> s1, s2 = build_scene(p, index=1), build_scene(p, index=1, noise_seed=5)
    >>> [q.center_nm.tolist() for q in s1.particles] == [q.center_nm.tolist() for q in s2.particles]
    True
    """
    seed = params.seed if seed is None else seed
    gens = streams(seed, index, noise_seed=noise_seed)
    art = gens["artifacts"]
    out = params.output
    thickness, carbon = _ice_and_carbon(params, art)
    # The ice noise is drawn (from children of the artifacts stream, which leaves that
    # stream's own numbers alone) on other threads while this one places the particles (the
    # thickness map's matrix products are done: a multithreaded BLAS beside other busy
    # threads slows down tenfold).
    noise_draw = Background(draw_normal, art.spawn(NOISE_BLOCKS), (out.size_px, out.size_px))
    scene = Scene(params, index, [], [], thickness, np.zeros((1, 1), np.float32), carbon,
                  _optics(params, gens["optics"]), gens)
    carbon_fn = lambda r, c: bool(scene.carbon_mask(r, c))  # noqa: E731
    scene.particles = _place_particles(params, thickness, carbon_fn, gens["geometry"],
                                       gens["morphology"])
    scene.distractors = _distractors(params, scene.particles, carbon_fn, art)
    # Structure noise of amorphous ice (and carbon), a weak phase on the output grid.
    px = out.pixel_size_nm
    noise = noise_draw.result()
    # Scaled in place, a block of rows at a time: no full-size sigma map.
    ice_sigma = np.float32(params.ice.phase_noise_rad_nm / px)
    if carbon is not None:
        # The renderer's carbon mask (computed once for both).
        on_carbon = scene.output_carbon_mask()
        carbon_sigma = np.hypot(ice_sigma, np.float32(
            params.artifacts.carbon_phase_noise_rad_nm / px), dtype=np.float32)
        for r0 in range(0, out.size_px, 128):
            part = slice(r0, r0 + 128)
            noise[part] *= np.where(on_carbon[part], carbon_sigma, ice_sigma)
    else:
        noise *= ice_sigma
    scene.ice_noise = noise
    return scene
