"""The shipped default models: where they live, their manifest, the file of each tool's.

Adapters find a model named ``"default"`` here; :mod:`lipobench.defaults` (the recipe and
pipeline that train them) writes what this module reads. Nothing here imports an adapter, so
adapters may import it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lipobench.errors import ToolUnavailableError

__all__ = ["MODELS_DIR", "MANIFEST_NAME", "user_models_dir", "packaged_model", "read_manifest",
           "sha256_of", "training_pixel_size_nm"]

#: Where the default models live inside the installed package.
MODELS_DIR = Path(__file__).parent / "models"
#: Environment variable naming another folder of default models (same layout and manifest).
MODELS_DIR_ENV = "LIPOBENCH_MODELS_DIR"
MANIFEST_NAME = "manifest.json"
#: Environment variable naming the folder of default models trained on this machine only.
USER_MODELS_DIR_ENV = "LIPOBENCH_USER_MODELS_DIR"
_TRAIN_DEFAULTS_FIX = "run `lipobench train-defaults` (see README, 'Default models')"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def user_models_dir() -> Path:
    """Default models too large for the repository (crYOLO's): ``$LIPOBENCH_USER_MODELS_DIR``,
    else ``~/.local/share/lipobench/models``; same layout and manifest as :data:`MODELS_DIR`.
    """
    if os.environ.get(USER_MODELS_DIR_ENV):
        return Path(os.environ[USER_MODELS_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "lipobench" / "models"


def _models_dir(models_dir: Path | None) -> Path:
    return Path(models_dir or os.environ.get(MODELS_DIR_ENV) or MODELS_DIR)


def read_manifest(models_dir: Path | None = None) -> dict[str, Any]:
    """The manifest of the default models, or an empty one when none were trained."""
    path = _models_dir(models_dir) / MANIFEST_NAME
    if not path.is_file():
        return {"models": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def packaged_model(tool: str, models_dir: Path | None = None) -> Path:
    """The default model file of ``tool`` ("cellpose" or "topaz"), checked against its sha256.

    Raises :class:`~lipobench.errors.ToolUnavailableError` saying how to make it when the model
    is absent or its bytes differ from the manifest.
    """
    models_dir = _models_dir(models_dir)
    entry = read_manifest(models_dir)["models"].get(tool)
    if entry is None:
        raise ToolUnavailableError(
            f"no default {tool} model in {models_dir}: {_TRAIN_DEFAULTS_FIX}, or train one in "
            "the experiment instead"
        )
    path = Path(models_dir) / entry["file"]
    if not path.is_file() or sha256_of(path) != entry["sha256"]:
        raise ToolUnavailableError(
            f"default {tool} model {path} is missing or does not match the sha256 in "
            f"{Path(models_dir) / MANIFEST_NAME}: restore it from git or {_TRAIN_DEFAULTS_FIX}"
        )
    return path


def training_pixel_size_nm(models_dir: Path | None = None) -> float | None:
    """The pixel size (nm) of the micrographs the default models were trained on, or None."""
    value = read_manifest(models_dir).get("dataset", {}).get("pixel_size_nm")
    return float(value) if value else None
