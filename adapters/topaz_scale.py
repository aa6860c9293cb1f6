"""lipobench's shipped Topaz detector at each micrograph's scale (what ``lipobench pick`` runs).

The detector learnt particles of one width, in the pixels it was trained at: micrographs of
the `paper` preset (0.888 nm/px, median particle width 75 px) Fourier-downsampled 4x, so about
19 px. A micrograph whose particles are twice as wide needs twice the downsampling to show
them at that width. The downsampling factor follows from the particles' width in the
micrograph's pixels:

- pixel size known: the detector's training width seen at the micrograph's pixel size
  (``75 px x 0.888 nm / micrograph nm``);
- pixel size unknown: the width the shipped Cellpose model's first pass measures
  (:class:`~lipobench.adapters.cellpose_scale.CellposeScaler`; Topaz has no size estimate);
- ``--scale none``: the detector's own factor.

Each pick becomes a circle of half that width, and picks are kept apart by the detector's
training extraction radius in its own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipobench.adapters.topaz import TopazAdapter, write_model_manifest
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionSet
from lipobench.scale import Scale, ScaleSource

__all__ = ["DetectorScale", "TopazAtScale", "ScaledTopaz", "shipped_detector_scale",
           "training_particle_width_px"]


@dataclass(frozen=True)
class DetectorScale:
    """The scale the shipped detector was trained at (from the models manifest)."""

    #: Fourier downsampling of its training micrographs.
    downsample: int
    #: Median particle width of its training micrographs, in their pixels (before downsampling).
    particle_width_px: float
    #: Their pixel size in nm (None: unknown).
    pixel_size_nm: float | None
    #: ``topaz extract -r`` in the detector's pixels: the spacing its validation used.
    extract_radius: int


@dataclass(frozen=True)
class TopazAtScale:
    """How one micrograph is picked: its downsampling, its particles' width, and why."""

    downsample: int
    particle_width_px: float
    reason: str


def training_particle_width_px(micrographs) -> float:
    """The median equivalent diameter of the particles of labelled ``micrographs`` (their
    pixels): the width a detector trained on them learnt, recorded in the models manifest.

    >>> from lipobench.regions import RegionSet
    >>> truth = RegionSet.from_circles([[20, 20, 5], [60, 60, 10]], image_shape=(80, 80))
    >>> round(training_particle_width_px([Micrograph("m", np.zeros((80, 80)), truth=truth)]))
    15
    """
    widths = [m.truth.equivalent_diameters() for m in micrographs]
    return round(float(np.median(np.concatenate(widths))), 2)


def shipped_detector_scale() -> DetectorScale:
    """The shipped detector's :class:`DetectorScale`, read from the models manifest."""
    from lipobench.shipped import read_manifest, training_pixel_size_nm

    manifest = read_manifest()
    entry = manifest["models"]["topaz"]
    downsample = int(entry["downsample"])
    recipe = manifest["recipe"]["topaz"]
    return DetectorScale(downsample=downsample,
                         particle_width_px=float(entry["particle_width_px"]),
                         pixel_size_nm=training_pixel_size_nm(),
                         extract_radius=max(1, round(float(recipe["extract_radius"])
                                                     / downsample)))


class ScaledTopaz:
    """The shipped Topaz detector on micrographs at their scale.

    The scale comes from a :class:`~lipobench.adapters.cellpose_scale.CellposeScaler`
    (:meth:`at_scale` reads its :class:`~lipobench.scale.Scale`); Topaz's preprocessed
    micrographs and picks are written in ``workdir``.
    """

    def __init__(self, adapter: TopazAdapter, workdir: Path):
        from lipobench.shipped import packaged_model

        self.adapter, self.workdir = adapter, Path(workdir)
        self.detector = packaged_model("topaz")
        self.detector_scale = shipped_detector_scale()

    def at_scale(self, micrograph: Micrograph, scale: Scale) -> TopazAtScale:
        """The downsampling that shows ``micrograph``'s particles at the detector's width."""
        trained = self.detector_scale
        if scale.source is ScaleSource.ESTIMATE and scale.estimate and scale.estimate.diameter_px:
            width = float(scale.estimate.diameter_px)
            why = f"particles look {width:.0f} px wide (first pass)"
        elif (scale.source is ScaleSource.PIXEL_SIZE and micrograph.pixel_size_nm
              and trained.pixel_size_nm):
            width = trained.particle_width_px * trained.pixel_size_nm / micrograph.pixel_size_nm
            why = (f"pixel size {micrograph.pixel_size_nm:g} nm: the detector's "
                   f"{trained.particle_width_px:.0f}-px particles are {width:.0f} px here")
        else:
            width = trained.particle_width_px
            why = "at the detector's own downsampling"
        factor = max(1, round(trained.downsample * width / trained.particle_width_px))
        return TopazAtScale(downsample=factor, particle_width_px=width, reason=(
            f"{why}; downsampled {factor}x to the detector's "
            f"{trained.particle_width_px / trained.downsample:.0f}-px particles"))

    def pick(self, micrograph: Micrograph, at: TopazAtScale) -> RegionSet:
        """Topaz's picks on ``micrograph`` as circles of half the particles' width, scored."""
        workdir = self.workdir / micrograph.name / f"s{at.downsample}"
        workdir.mkdir(parents=True, exist_ok=True)
        reference = workdir / "detector.json"
        write_model_manifest(reference, str(self.detector), at.downsample)
        spacing = self.detector_scale.extract_radius * at.downsample
        (picks,) = self.adapter.predict(reference, [micrograph], {"extract_radius": spacing},
                                        workdir)
        circles = np.array(picks.circles, dtype=np.float64).reshape(-1, 3)
        circles[:, 2] = at.particle_width_px / 2
        return RegionSet.from_circles(circles, image_shape=micrograph.shape,
                                      scores=picks.scores)
