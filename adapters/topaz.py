"""Topaz (topaz-em 0.3.x) through its command line: particle picks as circles (RegionKind.CIRCLE).

The steps:

- :meth:`TopazAdapter.to_native` writes each micrograph as float32 MRC (``topaz train`` only
  reads ``.mrc`` from an image folder) and one coordinate file of ground-truth centres (the
  centroid of each truth mask), in the micrographs' own pixels.
- :meth:`TopazAdapter.train` preprocesses the images the way ``topaz preprocess`` does
  (Fourier downsampling by ``downsample``, then Topaz's GMM normalisation, with Topaz's own
  functions, in process, since every start of a Topaz command costs 7-40 s of imports on the
  shared machine), scales the targets, runs ``topaz train`` (:func:`topaz_command`) and
  writes a manifest ``topaz_model.json`` naming the last epoch's model and the downsampling
  factor; that manifest is the model reference. With ``pretrained`` set to a detector Topaz
  ships (``resnet16_u64`` ...) nothing is trained: the manifest names the detector.
- :meth:`TopazAdapter.predict` preprocesses the micrographs the same way, runs
  ``topaz extract`` and turns each pick into a circle of radius ``extract_radius`` (as the
  LipoPose paper draws them) with Topaz's score (a log-likelihood ratio).

Every length parameter (``radius``, ``extract_radius``) is in the micrographs' own pixels;
Topaz receives it divided by ``downsample``.

Coordinates: Topaz writes integer pixel indices ``x = column, y = row`` of the image it was
given. Topaz downsamples by Fourier cropping, so sample ``x`` of an image downsampled by ``D``
sits at original pixel index ``D * x``, whose centre in lipobench's frame is ``D * x + 0.5``
(:func:`picks_from_topaz`, :func:`topaz_index`).

``topaz train`` has no seed option, so two trainings differ slightly.

Why one module of this length: the adapter, its parameter schemas, the preprocessing that
repeats ``topaz preprocess`` with Topaz's own functions, the index conversions for downsampled
images (:func:`topaz_index`, :func:`picks_from_topaz`), the commands run and the model
manifest are one tool's border, which change together when Topaz does; its coordinate file
lives in lipobench.formats.
"""

from __future__ import annotations

import enum
import importlib.metadata
import importlib.util
import json
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lipobench.adapters.base import (
    Adapter,
    Availability,
    ModelRef,
    Stage,
    keep_scores_at_least,
    validate_parameters,
)
from lipobench.adapters.device import Device, resolve_torch_device
from lipobench.errors import ToolFailedError, UserError
from lipobench.fsutil import atomic_dir, atomic_path, atomic_write_text
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet

__all__ = [
    "TopazAdapter",
    "TopazTrainParams",
    "TopazPredictParams",
    "TopazSelectParams",
    "ShippedDetector",
    "topaz_index",
    "picks_from_topaz",
    "topaz_command",
    "write_model_manifest",
]

MANIFEST = "topaz_model.json"
_IMAGES = "images"
_TARGETS = "targets.txt"
#: Topaz's own lower bound on extraction scores (``topaz extract -t``, its default).
EXTRACT_THRESHOLD = -6.0


class ShippedDetector(str, enum.Enum):
    """The pretrained detectors inside the topaz-em package (nothing is downloaded)."""

    RESNET8_U32 = "resnet8_u32"
    RESNET8_U64 = "resnet8_u64"
    RESNET16_U32 = "resnet16_u32"
    RESNET16_U64 = "resnet16_u64"


class Architecture(str, enum.Enum):
    """``topaz train --model`` choices."""

    RESNET8 = "resnet8"
    RESNET16 = "resnet16"
    CONV31 = "conv31"
    CONV63 = "conv63"
    CONV127 = "conv127"


