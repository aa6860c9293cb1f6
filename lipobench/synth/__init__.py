"""Synthetic cryo-EM micrographs of lipid nanoparticles with exact ground truth.

Public API::

    from lipobench.synth import make_dataset, SynthParams, PRESETS, simulate_micrograph
    root = make_dataset(out_dir, preset="quick", seed=0)

See the team's SYNTHETIC.md (shared/, beside the checkout) for the model and :mod:`lipobench.synth.render` for the image
formation.

Presets. ``paper``: 38 micrographs simulated at 4096^2 x 0.222 nm/px (the study's camera) and
binned 4x to 1024^2 at 0.888 nm/px, about 55 LNPs each, 31 train / 7 test; ``--binning 1``
writes the full 4096^2. ``quick``: 16 micrographs simulated at 2048^2 x 0.222 nm/px (the same
physics and CTF sampling as ``paper``, a 455 nm field, about 14 LNPs each) and binned 4x to
512^2 at 0.888 nm/px, 12 train / 4 test; about 1.5 s per micrograph on 2 cores.

Calibration (tests/synth/test_realism.py): background std over particle contrast, rendered
like reference/vesicles (sigma 3 px, 4x bin, 8 bit): real vesicles 1.75; a liposome-rich
simulation 0.98 with the defaults (contrast_scale 0.5, ice phase noise 0.1 rad nm), 0.16 with
the nominal potentials and weak ice noise. The simulator is still somewhat easier than those
vesicles (which were imaged at a lower dose per nm^2), not much easier.

Speed (benchmarks/bench_synth.py): one paper micrograph (4096^2 physical, 1024^2 written) in
0.7-0.9 s in process on the shared 2-core machine, about 4x one complex64 FFT pair of 4096^2
measured in the same run (target 10x); the whole command ``lipobench synth OUT --n-images 1
--size 4096 --pixel-size 0.222 --binning 1`` in 1.9-2.3 s on a quiet machine, 10x best
against best (0.45 s of it interpreter start and imports, 0.14 s interpreter exit); the whole
paper preset takes about 1-4 minutes.

Modules: ``params`` (typed parameters, presets), ``scene`` (what is where; random
streams), ``render`` (pixels and ground truth), ``physics`` (CTF and its analysis),
``dataset`` (the dataset layout on disk), ``preview`` (PNG montage), ``realism`` (numbers
against the real reference micrograph).
"""

from lipobench.synth.params import PRESETS, SynthParams

__all__ = ["make_dataset", "simulate_micrograph", "SynthParams", "PRESETS"]


def __getattr__(name):
    # The simulator (scipy.fft, scipy.ndimage) is imported on first use, so that importing a
    # submodule such as ``lipobench.synth.params`` (the CLI does) stays cheap.
    if name in ("make_dataset", "simulate_micrograph"):
        from lipobench.synth import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
