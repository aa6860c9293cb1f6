"""crYOLO (boxes), driven in its own Python environment through its command-line scripts.

crYOLO 1.9.9 needs Python 3.7 and TensorFlow 1.15, so it cannot live in lipobench's
environment, and its licence forbids redistributing it. ``lipobench tools install cryolo``
builds its environment from the pins in ``cryolo-requirements-py37.txt`` (CPU; for GPUs use
crYOLO's own conda route and point lipobench at it). Lookup order of the ``bin`` folder:

1. the adapter option ``bin_dir`` (an experiment's ``[tools.cryolo]`` table, honoured only
   with ``lipobench run --allow-tool-paths``: it names programs to run);
2. ``[tools.cryolo] bin_dir = "/path/to/env/bin"`` in ``~/.config/lipobench/config.toml``;
3. the environment variable ``LIPOBENCH_CRYOLO_BIN``;
4. the environment ``lipobench tools install cryolo`` recorded;
5. ``PATH``.

Rows: crYOLO's y counts from the bottom of the array it reads, and it flips MRC arrays but not
TIFF/PNG/JPEG (see :func:`lipobench.formats.cryolo_flips_rows`). The adapter hands crYOLO TIFF
files, so both its training boxes and its predictions are flipped at this border; a test runs
crYOLO's own parser and writer on these files (``tests/adapters/test_cryolo_real.py``).

One prediction run writes every box above confidence 0 to ``CBOX/``; the confidence threshold
is a SELECT-stage parameter applied offline, so sweeping it never reruns crYOLO. crYOLO drops
predicted boxes that are not wholly inside the image.

Starting weights: crYOLO's first training downloads backbone weights from the web; without a
connection it trains from random initialisation and says so only in its log. The adapter
reads the log and records the start (``model.init`` in the results), because a crYOLO trained
from random weights for a CPU budget of minutes is far from what crYOLO reaches.

Why one module of this length: the adapter, its parameter schemas and the lookup and checks of
crYOLO's separate environment are one tool's border; its file formats live in
lipobench.formats.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lipobench.adapters.base import (
    Adapter,
    Availability,
    ModelRef,
    Stage,
    keep_scores_at_least,
    validate_parameters,
)
from lipobench.errors import ToolFailedError, ToolUnavailableError, UserError
from lipobench.fsutil import atomic_dir, atomic_write_text
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet
from lipobench.toolenv import ToolEnvironment

__all__ = ["CryoloAdapter", "CryoloTrainParams", "CryoloSelectParams", "Architecture", "Filter",
           "BIN_ENV", "SCRIPTS", "ENVIRONMENT", "find_cryolo", "cryolo_config",
           "read_predictions", "network_input_size", "training_annotations"]

BIN_ENV = "LIPOBENCH_CRYOLO_BIN"
SCRIPTS = ("cryolo_train.py", "cryolo_predict.py")
MODEL_FILE = "cryolo_model.h5"
CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
TRAINING_FILE = "training.json"
#: crYOLO's own default network input size; larger micrographs are downsized to it.
CRYOLO_INPUT_SIZE = 1024
#: What crYOLO 1.9.9 prints when it cannot fetch its backbone weights.
_RANDOM_INIT_LINE = "Random initialisation of the network"

ENVIRONMENT = ToolEnvironment(
    tool="cryolo", version="1.9.9", python="3.7",
    requirements=Path(__file__).with_name("cryolo-requirements-py37.txt"),
    checks=(("cryolo_train.py", "-h"), ("cryolo_predict.py", "-h"),
            ("cryolo_gui.py", "config", "-h")),
    size="about 900 MB, a few minutes",
    # wheel 0.42.0: the last release for Python 3.7.
    build_pins=("wheel==0.42.0",))

_INSTALL_FIX = (
    "run `lipobench tools install cryolo` (Python 3.7 with TensorFlow 1.15.5 from PyPI, CPU); "
    "for GPUs install crYOLO's conda environment (https://cryolo.readthedocs.io) and set "
    f"{BIN_ENV} to its bin folder, or bin_dir under [tools.cryolo] in "
    "~/.config/lipobench/config.toml"
)


class Architecture(str, enum.Enum):
    """The backbones crYOLO 1.9.9 offers (``cryolo_gui.py config --architecture``)."""

    PHOSAURUSNET = "PhosaurusNet"
    CRYOLO = "crYOLO"
    YOLO = "YOLO"


class Filter(str, enum.Enum):
    """crYOLO's image filter before training and prediction (JANNI is not installed)."""

    LOWPASS = "lowpass"
    NONE = "none"


