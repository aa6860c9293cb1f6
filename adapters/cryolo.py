"""crYOLO (boxes), driven in its own Python environment through its command-line scripts.

crYOLO 1.9 needs Python <= 3.8 and TensorFlow 1.15, so it cannot live in lipobench's
environment, and its licence forbids redistributing it: the user installs it (conda, as its
documentation says) and tells lipobench where its ``bin`` folder is. Lookup order:

1. the adapter option ``bin_dir`` (an experiment's ``[tools.cryolo]`` table);
2. ``[tools.cryolo] bin_dir = "/path/to/env/bin"`` in ``~/.config/lipobench/config.toml``;
3. the environment variable ``LIPOBENCH_CRYOLO_BIN``;
4. ``PATH``.

Images are handed to crYOLO as TIFF, which crYOLO reads without flipping rows, so its y is our
row. One prediction run writes every box above confidence 0 to ``CBOX/``; the confidence
threshold is a SELECT-stage parameter applied offline, so sweeping it never reruns crYOLO.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lipobench.adapters.base import Adapter, Availability, ModelRef, Parameter, Stage
from lipobench.errors import ToolFailedError, ToolUnavailableError, UserError
from lipobench.fsutil import atomic_dir, atomic_write_text
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet

__all__ = ["CryoloAdapter", "BIN_ENV", "SCRIPTS", "find_cryolo", "cryolo_config"]

BIN_ENV = "LIPOBENCH_CRYOLO_BIN"
SCRIPTS = ("cryolo_train.py", "cryolo_predict.py")
MODEL_FILE = "cryolo_model.h5"
CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"

_INSTALL_FIX = (
    "install crYOLO in its own conda environment (Python 3.8, TensorFlow 1.15: "
    "https://cryolo.readthedocs.io) and set LIPOBENCH_CRYOLO_BIN to that environment's bin "
    "folder, or bin_dir under [tools.cryolo] in ~/.config/lipobench/config.toml or the experiment"
)


def find_cryolo(bin_dir: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """The folder holding crYOLO's scripts, and where that came from (or why it is missing).

    Returns ``(folder, source)`` when found, ``(None, reason)`` when not. Nothing is run.
    """
    from lipobench.toolrun import user_config_path, user_tool_config

    candidates: list[tuple[str, str]] = []
    if bin_dir is not None:
        candidates.append((os.fspath(bin_dir), "bin_dir option ([tools.cryolo])"))
    configured = user_tool_config("cryolo").get("bin_dir")
    if configured is not None:
        candidates.append((str(configured), f"[tools.cryolo] bin_dir in {user_config_path()}"))
    if os.environ.get(BIN_ENV):
        candidates.append((os.environ[BIN_ENV], f"${BIN_ENV}"))
    for folder, source in candidates:
        # An explicit setting that is wrong is an error, not a reason to look elsewhere.
        path = Path(folder).expanduser()
        missing = [s for s in SCRIPTS if not os.access(path / s, os.X_OK)]
        if missing:
            return None, (f"{', '.join(missing)} not found (or not executable) in {path}, "
                          f"set by {source}")
        return path, source
    found = shutil.which(SCRIPTS[1])
    if found is not None:
        path = Path(found).parent
        if all(os.access(path / s, os.X_OK) for s in SCRIPTS):
            return path, "PATH"
    return None, (f"crYOLO not found: {SCRIPTS[1]} is not on PATH and neither ${BIN_ENV} nor "
                  "[tools.cryolo] bin_dir is set")


def _installed_version(bin_dir: Path) -> str | None:
    """crYOLO's version from its environment's metadata, without starting its Python."""
    for info in sorted(bin_dir.parent.glob("lib/python3*/site-packages/cryolo-*.dist-info")):
        return f"crYOLO {info.name.removeprefix('cryolo-').removesuffix('.dist-info')}"
    return None


def cryolo_config(*, box_size: int, train_images: Path, train_annotations: Path,
                  weights: Path, nb_epoch: int, batch_size: int,
                  lowpass_cutoff: float | None, filtered_dir: Path) -> dict[str, Any]:
    """The training configuration crYOLO reads, as ``cryolo_gui.py config`` would write it.

    >>> config = cryolo_config(box_size=64, train_images=Path("img"),
    ...                        train_annotations=Path("ann"), weights=Path("m.h5"), nb_epoch=5,
    ...                        batch_size=4, lowpass_cutoff=0.1, filtered_dir=Path("flt"))
    >>> config["model"]["architecture"], config["model"]["anchors"], config["model"]["filter"]
    ('PhosaurusNet', [64, 64], [0.1, 'flt'])
    """
    model: dict[str, Any] = {
        "architecture": "PhosaurusNet",
        "input_size": 1024,
        "anchors": [int(box_size), int(box_size)],
        "max_box_per_image": 700,
        "norm": "STANDARD",
    }
    if lowpass_cutoff is not None:
        model["filter"] = [float(lowpass_cutoff), os.fspath(filtered_dir)]
    return {
        "model": model,
        "train": {
            "train_image_folder": os.fspath(train_images),
            "train_annot_folder": os.fspath(train_annotations),
            "train_times": 10,
            "batch_size": int(batch_size),
            "learning_rate": 0.0001,
            "nb_epoch": int(nb_epoch),
            "object_scale": 5.0,
            "no_object_scale": 1.0,
            "coord_scale": 1.0,
            "class_scale": 1.0,
            # Empty: no pretrained weights; crYOLO then starts from its backbone (or random).
            "pretrained_weights": "",
            "saved_weights_name": os.fspath(weights),
            "debug": True,
        },
        # Empty folders: crYOLO holds out a random 20 % of the training images for validation.
        "valid": {"valid_image_folder": "", "valid_annot_folder": "", "valid_times": 1},
    }


def _write_images(micrographs: Sequence[Micrograph], folder: Path) -> dict[str, Path]:
    from lipobench.imageio import write_tiff

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for micrograph in micrographs:
        path = folder / f"{micrograph.name}.tif"
        write_tiff(path, np.asarray(micrograph.image, dtype=np.float32))
        paths[micrograph.name] = path
    return paths


def read_predictions(cbox_dir: Path, images: Mapping[str, Path],
                     shapes: Mapping[str, tuple[int, int]], *, log_path: Path | None = None
                     ) -> dict[str, RegionSet]:
    """crYOLO's ``CBOX/<name>.cbox`` files as boxes, one per image, rows per image format.

    A missing file means crYOLO skipped the image (it writes empty files with
    ``--write_empty``): a ToolFailedError naming the log. A malformed file is a UserError
    naming the file and line (raised by :mod:`lipobench.formats`).
    """
    from lipobench.formats import cryolo_flips_rows, read_cbox

    results = {}
    for name, image_path in images.items():
        path = cbox_dir / f"{name}.cbox"
        if not path.is_file():
            raise ToolFailedError(f"crYOLO wrote no {path.name} for image {name!r} in "
                                  f"{cbox_dir}; see log {log_path}", log_path=log_path)
        results[name] = read_cbox(path, image_shape=shapes[name],
                                  flip_rows=cryolo_flips_rows(image_path))
    return results


class CryoloAdapter(Adapter):
    """crYOLO 1.9 (PhosaurusNet YOLO picker) through ``cryolo_train.py``/``cryolo_predict.py``."""

    name = "cryolo"
    region_kind = RegionKind.BOX
    citation = ("Wagner, T. et al. (2019). SPHIRE-crYOLO is a fast and accurate fully automated "
                "particle picker for cryo-EM. Communications Biology 2, 218.")
    parameters = {
        "box_size": Parameter(Stage.TRAIN, (None,),
                              "square box side, px; None = median tight-box side of the "
                              "training ground truth"),
        "nb_epoch": Parameter(Stage.TRAIN, (50,), "maximum training epochs"),
        "warmup": Parameter(Stage.TRAIN, (5,), "warm-up epochs (cryolo_train.py -w)"),
        "early_stop": Parameter(Stage.TRAIN, (10,), "early-stopping patience (-e)"),
        "batch_size": Parameter(Stage.TRAIN, (4,), "training batch size"),
        "lowpass_cutoff": Parameter(Stage.TRAIN, (0.1,),
                                    "low-pass filter cutoff (absolute frequency); None = off"),
        "confidence": Parameter(Stage.SELECT, (0.1, 0.3, 0.5), "minimum crYOLO confidence"),
    }

    def __init__(self, *, bin_dir: str | os.PathLike | None = None, gpu: str | None = None,
                 num_cpu: int | None = None, timeout_s: float | None = None) -> None:
        if gpu is not None and not isinstance(gpu, (str, int)):
            raise UserError("[tools.cryolo] gpu must be a GPU id such as \"0\" or \"0 1\"")
        if num_cpu is not None and (not isinstance(num_cpu, int) or num_cpu < 1):
            raise UserError(f"[tools.cryolo] num_cpu must be a positive integer, got {num_cpu!r}")
        self.bin_dir = bin_dir
        self.gpu = None if gpu is None else str(gpu)
        self.num_cpu = num_cpu
        self.timeout_s = timeout_s

    def test_parameters(self) -> dict[str, Any]:
        return {**super().test_parameters(), "nb_epoch": 1, "warmup": 0, "early_stop": 1,
                "lowpass_cutoff": None}

    # ---------------------------------------------------------------- discovery
    def availability(self) -> Availability:
        try:
            folder, source = find_cryolo(self.bin_dir)
        except UserError as exc:  # an unreadable user config file
            return Availability(False, reason=str(exc), fix="fix the config file")
        if folder is None:
            return Availability(False, reason=source, fix=_INSTALL_FIX)
        return Availability(True, tool_version=_installed_version(folder))

    def _script(self, script: str) -> Path:
        folder, reason = find_cryolo(self.bin_dir)
        if folder is None:
            raise ToolUnavailableError(f"{reason}; {_INSTALL_FIX}")
        return folder / script

    def _device_flags(self) -> list[str]:
        flags = []
        if self.gpu is not None:
            flags += ["-g", *self.gpu.split()]
        if self.num_cpu is not None:
            flags += ["-nc", str(self.num_cpu)]
        return flags

    # ---------------------------------------------------------------- work
    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        """TIFF images and tight-box CBOX annotations (each particle's own size).

        The square boxes crYOLO trains on depend on the TRAIN parameter ``box_size``, so
        :meth:`train` derives them from these files.
        """
        from lipobench.formats import write_cbox

        self._script(SCRIPTS[0])  # fail before any work when crYOLO is missing
        workdir = Path(workdir)
        for micrograph in micrographs:
            if micrograph.truth is None:
                raise UserError(f"micrograph {micrograph.name!r} has no ground truth; crYOLO "
                                "trains only on annotated micrographs")
        with atomic_dir(workdir / "cryolo") as tmp:
            _write_images(micrographs, tmp / "images")
            (tmp / "boxes").mkdir()
            for micrograph in micrographs:
                write_cbox(tmp / "boxes" / f"{micrograph.name}.cbox", micrograph.truth.to_boxes())
            manifest = {m.name: list(m.shape) for m in micrographs}
            atomic_write_text(tmp / MANIFEST_FILE, json.dumps(manifest, indent=1))
        return workdir / "cryolo"

    def _square_boxes(self, native: Path, box_size: int | None, out: Path) -> int:
        from lipobench.formats import read_cbox, write_box

        manifest_path = native / MANIFEST_FILE
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            raise UserError(f"{manifest_path}: missing or unreadable; rebuild the training "
                            "data with CryoloAdapter.to_native") from None
        truths = {name: read_cbox(native / "boxes" / f"{name}.cbox", image_shape=tuple(shape))
                  for name, shape in manifest.items()}
        if box_size is None:
            sides = np.concatenate([np.maximum(t.boxes[:, 2] - t.boxes[:, 0],
                                               t.boxes[:, 3] - t.boxes[:, 1])
                                    for t in truths.values()] + [np.zeros(0)])
            if sides.size == 0:
                raise UserError(f"{native}: the training micrographs hold no particles; "
                                "crYOLO needs annotated particles to train")
            box_size = int(round(float(np.median(sides))))
        box_size = int(box_size)
        if box_size < 1:
            raise UserError(f"cryolo box_size must be a positive number of pixels, got {box_size}")
        out.mkdir(parents=True, exist_ok=True)
        half = box_size / 2
        for name, truth in truths.items():
            centres = truth.centroids()
            square = RegionSet.from_boxes(
                np.column_stack([centres - half, centres + half]).reshape(-1, 4),
                image_shape=truth.image_shape)
            write_box(out / f"{name}.box", square)
        return box_size

    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        """Write crYOLO's config and square ``.box`` files, run ``cryolo_train.py``."""
        from lipobench.toolrun import run_tool

        script = self._script(SCRIPTS[0])
        native, workdir = Path(native), Path(workdir).resolve()
        defaults = {k: p.grid[0] for k, p in self.parameters.items() if p.stage is Stage.TRAIN}
        options = {**defaults, **params}
        box_size = self._square_boxes(native, options["box_size"], workdir / "annotations")
        weights = workdir / MODEL_FILE
        config = cryolo_config(
            box_size=box_size, train_images=(native / "images").resolve(),
            train_annotations=workdir / "annotations", weights=weights,
            nb_epoch=options["nb_epoch"], batch_size=options["batch_size"],
            lowpass_cutoff=options["lowpass_cutoff"], filtered_dir=workdir / "filtered")
        config_path = atomic_write_text(workdir / CONFIG_FILE, json.dumps(config, indent=4))
        log = workdir / "cryolo_train.log"
        weights.unlink(missing_ok=True)
        run_tool([script, "-c", config_path, "-w", str(int(options["warmup"])),
                  "-e", str(int(options["early_stop"])), *self._device_flags()],
                 log_path=log, cwd=workdir, timeout=self.timeout_s, strip_pythonpath=True)
        if not weights.is_file():
            raise ToolFailedError(f"cryolo_train.py finished without writing {weights}; "
                                  f"see log {log}", log_path=log)
        return weights

    def predict(self, model: ModelRef, micrographs: Sequence[Micrograph],
                params: Mapping[str, Any], workdir: Path) -> list[RegionSet]:
        """Run ``cryolo_predict.py`` once at confidence 0 and read every CBOX file."""
        from lipobench.toolrun import run_tool

        script = self._script(SCRIPTS[1])
        weights = Path(model)
        config_path = weights.parent / CONFIG_FILE
        for needed in (weights, config_path):
            if not needed.is_file():
                raise UserError(f"{needed}: crYOLO model file missing; retrain (the cache "
                                "entry of this training is incomplete)")
        workdir = Path(workdir).resolve()
        images = _write_images(micrographs, workdir / "images")
        out = workdir / "cryolo_out"
        log = workdir / "cryolo_predict.log"
        # A finished run is kept (the folder appears only on success) and read again.
        if not out.is_dir() or any(not (out / "CBOX" / f"{n}.cbox").is_file() for n in images):
            with atomic_dir(out) as tmp:
                run_tool([script, "-c", config_path, "-w", weights, "-i", workdir / "images",
                          "-o", tmp, "-t", "0.0", "--write_empty", *self._device_flags()],
                         log_path=log, cwd=workdir, timeout=self.timeout_s,
                         strip_pythonpath=True)
        shapes = {m.name: m.shape for m in micrographs}
        regions = read_predictions(out / "CBOX", images, shapes, log_path=log)
        return [regions[m.name] for m in micrographs]

    def select(self, regions: RegionSet, params: Mapping[str, Any]) -> RegionSet:
        confidence = params.get("confidence")
        if confidence is None or regions.scores is None:
            return regions
        return regions.select(regions.scores >= float(confidence))
