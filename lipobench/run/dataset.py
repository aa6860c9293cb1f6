"""The dataset a run scores on: the experiment's folder, or a synthetic set drawn once.

:func:`check_dataset_source` refuses what the user can get wrong before anything is written;
:func:`prepare_dataset` draws a synthetic dataset into ``OUT/data/<key>/`` (the key is
:func:`lipobench.run.keys.synthetic_key`'s) atomically, so a killed run never leaves half of
one behind, and a later run reuses it.
"""

from __future__ import annotations

from pathlib import Path

from lipobench.errors import UserError
from lipobench.experiment import Experiment, KFoldSplit
from lipobench.fsutil import atomic_dir
from lipobench.run.keys import synthetic_key

__all__ = ["check_dataset_source", "prepare_dataset"]


def check_dataset_source(experiment: Experiment) -> None:
    """Refuse a missing dataset folder, an unknown preset or too many folds, before any work."""
    where = str(experiment.source or "experiment")
    path = experiment.dataset_path()
    if path is not None:
        if not path.exists():
            raise UserError(f"{where}: dataset.path: {path} does not exist; give a dataset "
                            "folder (relative to the experiment file) or use synthetic = {...}")
        return
    from lipobench.synth.params import PRESETS

    source = experiment.dataset.synthetic
    if source.preset not in PRESETS:
        raise UserError(f"{where}: dataset.synthetic.preset: unknown preset {source.preset!r}; "
                        f"use one of {', '.join(sorted(PRESETS))}")
    n_images = source.n_images or PRESETS[source.preset].n_images
    split = experiment.split
    if isinstance(split, KFoldSplit) and split.k > n_images:
        raise UserError(f"{where}: split.k: {split.k} folds but the dataset has {n_images} "
                        f"images; use k <= {n_images}")


def prepare_dataset(experiment: Experiment, out: Path) -> Path:
    """The dataset folder: the experiment's path, or a synthetic set drawn once under OUT/data."""
    path = experiment.dataset_path()
    if path is not None:
        return path.resolve()
    source = experiment.dataset.synthetic
    options = {"n_images": source.n_images, "size": source.size,
               "pixel_size_nm": source.pixel_size_nm, "binning": source.binning,
               "count": source.count}
    given = {k: v for k, v in options.items() if v is not None}
    target = Path(out) / "data" / synthetic_key(source.preset, source.seed, given)
    marker = target / "dataset.toml"
    if not marker.exists():
        from lipobench.synth import make_dataset

        with atomic_dir(target) as tmp:
            made = Path(make_dataset(tmp, preset=source.preset, seed=source.seed, **given))
            if made.resolve() != tmp.resolve():
                raise RuntimeError(f"make_dataset wrote to {made}, not to {tmp}")
    return target.resolve()
