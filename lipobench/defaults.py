"""Default trained models: the recipe that makes them, run by the runner, and the export step.

Training Cellpose from scratch for a few CPU minutes yields no masks at all, so a demo that
trains on the spot shows zeros. lipobench therefore ships models trained once by
``lipobench train-defaults`` on the training split of the synthetic ``paper`` preset, with a
manifest (``lipobench/models/manifest.json``) that records, for each model, its sha256, the exact
command, seeds, package versions, training time and device, and its precision and recall at
IoU 0.5 on the held-out split. An experiment uses them with ``init = "default"`` (Cellpose,
LipoPose) or ``pretrained = "default"`` (Topaz).

The flow: :class:`DefaultsRecipe` becomes an experiment (:meth:`DefaultsRecipe.experiment`:
the preset's own train/test split, IoU 0.5, one configuration per method), which
:func:`lipobench.run.run_experiment` runs in ``WORK/train`` (training, its cache, resuming
after a kill, prediction and scoring on the held-out split are the runner's); the export
then copies each trained model from the run's cache into the models folder and writes the
manifest with the run's scores. ``--validate-only`` runs the same recipe on the shipped models
in ``WORK/validate`` (``init = "default"``, ``pretrained = "default"``), training nothing.

Each method's part of the recipe holds the adapter's own parameter schemas, one per stage,
and says only where it differs from the adapter's defaults.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import platform
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from lipobench.adapters.base import Stage
from lipobench.adapters.cellpose import CellposePredictParams, CellposeTrainParams
from lipobench.adapters.cryolo import CryoloSelectParams, CryoloTrainParams
from lipobench.adapters.lipopose import LipoPosePredictParams, LipoPoseSelectParams
from lipobench.adapters.topaz import TopazPredictParams, TopazSelectParams, TopazTrainParams
from lipobench.adapters.topaz_scale import training_particle_width_px
from lipobench.errors import ToolFailedError, ToolUnavailableError, UserError
from lipobench.experiment import Experiment, parse_experiment
from lipobench.fsutil import atomic_path, atomic_write_text, inside
from lipobench.shipped import (
    _TRAIN_DEFAULTS_FIX,
    MANIFEST_NAME,
    MODELS_DIR,
    packaged_model,
    read_manifest,
    sha256_of,
    user_models_dir,
)

__all__ = ["MODELS_DIR", "DefaultsRecipe", "MethodRecipe", "CellposeRecipe", "LipoPoseValidation",
           "TopazRecipe", "CryoloRecipe", "user_models_dir", "packaged_model", "read_manifest",
           "train_defaults", "validate_defaults", "sha256_of"]


class MethodRecipe(BaseModel):
    """One method's part of the recipe: a field per stage, typed by the adapter's schema.

    Values may be given flat, as in an experiment file's method table
    (``CellposeRecipe(n_epochs=1)``): each goes to the stage whose schema declares it, over
    the recipe's own values of that stage; ``train=<schema instance>`` replaces a whole
    stage. Dumped flat, every value of every stage, so a manifest says all that was used.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _by_stage(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        stages: dict[str, Any] = {}
        for stage, field in cls.model_fields.items():
            given = data.get(stage, {})
            stages[stage] = given if isinstance(given, BaseModel) else {
                **field.get_default().model_dump(), **given}
        for key, value in data.items():
            if key in cls.model_fields:
                continue
            owner = next((s for s, f in cls.model_fields.items()
                          if key in f.annotation.model_fields), None)
            if owner is None:
                known = [k for f in cls.model_fields.values() for k in f.annotation.model_fields]
                raise ValueError(f"unknown parameter {key!r}; known: {', '.join(known)}")
            if isinstance(stages[owner], BaseModel):
                stages[owner] = stages[owner].model_dump()
            stages[owner][key] = value
        return stages

    @model_serializer(mode="wrap")
    def _flat(self, handler) -> dict[str, Any]:
        return {key: value for stage in handler(self).values() for key, value in stage.items()}

    def table(self, *stages: Stage) -> dict[str, Any]:
        """The values of ``stages`` (default: all) as an experiment's method table holds them.

        None is left out: an experiment file has no None, and every schema's None-valued
        parameter defaults to None.
        """
        names = [s.value for s in stages] or list(type(self).model_fields)
        return {key: value for name in names if name in type(self).model_fields
                for key, value in getattr(self, name).model_dump(
                    mode="json", exclude_none=True).items()}


class CellposeRecipe(MethodRecipe):
    """The default Cellpose (CPnet) model: from scratch, 300 epochs on 128 px tiles."""

    train: CellposeTrainParams = CellposeTrainParams(n_epochs=300, bsize=128)
    predict: CellposePredictParams = CellposePredictParams()


class LipoPoseValidation(MethodRecipe):
    """LipoPose on the held-out split with the default Cellpose model (it trains as Cellpose)."""

    predict: LipoPosePredictParams = LipoPosePredictParams(diameter_step=10.0)
    select: LipoPoseSelectParams = LipoPoseSelectParams()


class TopazRecipe(MethodRecipe):
    """The default Topaz detector (radii in pixels of the dataset's images).

    Validation keeps picks of log-likelihood ratio 0 and above (p > 0.5): Topaz extract
    itself keeps hundreds of low-scoring picks per micrograph.
    """

    train: TopazTrainParams = TopazTrainParams(downsample=4, radius=12.0, epoch_size=100,
                                               minibatch_size=64)
    predict: TopazPredictParams = TopazPredictParams(extract_radius=30.0)
    select: TopazSelectParams = TopazSelectParams(min_score=0.0)


class CryoloRecipe(MethodRecipe):
    """The default crYOLO model: the adapter's own TRAIN schema, longer.

    Its model file (about 200 MB for PhosaurusNet) does not belong in the repository: it goes
    to :func:`user_models_dir`, and ``pretrained_weights = "default"`` starts from it.
    """

    train: CryoloTrainParams = CryoloTrainParams(nb_epoch=30, warmup=3, train_times=5)
    select: CryoloSelectParams = CryoloSelectParams()


#: Cellpose (and LipoPose) with the shipped model, trained no further.
_SHIPPED_CELLPOSE = {"init": "default", "n_epochs": 0}


class DefaultsRecipe(BaseModel):
    """Everything that decides the default models; saved in the manifest.

    Beyond the methods' parameters only the dataset: the synthetic preset, its seed and
    (tests use a handful) its number of micrographs, None: the preset's own.
    """

    model_config = ConfigDict(extra="forbid")

    preset: str = "paper"
    data_seed: int = 2023
    n_images: int | None = Field(None, ge=2)
    cellpose: CellposeRecipe = CellposeRecipe()
    lipopose: LipoPoseValidation = LipoPoseValidation()
    topaz: TopazRecipe = TopazRecipe()
    cryolo: CryoloRecipe = CryoloRecipe()

    def experiment(self, tools: Sequence[str], device: str = "auto", *,
                   shipped: bool = False) -> Experiment:
        """The experiment of ``tools``: train on the preset's training split, score on its
        held-out split at IoU 0.5. LipoPose runs with Cellpose (it reuses that training).

        ``shipped``: the shipped Cellpose and Topaz models instead of training.
        """
        methods: dict[str, dict[str, Any]] = {}
        if "cellpose" in tools:
            train = _SHIPPED_CELLPOSE if shipped else self.cellpose.table(Stage.TRAIN)
            methods["cellpose"] = {**train, **self.cellpose.table(Stage.PREDICT)}
            methods["lipopose"] = {**train, **self.lipopose.table()}
        if "topaz" in tools:
            train = {"pretrained": "default"} if shipped else self.topaz.table(Stage.TRAIN)
            methods["topaz"] = {**train, **self.topaz.table(Stage.PREDICT, Stage.SELECT)}
        if "cryolo" in tools:
            methods["cryolo"] = self.cryolo.table()
        synthetic: dict[str, Any] = {"preset": self.preset, "seed": self.data_seed}
        if self.n_images is not None:
            synthetic["n_images"] = self.n_images
        return parse_experiment({
            "name": "validate-defaults" if shipped else "train-defaults",
            "iou_thresholds": [0.5], "dataset": {"synthetic": synthetic},
            "tools": {name: {"device": device} for name in methods if name != "cryolo"},
            "methods": methods}, source="the default-model recipe")


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


class _Lines(io.TextIOBase):
    """A text stream handing each finished line to ``log``: the runner's notes go there."""

    def __init__(self, log: Callable[[str], None]):
        self._log, self._part = log, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._part = (self._part + text).split("\n")
        for line in lines:
            self._log(line)
        return len(text)


class _Run:
    """A finished run of a recipe experiment: its results, dataset, plan and cache."""

    def __init__(self, experiment: Experiment, work_dir: Path, name: str, log, *,
                 fresh: bool = False):
        from rich.console import Console

        from lipobench.cache import Cache
        from lipobench.data import load_dataset
        from lipobench.experiment import DatasetConfig, check_experiment
        from lipobench.plugins import load_registry
        from lipobench.run import check_dataset_source, plan_run, prepare_dataset, run_experiment

        registry = load_registry(disable_plugins=True)
        check_experiment(experiment, registry)
        check_dataset_source(experiment)
        source = experiment.dataset.synthetic
        log(f"the {source.preset} preset (seed {source.seed}): simulated into "
            f"{work_dir / 'data'} once, reused after")
        # Drawn into WORK/data, not the run's folder: training and validation share it.
        data_dir = prepare_dataset(experiment, work_dir)
        experiment = experiment.model_copy(update={"dataset": DatasetConfig(path=data_dir)})
        self.out = Path(work_dir) / name
        log(f"running {', '.join(experiment.methods)} in {self.out} (a killed run resumes)")
        self.result = run_experiment(
            experiment, out=self.out, registry=registry, fresh=fresh, keep_other_methods=True,
            console=Console(file=_Lines(log), width=100_000, no_color=True, highlight=False))
        log(f"{self.result.counts['done']} tasks ({self.result.counts['cached']} cached, "
            f"{self.result.counts['failed']} failed)")
        self.dataset = load_dataset(data_dir)
        self.plan = plan_run(experiment, registry, self.dataset)
        self.cache = Cache(self.out / "cache")

    def scores(self, method: str) -> dict[str, Any]:
        """Micro-averaged counts, precision, recall and F1 at IoU 0.5 of ``method``'s one
        configuration; its failure raises, naming its log."""
        summary = self.result.summary
        rows = summary[(summary["method"] == method) & (summary["status"] == "ok")
                       & (summary["iou_threshold"] == 0.5)]
        if rows.empty:
            failed = self.result.table[self.result.table["method"] == method].iloc[0]
            if failed["status"] == "unavailable":
                raise ToolUnavailableError(f"{method}: {failed['error']}")
            log_file = self.out / failed["log_file"] if failed["log_file"] else None
            raise ToolFailedError(f"{method}: {failed['error']}"
                                  + (f"; see log {log_file}" if log_file else ""),
                                  log_path=log_file)
        row = rows.iloc[0]
        return {key: (int(row[key]) if key in ("tp", "fp", "fn") else round(float(row[key]), 4))
                for key in ("tp", "fp", "fn", "precision", "recall", "f1")}

    def trained(self, method: str) -> tuple[Path, dict[str, Any]]:
        """The model ``method`` trained (inside its cache entry) and the entry's record."""
        item = next(c for c in self.plan.configs if c.configuration.method == method)
        record = self.cache.train_done(item.train_key)
        if record is None or "path" not in record.get("model", {}):
            raise ToolFailedError(f"{method}: no finished training in "
                                  f"{self.cache.train_dir(item.train_key)}; run again")
        return inside(self.cache.train_dir(item.train_key), record["model"]["path"]), record

    def chance(self, method: str, scores: Mapping[str, Any], box_size: float) -> dict:
        """Precision and recall of random boxes, as many per test image as ``method`` kept."""
        from lipobench.metrics import rates
        from lipobench.metrics.chance import chance_counts

        table = self.result.table
        rows = table[(table["method"] == method) & (table["iou_threshold"] == 0.5)]
        chance_tp = sum(chance_counts(self.dataset.micrograph(row.image).truth,
                                      int(row.n_pred), box_size)[0]
                        for row in rows.itertuples(index=False))
        precision, recall, _ = rates(chance_tp, scores["tp"] + scores["fn"],
                                     scores["tp"] + scores["fp"])
        return {"chance_precision": round(float(precision), 4),
                "chance_recall": round(float(recall), 4)}


def validate_defaults(
    *,
    device: str = "auto",
    work_dir: Path,
    tools: tuple[str, ...] = ("cellpose", "topaz"),
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Validate the shipped default models again, with the manifest's recipe; train nothing.

    The recipe's experiment with the shipped models, run afresh in ``work_dir/validate``.
    Returns, per model, the scores measured now beside those the manifest records, so anyone
    can check the manifest's numbers.
    """
    if "cryolo" in tools:
        raise UserError("--validate-only --tool cryolo: crYOLO's default model is validated "
                        "when it is trained (its manifest entry holds the scores); drop "
                        "--tool cryolo, or retrain it with `lipobench train-defaults --tool "
                        "cryolo`")
    manifest = read_manifest()
    if not manifest["models"]:
        raise ToolUnavailableError(f"no default models to validate: {_TRAIN_DEFAULTS_FIX}")
    for tool in tools:
        packaged_model(tool)  # present, and its bytes those of the manifest
    recipe = DefaultsRecipe.model_validate(manifest["recipe"])
    run = _Run(recipe.experiment(tools, device, shipped=True), Path(work_dir), "validate", log,
               fresh=True)
    report = {}
    for name, method, key in (("cellpose", "cellpose", "validation_iou_0.5"),
                              ("cellpose", "lipopose", "lipopose_validation_iou_0.5"),
                              ("topaz", "topaz", "validation_iou_0.5")):
        if name in tools:
            report[method] = {"now": run.scores(method),
                              "manifest": manifest["models"][name][key]}
    return report


def _training_pixel_size_nm(dataset) -> float | None:
    """The training micrographs' median pixel size: `lipobench segment` zooms to it."""
    sizes = [m.pixel_size_nm for m in dataset.lazy_micrographs() if m.pixel_size_nm]
    return round(float(sorted(sizes)[len(sizes) // 2]), 4) if sizes else None


def _export(model: Path, target: Path) -> str:
    """Copy a trained model into the models folder atomically; its sha256."""
    with atomic_path(target) as tmp:
        shutil.copyfile(model, tmp)
    return sha256_of(target)


def _cellpose(run: _Run, recipe: DefaultsRecipe) -> tuple[Path, dict, dict]:
    """The Cellpose model, what its entry records, its scores and LipoPose's with it."""
    scores, lipopose = run.scores("cellpose"), run.scores("lipopose")
    model, record = run.trained("cellpose")
    return model, {"seed": recipe.cellpose.train.seed, "train_seconds": record["seconds"]}, {
        "validation_iou_0.5": scores, "lipopose_validation_iou_0.5": lipopose}


def _topaz(run: _Run, recipe: DefaultsRecipe) -> tuple[Path, dict, dict]:
    """The detector file Topaz's model manifest names (the model's ``detector``, beside it)."""
    scores, (reference, record) = run.scores("topaz"), run.trained("topaz")
    model = next(f for f in reference.parent.rglob(record["model_info"]["detector"]) if f.is_file())
    train = run.dataset.lazy_micrographs(run.dataset.split["train"])
    return model, {"downsample": recipe.topaz.train.downsample, "particle_width_px":
                   training_particle_width_px(train),
                   "validation_min_score": recipe.topaz.select.min_score,
                   "train_seconds": record["seconds"]}, {"validation_iou_0.5": scores}


def _cryolo(run: _Run, recipe: DefaultsRecipe) -> tuple[Path, dict, dict]:
    """crYOLO's weights, how they started, and its scores beside random boxes'."""
    scores = run.scores("cryolo")
    model, record = run.trained("cryolo")
    info = record["model_info"]
    scores.update(run.chance("cryolo", scores, float(info["box_size"])))
    return model, {**info, "validation_confidence": recipe.cryolo.select.confidence,
                   "train_seconds": record["seconds"]}, {"validation_iou_0.5": scores}


#: Per tool: the file its model gets in the models folder, and how the export finds it.
_EXPORTS = {"cellpose": ("cellpose_default", _cellpose),
            "topaz": ("topaz_default.sav", _topaz),
            "cryolo": ("cryolo_default.h5", _cryolo)}


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

    The recipe's experiment runs in ``work_dir/train`` (its data in ``work_dir/data``; both
    reused when rerun: a finished training of the same parameters is not redone); the export
    copies the models into ``out_dir`` and writes ``manifest.json`` there. Returns the
    manifest. A method that failed raises, once the others are exported.
    """
    work_dir, out_dir = Path(work_dir), Path(out_dir)
    run = _Run(recipe.experiment(tools, device), work_dir, "train", log)
    fold = run.plan.folds[0]
    manifest = read_manifest(out_dir)
    command = ("lipobench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
               if Path(sys.argv[0]).name == "lipobench" else "lipobench train-defaults")
    manifest.update({
        "reproduce": "lipobench train-defaults --device cpu",
        "recipe": recipe.model_dump(mode="json"),
        "dataset": {"preset": recipe.preset, "seed": recipe.data_seed,
                    "pixel_size_nm": _training_pixel_size_nm(run.dataset),
                    "train_images": len(fold.train), "test_images": len(fold.test),
                    "fingerprint": run.dataset.fingerprint()},
        "versions": _versions(),
    })
    manifest.setdefault("models", {})
    failures: list[Exception] = []
    for tool, (name, export) in _EXPORTS.items():
        if tool not in tools:
            continue
        try:
            model, facts, validation = export(run, recipe)
        except (ToolFailedError, ToolUnavailableError) as exc:
            log(f"{tool}: not exported: {exc}")
            failures.append(exc)
            continue
        target = out_dir / name
        seconds = round(float(facts.pop("train_seconds")), 1)
        manifest["models"][tool] = {
            "file": target.name, "sha256": _export(model, target), "command": command,
            **facts, "train_seconds": seconds,
            "device": _device_name("cpu" if tool == "cryolo" else device), **validation}
        log(f"{tool} trained in {seconds:.0f} s; validation on {len(fold.test)} test images: "
            f"{validation['validation_iou_0.5']}")
        if "lipopose_validation_iou_0.5" in validation:
            log(f"lipopose (until {recipe.lipopose.select.until:g}) with it: "
                f"{validation['lipopose_validation_iou_0.5']}")
        atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    if failures:
        raise failures[0]
    return manifest