class TopazTrainParams(BaseModel):
    """TRAIN-stage parameters of :class:`TopazAdapter` (lengths in original pixels)."""

    model_config = ConfigDict(extra="forbid")

    pretrained: ShippedDetector | Literal["default"] | None = Field(None, description=(
        "None trains; 'default' (lipobench's trained detector) or a detector Topaz ships "
        "(resnet16_u64, ...) is used as is, without training"))
    downsample: int | None = Field(None, ge=1, json_schema_extra={"abbreviation": "bin"},
                                   description=(
        "Fourier downsampling factor (preprocess -s); None: 1, or for pretrained = 'default' "
        "the factor it was trained at (the models manifest's; the results' model.downsample "
        "says which ran)"))
    radius: float = Field(3.0, ge=0, json_schema_extra={"abbreviation": "r"}, description=(
        "training radius (train -r) in original pixels: pixels this close to a centre count "
        "as positive"))
    n_expected: float | None = Field(None, gt=0, description=(
        "expected particles per micrograph (train -n); None: the training set's mean count"))
    num_epochs: int = Field(10, ge=1, description="train --num-epochs")
    epoch_size: int = Field(1000, ge=1, description="train --epoch-size (updates per epoch)")
    minibatch_size: int = Field(256, ge=2, description="train --minibatch-size")
    learning_rate: float = Field(0.0002, gt=0, json_schema_extra={"abbreviation": "lr"},
                                 description="train --learning-rate")
    model: Architecture = Field(Architecture.RESNET8, description="train --model architecture")
    units: int = Field(32, ge=1, description="train --units")
    init_pretrained: bool = Field(True, description=(
        "start from the shipped weights of the same architecture (Topaz's default; False: "
        "--no-pretrained)"))
    init: Path | Literal["default"] | None = Field(None, description=(
        "continue training this detector (topaz train -m FILE.sav; its architecture replaces "
        "model and units): 'default' (lipobench's shipped one, checked against its sha256) "
        "or a .sav file, which Topaz unpickles, so trust_init = true must say it is trusted"))
    trust_init: bool = Field(False, description=(
        "init names a .sav file you trust: loading it runs the code a pickle holds"))

    @model_validator(mode="after")
    def _init_is_explicit(self):
        if self.init is not None and self.pretrained is not None:
            raise ValueError("init (continue training a detector) and pretrained (use one "
                             "as is) exclude each other; drop one")
        if isinstance(self.init, Path):
            if self.init.suffix != ".sav":
                raise ValueError(f"init {self.init}: not a Topaz .sav model file")
            if not self.trust_init:
                raise ValueError(f"init {self.init}: Topaz unpickles it, which runs any code "
                                 "it holds; set trust_init = true if you trust the file")
        return self


class TopazPredictParams(BaseModel):
    """PREDICT-stage parameters of :class:`TopazAdapter` (lengths in original pixels)."""

    model_config = ConfigDict(extra="forbid")

    extract_radius: float = Field(8.0, gt=0, json_schema_extra={"abbreviation": "ex"},
                                  description=(
        "extract -r in original pixels: minimum spacing of picks and the radius of each "
        "predicted circle"))


class TopazSelectParams(BaseModel):
    """SELECT-stage parameters of :class:`TopazAdapter`."""

    model_config = ConfigDict(extra="forbid")

    min_score: float | None = Field(None, json_schema_extra={"abbreviation": "score"},
                                    description=(
        "keep picks scoring at least this log-likelihood ratio"))


def _validated(model_cls, params: Mapping[str, Any], stage: str):
    return validate_parameters("topaz", model_cls, params, stage)