class CryoloTrainParams(BaseModel):
    """TRAIN-stage parameters of :class:`CryoloAdapter`: the one place each is declared."""

    model_config = ConfigDict(extra="forbid", strict=True)

    box_size: int | None = Field(
        None, gt=0, json_schema_extra={"abbreviation": "box"},
        description="square box side, px; None = median tight-box side of the "
                    "training ground truth")
    input_size: int | None = Field(
        None, ge=64, multiple_of=32,
        description="network input, px (a multiple of 32); None = the training micrographs' "
                    f"shorter side rounded down to a multiple of 32, at most {CRYOLO_INPUT_SIZE} "
                    "(crYOLO's default), so small micrographs are never upscaled")
    architecture: Architecture = Field(
        Architecture.PHOSAURUSNET, strict=False, description="backbone network")
    nb_epoch: int = Field(50, ge=1, json_schema_extra={"abbreviation": "ep"},
                          description="maximum training epochs")
    warmup: int = Field(5, ge=0, description="warm-up epochs (cryolo_train.py -w)")
    early_stop: int = Field(10, ge=1, description="early-stopping patience, epochs (-e)")
    batch_size: int = Field(4, ge=1, description="training batch size")
    train_times: int = Field(10, ge=1, description="times each image is shown per epoch")
    learning_rate: float = Field(1e-4, gt=0, allow_inf_nan=False,
                                 json_schema_extra={"abbreviation": "lr"},
                                 description="learning rate")
    pretrained_weights: str | None = Field(
        None, description="an .h5 model to start from (crYOLO's general model or one trained "
                          "earlier), or 'default' (the one `lipobench train-defaults --tool "
                          "cryolo` made); None = crYOLO's backbone weights, or random weights "
                          "where they cannot be downloaded")
    fine_tune: bool = Field(False, description="train only the last layers (--fine_tune); "
                                               "needs pretrained_weights")
    filter: Filter = Field(Filter.LOWPASS, strict=False,
                           description="'lowpass' (crYOLO's default) or 'none'")
    lowpass_cutoff: float = Field(0.1, gt=0, le=0.5, allow_inf_nan=False,
                                  description="low-pass cutoff, absolute frequency")
    seed: int = Field(10, description="seed of the validation split (--seed)")


