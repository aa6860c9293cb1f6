"""The simulator's one typed parameter object, :class:`SynthParams`, and its presets.

Every knob of SYNTHETIC.md lives here, grouped as optics, sample, ice, artifacts, output.
``Range`` fields are ``(low, high)`` pairs from which each micrograph draws uniformly. The
object is saved beside the data as ``synth_params.json`` and loads back with
:meth:`SynthParams.from_json`.

>>> p = PRESETS["quick"]
>>> p.output.size_px, p.output.pixel_size_nm, p.output.binning, p.n_images, p.n_test
(512, 0.888, 4, 16, 4)
>>> round(p.output.physical_pixel_size_nm, 3), p.output.physical_size_px
(0.222, 2048)
>>> SynthParams.model_validate_json(p.model_dump_json()) == p
True
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, \
    model_validator

from lipobench.errors import UserError

__all__ = [
    "LNPClass", "OpticsParams", "MorphologyMix", "SampleParams", "IceParams",
    "ArtifactParams", "DisplayParams", "OutputParams", "DomainParams", "SynthParams",
    "PRESETS", "preset",
]


def _ordered(pair: tuple[float, float]) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError(f"a range is (low, high) with low <= high, got {list(pair)}")
    return pair


Range = Annotated[tuple[float, float], AfterValidator(_ordered)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LNPClass(str, enum.Enum):
    """The five LNP morphologies of SYNTHETIC.md."""

    SOLID = "solid"
    BLEB = "bleb"
    LAMELLAR = "lamellar"
    UNILAMELLAR = "unilamellar"
    MULTILAMELLAR = "multilamellar"


class OpticsParams(_Model):
    """Microscope and detector. Ranges are drawn per micrograph."""

    voltage_kv: float = Field(200.0, gt=0)
    cs_mm: float = Field(2.7, ge=0)
    amplitude_contrast: Range = (0.07, 0.10)
    defocus_um: Range = (1.0, 3.0)
    astigmatism_nm: Range = (0.0, 50.0)
    b_factor_a2: Range = (100.0, 300.0)
    dose_e_per_a2: float = Field(120.0, gt=0)
    dqe: Range = (0.4, 0.8)
    illumination_ramp: Range = (0.01, 0.05)

    @model_validator(mode="after")
    def _check(self):
        if not (0 <= self.amplitude_contrast[0] and self.amplitude_contrast[1] < 1):
            raise ValueError("amplitude_contrast must lie in [0, 1)")
        if self.defocus_um[0] <= 0:
            raise ValueError("defocus_um must be positive (underfocus)")
        if not (0 < self.dqe[0] and self.dqe[1] <= 1):
            raise ValueError("dqe must lie in (0, 1]")
        return self


class MorphologyMix(_Model):
    """Fractions of each LNP class; they must sum to 1."""

    solid: float = Field(0.45, ge=0)
    bleb: float = Field(0.20, ge=0)
    lamellar: float = Field(0.10, ge=0)
    unilamellar: float = Field(0.15, ge=0)
    multilamellar: float = Field(0.10, ge=0)

    @model_validator(mode="after")
    def _sums_to_one(self):
        total = sum(self.fractions().values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"the morphology fractions sum to {total:g}; make them sum to 1")
        return self

    def fractions(self) -> dict[LNPClass, float]:
        return {cls: float(getattr(self, cls.value)) for cls in LNPClass}


class SampleParams(_Model):
    """How many LNPs, how big, which kinds, how dark, how they lie."""

    # 55 per 909 nm x 909 nm field, as in the study.
    count_per_um2: float = Field(55 / 0.909 ** 2, ge=0)
    count_dispersion: float = Field(6.0, gt=0)
    diameter_median_nm: float = Field(70.0, gt=0)
    diameter_sigma_ln: float = Field(0.4, ge=0)
    diameter_range_nm: Range = (20.0, 200.0)
    morphology: MorphologyMix = MorphologyMix()
    elongated_fraction: float = Field(0.3, ge=0, le=1)
    axis_ratio: Range = (1.05, 1.5)
    # Calibrated against reference/vesicles (see lipobench.synth.realism): with the nominal
    # potentials (scale 1) a liposome-rich render was about 3x cleaner than the real vesicles.
    contrast_scale: float = Field(0.5, gt=0)
    potential_rim_v: float = 1.6
    potential_core_v: float = 1.2
    potential_head_v: float = 2.0
    potential_tail_v: float = 0.6
    potential_blob_v: float = 1.8
    clustered_fraction: float = Field(0.5, ge=0, le=1)
    cluster_sigma_nm: float = Field(60.0, gt=0)
    touching_fraction: float = Field(0.2, ge=0, le=1)
    touching_gap_nm: Range = (0.0, 3.0)
    # Real fields are cut by the detector: a centre may lie up to this fraction of the
    # particle's radius beyond the border (0 keeps every centre inside, as the study did).
    border_overhang: float = Field(0.0, ge=0, le=1)
    # A particle cut by the border to less than this fraction of its projected area is still
    # drawn but left out of the truth: a sliver of rim carries no shape a picker could find.
    min_visible_fraction: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self):
        if self.diameter_range_nm[0] <= 0:
            raise ValueError("diameter_range_nm must be positive")
        return self

    def mean_projected_area_nm2(self) -> float:
        """Mean projected area of one particle (lognormal second moment, untruncated)."""
        second = self.diameter_median_nm ** 2 * np.exp(2 * self.diameter_sigma_ln ** 2)
        second = min(second, self.diameter_range_nm[1] ** 2)
        return float(np.pi / 4 * second)


class IceParams(_Model):
    """Vitreous ice: thickness field, structure noise, scattering losses."""

    thickness_nm: Range = (60.0, 250.0)
    correlation_nm: float = Field(300.0, gt=0)
    # Phase noise of amorphous ice, as the standard deviation over a 1 nm^2 pixel (rad * nm);
    # a pixel of p nm sees phase_noise / p, as white noise averaged over its area.
    # 0.1 calibrated with contrast_scale against reference/vesicles (see realism.py).
    phase_noise_rad_nm: float = Field(0.1, ge=0)
    aperture_mean_free_path_nm: float = Field(1500.0, gt=0)
    inelastic_mean_free_path_nm: float = Field(275.0, gt=0)
    inelastic_blur_nm: float = Field(3.0, ge=0)


class ArtifactParams(_Model):
    """Things that look like particles but are not (never labelled)."""

    droplet_count_per_um2: float = Field(6.0, ge=0)
    droplet_diameter_nm: Range = (10.0, 200.0)
    droplet_potential_v: float = 1.3
    crystalline_ice_probability: float = Field(0.3, ge=0, le=1)
    crystal_size_nm: Range = (50.0, 1000.0)
    grain_count_per_um2: float = Field(15.0, ge=0)
    grain_size_nm: Range = (10.0, 50.0)
    carbon_edge_probability: float = Field(0.25, ge=0, le=1)
    carbon_thickness_nm: float = Field(20.0, ge=0)
    carbon_phase_noise_rad_nm: float = Field(0.05, ge=0)
    debris_count_per_um2: float = Field(20.0, ge=0)
    debris_size_nm: Range = (5.0, 20.0)


class DisplayParams(_Model):
    """Display renderings like the reference PNG: blur, extra binning, 8-bit scaling.

    Each micrograph is display-rendered with ``probability``; it then draws a Gaussian blur
    ``sigma_px`` (pixels before the extra binning), an extra binning from ``binning_choices``
    and a clipping percentile from ``clip_percent`` (that share of pixels saturates at each
    end of the 0..255 scale). The written image keeps ``output.size_px`` and
    ``output.pixel_size_nm``: the simulation runs ``binning`` times finer and is binned back.
    """

    probability: float = Field(0.0, ge=0, le=1)
    sigma_px: Range = (1.0, 3.0)
    binning_choices: tuple[int, ...] = (1,)
    clip_percent: Range = (0.1, 0.5)

    @model_validator(mode="after")
    def _check(self):
        if not self.binning_choices or min(self.binning_choices) < 1:
            raise ValueError("binning_choices must hold one or more integers >= 1")
        if self.sigma_px[0] < 0:
            raise ValueError("sigma_px must be zero or positive")
        if self.clip_percent[1] >= 50:
            raise ValueError("clip_percent must stay below 50")
        return self


class OutputParams(_Model):
    """The written micrographs: size and pixel size after binning the physical simulation."""

    size_px: int = Field(1024, gt=0)
    pixel_size_nm: float = Field(0.888, gt=0)
    binning: int = Field(4, ge=1)
    display: DisplayParams = DisplayParams()

    @property
    def physical_pixel_size_nm(self) -> float:
        return self.pixel_size_nm / self.binning

    @property
    def physical_size_px(self) -> int:
        return self.size_px * self.binning

    @property
    def field_nm(self) -> float:
        return self.size_px * self.pixel_size_nm


class DomainParams(_Model):
    """Per-micrograph randomisation of what a preset otherwise fixes (domain randomisation).

    Each micrograph draws its output pixel size (``output.binning`` is kept, so the physical
    pixel scales with it and the physical grid keeps its size), dose, median particle
    diameter, contrast scale and the share of the field the particles cover (which sets
    their count). Drawn from a stream of their own, so the scene's five streams are as
    without randomisation.
    """

    pixel_size_nm: Range = (0.6, 1.4)
    dose_e_per_a2: Range = (60.0, 120.0)
    diameter_median_nm: Range = (50.0, 120.0)
    contrast_scale: Range = (0.5, 0.5)
    coverage: Range = (0.15, 0.35)

    @model_validator(mode="after")
    def _check(self):
        if self.pixel_size_nm[0] <= 0 or self.dose_e_per_a2[0] <= 0:
            raise ValueError("pixel_size_nm and dose_e_per_a2 must be positive")
        if self.diameter_median_nm[0] <= 0 or self.contrast_scale[0] <= 0:
            raise ValueError("diameter_median_nm and contrast_scale must be positive")
        if not (0 <= self.coverage[0] and self.coverage[1] <= 0.5):
            raise ValueError("coverage must lie in [0, 0.5]")
        return self


class SynthParams(_Model):
    """Everything the simulator needs, plus the dataset's size, split and seed."""

    name: str = "synthetic-paper"
    seed: int = Field(0, ge=0)
    n_images: int = Field(38, gt=0)
    n_test: int = Field(7, ge=0)
    optics: OpticsParams = OpticsParams()
    sample: SampleParams = SampleParams()
    ice: IceParams = IceParams()
    artifacts: ArtifactParams = ArtifactParams()
    output: OutputParams = OutputParams()
    domain: DomainParams | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.n_test >= self.n_images and self.n_images > 1:
            raise ValueError(f"n_test ({self.n_test}) must be below n_images ({self.n_images})")
        if self.domain is not None and self.domain.pixel_size_nm[1] / self.output.binning > 1.0:
            raise ValueError(
                f"domain.pixel_size_nm up to {self.domain.pixel_size_nm[1]:g} nm with binning "
                f"{self.output.binning} makes the physical pixel too coarse to sample the CTF; "
                "raise output.binning")
        display = self.output.display
        if display.probability > 0 and any(self.output.binning % b
                                            for b in display.binning_choices):
            raise ValueError(
                f"output.display.binning_choices {list(display.binning_choices)} must divide "
                f"output.binning ({self.output.binning}): the display binning is taken from "
                "the camera binning, so that the physical grid keeps its size")
        if self.output.physical_pixel_size_nm > 1.0:
            raise ValueError(
                f"physical pixel size {self.output.physical_pixel_size_nm:g} nm is too coarse "
                "to sample the CTF; raise output.binning (--binning) or lower "
                "output.pixel_size_nm (--pixel-size)")
        packing = self.sample.count_per_um2 * 1e-6 * self.sample.mean_projected_area_nm2()
        if packing > 0.5:
            field = self.output.field_nm
            mean = self.sample.count_per_um2 * (field * 1e-3) ** 2
            raise ValueError(
                f"sample.count_per_um2 = {self.sample.count_per_um2:g} (mean {mean:.0f} "
                f"particles per image) would cover {100 * packing:.0f}% of the field, more "
                "particles than fit; lower it so they cover at most 50%")
        return self

    def with_overrides(self, **changes) -> SynthParams:
        """A validated copy with dotted-path changes, e.g. ``{"output.size_px": 256}``."""
        data = self.model_dump(mode="json")
        for dotted, value in changes.items():
            node = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node[key]
            node[leaf] = value
        return validate_params(data, source="overrides")

    @classmethod
    def from_json(cls, path) -> SynthParams:
        """Load parameters written by :func:`make_dataset` (or by hand); UserError if bad."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: no such parameter file; give a synth_params.json path")
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: not readable JSON ({exc}); fix the file")
        return validate_params(data, source=str(path))


def validate_params(data, *, source: str) -> SynthParams:
    """Validate a dict as :class:`SynthParams`, turning pydantic errors into one-line UserErrors."""
    try:
        return SynthParams.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        where = f"synth parameter {key}: " if key else ""
        raise UserError(f"{source}: {where}{message}") from None


_QUICK = SynthParams(
    name="synthetic-quick", n_images=16, n_test=4,
    output=OutputParams(size_px=512, pixel_size_nm=0.888, binning=4),
)
_PAPER = SynthParams(
    name="synthetic-paper", n_images=38, n_test=7,
    output=OutputParams(size_px=1024, pixel_size_nm=0.888, binning=4),
)

# For the shipped default models: real vesicle fields (reference/vesicles) are dense, cut by
# the border, mostly faint rim-only liposomes in heavy noise, and often seen only as display
# renderings; a model trained on ``paper`` alone misses them. The dense LNP classes keep a
# smaller share so that the same model still finds them. Noise calibrated in realism.py.
_REALISTIC = SynthParams(
    name="synthetic-realistic", n_images=38, n_test=7,
    optics=OpticsParams(defocus_um=(1.0, 4.0)),
    sample=SampleParams(
        morphology=MorphologyMix(solid=0.15, bleb=0.08, lamellar=0.05, unilamellar=0.62,
                                 multilamellar=0.10),
        diameter_range_nm=(25.0, 300.0), clustered_fraction=0.3, touching_fraction=0.3,
        border_overhang=0.8, min_visible_fraction=0.2),
    # 0.2 rad nm and 8-40 e/Å^2 (with the dense classes' 38 % share): std / contrast of
    # the reference's display rendering within its band, see realism.simulated_numbers.
    ice=IceParams(phase_noise_rad_nm=0.2),
    artifacts=ArtifactParams(carbon_edge_probability=0.03, droplet_count_per_um2=3.0,
                             crystalline_ice_probability=0.15, debris_count_per_um2=5.0,
                             debris_size_nm=(5.0, 12.0)),
    output=OutputParams(size_px=1024, pixel_size_nm=0.888, binning=4,
                        display=DisplayParams(probability=0.5, sigma_px=(1.0, 3.0),
                                              binning_choices=(1, 2),
                                              clip_percent=(0.1, 0.5))),
    domain=DomainParams(dose_e_per_a2=(8.0, 40.0), contrast_scale=(0.4, 0.6)),
)

#: Named parameter sets: ``quick`` (16 x 512^2 at 0.888 nm/px, from 2048^2 at 0.222 nm/px,
#: 12 train / 4 test), ``paper`` (38 x 1024^2 at 0.888 nm/px, from 4096^2 at 0.222 nm/px,
#: 31 train / 7 test, as in the study) and ``realistic`` (38 x 1024^2, 31 train / 7 test,
#: domain-randomised per micrograph: 0.6-1.4 nm/px from 4096^2, mostly faint rim-only
#: vesicles, particles cut by the border, half the images display-rendered like the
#: reference PNG; see :class:`DomainParams` and :class:`DisplayParams`).
PRESETS: dict[str, SynthParams] = {"quick": _QUICK, "paper": _PAPER,
                                   "realistic": _REALISTIC}


def preset(name: str) -> SynthParams:
    """The preset called ``name``; a UserError listing the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown synthetic preset {name!r}; use one of {sorted(PRESETS)}") \
            from None
