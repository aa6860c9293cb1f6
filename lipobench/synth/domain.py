"""Per-micrograph domain randomisation and display renderings (the ``realistic`` preset).

:func:`image_plan` turns a dataset's :class:`~lipobench.synth.params.SynthParams` into the
parameters of one micrograph: with ``params.domain`` set it draws the output pixel size, dose,
particle size prior, contrast and coverage; with ``output.display.probability`` above 0 it
decides whether the micrograph is display-rendered and how. The draws come from a stream of
their own (``SeedSequence(seed, spawn_key=(index, 6))``; the scene's streams are the
children ``(index, 0..4)`` and a redrawn noise seed uses ``(index, 5)``), so the scene drawn
for the given parameters is the one it would be without randomisation. A preset with neither
(``quick``, ``paper``) gets its own parameters back unchanged, and so its bytes.

A display-rendered micrograph is simulated ``b`` times finer (``b`` the display binning,
taken out of the camera binning, so the physical grid keeps its size), blurred, binned by
``b`` and scaled to 8 bits (:func:`display_render`); its labels are made on the written grid
itself, so masks and image stay aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipobench.synth.params import SynthParams

__all__ = ["ImagePlan", "image_plan", "display_render"]

#: Spawn key of the per-micrograph randomisation stream, beside the scene's (index, 0..4) and
#: the redrawn noise's (index, 5).
_DOMAIN_KEY = 6


@dataclass(frozen=True)
class ImagePlan:
    """What one micrograph is simulated with: ``params`` (the simulation grid), ``written``
    (the written grid: the same unless display-binned) and the display settings (``None``
    for a raw float image)."""

    params: SynthParams
    written: SynthParams
    display_sigma_px: float | None = None
    display_binning: int = 1
    display_clip_percent: float | None = None

    @property
    def display(self) -> bool:
        return self.display_sigma_px is not None


def image_plan(params: SynthParams, index: int, *, seed: int | None = None,
               display: bool = True) -> ImagePlan:
    """The parameters of micrograph ``index``; ``display=False`` keeps it a raw float image
    (the other draws stay the same).

    >>> from lipobench.synth.params import PRESETS
    >>> image_plan(PRESETS["paper"], 3).params is PRESETS["paper"]
    True
    >>> plan = image_plan(PRESETS["realistic"], 0)
    >>> plan.written.output.size_px, 0.6 <= plan.written.output.pixel_size_nm <= 1.4
    (1024, True)
    """
    domain, show = params.domain, params.output.display
    if domain is None and show.probability == 0:
        return ImagePlan(params, params)
    seed = params.seed if seed is None else seed
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, _DOMAIN_KEY)))
    changes: dict = {}
    if domain is not None:
        sample = params.sample
        median = float(rng.uniform(*domain.diameter_median_nm))
        second = median ** 2 * np.exp(2 * sample.diameter_sigma_ln ** 2)
        mean_area = np.pi / 4 * min(second, sample.diameter_range_nm[1] ** 2)
        changes = {
            # Log-uniform: particle sizes in pixels spread evenly over the factor of ~2.
            "output.pixel_size_nm": float(np.exp(rng.uniform(*np.log(domain.pixel_size_nm)))),
            "optics.dose_e_per_a2": float(rng.uniform(*domain.dose_e_per_a2)),
            "sample.diameter_median_nm": median,
            "sample.contrast_scale": float(rng.uniform(*domain.contrast_scale)),
            "sample.count_per_um2": float(rng.uniform(*domain.coverage)) * 1e6 / mean_area,
        }
    # Drawn whether or not it is used, so display=False leaves the other draws alone.
    shown = rng.random() < show.probability
    sigma = float(rng.uniform(*show.sigma_px))
    b = int(show.binning_choices[int(rng.integers(len(show.binning_choices)))])
    clip = float(rng.uniform(*show.clip_percent))
    # The plan's parameters are one micrograph's, drawn: nothing is left to draw from them.
    written = params.with_overrides(**changes, **{"domain": None,
                                                  "output.display.probability": 0.0})
    if not (shown and display):
        return ImagePlan(written, written)
    out = written.output
    simulated = written.with_overrides(**{
        "output.size_px": out.size_px * b, "output.pixel_size_nm": out.pixel_size_nm / b,
        "output.binning": out.binning // b}) if b > 1 else written
    return ImagePlan(simulated, written, sigma, b, clip)


def display_render(image, *, sigma_px: float, binning: int = 1,
                   clip_percent: float = 0.1) -> np.ndarray:
    """Blur by ``sigma_px``, bin by ``binning`` (means), scale the ``clip_percent`` and
    ``100 - clip_percent`` percentiles to 0..255 and round: 8-bit values as float32.

    >>> out = display_render(np.arange(64.0).reshape(8, 8), sigma_px=0, binning=2)
    >>> out.shape, out.dtype.name, float(out.min()), float(out.max())
    ((4, 4), 'float32', 0.0, 255.0)
    """
    image = np.asarray(image, dtype=np.float32)
    if sigma_px > 0:
        from scipy import ndimage  # full-size images; here, off the start-up of synth

        image = ndimage.gaussian_filter(image, sigma_px)
    if binning > 1:
        h, w = (s // binning * binning for s in image.shape)
        image = image[:h, :w].reshape(h // binning, binning, w // binning, binning).mean(
            axis=(1, 3))
    lo, hi = np.percentile(image, [clip_percent, 100 - clip_percent])
    scaled = (image - lo) * np.float32(255 / max(hi - lo, 1e-12))
    return np.clip(np.rint(scaled), 0, 255).astype(np.float32)
