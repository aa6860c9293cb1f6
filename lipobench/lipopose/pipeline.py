"""The LipoPose steps on micrographs: a segmenter at every diameter, cached on disk, then the merge.

Given a segment function (one Cellpose evaluation: ``segment(image, diameter)`` returns a label
image), :func:`iter_masks` runs it at every diameter of each micrograph, one micrograph at a
time, through a :class:`MaskCache`, and :func:`iter_merged` turns each micrograph's masks into
``(labels, scores)`` (:func:`~lipobench.lipopose.merge.merge_masks`).

Nothing here loads Cellpose: the caller binds a model into the segment function (the LipoPose
adapter does, for PREDICT and for ``lipobench segment`` alike).

Memory stays that of one Cellpose evaluation, then of one micrograph's masks: each diameter's
masks go to the cache as soon as the segment function returns them and are read back for the
merge only once every diameter has run; a micrograph's masks are dropped once it is merged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lipobench.errors import raise_if_interrupted
from lipobench.lipopose.merge import merge_masks
from lipobench.lipopose.methods import ConfidenceMethod, MergeMethod
from lipobench.lipopose.thresholds import DEFAULT_THRESHOLDS

if TYPE_CHECKING:
    from lipobench.micrograph import Micrograph

__all__ = ["SegmentFn", "MaskCache", "iter_masks", "iter_merged", "compact_labels",
           "save_labels", "load_labels"]

#: One segmentation: ``segment(image, diameter)`` returns the image's label image at that
#: diameter (0 = background).
SegmentFn = Callable[[np.ndarray, float], np.ndarray]


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """The label image in the smallest unsigned type that holds its labels.

    All diameters' masks of a micrograph are held until they are merged: at 4096² that is
    16.7 MB each as uint8 (the usual case, under 256 objects) against 67 MB as int32.

    >>> compact_labels(np.array([[0, 3]], dtype=np.int32)).dtype
    dtype('uint8')
    """
    top = int(labels.max(initial=0))
    for dtype in (np.uint8, np.uint16):
        if top <= np.iinfo(dtype).max:
            return labels.astype(dtype)
    return labels


def save_labels(path: Path, labels: np.ndarray) -> None:
    """Write ``labels`` to ``path`` (compressed ``.npz``), atomically."""
    from lipobench.fsutil import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, labels=labels)


def load_labels(path: Path) -> np.ndarray | None:
    """The labels saved at ``path``; None when there are none or the file is damaged."""
    import warnings
    import zipfile

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["labels"]
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile):
        # A damaged cached mask (truncated, emptied, garbage) is a cache miss, not a failure
        # on every rerun: say so and let the caller run Cellpose again for it.
        warnings.warn(f"{path}: damaged cached masks; recomputing them", stacklevel=2)
        return None


@dataclass(frozen=True)
class MaskCache:
    """Per-diameter label images on disk, under ``root/masks/<micrograph>/``.

    One file per (micrograph, diameter, Cellpose thresholds): every combination of merge
    settings for the same model reuses it, so only the merge reruns when those change.

    >>> MaskCache(Path("work"), 0.4, 0.0).path("m0", 30.0).as_posix()
    'work/masks/m0/d30_flow0.4_prob0.npz'
    """

    root: Path
    flow_threshold: float
    cellprob_threshold: float

    def path(self, name: str, diameter: float) -> Path:
        """The file of micrograph ``name``'s labels at ``diameter``."""
        return (Path(self.root) / "masks" / name /
                f"d{diameter:g}_flow{self.flow_threshold:g}_prob{self.cellprob_threshold:g}.npz")


def iter_masks(segment: SegmentFn, micrographs: Iterable[Micrograph],
               diameters: Sequence[float], cache: MaskCache) -> Iterator[list[np.ndarray]]:
    """Per micrograph, in order, its label image at each diameter (cached ones are read).

    ``segment`` runs only for masks missing from ``cache`` (or damaged there); each result is
    stored in its smallest unsigned type (:func:`compact_labels`) before the next run. Nothing
    runs until the iterator advances.
    """

    def run(micrograph: Micrograph, diameter: float, path: Path) -> np.ndarray:
        # Cellpose may swallow a Ctrl-C inside its C++ code: look between runs.
        raise_if_interrupted()
        labels = compact_labels(segment(micrograph.image, diameter))
        save_labels(path, labels)
        return labels

    def cached_or_run(micrograph: Micrograph, diameter: float, path: Path) -> np.ndarray:
        labels = load_labels(path)  # None when damaged: then it runs again
        return labels if labels is not None else run(micrograph, diameter, path)

    for micrograph in micrographs:
        paths = [cache.path(micrograph.name, diameter) for diameter in diameters]
        for diameter, path in zip(diameters, paths, strict=True):
            if not path.is_file():
                run(micrograph, diameter, path)
        # Yielded straight from the expression, so this frame keeps no reference to the
        # masks: once the caller drops them, they are freed.
        yield [cached_or_run(micrograph, diameter, path)
               for diameter, path in zip(diameters, paths, strict=True)]


def iter_merged(per_micrograph: Iterable[list[np.ndarray]],
                thresholds: Sequence[float] = DEFAULT_THRESHOLDS, *,
                merge: MergeMethod | str = MergeMethod.INSTANCES,
                confidence: ConfidenceMethod | str = ConfidenceMethod.AVERAGE,
                window: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each micrograph's masks merged to ``(labels, scores)``, one micrograph at a time.

    >>> masks = iter([[np.array([[1, 0, 2]]), np.array([[1, 0, 0]])]])
    >>> [labels.tolist() for labels, _ in iter_merged(masks, [40, 0])]
    [[[1, 0, 2]]]
    """
    for masks in per_micrograph:
        merged = merge_masks(masks, thresholds, merge=merge, method=confidence, window=window)
        del masks  # freed before the caller gets the merge
        yield merged
