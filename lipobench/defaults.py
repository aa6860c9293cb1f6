"""Default trained models: the recipe that makes them and the lookup that finds them.

Training Cellpose from scratch for a few CPU minutes yields no masks at all, so a demo that
trains on the spot shows zeros. lipobench therefore ships models trained once by
``lipobench train-defaults`` on the training split of the synthetic ``paper`` preset, with a
manifest (``lipobench/models/manifest.json``) that records, for each model, its sha256, the exact
command, seeds, package versions, training time and device, and its precision and recall at
IoU 0.5 on the held-out split. An experiment uses them with ``init = "default"`` (Cellpose,
LipoPose) or ``pretrained = "default"`` (Topaz).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lipobench.adapters.cryolo import CryoloTrainParams
from lipobench.errors import ToolUnavailableError
from lipobench.fsutil import atomic_path, atomic_write_text
from lipobench.shipped import (
    _TRAIN_DEFAULTS_FIX,
    MANIFEST_NAME,
    MODELS_DIR,
    packaged_model,
    read_manifest,
    sha256_of,
    user_models_dir,
)

__all__ = [
    "MODELS_DIR",
    "DefaultsRecipe",
    "CryoloRecipe",
    "user_models_dir",
    "packaged_model",
    "read_manifest",
    "train_defaults",
    "sha256_of",
]

class CellposeRecipe(BaseModel):
    """How the default Cellpose (CPnet) model is trained."""

    model_config = ConfigDict(extra="forbid")

    n_epochs: int = Field(300, ge=1)
    learning_rate: float = Field(0.005, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    diam_mean: float = Field(30.0, gt=0)
    bsize: int = Field(128, ge=64)
    seed: int = 0


class TopazRecipe(BaseModel):
    """How the default Topaz detector is trained (radii in pixels of the dataset's images)."""

    model_config = ConfigDict(extra="forbid")

    downsample: int = Field(4, ge=1)
    radius: float = Field(12.0, gt=0)
    extract_radius: float = Field(30.0, gt=0)
    #: Picks below this log-likelihood ratio are dropped in validation (0: p > 0.5); Topaz
    #: extract itself keeps hundreds of low-scoring picks per micrograph.
    min_score: float = 0.0
    num_epochs: int = Field(10, ge=1)
    epoch_size: int = Field(100, ge=1)
    minibatch_size: int = Field(64, ge=1)


class CryoloRecipe(BaseModel):
    """How the default crYOLO model is trained: the adapter's own TRAIN schema, longer.

    Its model file (about 200 MB for PhosaurusNet) does not belong in the repository: it goes
    to :func:`user_models_dir`, and ``pretrained_weights = "default"`` starts from it.
    """

    model_config = ConfigDict(extra="forbid")

    train: CryoloTrainParams = CryoloTrainParams(nb_epoch=30, warmup=3, early_stop=10,
                                                 train_times=5)
    #: Validation keeps boxes of at least this confidence.
    confidence: float = Field(0.3, ge=0, le=1)


class LipoPoseValidation(BaseModel):
    """How the LipoPose pipeline is run on the held-out split with the default Cellpose model."""

    model_config = ConfigDict(extra="forbid")

    diameter_step: float = Field(10.0, gt=0)
    until: float = Field(0.0, ge=0, le=100)


class DefaultsRecipe(BaseModel):
    """Everything that decides the default models; saved in the manifest."""

    model_config = ConfigDict(extra="forbid")

    preset: str = "paper"
    data_seed: int = 2023
    #: None: the preset's own number of micrographs (tests use a handful).
    n_images: int | None = Field(None, ge=2)
    cellpose: CellposeRecipe = CellposeRecipe()
    lipopose: LipoPoseValidation = LipoPoseValidation()
    topaz: TopazRecipe = TopazRecipe()
    cryolo: CryoloRecipe = CryoloRecipe()


def _versions() -> dict[str, str]:
    names = ("lipobench", "cellpose", "topaz-em", "torch", "numpy")
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    found["python"] = platform.python_version()
    return found


def _device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def _validate(adapter, model, micrographs, workdir, *, predict_params=None, select_params=None,
              scoring_shape=lambda truth: truth, predictions=None) -> dict:
    """Micro-averaged counts, precision, recall and F1 at IoU 0.5 on ``micrographs``
    (of ``predictions`` when the caller has them already)."""
    from lipobench.metrics import aggregate, match

    if predictions is None:
        predictions = adapter.predict(model, micrographs, predict_params or {}, workdir)
    results = []
    for micrograph, prediction in zip(micrographs, predictions):
        prediction = adapter.select(prediction, select_params or {})
        results.append(match(scoring_shape(micrograph.truth), prediction, (0.5,)))
    row = aggregate(results, how="micro").iloc[0]
    return {key: (int(row[key]) if key in ("tp", "fp", "fn") else round(float(row[key]), 4))
            for key in ("tp", "fp", "fn", "precision", "recall", "f1")}


def _recipe_dataset(recipe: DefaultsRecipe, work_dir: Path, log):
    """The recipe's synthetic dataset, simulated into ``work_dir`` once."""
    from lipobench.data import load_dataset
    from lipobench.synth import make_dataset

    count = "" if recipe.n_images is None else f"-{recipe.n_images}"
    data_dir = Path(work_dir) / f"synthetic-{recipe.preset}-{recipe.data_seed}{count}"
    if not (data_dir / "dataset.toml").is_file():
        log(f"simulating the {recipe.preset} preset (seed {recipe.data_seed}) into {data_dir}")
        make_dataset(data_dir, preset=recipe.preset, seed=recipe.data_seed,
                     n_images=recipe.n_images)
    return load_dataset(data_dir)


def _validate_cellpose(model, test_set, recipe: DefaultsRecipe, device: str, work_dir: Path):
    """Cellpose alone, and the LipoPose pipeline on the same model, on the held-out split."""
    from lipobench.adapters.cellpose import CellposeAdapter
    from lipobench.adapters.lipopose import LipoPoseAdapter

    cellpose = _validate(CellposeAdapter(device=device), model, test_set,
                         work_dir / "cellpose" / "val")
    lipopose = _validate(LipoPoseAdapter(device=device), model, test_set,
                         work_dir / "lipopose" / "val",
                         predict_params={"diameter_step": recipe.lipopose.diameter_step},
                         select_params={"until": recipe.lipopose.until})
    return cellpose, lipopose


def _validate_topaz(model, test_set, recipe: DefaultsRecipe, device: str, work_dir: Path):
    """Topaz picks as circles of the extraction radius against minimal enclosing circles."""
    from lipobench.adapters.topaz import TopazAdapter

    return _validate(TopazAdapter(device=device), model, test_set, work_dir / "topaz" / "val",
                     predict_params={"extract_radius": recipe.topaz.extract_radius},
                     select_params={"min_score": recipe.topaz.min_score},
                     scoring_shape=lambda truth: truth.to_circles())


def _validate_cryolo(model, test_set, recipe: DefaultsRecipe, work_dir: Path):
    """crYOLO's boxes against tight boxes, beside random boxes of the same count and size."""
    from lipobench.adapters.cryolo import CryoloAdapter
    from lipobench.metrics.chance import chance_counts

    from lipobench.metrics import rates

    adapter = CryoloAdapter()
    select = {"confidence": recipe.cryolo.confidence}
    predictions = adapter.predict(model, test_set, {}, work_dir / "cryolo" / "val")
    scores = _validate(adapter, model, test_set, None, select_params=select,
                       scoring_shape=lambda truth: truth.to_boxes(), predictions=predictions)
    box_size = float(adapter.model_info(model)["box_size"])
    chance_tp = sum(chance_counts(m.truth, len(adapter.select(p, select)), box_size)[0]
                    for m, p in zip(test_set, predictions))
    precision, recall, _ = rates(chance_tp, scores["tp"] + scores["fn"],
                                 scores["tp"] + scores["fp"])
    scores["chance_precision"] = round(float(precision), 4)
    scores["chance_recall"] = round(float(recall), 4)
    return scores


def validate_defaults(
    *,
    device: str = "auto",
    work_dir: Path,
    tools: tuple[str, ...] = ("cellpose", "topaz"),
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Validate the shipped default models again, with the manifest's recipe; train nothing.

    Returns, per model, the scores measured now beside those the manifest records, so anyone
    can check the manifest's numbers.
    """
    from lipobench.adapters.topaz import TopazAdapter

    report = {}
    work_dir = Path(work_dir)
    if "cryolo" in tools:
        manifest = read_manifest(user_models_dir())
        if "cryolo" not in manifest["models"]:
            raise ToolUnavailableError(f"no default cryolo model in {user_models_dir()}: run "
                                       "`lipobench train-defaults --tool cryolo`")
        recipe = DefaultsRecipe.model_validate(manifest["recipe"])
        test_set = _recipe_dataset(recipe, work_dir, log)
        test_set = test_set.micrographs(test_set.split["test"])
        report["cryolo"] = {
            "now": _validate_cryolo(packaged_model("cryolo", user_models_dir()), test_set,
                                    recipe, work_dir / "validate"),
            "manifest": manifest["models"]["cryolo"]["validation_iou_0.5"]}
        if set(tools) == {"cryolo"}:
            return report
    manifest = read_manifest()
    if not manifest["models"]:
        raise ToolUnavailableError(f"no default models to validate: {_TRAIN_DEFAULTS_FIX}")
    recipe = DefaultsRecipe.model_validate(manifest["recipe"])
    test_set = _recipe_dataset(recipe, work_dir, log)
    test_set = test_set.micrographs(test_set.split["test"])
    if "cellpose" in tools:
        entry = manifest["models"]["cellpose"]
        cellpose, lipopose = _validate_cellpose(packaged_model("cellpose"), test_set, recipe,
                                                device, work_dir / "validate")
        report["cellpose"] = {"now": cellpose, "manifest": entry["validation_iou_0.5"]}
        report["lipopose"] = {"now": lipopose,
                              "manifest": entry["lipopose_validation_iou_0.5"]}
    if "topaz" in tools:
        model = TopazAdapter(device=device).train(
            None, {"pretrained": "default"}, work_dir / "validate" / "topaz")
        report["topaz"] = {"now": _validate_topaz(model, test_set, recipe, device,
                                                  work_dir / "validate"),
                           "manifest": manifest["models"]["topaz"]["validation_iou_0.5"]}
    return report


def _train_once(adapter, native: Path, params: dict, workdir: Path, *, log) -> tuple[Path, float]:
    """Train, or reuse a finished training of the same parameters (a killed recipe resumes).

    ``trained.json`` is written after the model, so its presence means a finished training.
    """
    stamp = workdir / "trained.json"
    if stamp.is_file():
        done = json.loads(stamp.read_text(encoding="utf-8"))
        if done["params"] == params and Path(done["model"]).exists():
            log(f"{adapter.name}: reusing the finished training in {workdir}")
            return Path(done["model"]), float(done["seconds"])
    log(f"training {adapter.name}: {params}")
    started = time.perf_counter()
    model = Path(adapter.train(native, params, workdir))
    seconds = time.perf_counter() - started
    atomic_write_text(stamp, json.dumps({"params": params, "model": str(model),
                                         "seconds": round(seconds, 1)}))
    return model, seconds


def train_defaults(
    out_dir: Path = MODELS_DIR,
    *,
    recipe: DefaultsRecipe = DefaultsRecipe(),
    device: str = "auto",
    work_dir: Path,
    tools: tuple[str, ...] = ("cellpose", "topaz"),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the default models, validate them on the held-out split, write the manifest.

    ``work_dir`` keeps the synthetic data and the training folders (reused when rerun);
    ``out_dir`` receives the model files and ``manifest.json``. Returns the manifest.
    """
    from lipobench.adapters.cellpose import CellposeAdapter
    from lipobench.adapters.topaz import TopazAdapter

    work_dir = Path(work_dir)
    out_dir = Path(out_dir)
    dataset = _recipe_dataset(recipe, work_dir, log)
    train_set = dataset.micrographs(dataset.split["train"])
    test_set = dataset.micrographs(dataset.split["test"])
    manifest = read_manifest(out_dir)
    command = ("lipobench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
               if Path(sys.argv[0]).name == "lipobench" else "lipobench train-defaults")
    manifest.update({
        "reproduce": "lipobench train-defaults --device cpu",
        "recipe": recipe.model_dump(),
        "dataset": {"preset": recipe.preset, "seed": recipe.data_seed,
                    "train_images": len(train_set), "test_images": len(test_set),
                    "fingerprint": dataset.fingerprint()},
        "versions": _versions(),
    })
    manifest.setdefault("models", {})

    if "cellpose" in tools:
        adapter = CellposeAdapter(device=device)
        native = adapter.to_native(train_set, work_dir / "cellpose")
        params = recipe.cellpose.model_dump()
        model, seconds = _train_once(adapter, native, params, work_dir / "cellpose" / "train",
                                     log=log)
        log(f"cellpose trained in {seconds:.0f} s; validating on {len(test_set)} test images")
        cellpose_scores, lipopose_scores = _validate_cellpose(model, test_set, recipe, device,
                                                              work_dir)
        target = out_dir / "cellpose_default"
        with atomic_path(target) as tmp:
            shutil.copyfile(model, tmp)
        manifest["models"]["cellpose"] = {
            "file": target.name, "sha256": sha256_of(target), "command": command,
            "seed": recipe.cellpose.seed,
            "train_seconds": round(seconds, 1), "device": _device_name(device),
            "validation_iou_0.5": cellpose_scores,
            "lipopose_validation_iou_0.5": lipopose_scores,
        }
        log(f"cellpose validation: {cellpose_scores}; lipopose (until 0): {lipopose_scores}")
        atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")

    if "topaz" in tools:
        adapter = TopazAdapter(device=device)
        native = adapter.to_native(train_set, work_dir / "topaz")
        t = recipe.topaz
        params = {"downsample": t.downsample, "radius": t.radius, "num_epochs": t.num_epochs,
                  "epoch_size": t.epoch_size, "minibatch_size": t.minibatch_size}
        model, seconds = _train_once(adapter, native, params, work_dir / "topaz" / "train",
                                     log=log)
        from lipobench.adapters.topaz import _read_model_ref

        model_file = Path(_read_model_ref(model)[0])
        scores = _validate_topaz(model, test_set, recipe, device, work_dir)
        target = out_dir / "topaz_default.sav"
        with atomic_path(target) as tmp:
            shutil.copyfile(model_file, tmp)
        manifest["models"]["topaz"] = {
            "file": target.name, "sha256": sha256_of(target), "command": command,
            "downsample": t.downsample,
            "validation_min_score": t.min_score,
            "train_seconds": round(seconds, 1), "device": _device_name(device),
            "validation_iou_0.5": scores,
        }
        log(f"topaz validation: {scores}")
        atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")

    if "cryolo" in tools:
        from lipobench.adapters.cryolo import CryoloAdapter

        adapter = CryoloAdapter()
        native = adapter.to_native(train_set, work_dir / "cryolo")
        params = recipe.cryolo.train.model_dump(mode="json")
        model, seconds = _train_once(adapter, native, params, work_dir / "cryolo" / "train",
                                     log=log)
        log(f"cryolo trained in {seconds:.0f} s; validating on {len(test_set)} test images")
        scores = _validate_cryolo(model, test_set, recipe, work_dir)
        target = out_dir / "cryolo_default.h5"
        with atomic_path(target) as tmp:
            shutil.copyfile(model, tmp)
        manifest["models"]["cryolo"] = {
            "file": target.name, "sha256": sha256_of(target), "command": command,
            **adapter.model_info(model), "validation_confidence": recipe.cryolo.confidence,
            "train_seconds": round(seconds, 1), "device": _device_name("cpu"),
            "validation_iou_0.5": scores,
        }
        log(f"cryolo validation: {scores}")
        atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return manifest