class CryoloSelectParams(BaseModel):
    """SELECT-stage parameters of :class:`CryoloAdapter`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    confidence: float = Field(0.3, ge=0, le=1, allow_inf_nan=False,
                              json_schema_extra={"abbreviation": "conf"},
                              description="minimum crYOLO confidence (kept: >=)")


def find_cryolo(bin_dir: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """The folder holding crYOLO's scripts, and where that came from (or why it is missing).

    Returns ``(folder, source)`` when found, ``(None, reason)`` when not. Nothing is run.
    """
    from lipobench.toolenv import installed_bin_dir
    from lipobench.toolrun import user_config_path, user_tool_config

    candidates: list[tuple[str, str]] = []
    if bin_dir is not None:
        candidates.append((os.fspath(bin_dir), "bin_dir option ([tools.cryolo])"))
    configured = user_tool_config("cryolo").get("bin_dir")
    if configured is not None:
        candidates.append((str(configured), f"[tools.cryolo] bin_dir in {user_config_path()}"))
    if os.environ.get(BIN_ENV):
        candidates.append((os.environ[BIN_ENV], f"${BIN_ENV}"))
    installed, installed_source = installed_bin_dir("cryolo")
    if installed is not None:
        candidates.append((os.fspath(installed), installed_source))
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
    return None, (f"crYOLO not found: {SCRIPTS[1]} is not on PATH, neither ${BIN_ENV} nor "
                  "[tools.cryolo] bin_dir is set, and `lipobench tools install cryolo` has not "
                  "run")


def _installed_version(bin_dir: Path) -> str | None:
    """crYOLO's version from its environment's metadata, without starting its Python."""
    for info in sorted(bin_dir.parent.glob("lib/python3*/site-packages/cryolo-*.dist-info")):
        return f"crYOLO {info.name.removeprefix('cryolo-').removesuffix('.dist-info')}"
    return None


def network_input_size(shapes: Sequence[tuple[int, int]]) -> int:
    """crYOLO's input size for micrographs of these shapes: no upscaling, a multiple of 32.

    crYOLO resizes each image's shorter side to the input size; a size above the smallest
    micrograph would upscale it (4x the work at 2x, for no information).

    >>> network_input_size([(512, 512), (600, 520)]), network_input_size([(4096, 4096)])
    (512, 1024)
    >>> network_input_size([(100, 90)])
    64
    """
    shortest = min(min(shape) for shape in shapes)
    return int(max(64, min(CRYOLO_INPUT_SIZE, shortest // 32 * 32)))


def cryolo_config(*, params: CryoloTrainParams, box_size: int, input_size: int,
                  train_images: Path, train_annotations: Path, weights: Path,
                  workdir: Path) -> dict[str, Any]:
    """The training configuration crYOLO reads, as ``cryolo_gui.py config`` would write it.

    Everything crYOLO writes (filtered images, logs) goes under ``workdir``.

    >>> config = cryolo_config(params=CryoloTrainParams(), box_size=64, input_size=512,
    ...                        train_images=Path("img"), train_annotations=Path("ann"),
    ...                        weights=Path("m.h5"), workdir=Path("w"))
    >>> config["model"]["architecture"], config["model"]["anchors"], config["model"]["filter"]
    ('PhosaurusNet', [64, 64], [0.1, 'w/filtered'])
    """
    model: dict[str, Any] = {
        "architecture": params.architecture.value,
        "input_size": int(input_size),
        "anchors": [int(box_size), int(box_size)],
        "max_box_per_image": 700,
        "norm": "STANDARD",
    }
    if params.filter is Filter.LOWPASS:
        model["filter"] = [float(params.lowpass_cutoff), os.fspath(workdir / "filtered")]
    return {
        "model": model,
        "train": {
            "train_image_folder": os.fspath(train_images),
            "train_annot_folder": os.fspath(train_annotations),
            "train_times": params.train_times,
            "batch_size": params.batch_size,
            "learning_rate": params.learning_rate,
            "nb_epoch": params.nb_epoch,
            "object_scale": 5.0,
            "no_object_scale": 1.0,
            "coord_scale": 1.0,
            "class_scale": 1.0,
            "pretrained_weights": params.pretrained_weights or "",
            "saved_weights_name": os.fspath(weights),
            "debug": True,
        },
        # Empty folders: crYOLO holds out a random 20 % of the training images for validation.
        "valid": {"valid_image_folder": "", "valid_annot_folder": "", "valid_times": 1},
        "other": {"log_path": os.fspath(workdir / "logs")},
    }


def _prediction_config(training: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """The training config's model, with every folder crYOLO writes moved into ``workdir``.

    Reusing the training config would make each prediction write filtered images into the
    finished training's cache entry.
    """
    model = dict(training["model"])
    if "filter" in model:
        model["filter"] = [*model["filter"][:-1], os.fspath(workdir / "filtered")]
    return {"model": model, "other": {"log_path": os.fspath(workdir / "logs")}}


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


def training_annotations(native: Path, box_size: int | None, out: Path
                         ) -> tuple[int, list[tuple[int, int]]]:
    """Write crYOLO's training ``.box`` files for the data :meth:`CryoloAdapter.to_native` wrote.

    Each particle becomes a ``box_size`` square around its centre (None: the median side of
    the particles' tight boxes), in crYOLO's rows for the image file it reads. Returns the
    box size and the micrographs' shapes.
    """
    from lipobench.formats import cryolo_flips_rows, read_cbox, write_box

    native = Path(native)
    manifest_path = native / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        raise UserError(f"{manifest_path}: missing or unreadable; rebuild the training "
                        "data with CryoloAdapter.to_native") from None
    truths = {}
    for name, shape in manifest.items():
        image = native / "images" / f"{name}.tif"
        truths[image] = read_cbox(native / "boxes" / f"{name}.cbox", image_shape=tuple(shape),
                                  flip_rows=cryolo_flips_rows(image))
    if box_size is None:
        sides = np.concatenate([np.maximum(t.boxes[:, 2] - t.boxes[:, 0],
                                           t.boxes[:, 3] - t.boxes[:, 1])
                                for t in truths.values()] + [np.zeros(0)])
        if sides.size == 0:
            raise UserError(f"{native}: the training micrographs hold no particles; "
                            "crYOLO needs annotated particles to train")
        box_size = max(1, int(round(float(np.median(sides)))))
    out.mkdir(parents=True, exist_ok=True)
    half = box_size / 2
    for image, truth in truths.items():
        centres = truth.centroids()
        square = RegionSet.from_boxes(
            np.column_stack([centres - half, centres + half]).reshape(-1, 4),
            image_shape=truth.image_shape)
        write_box(out / f"{image.stem}.box", square, flip_rows=cryolo_flips_rows(image))
    return box_size, [t.image_shape for t in truths.values()]


def _validated(model_cls, params: Mapping[str, Any], stage: str):
    return validate_parameters("cryolo", model_cls, params, stage)


class CryoloAdapter(Adapter):
    """crYOLO 1.9 (a YOLO picker) through ``cryolo_train.py``/``cryolo_predict.py``."""

    name = "cryolo"
    region_kind = RegionKind.BOX
    citation = ("Wagner, T. et al. (2019). SPHIRE-crYOLO is a fast and accurate fully automated "
                "particle picker for cryo-EM. Communications Biology 2, 218.")
    schemas = {Stage.TRAIN: CryoloTrainParams, Stage.SELECT: CryoloSelectParams}
    environment = ENVIRONMENT
    #: bin_dir names the programs lipobench runs: an experiment file may set it only with the
    #: user's explicit word (``lipobench run --allow-tool-paths``).
    code_options = ("bin_dir",)

    def __init__(self, *, bin_dir: str | os.PathLike | None = None, gpu: str | None = None,
                 num_cpu: int | None = None, timeout_s: float | None = None) -> None:
        if gpu is not None and not isinstance(gpu, (str, int)):
            raise UserError("[tools.cryolo] gpu must be a GPU id such as \"0\" or \"0 1\"")
        if num_cpu is not None and (not isinstance(num_cpu, int) or num_cpu < 1):
            raise UserError(f"[tools.cryolo] num_cpu must be a positive integer, got {num_cpu!r}")
        self.bin_dir = bin_dir
        self.gpu = None if gpu is None else str(gpu)
        # crYOLO's own default is half the CPUs; a benchmark on a workstation wants them all.
        self.num_cpu = num_cpu if num_cpu is not None else (os.cpu_count() or 1)
        self.timeout_s = timeout_s

    def test_parameters(self) -> dict[str, Any]:
        return {**super().test_parameters(), "nb_epoch": 1, "warmup": 0, "early_stop": 1,
                "batch_size": 2, "train_times": 1, "filter": "none", "confidence": 0.1}

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
        flags = ["-nc", str(self.num_cpu)]
        if self.gpu is not None:
            flags += ["-g", *self.gpu.split()]
        return flags

    # ---------------------------------------------------------------- work
    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        """TIFF images and tight-box CBOX annotations (each particle's own size).

        The square boxes crYOLO trains on depend on the TRAIN parameter ``box_size``, so
        :meth:`train` derives them from these files.
        """
        from lipobench.formats import cryolo_flips_rows, write_cbox

        self._script(SCRIPTS[0])  # fail before any work when crYOLO is missing
        workdir = Path(workdir)
        # One pass: the runner's micrographs are read from disk as they are reached. A
        # micrograph without truth stops the pass, and atomic_dir leaves nothing behind.
        with atomic_dir(workdir / "cryolo") as tmp:
            (tmp / "boxes").mkdir()
            manifest = {}
            for micrograph in micrographs:
                if micrograph.truth is None:
                    raise UserError(f"micrograph {micrograph.name!r} has no ground truth; "
                                    "crYOLO trains only on annotated micrographs")
                image = _write_images([micrograph], tmp / "images")[micrograph.name]
                write_cbox(tmp / "boxes" / f"{micrograph.name}.cbox", micrograph.truth.to_boxes(),
                           flip_rows=cryolo_flips_rows(image))
                manifest[micrograph.name] = list(micrograph.shape)
            atomic_write_text(tmp / MANIFEST_FILE, json.dumps(manifest, indent=1))
        return workdir / "cryolo"

    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        """Write crYOLO's config and square ``.box`` files, run ``cryolo_train.py``."""
        from lipobench.toolrun import run_tool

        p = _validated(CryoloTrainParams, params, "train")
        script = self._script(SCRIPTS[0])
        native, workdir = Path(native), Path(workdir).resolve()
        if p.pretrained_weights == "default":
            from lipobench.shipped import packaged_model, user_models_dir

            # The model `lipobench train-defaults --tool cryolo` made, its sha256 checked.
            p = p.model_copy(update={"pretrained_weights": os.fspath(
                packaged_model("cryolo", user_models_dir()))})
        if p.pretrained_weights is not None:
            start = Path(p.pretrained_weights).expanduser()
            if not start.is_file() or start.suffix.lower() != ".h5":
                raise UserError(f"cryolo pretrained_weights {start}: not an .h5 model file; "
                                "give the path of a crYOLO model (.h5) or leave it unset")
            p = p.model_copy(update={"pretrained_weights": os.fspath(start.resolve())})
        elif p.fine_tune:
            raise UserError("cryolo fine_tune = true needs pretrained_weights (the model whose "
                            "last layers to train)")
        box_size, shapes = training_annotations(native, p.box_size, workdir / "annotations")
        input_size = p.input_size or network_input_size(shapes)
        weights = workdir / MODEL_FILE
        config = cryolo_config(params=p, box_size=box_size, input_size=input_size,
                               train_images=(native / "images").resolve(),
                               train_annotations=workdir / "annotations", weights=weights,
                               workdir=workdir)
        config_path = atomic_write_text(workdir / CONFIG_FILE, json.dumps(config, indent=4))
        log = workdir / "cryolo_train.log"
        weights.unlink(missing_ok=True)
        log.unlink(missing_ok=True)  # the start is read from this run's log alone
        run_tool([script, "-c", config_path, "-w", str(p.warmup), "-e", str(p.early_stop),
                  "--seed", str(p.seed), *(["--fine_tune"] if p.fine_tune else []),
                  *self._device_flags()],
                 log_path=log, cwd=workdir, timeout=self.timeout_s, strip_pythonpath=True)
        if not weights.is_file():
            raise ToolFailedError(f"cryolo_train.py finished without writing {weights}; "
                                  f"see log {log}", log_path=log)
        if p.pretrained_weights is not None:
            init = f"weights {Path(p.pretrained_weights).name}"
        elif _RANDOM_INIT_LINE in log.read_text(errors="replace"):
            init = "random (backbone weights not downloadable)"
        else:
            init = "crYOLO backbone weights"
        atomic_write_text(workdir / TRAINING_FILE, json.dumps(
            {"init": init, "box_size": box_size, "input_size": input_size,
             "nb_epoch": p.nb_epoch}, indent=1))
        return weights

    def model_info(self, model: ModelRef) -> dict[str, str]:
        """How the model started, its epochs and sizes (from ``training.json``)."""
        try:
            record = json.loads((Path(model).parent / TRAINING_FILE).read_text())
        except (OSError, ValueError, TypeError):
            return {}
        return {key: str(record[key]) for key in ("init", "nb_epoch", "box_size", "input_size")
                if key in record}

    def predict(self, model: ModelRef, micrographs: Sequence[Micrograph],
                params: Mapping[str, Any], workdir: Path) -> list[RegionSet]:
        """Run ``cryolo_predict.py`` once at confidence 0 and read every CBOX file."""
        from lipobench.toolrun import run_tool

        script = self._script(SCRIPTS[1])
        weights = Path(model)
        training_config = weights.parent / CONFIG_FILE
        for needed in (weights, training_config):
            if not needed.is_file():
                raise UserError(f"{needed}: crYOLO model file missing; retrain (the cache "
                                "entry of this training is incomplete)")
        workdir = Path(workdir).resolve()
        config_path = atomic_write_text(workdir / CONFIG_FILE, json.dumps(
            _prediction_config(json.loads(training_config.read_text()), workdir), indent=4))
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
        """Keep the boxes whose confidence is at least ``confidence``."""
        return keep_scores_at_least(regions, _validated(CryoloSelectParams, params,
                                                        "select").confidence)
