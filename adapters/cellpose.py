"""Cellpose 3.x, run in process: instance masks (RegionKind.MASK).

Functions for other code (LipoPose's multi-diameter inference loads the model once):

- :func:`load_cellpose_model` ``(model_ref, device=Device.AUTO)``: a ready ``CellposeModel``
  from a trained model file or an already-downloaded built-in name (never downloads);
- :func:`segment` ``(model, image, *, diameter=None, flow_threshold=None,
  cellprob_threshold=None)``: one micrograph's label image (int32), preprocessed exactly as
  in training;
- :meth:`CellposeAdapter.masks_at_diameters` ``(model_ref, micrographs, diameters)``:
  ``result[i][k]`` is the label image of micrograph ``i`` at ``diameters[k]``, one model load.

Decisions:

- Particles are darker than the background in cryo-EM, while Cellpose's built-in models were
  trained on bright objects. Every image is negated before Cellpose sees it, in training and in
  prediction alike (:func:`prepare_image`), so a fine-tuned built-in and a model trained from
  scratch both see bright particles. Cellpose then normalises each image itself (1st..99th
  percentile to 0..1), in ``train_seg`` and in ``eval``, so nothing else is done here.
- ``diameter=None`` predicts at the model's own ``diam_labels``: the mean diameter of the
  training masks, saved inside the model file.
- Training seeds torch and numpy from the ``seed`` parameter. The network is trained with
  MKLDNN off, and prediction always loads the saved file into a fresh model: on CPU, eval
  turns a network into MKLDNN tensors that can no longer be trained (shared/TOOLS.md).

Why one module of this length: the adapter, its parameter schemas, the model lookup (built-in
names and trained files, never downloading) and the in-process steps that follow Cellpose
3.x's own code (:func:`segment` repeats ``CellposeModel.eval`` step by step, training calls
``train_seg``) are one tool's border, which LipoPose reuses through :func:`load_cellpose_model`
and :func:`segment`; split up, the decisions above would be spread over rooms that all change
when Cellpose does.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from lipobench.adapters.base import (
    Adapter,
    Availability,
    ModelRef,
    SizeFilterParams,
    Stage,
    validate_parameters,
)
from lipobench.adapters.device import Device, resolve_torch_device
from lipobench.errors import ToolFailedError, ToolUnavailableError, UserError
from lipobench.fsutil import atomic_dir, atomic_path, atomic_write_text
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet

__all__ = [
    "CellposeAdapter",
    "CellposeTrainParams",
    "CellposePredictParams",
    "CellposeThresholds",
    "Device",
    "load_cellpose_model",
    "segment",
    "prepare_image",
    "builtin_model_file",
]

#: The model lipobench ships (``lipobench train-defaults``), usable as ``init`` or model.
DEFAULT_MODEL = "default"

#: File name of the trained model inside the train workdir.
MODEL_FILE = "cellpose_model"
_MASK_SUFFIX = "_masks.tif"


class CellposeTrainParams(BaseModel):
    """TRAIN-stage parameters of :class:`CellposeAdapter` (and of LipoPose, which trains as it)."""

    model_config = ConfigDict(extra="forbid")

    init: str = Field("scratch", description=(
        "'scratch' (random weights), 'default' (the model lipobench ships; with n_epochs = 0 "
        "it is used without training), a model file, or a built-in name already present "
        "locally (cyto3, ...); nothing is downloaded"))
    n_epochs: int = Field(500, ge=0, json_schema_extra={"abbreviation": "ep"}, description=(
        "training epochs (train_seg n_epochs); 0 only with a file, built-in or 'default' "
        "init: use it untrained"))
    learning_rate: float = Field(0.005, gt=0, json_schema_extra={"abbreviation": "lr"},
                                 description="AdamW learning rate")
    weight_decay: float = Field(1e-5, ge=0, description="AdamW weight decay")
    diam_mean: float = Field(30.0, gt=0, description=(
        "diameter (px) objects are rescaled to in training; a file or built-in init keeps "
        "its own"))
    bsize: int = Field(224, ge=64, description=(
        "training tile size (px); 128 trains about 2.5x faster on a CPU"))
    seed: int = Field(0, description="seed of torch and numpy for training")


class CellposeThresholds(BaseModel):
    """The thresholds of one Cellpose evaluation, shared by Cellpose and LipoPose."""

    model_config = ConfigDict(extra="forbid")

    flow_threshold: float = Field(0.4, ge=0, json_schema_extra={"abbreviation": "flow"},
                                  description="maximum flow error of a mask")
    cellprob_threshold: float = Field(0.0, json_schema_extra={"abbreviation": "cellprob"},
                                      description="cell probability threshold")


class CellposePredictParams(CellposeThresholds):
    """PREDICT-stage parameters of :class:`CellposeAdapter`."""

    diameter: float | None = Field(None, gt=0, json_schema_extra={"abbreviation": "d"},
                                   description=(
        "particle diameter (px) for eval; None: the training masks' mean"))


def _validated(model_cls, params: Mapping[str, Any], stage: str):
    return validate_parameters("cellpose", model_cls, params, stage)


def prepare_image(image: np.ndarray) -> np.ndarray:
    """The image as Cellpose gets it: float32, negated so that dark particles become bright.

    >>> prepare_image(np.array([[0.0, 2.0]])).tolist()
    [[-0.0, -2.0]]
    """
    return np.negative(np.asarray(image, dtype=np.float32))


def _cellpose_model_dir() -> Path:
    # The same rule cellpose.models applies at import, read without importing it.
    env = os.environ.get("CELLPOSE_LOCAL_MODELS_PATH")
    return Path(env) if env else Path.home() / ".cellpose" / "models"


def builtin_model_file(name: str) -> Path:
    """The local file of Cellpose built-in model ``name``; never downloads.

    Raises ToolUnavailableError when the file is not already in ``CELLPOSE_LOCAL_MODELS_PATH``
    (or ``~/.cellpose/models``), saying how to place it.
    """
    # cellpose.models.model_path names the torch files of the oldest models this way.
    basename = f"{name}torch_0" if name in ("cyto", "cyto2", "nuclei") else name
    folder = _cellpose_model_dir()
    path = folder / basename
    if not path.is_file():
        raise ToolUnavailableError(
            f"cellpose built-in model {name!r} is not in {folder} and lipobench never downloads "
            f"models: copy the file {basename!r} (cellpose stores it in ~/.cellpose/models on a "
            "machine with internet access) into that folder or into $CELLPOSE_LOCAL_MODELS_PATH, "
            "or use init = 'scratch'"
        )
    return path


def _builtin_names() -> list[str]:
    from cellpose import models

    return list(dict.fromkeys(models.MODEL_NAMES))


def _resolve_model_ref(model_ref: ModelRef, *, key: str) -> Path:
    """A model file on disk for a path or a built-in name, checked before cellpose sees it.

    Cellpose itself silently falls back to downloading its default model when a path does not
    exist, so every reference is resolved here first.
    """
    path = Path(model_ref)
    if path.is_file():
        return path
    name = str(model_ref)
    if name == DEFAULT_MODEL:
        from lipobench.shipped import packaged_model

        return packaged_model("cellpose")
    if name in _builtin_names():
        return builtin_model_file(name)
    raise UserError(
        f"cellpose {key} {name!r} is neither an existing model file nor a Cellpose built-in "
        f"model name ({', '.join(_builtin_names()[:4])}, ...): give the path of a trained "
        "model file" + (" or 'scratch'" if key == "init" else "")
    )


def load_cellpose_model(model_ref: ModelRef, device: Device | str = Device.AUTO):
    """Load a trained model file or a locally present built-in model, ready for :func:`segment`.

    Load it once and call :func:`segment` as often as needed (LipoPose runs several diameters).
    A file cellpose cannot load is a UserError naming it.
    """
    path = _resolve_model_ref(model_ref, key="model")
    with _quiet_cellpose():
        return _cellpose_model(path, resolve_torch_device(device))


def _cellpose_model(path: Path | None, torch_device, *, diam_mean: float = 30.0,
                    mkldnn: bool = True):
    """A CellposeModel with random weights (``path`` None) or the weights in ``path``."""
    from cellpose import models

    try:
        return models.CellposeModel(
            gpu=torch_device.type == "cuda", device=torch_device, mkldnn=mkldnn,
            pretrained_model=str(path) if path is not None else False, diam_mean=diam_mean)
    except Exception as exc:  # torch.load and load_state_dict raise many kinds
        if path is None:
            raise
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(
            f"{path}: cellpose could not load it as a model ({detail}); give a model file "
            "trained with cellpose 3.x (cellpose 4 files do not load) or by lipobench"
        ) from None


# Tiles of 224² sent through the network at once. eval's 8 hold about 0.55-0.77 GB of
# activations at their peak on CPU, 4 hold 0.29 GB, at the same speed; the flows are the same
# bit for bit from 2 tiles up (at 1 MKLDNN rounds differently), which a test on 25 tiles
# (tests/adapters/test_cellpose.py) holds.
_TILES_PER_FORWARD = 4


def segment(model, image: np.ndarray, *, diameter: float | None = None,
            flow_threshold: float | None = None,
            cellprob_threshold: float | None = None) -> np.ndarray:
    """Segment one micrograph with a loaded model; an int32 label image of the image's shape.

    ``diameter`` (pixels) rescales the image by ``model.diam_mean / diameter``; None uses the
    mean diameter of the model's training masks. A threshold left None takes the default of
    :class:`CellposeThresholds`, where the defaults are written once.

    The steps are those of ``CellposeModel.eval`` for one 2-D image with its defaults
    (normalise, run the network at the rescaled size, resize the flows back, dynamics at full
    size), called one by one from cellpose's public modules, because ``eval`` also draws an
    RGB picture of the flows at full size and keeps the normalised input alive through the
    dynamics: at 4096² those two cost about 0.6 GB of peak memory, for nothing lipobench reads.
    Two steps are cheaper still: the network sees 4 tiles at a time instead of 8, and the
    flow-error check runs object by object (:func:`remove_inconsistent_masks`), together
    another 0.7 GB at 4096². ``tests/adapters/test_cellpose.py`` checks the masks equal
    ``eval``'s, label for label.
    """
    from cellpose import core, dynamics, transforms, utils
    from cellpose.models import normalize_default

    thresholds = CellposeThresholds(
        **{k: v for k, v in (("flow_threshold", flow_threshold),
                             ("cellprob_threshold", cellprob_threshold)) if v is not None})
    height, width = np.shape(image)
    with _quiet_cellpose():
        x = transforms.convert_image(prepare_image(image), [0, 0], nchan=model.nchan)
        x = transforms.normalize_img(x[np.newaxis], **{**normalize_default, "normalize": True,
                                                       "invert": False})
        rescale = model.diam_mean / (diameter if diameter is not None and diameter > 0
                                     else model.diam_labels)
        flows, _ = core.run_net(model.net, x, rsz=rescale if rescale != 1.0 else None,
                                batch_size=_TILES_PER_FORWARD)
        del x
        if rescale != 1.0:
            flows = transforms.resize_image(flows, height, width)
        flow_field, cellprob = flows[0, ..., :2].transpose((2, 0, 1)), flows[0, ..., 2]
        # resize_and_compute_masks without a resize, its flow check done object by object.
        masks = dynamics.compute_masks(
            flow_field, cellprob, niter=200 / rescale,
            cellprob_threshold=thresholds.cellprob_threshold, flow_threshold=0,
            device=model.device)
        if masks.max() > 0 and thresholds.flow_threshold > 0:
            if model.device.type == "cpu":
                masks = remove_inconsistent_masks(masks, flow_field,
                                                  threshold=thresholds.flow_threshold)
            else:  # GPU flows differ in rounding from the CPU ones: cellpose's own check
                masks = dynamics.remove_bad_flow_masks(
                    masks, flow_field, threshold=thresholds.flow_threshold, device=model.device)
        del flows, flow_field, cellprob
        masks = utils.fill_holes_and_remove_small_masks(masks, min_size=15)
    return np.asarray(masks).astype(np.int32, copy=False).reshape(height, width)


def remove_inconsistent_masks(masks: np.ndarray, flow_field: np.ndarray, *,
                              threshold: float) -> np.ndarray:
    """Cellpose's flow-error check (``remove_bad_flow_masks`` on CPU), one object at a time.

    A mask is removed when the mean squared difference between the flows its own shape
    implies and the network's flows (``flow_field``, shape ``(2, *masks.shape)``, divided by
    5 as cellpose does) exceeds ``threshold``. Cellpose computes the implied flows for the
    whole image at once in float64 (256 MB at 4096², and as much again in temporaries: the
    largest step of a 4096² segmentation); each object's flows depend only on its own
    bounding box, so computing them crop by crop with cellpose's ``masks_to_flows_cpu`` and
    averaging each object's pixels in the same order gives the same masks
    (``tests/adapters/test_cellpose.py`` compares them) at a fraction of the memory.
    Returns a copy; ``masks`` is not changed.

    >>> masks = np.zeros((9, 9), np.int32); masks[2:7, 2:7] = 1
    >>> away = np.zeros((2, 9, 9), np.float32); away[0, :4], away[0, 5:] = -5, 5
    >>> int(remove_inconsistent_masks(masks, away, threshold=0.4).max())
    0
    """
    from cellpose.dynamics import masks_to_flows_cpu
    from scipy import ndimage

    kept = masks.copy()
    for label, box in enumerate(ndimage.find_objects(masks), start=1):
        if box is None:
            continue
        inside = masks[box] == label
        implied, _ = masks_to_flows_cpu(inside.astype(np.int32))
        error = 0.0
        for axis in range(2):
            squared = (implied[axis] - flow_field[axis][box] / 5.0) ** 2
            error += ndimage.mean(squared, inside.astype(np.int32), index=np.arange(1, 2))[0]
        if error > threshold:
            kept[box][inside] = 0
    return kept


@contextlib.contextmanager
def _quiet_cellpose():
    """Keep torch's deprecation warnings and cellpose's "no masks found" off the user's screen.

    An image without particles is a valid result here, and the warnings concern library
    internals; neither changes a result. (Training keeps its log file through _log_to.)
    """
    logger = logging.getLogger("cellpose")
    null = logging.NullHandler()
    logger.addHandler(null)  # without a handler, Python prints warnings to stderr itself
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.removeHandler(null)


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    return tifffile.imread(path)


def _write_tiff(path: Path, array: np.ndarray) -> None:
    import tifffile

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array)


class CellposeAdapter(Adapter):
    """Cellpose 3.x (CPnet), trained from scratch or fine-tuned from a local built-in model."""

    name: ClassVar[str] = "cellpose"
    region_kind: ClassVar[RegionKind] = RegionKind.MASK
    citation: ClassVar[str] = (
        "Stringer C, Wang T, Michaelos M, Pachitariu M. Cellpose: a generalist algorithm for "
        "cellular segmentation. Nat Methods 18, 100-106 (2021)"
    )
    schemas: ClassVar[Mapping[Stage, type[BaseModel]]] = {
        Stage.TRAIN: CellposeTrainParams, Stage.PREDICT: CellposePredictParams,
        Stage.SELECT: SizeFilterParams}

    def __init__(self, device: Device | str = Device.AUTO):
        self.device = Device(device)

    # ---------------------------------------------------------------- discovery
    def availability(self) -> Availability:
        if importlib.util.find_spec("cellpose") is None:
            return Availability(False, "the cellpose package is not installed",
                                "install lipobench's dependencies (cellpose>=3.1.1.3,<4)")
        version = importlib.metadata.version("cellpose")
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
        if major >= 4:
            return Availability(
                False,
                f"cellpose {version} is installed; cellpose 4 replaced CPnet by a ViT whose "
                "weights download from a hub and whose model files are incompatible with 3.x",
                "install cellpose>=3.1.1.3,<4", tool_version=version)
        return Availability(True, tool_version=version)

    def test_parameters(self) -> dict[str, Any]:
        return {**super().test_parameters(), "n_epochs": 1, "diameter": None}

    # ---------------------------------------------------------------- work
    def to_native(self, micrographs: Sequence[Micrograph], workdir: Path) -> Path:
        """Cellpose's folder convention: ``<name>.tif`` (float32) beside ``<name>_masks.tif``."""
        target = Path(workdir) / "cellpose_train"
        with atomic_dir(target) as folder:
            for micrograph in micrographs:
                if micrograph.truth is None:
                    raise UserError(
                        f"micrograph {micrograph.name!r} has no ground-truth masks: "
                        "Cellpose training needs a mask for every training micrograph"
                    )
                _write_tiff(folder / f"{micrograph.name}.tif",
                            np.asarray(micrograph.image, dtype=np.float32))
                _write_tiff(folder / f"{micrograph.name}{_MASK_SUFFIX}",
                            micrograph.truth.to_label_image(dtype=np.int32))
        return target

    @staticmethod
    def native_files(native: Path) -> list[tuple[str, Path, Path]]:
        """(name, image file, mask file) of each micrograph in a folder from :meth:`to_native`."""
        native = Path(native)
        mask_files = sorted(native.glob(f"*{_MASK_SUFFIX}"))
        if not mask_files:
            raise UserError(f"{native}: no *{_MASK_SUFFIX} files; write it with to_native first")
        found = []
        for mask_file in mask_files:
            name = mask_file.name[: -len(_MASK_SUFFIX)]
            image_file = native / f"{name}.tif"
            if not image_file.is_file():
                raise UserError(f"{mask_file}: its image {image_file.name} is missing")
            found.append((name, image_file, mask_file))
        return found

    @classmethod
    def read_native(cls, native: Path) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
        """Names, images and label images of a folder written by :meth:`to_native`."""
        names, images, labels = [], [], []
        for name, image_file, mask_file in cls.native_files(native):
            names.append(name)
            images.append(_read_tiff(image_file).astype(np.float32, copy=False))
            labels.append(_read_tiff(mask_file).astype(np.int32, copy=False))
        return names, images, labels

    def train(self, native: Path, params: Mapping[str, Any], workdir: Path) -> ModelRef:
        """Train with ``train_seg`` and return the saved model file ``workdir/cellpose_model``.

        ``train_seg`` reads the images and flows from files, one batch at a time
        (``load_files=False``), instead of holding every image and its four flow channels in
        memory: 31 micrographs of 4096² would take 12 GB that way. The negated images and the
        flows are written first, one micrograph at a time, with cellpose's own
        ``labels_to_flows``; the training is the same as cellpose's in-memory one, weight for
        weight (tests/adapters/test_cellpose.py).
        """
        p = _validated(CellposeTrainParams, params, "train")
        files = self.native_files(native)
        init = None if p.init == "scratch" else _resolve_model_ref(p.init, key="init")
        if p.n_epochs == 0:
            if not any(_read_tiff(mask).max() > 0 for _, _, mask in files):
                raise UserError(f"{native}: no training image holds a particle; "
                                "Cellpose needs masks")
            if init is None:
                raise UserError("cellpose n_epochs = 0 with init = 'scratch' would score random "
                                "weights: set init = 'default' or a model file, or train")
            return init  # a given model used as it is

        import torch
        from cellpose import dynamics, train

        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "train.log"
        final = workdir / MODEL_FILE
        torch_device = resolve_torch_device(self.device)
        torch.manual_seed(p.seed)
        np.random.seed(p.seed)
        # MKLDNN off: the network being trained must stay in ordinary tensors.
        model = _cellpose_model(init, torch_device, diam_mean=p.diam_mean, mkldnn=False)
        scratch = workdir / ".cellpose_training"
        shutil.rmtree(scratch, ignore_errors=True)
        (scratch / "data").mkdir(parents=True)
        try:
            with _log_to(log_path):
                image_files, flow_files = [], []
                for name, image_file, mask_file in files:
                    labels = _read_tiff(mask_file).astype(np.int32, copy=False)
                    # train_seg drops images with no mask (min_train_masks=1) in memory but
                    # fails doing so with files: they are left out here instead.
                    if labels.max() == 0:
                        continue
                    prepared = scratch / "data" / f"{name}.tif"
                    _write_tiff(prepared, prepare_image(_read_tiff(image_file)))
                    dynamics.labels_to_flows([labels], files=[str(prepared)],
                                             device=model.net.device, return_flows=False)
                    image_files.append(str(prepared))
                    flow_files.append(str(prepared.with_name(f"{name}_flows.tif")))
                if not image_files:
                    raise UserError(f"{native}: no training image holds a particle; "
                                    "Cellpose needs masks")
                saved, train_losses, _ = train.train_seg(
                    model.net, train_files=image_files, train_labels_files=flow_files,
                    load_files=False, channels=[0, 0], normalize=True,
                    n_epochs=p.n_epochs, learning_rate=p.learning_rate,
                    weight_decay=p.weight_decay, save_path=str(scratch), model_name=MODEL_FILE,
                    # LNP micrographs may hold few particles; skip only empty images.
                    min_train_masks=1, bsize=p.bsize)
            atomic_write_text(workdir / "train_losses.json",
                              json.dumps([float(x) for x in np.asarray(train_losses)]))
            # The model file appears last, so its presence means a finished training.
            os.replace(saved, final)
        except UserError:
            raise
        except Exception as exc:  # a crash inside cellpose fails this configuration only
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ToolFailedError(f"cellpose training failed ({detail}); see log {log_path}",
                                  log_path=log_path) from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return final

    def masks_at_diameters(self, model_ref: ModelRef, micrographs: Sequence[Micrograph],
                           diameters: Sequence[float | None], *,
                           flow_threshold: float | None = None,
                           cellprob_threshold: float | None = None) -> list[list[np.ndarray]]:
        """Label images of every micrograph at every diameter, loading the model once.

        Thresholds left None take :class:`CellposeThresholds`' defaults (see :func:`segment`).

        ``result[i][k]`` belongs to ``micrographs[i]`` and ``diameters[k]``.
        """
        from lipobench.errors import raise_if_interrupted

        model = load_cellpose_model(model_ref, self.device)
        masks = []
        for micrograph in micrographs:
            per_diameter = []
            for diameter in diameters:
                # Cellpose may swallow a Ctrl-C inside its C++ code: look between evaluations.
                raise_if_interrupted()
                per_diameter.append(segment(model, micrograph.image, diameter=diameter,
                                            flow_threshold=flow_threshold,
                                            cellprob_threshold=cellprob_threshold))
            masks.append(per_diameter)
        return masks

    def predict(self, model: ModelRef, micrographs: Sequence[Micrograph],
                params: Mapping[str, Any], workdir: Path) -> list[RegionSet]:
        """One mask RegionSet per micrograph; Cellpose gives masks no score, so scores are None."""
        p = _validated(CellposePredictParams, params, "predict")
        per_image = self.masks_at_diameters(model, micrographs, [p.diameter],
                                            flow_threshold=p.flow_threshold,
                                            cellprob_threshold=p.cellprob_threshold)
        return [RegionSet.from_labels(masks[0], copy=False) for masks in per_image]

    def select(self, regions: RegionSet, params: Mapping[str, Any]) -> RegionSet:
        """The size filter (:class:`~lipobench.adapters.base.SizeFilterParams`)."""
        return _validated(SizeFilterParams, params, "select").apply(regions)


class _log_to:
    """Copy the cellpose loggers' records into ``path`` while the block runs."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self):
        self.handler = logging.FileHandler(self.path, mode="w", encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        self.logger = logging.getLogger("cellpose")
        self.level = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)
        self.handler.close()
        return False