# ---------------------------------------------------------------------------- coordinates
def topaz_index(centres, *, downsample: int = 1, shape=None) -> np.ndarray:
    """Topaz's integer pixel indices ``(y, x)`` for (row, col) centres in original pixels.

    The inverse of :func:`picks_from_topaz`: ``round((centre - 0.5) / downsample)``, clipped
    into an image of ``shape`` (rows, cols of the downsampled image) when given.

    >>> topaz_index([[80.5, 40.5], [2.0, 3.0]], downsample=4).tolist()
    [[20, 10], [0, 1]]
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    index = np.rint((centres - 0.5) / downsample).astype(np.int64)
    if shape is not None:
        index = np.clip(index, 0, np.asarray(shape, dtype=np.int64) - 1)
    return index


def picks_from_topaz(picks: RegionSet, *, downsample: int, image_shape,
                     radius: float) -> RegionSet:
    """Picks read by :func:`lipobench.formats.read_topaz` (centres ``y + 0.5, x + 0.5`` of the
    downsampled image) as circles of ``radius`` in the original image of ``image_shape``.

    >>> from lipobench.regions import RegionSet
    >>> read = RegionSet.from_circles([[20.5, 10.5, 1]], image_shape=(32, 32), scores=[-1.0])
    >>> picks_from_topaz(read, downsample=4, image_shape=(128, 128), radius=6).circles.tolist()
    [[80.5, 40.5, 6.0]]
    """
    index = picks.circles[:, :2] - 0.5
    centres = index * downsample + 0.5
    circles = np.column_stack([centres, np.full(len(centres), float(radius))])
    return RegionSet.from_circles(circles.reshape(-1, 3), image_shape=image_shape,
                                  scores=picks.scores)


# ---------------------------------------------------------------------------- running topaz
def topaz_command(subcommand: str) -> list[str]:
    """The command line of one Topaz subcommand, in this Python environment.

    ``python -m topaz.commands.<sub>`` runs the same parser and ``main`` as ``topaz <sub>``,
    but the ``topaz`` front end imports every subcommand first: measured on the shared
    2-core machine, ``extract --help`` took 41 s that way and 18 s this way.

    >>> topaz_command("extract")[1:]
    ['-m', 'topaz.commands.extract']
    """
    return [sys.executable, "-m", f"topaz.commands.{subcommand}"]


def _run_topaz(subcommand: str, args: Sequence[str | Path], *, log_path: Path) -> None:
    from lipobench.toolrun import run_tool

    run_tool([*topaz_command(subcommand), *map(str, args)], log_path=log_path)


def _device_flag(device: Device) -> str:
    return "0" if resolve_torch_device(device).type == "cuda" else "-1"


def _preprocess(images: Iterable[tuple[str, np.ndarray]], folder: Path, downsample: int
                ) -> dict:
    """Downsample and normalise like ``topaz preprocess -s D``; write MRCs; return shapes.

    ``images`` are (name, image) pairs, taken one at a time (a generator keeps one in memory).
    """
    import mrcfile
    from topaz.stats import normalize
    from topaz.utils.image import downsample as fourier_downsample

    shapes = {}
    # Topaz's GMM fit samples pixels at random: a fixed seed keeps preprocessing repeatable
    # without disturbing the caller's random state.
    state = np.random.get_state()
    try:
        np.random.seed(0)
        for name, image in images:
            x = np.asarray(image, dtype=np.float32)
            if downsample > 1:
                x = fourier_downsample(x, downsample)
            x, _ = normalize(x, sample=10, method="gmm")
            with atomic_path(folder / f"{name}.mrc") as tmp:
                with mrcfile.new(tmp, overwrite=True) as out:
                    out.set_data(np.ascontiguousarray(x, dtype=np.float32))
            shapes[name] = tuple(int(s) for s in x.shape)
    finally:
        np.random.set_state(state)
    return shapes


def _mrc_shape(path: Path) -> tuple[int, int]:
    """An MRC image's (rows, cols) from its header, without reading the data."""
    import mrcfile

    with mrcfile.open(path, header_only=True, permissive=True) as f:
        return int(f.header.ny), int(f.header.nx)


def _read_mrc(path: Path) -> np.ndarray:
    import mrcfile

    with mrcfile.open(path, permissive=True) as f:
        return np.asarray(f.data, dtype=np.float32).copy()


