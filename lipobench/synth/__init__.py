"""Synthetic cryo-EM micrographs of lipid nanoparticles with exact ground truth.

Public API::

    from lipobench.synth import make_dataset, SynthParams, PRESETS, simulate_micrograph
    root = make_dataset(out_dir, preset="quick", seed=0)

See /work/shared/SYNTHETIC.md for the model and :mod:`lipobench.synth.render` for the image
formation. Modules: ``params`` (typed parameters, presets), ``scene`` (what is where; random
streams), ``render`` (pixels and ground truth), ``physics`` (CTF and its analysis),
``dataset`` (the dataset layout on disk), ``preview`` (PNG montage), ``realism`` (numbers
against the real reference micrograph).
"""

from lipobench.synth.dataset import make_dataset, simulate_micrograph
from lipobench.synth.params import PRESETS, SynthParams

__all__ = ["make_dataset", "simulate_micrograph", "SynthParams", "PRESETS"]
