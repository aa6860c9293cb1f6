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

Speed (benchmarks/bench_synth.py): one 4096^2 micrograph in 1.4 s (quiet) to 4.8 s (busy) on
the shared 2-core machine, 3.7-5.2x one complex64 FFT pair of that size measured in the same
run (target 10x); the whole paper preset takes about 1-4 minutes.

Modules: ``params`` (typed parameters, presets), ``scene`` (what is where; random
streams), ``render`` (pixels and ground truth), ``physics`` (CTF and its analysis),
``dataset`` (the dataset layout on disk), ``preview`` (PNG montage), ``realism`` (numbers
against the real reference micrograph).
"""

from lipobench.synth.dataset import make_dataset, simulate_micrograph
from lipobench.synth.params import PRESETS, SynthParams

__all__ = ["make_dataset", "simulate_micrograph", "SynthParams", "PRESETS"]