class TopazAdapter(Adapter):
    """Topaz positive-unlabelled particle picking, trained or with a shipped detector."""

    name: ClassVar[str] = "topaz"
    region_kind: ClassVar[RegionKind] = RegionKind.CIRCLE
    citation: ClassVar[str] = (
        "Bepler T, Morin A, Rapp M, Brasch J, Shapiro L, Noble AJ, Berger B. Positive-unlabeled "
        "convolutional neural networks for particle picking in cryo-electron micrographs. "
        "Nat Methods 16, 1153-1160 (2019)"
    )
    schemas: ClassVar[Mapping[Stage, type[BaseModel]]] = {
        Stage.TRAIN: TopazTrainParams, Stage.PREDICT: TopazPredictParams,
        Stage.SELECT: TopazSelectParams}

    def __init__(self, device: Device | str = Device.AUTO):
        self.device = Device(device)

    # ---------------------------------------------------------------- discovery
    def availability(self) -> Availability:
        if importlib.util.find_spec("topaz") is None:
            return Availability(False, "the topaz-em package is not installed",
                                "install lipobench's dependencies (topaz-em)")
        return Availability(True, tool_version=importlib.metadata.version("topaz-em"))

    def test_parameters(self) -> dict[str, Any]:
        return {**super().test_parameters(), "num_epochs": 1, "epoch_size": 2,
                "minibatch_size": 32, "downsample": 2}

    # ---------------------------------------------------------------- work
    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        """``images/<name>.mrc`` (float32, as given) and ``targets.txt`` (truth centroids)."""
        import mrcfile

        from lipobench.formats import write_topaz

        target = Path(workdir) / "topaz_train"
        with atomic_dir(target) as folder:
            (folder / _IMAGES).mkdir()
            centres = {}
            for micrograph in micrographs:  # one pass: each is read from disk once
                truth = micrograph.truth
                if truth is None:
                    raise UserError(
                        f"micrograph {micrograph.name!r} has no ground-truth masks: Topaz "
                        "training needs particle positions for every training micrograph"
                    )
                with mrcfile.new(folder / _IMAGES / f"{micrograph.name}.mrc") as out:
                    out.set_data(np.asarray(micrograph.image, dtype=np.float32))
                centres[micrograph.name] = RegionSet.from_circles(
                    np.column_stack([truth.centroids(), np.ones(len(truth))]).reshape(-1, 3),
                    image_shape=micrograph.shape)
            write_topaz(folder / _TARGETS, centres)
        return target

    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        """Run ``topaz train`` (or pick a shipped detector); return the manifest's path."""
        p = _validated(TopazTrainParams, params, "train")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        manifest = workdir / MANIFEST
        if p.pretrained == "default":
            from lipobench.shipped import packaged_model

            downsample = _shipped_downsample()
            if p.downsample not in (None, downsample):
                raise UserError(f"topaz: pretrained = 'default' was trained at downsample "
                                f"{downsample} and runs at it, not {p.downsample}; set "
                                f"downsample = {downsample} or leave downsample out")
            write_model_manifest(manifest, str(packaged_model("topaz")), downsample)
            return manifest
        downsample = p.downsample or 1
        init_model = None
        if p.init == "default":
            from lipobench.shipped import packaged_model

            init_model = packaged_model("topaz")
            # Fine-tuning keeps the scale the detector learnt its particles at.
            downsample = p.downsample or _shipped_downsample()
        elif p.init is not None:
            if not p.init.is_file():
                raise UserError(f"topaz init {p.init}: no such file; give an existing .sav "
                                "model or init = 'default'")
            init_model = p.init
        if p.pretrained is not None:
            write_model_manifest(manifest, p.pretrained.value, downsample)
            return manifest

        from lipobench.formats import read_topaz, write_topaz

        native = Path(native)
        image_files = sorted((native / _IMAGES).glob("*.mrc"))
        if not image_files or not (native / _TARGETS).is_file():
            raise UserError(f"{native}: expected {_IMAGES}/*.mrc and {_TARGETS}; "
                            "write it with to_native first")
        image_shapes = {f.stem: _mrc_shape(f) for f in image_files}
        targets = read_topaz(native / _TARGETS, radius=1.0, image_shapes=image_shapes)
        n_expected = p.n_expected
        if n_expected is None:
            n_expected = float(np.mean([len(targets[n]) for n in image_shapes]))
        if n_expected <= 0:
            raise UserError(f"{native / _TARGETS}: no particle in any training image; "
                            "Topaz needs labelled particles")

        log_path = workdir / "topaz.log"
        with atomic_dir(workdir / "preprocessed") as pre:
            shapes = _preprocess(((f.stem, _read_mrc(f)) for f in image_files), pre, downsample)
            scaled = {}
            for name, regions in targets.items():
                index = topaz_index(regions.centroids(), downsample=downsample,
                                    shape=shapes[name])
                circles = np.column_stack([index + 0.5, np.ones(len(index))]).reshape(-1, 3)
                scaled[name] = RegionSet.from_circles(circles, image_shape=shapes[name])
            write_topaz(pre / _TARGETS, scaled)
        pre = workdir / "preprocessed"
        models = workdir / "models"
        shutil.rmtree(models, ignore_errors=True)
        models.mkdir()
        args = ["--train-images", pre, "--train-targets", pre / _TARGETS,
                "-n", f"{n_expected:g}", "-r", str(round(p.radius / downsample)),
                "--num-epochs", p.num_epochs, "--epoch-size", p.epoch_size,
                "--minibatch-size", p.minibatch_size, "--learning-rate", f"{p.learning_rate:g}",
                "--model", str(init_model) if init_model else p.model.value,
                "--units", p.units,
                "-d", _device_flag(self.device), "--save-prefix", models / "model",
                "-o", workdir / "train_curve.txt"]
        if not p.init_pretrained:
            args.append("--no-pretrained")
        _run_topaz("train", args, log_path=log_path)
        saved = sorted(models.glob("model_epoch*.sav"),
                       key=lambda f: int(f.stem.rsplit("epoch", 1)[1]))
        if not saved:
            raise ToolFailedError(f"topaz train saved no model in {models}; see log {log_path}",
                                  log_path=log_path)
        write_model_manifest(manifest, saved[-1].relative_to(workdir).as_posix(), downsample)
        return manifest

    def model_info(self, model: ModelRef) -> dict[str, str]:
        """The detector and the downsampling factor it runs at (from the model manifest).

        The results' ``model.downsample`` column: what ran, also where the ``downsample``
        parameter was left out (None) and the detector brought its own factor.
        """
        try:
            data = json.loads(Path(model).read_text(encoding="utf-8"))
            detector, downsample = str(data["model"]), int(data["downsample"])
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        # A file's name only: results tables carry no machine paths.
        return {"detector": Path(detector).name, "downsample": str(downsample)}

    def predict(self, model: ModelRef, micrographs: Sequence[Micrograph],
                params: Mapping[str, Any], workdir: Path) -> list[RegionSet]:
        """``topaz extract`` on the preprocessed micrographs; circles in original pixels."""
        from lipobench.formats import read_topaz

        p = _validated(TopazPredictParams, params, "predict")
        detector, downsample = _read_model_ref(model)
        if not micrographs:
            # topaz extract reads image paths from stdin when given none.
            return []
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        with atomic_dir(workdir / f"preprocessed_s{downsample}") as pre:
            shapes = _preprocess(((m.name, m.image) for m in micrographs), pre, downsample)
        pre = workdir / f"preprocessed_s{downsample}"
        radius = max(1, round(p.extract_radius / downsample))
        picks_path = workdir / f"picks_r{radius}_s{downsample}.txt"
        with atomic_path(picks_path) as tmp:
            _run_topaz("extract", ["-m", detector, "-r", radius, "-t", f"{EXTRACT_THRESHOLD:g}",
                        "-d", _device_flag(self.device), "-o", tmp,
                        *[pre / f"{m.name}.mrc" for m in micrographs]],
                       log_path=workdir / "topaz.log")
        picks = read_topaz(picks_path, image_shapes=shapes, radius=1.0)
        return [picks_from_topaz(picks[m.name], downsample=downsample, image_shape=m.shape,
                                 radius=p.extract_radius) for m in micrographs]

    def select(self, regions: RegionSet, params: Mapping[str, Any]) -> RegionSet:
        """Keep the picks whose score is at least ``min_score`` (all when None)."""
        return keep_scores_at_least(regions, _validated(TopazSelectParams, params,
                                                        "select").min_score)


