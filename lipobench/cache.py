"""The result cache: content-addressed folders that make a killed run resumable.

Every expensive step is stored under a key, the sha256 of a canonical JSON of everything that
decides its result (adapter, tool version, parameters, data fingerprint). Layout under the
cache root (``OUT/cache`` for a run)::

    train/<key>/            the train workdir: native/ (ground truth in the tool's format,
                            removed once the model is trained: done.json names the training
                            micrographs instead), model/ (whatever the tool writes),
                            done.json (written last)
    predict-work/<key>/     the predict workdir shared by every PREDICT combination of one
                            (model, image set), as adapters/base.py promises
    predict/<key>/          one <image>.npz per micrograph (:func:`save_regions`, which with
                            :func:`load_regions` lives in :mod:`lipobench.regionfiles`) and
                            done.json; created by renaming a finished temporary folder

A train entry counts as finished only once ``done.json`` exists, and that file is written
atomically as the last step, so a run killed mid-training leaves an entry without it, which
the next run wipes and redoes. A predict entry appears all at once (:func:`atomic_dir`).

Integrity: ``done.json`` holds the sha256 of every file of its entry (under ``"files"``;
a train entry's ``native/`` input copy excepted where an adapter keeps its model there).
Reading an entry verifies them: a missing, truncated or altered file, or an entry without
checksums, makes the entry count as not done, with a one-line reason
(:meth:`Cache.train_entry`, :meth:`Cache.predict_entry`), and the runner recomputes it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lipobench.fsutil import atomic_dir, atomic_write_text, file_sha256, inside
from lipobench.regionfiles import load_regions, save_regions
from lipobench.regions import RegionSet

__all__ = ["canonical_json", "sha256_key", "Cache", "save_regions", "load_regions"]

DONE = "done.json"
#: The key of done.json holding {relative path: sha256} of the entry's files.
FILES = "files"
#: Folders of a train entry that are not checksummed: inputs, never read back.
#: The train workdir's folder for the tool's copy of the training data; the runner removes it
#: once the model is trained, so it is never part of an entry's checksums.
NATIVE_DIR = "native"
_UNCHECKED = (NATIVE_DIR,)


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, float):
        if value.is_integer() and math.isfinite(value):
            # 30 and 30.0 are the same parameter to every tool: one key for both.
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump(mode="json"))
    return value


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; enums, paths and numpy values made plain.

    >>> canonical_json({"b": 1.0, "a": [np.int64(2), "x"]})
    '{"a":[2,"x"],"b":1}'
    """
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_key(*parts: Any) -> str:
    """The sha256 hex digest of the canonical JSON of ``parts``.

    >>> sha256_key("log", {"threshold": 0.2}) == sha256_key("log", {"threshold": 0.2})
    True
    >>> len(sha256_key("x"))
    64
    """
    return hashlib.sha256(canonical_json(list(parts)).encode("utf-8")).hexdigest()


class Cache:
    """Finished train and predict results under ``root``; see the module text for the layout."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # -------------------------------------------------------------- train
    def train_dir(self, key: str) -> Path:
        return self.root / "train" / key

    def train_done(self, key: str) -> dict[str, Any] | None:
        """The record of a finished, intact training, or None."""
        return self.train_entry(key)[0]

    def train_entry(self, key: str) -> tuple[dict[str, Any] | None, str]:
        """(record, "") for an intact entry, (None, "") for none, (None, why) when damaged."""
        return _read_entry(self.train_dir(key))

    def start_train(self, key: str) -> Path:
        """An empty train workdir; leftovers of an unfinished attempt are removed."""
        folder = self.train_dir(key)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def finish_train(self, key: str, record: Mapping[str, Any]) -> None:
        folder = self.train_dir(key)
        files = _checksums(folder, skip=_UNCHECKED)
        atomic_write_text(folder / DONE, canonical_json({**record, FILES: files}))

    # -------------------------------------------------------------- predict
    def predict_workdir(self, key: str) -> Path:
        folder = self.root / "predict-work" / key
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def predict_dir(self, key: str) -> Path:
        return self.root / "predict" / key

    def predict_done(self, key: str) -> dict[str, Any] | None:
        """The record of a finished, intact prediction, or None."""
        return self.predict_entry(key)[0]

    def predict_entry(self, key: str) -> tuple[dict[str, Any] | None, str]:
        """(record, "") for an intact entry, (None, "") for none, (None, why) when damaged."""
        return _read_entry(self.predict_dir(key))

    def store_predictions(self, key: str, names, regions, record: Mapping[str, Any]) -> Path:
        """Write one npz per image and the record, all appearing at once."""
        with atomic_dir(self.predict_dir(key)) as tmp:
            for name, region_set in zip(names, regions, strict=True):
                save_regions(inside(tmp, f"{name}.npz"), region_set)
            record = {**record, FILES: _checksums(tmp)}
            (tmp / DONE).write_text(canonical_json(record), encoding="utf-8")
        return self.predict_dir(key)

    def load_predictions(self, key: str, names) -> list[RegionSet]:
        folder = self.predict_dir(key)
        return [load_regions(inside(folder, f"{name}.npz")) for name in names]


def _checksums(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_dir() or relative.parts[0] in skip or relative.as_posix() == DONE:
            continue
        files[relative.as_posix()] = file_sha256(path)
    return files


def _read_entry(folder: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        record = json.loads((folder / DONE).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None, ""
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, f"{DONE} is not valid JSON"
    files = record.pop(FILES, None) if isinstance(record, dict) else None
    if not isinstance(files, dict):
        return None, f"{DONE} holds no checksums (written by an older lipobench)"
    for relative, digest in files.items():
        try:
            path = inside(folder, relative)
        except ValueError:
            return None, f"{DONE} names {relative!r}, outside the entry"
        if not path.is_file():
            return None, f"{relative} is missing"
        if file_sha256(path) != digest:
            return None, f"{relative} does not match its checksum"
    return record, ""