def _shipped_downsample() -> int:
    """The factor the shipped detector was trained (and so runs) at, from the manifest."""
    from lipobench.shipped import read_manifest

    return int(read_manifest()["models"]["topaz"]["downsample"])


def write_model_manifest(path: Path, model: str, downsample: int) -> None:
    """Write the model reference :meth:`TopazAdapter.predict` takes: a detector (a shipped
    name, or a ``.sav`` beside ``path`` or among lipobench's models) run at ``downsample``."""
    atomic_write_text(path, json.dumps({"model": model, "downsample": downsample}, indent=2))


def _read_model_ref(model: ModelRef) -> tuple[str, int]:
    """(what ``topaz extract -m`` gets, downsampling factor) for a model reference.

    A reference is the manifest written by ``train``, a ``.sav`` file, or a shipped detector's
    name (both used on images at their own size).
    """
    names = {d.value for d in ShippedDetector}
    if isinstance(model, str) and model in names:
        return model, 1
    path = Path(model)
    if path.suffix == ".json" and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            detector, downsample = str(data["model"]), int(data["downsample"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a Topaz model manifest ({exc}); retrain") from None
        if detector not in names:
            detector = _trusted_model_file(path, detector)
        return detector, downsample
    if path.suffix == ".sav" and path.is_file():
        return str(path), 1
    raise UserError(f"topaz model {str(model)!r} is neither a {MANIFEST} written by train, a "
                    f".sav file nor a shipped detector ({', '.join(sorted(names))})")


def _trusted_model_file(manifest: Path, named: str) -> str:
    """The ``.sav`` a manifest names, if it lies beside the manifest or is the shipped one.

    Topaz unpickles the file it is given, so a manifest edited to name any other file (a
    planted pickle) is refused rather than loaded.
    """
    from lipobench.shipped import MODELS_DIR

    candidate = Path(named)
    resolved = (candidate if candidate.is_absolute() else manifest.parent / candidate).resolve()
    if not (resolved.is_relative_to(MODELS_DIR.resolve())
            or resolved.is_relative_to(manifest.parent.resolve())):
        raise UserError(f"{manifest}: names the model file {named}, outside its folder; "
                        "refusing to load it: delete that cache entry and retrain")
    if resolved.suffix != ".sav":
        raise UserError(f"{manifest}: names {named}, not a Topaz .sav model; retrain")
    if not resolved.is_file():
        raise UserError(f"{manifest}: its model file {resolved} is missing; retrain")
    return str(resolved)
