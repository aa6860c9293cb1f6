"""The runner: an experiment becomes train and predict tasks, run once each, cached, scored.

Expansion. Each configuration (one point of a method's grid, :mod:`lipobench.experiment`) is
resolved per fold (derived values from that fold's training truth) and split by stage:

- one **train task** per (adapter, tool version, options, TRAIN parameters, training images);
  a method that needs no training (``trainable = False``) trains once for every fold;
- one **predict task** per (train task, PREDICT parameters, test images); it also scores,
  for every configuration that shares it, each SELECT combination on each test image at every
  IoU threshold, so a sweep over a SELECT parameter never reruns the tool.

Tasks are plain picklable dataclasses naming adapters and paths (never live objects); the
worker that runs one builds its own registry and dataset (:func:`run_train_task`,
:func:`run_predict_task`), so the in-process and the Dask executors run the very same code.

Output folder (``OUT``, the experiment's ``output`` or ``--out``)::

    OUT/results.parquet, OUT/results.csv   the tidy table (see lipobench.report.results)
    OUT/parameters.parquet, OUT/parameters.csv
                                           each configuration's values per fold, long form
    OUT/summary.csv                        micro-averaged precision/recall/F1 per configuration
    OUT/run.json                           experiment, dataset folder, folds, configurations
                                           with their specs and resolved values per fold
    OUT/predictions/<config_id>/fold-<k>/<image>.npz
                                           predictions after SELECT (lipobench.cache.load_regions)
    OUT/logs/<task>.log                    traceback (and the tool's log) of each failed task
    OUT/cache/{train,predict,predict-work}/<key>/   the cache (lipobench.cache)
    OUT/data/<synthetic key>/              a synthetic dataset drawn for this experiment

    OUT/.lipobench.lock                    held (flock) by the run writing OUT

A run killed at any point resumes: finished tasks are read back from the cache, unfinished
ones rerun, and nothing half-written is ever read (cache entries carry checksums and a
damaged one is recomputed). A task that raises is recorded as ``failed`` with its log and
the others go on; failures are not cached, so the next run retries them. Three things stop
the run instead of failing a task: Ctrl-C (:class:`~lipobench.errors.Interrupted`), a full
or read-only disk, and a second run on the same output folder (refused before it starts).
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lipobench import __version__ as lipobench_version
from lipobench.adapters.base import Stage
from lipobench.cache import NATIVE_DIR, Cache, canonical_json, save_regions, sha256_key
from lipobench.errors import Interrupted, ToolFailedError, UserError, interrupt_requested
from lipobench.executors import Job, Outcome, Status
from lipobench.experiment import (
    Configuration,
    Experiment,
    KFoldSplit,
    check_parameters,
    expand_configurations,
    resolve_parameters,
    training_statistics,
)
from lipobench.fsutil import (
    atomic_dir,
    atomic_write_text,
    check_name,
    check_output_dir,
    folder_lock,
    inside,
    is_disk_full,
    os_error_message,
    remove_stale_temporaries,
)
from lipobench.regions import RegionKind, RegionSet

__all__ = ["Fold", "TrainTask", "PredictTask", "Scoring", "Outcome", "RunContext", "Plan",
           "plan_run", "run_train_task", "run_predict_task", "run_experiment", "make_folds",
           "prepare_dataset", "jobs_for"]


# ---------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class RunContext:
    """What every task needs besides its own fields, all picklable.

    The registry and the dataset are built once per process and run (not once per task:
    building the registry costs ~0.1 s), keyed by ``run_token`` so that a later run in the
    same process sees its own plugins.
    """

    dataset_path: str
    out: str
    #: Builds the adapter registry in the worker; None means lipobench.plugins.load_registry.
    registry_factory: Callable[[], Any] | None = None
    run_token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def cache(self) -> Cache:
        return Cache(Path(self.out) / "cache")

    def registry(self):
        return _per_process(self, "registry", self._build_registry)

    def dataset(self):
        return _per_process(self, "dataset", self._load_dataset)

    def _build_registry(self):
        if self.registry_factory is not None:
            return self.registry_factory()
        from lipobench.plugins import load_registry

        return load_registry()

    def _load_dataset(self):
        from lipobench.data import load_dataset

        return load_dataset(self.dataset_path)


#: The objects of the latest run seen by this process, see :class:`RunContext`.
_PROCESS_MEMO: dict[tuple[str, str], Any] = {}


def _per_process(context: RunContext, what: str, build: Callable[[], Any]):
    key = (context.run_token, what)
    if key not in _PROCESS_MEMO:
        for old in [k for k in _PROCESS_MEMO if k[0] != context.run_token]:
            del _PROCESS_MEMO[old]
        _PROCESS_MEMO[key] = build()
    return _PROCESS_MEMO[key]


@dataclass(frozen=True)
class Fold:
    """One train/test partition of the dataset's images."""

    index: int
    train: tuple[str, ...]
    test: tuple[str, ...]


@dataclass(frozen=True)
class TrainTask:
    key: str
    adapter: str
    options: Mapping[str, Any]
    params: Mapping[str, Any]
    train_names: tuple[str, ...]

    @property
    def task_id(self) -> str:
        return f"train-{self.adapter}-{self.key[:12]}"


@dataclass(frozen=True)
class Scoring:
    """One configuration scored on the output of one predict task."""

    config_id: str
    select: Mapping[str, Any]


@dataclass(frozen=True)
class PredictTask:
    key: str
    train_key: str
    adapter: str
    options: Mapping[str, Any]
    params: Mapping[str, Any]
    fold: int
    test_names: tuple[str, ...]
    workdir_key: str
    scorings: tuple[Scoring, ...]
    iou_thresholds: tuple[float, ...]

    @property
    def task_id(self) -> str:
        return f"predict-{self.adapter}-{self.key[:12]}"


def _write_log(out: str, task_id: str, exc: BaseException) -> str:
    """Keep the traceback, and the tool's own log when it names one, under OUT/logs."""
    text = "".join(traceback.format_exception(exc))
    tool_log = getattr(exc, "log_path", None)
    if tool_log:
        try:
            text += f"\n--- tool log {tool_log} ---\n" + Path(tool_log).read_text(errors="replace")
        except OSError as read_error:
            text += f"\n--- tool log {tool_log} could not be read: {read_error} ---\n"
    path = Path(out) / "logs" / f"{task_id}.log"
    atomic_write_text(path, text)
    return str(path.relative_to(out))


def _failure(task_id: str, out: str, exc: BaseException, started: float) -> Outcome:
    if interrupt_requested():
        # A tool that caught the Ctrl-C and raised its own error did not fail: we stopped it.
        raise Interrupted("interrupted") from exc
    if is_disk_full(exc):
        raise exc  # every later write would fail too: stop the run, do not blame the tool
    prefix = "tool failed" if isinstance(exc, ToolFailedError) else type(exc).__name__
    message = f"{prefix}: {exc}".replace("\n", " ")
    return Outcome(task_id, "failed", seconds=time.perf_counter() - started, error=message,
                   log_file=_write_log(out, task_id, exc))


#: The models lipobench ships; a train record may point there instead of into the cache.
_SHIPPED = Path(__file__).parent / "models"


def _model_record(model, workdir: Path) -> dict[str, Any]:
    """How done.json refers to a trained model: inside the entry, a shipped one, or a name.

    A model file from elsewhere (a local Cellpose model used as it is) is copied into the
    entry, so the predict step only ever loads a checksummed file inside the cache.
    """
    if not isinstance(model, Path):
        return {"name": str(model)}
    resolved = Path(model).resolve()
    if resolved.is_relative_to(workdir.resolve()):
        return {"path": resolved.relative_to(workdir.resolve()).as_posix()}
    if resolved.is_relative_to(_SHIPPED.resolve()):
        return {"shipped": resolved.relative_to(_SHIPPED.resolve()).as_posix()}
    copy = workdir / "model" / "external" / resolved.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    if resolved.is_dir():
        shutil.copytree(resolved, copy, dirs_exist_ok=True)
    else:
        shutil.copyfile(resolved, copy)
    return {"path": copy.relative_to(workdir).as_posix()}


def _model_ref(record: Mapping[str, Any], workdir: Path):
    """The model a train record names, refused unless inside its entry or a shipped model.

    A done.json edited to point anywhere else (at a pickle planted elsewhere) is a damaged
    entry: the tool never loads what it names.
    """
    for key, root in (("path", workdir), ("shipped", _SHIPPED)):
        if key in record:
            relative = str(record[key])
            try:
                if Path(relative).is_absolute():
                    raise ValueError(relative)
                path = inside(root, relative)
            except ValueError:
                raise UserError(f"{workdir / 'done.json'}: the model reference {relative!r} "
                                "leaves its folder; delete that cache entry (or run with "
                                "--fresh)") from None
            if not path.exists():
                raise UserError(f"{path}: the trained model is missing; delete its cache entry "
                                "(or run with --fresh)")
            return path
    return str(record["name"])


def run_train_task(task: TrainTask, context: RunContext) -> Outcome:
    """Train once (or find the finished model in the cache)."""
    started = time.perf_counter()
    cache = context.cache
    record, damage = cache.train_entry(task.key)
    if record is not None:
        try:  # checksums cover the files, not where done.json says the model is
            _model_ref(record.get("model", {}), cache.train_dir(task.key))
        except (UserError, KeyError) as exc:
            record, damage = None, f"model reference: {exc}"
    if record is not None:
        return Outcome(task.task_id, "ok", cached=True,
                       seconds=float(record.get("seconds", 0.0)),
                       model_info=dict(record.get("model_info", {})))
    notes = [_damage_note(cache.train_dir(task.key), damage)] if damage else []
    try:
        adapter = context.registry().get(task.adapter, **task.options)
        workdir = cache.start_train(task.key)
        # Read one at a time as the adapter goes through them: at 4096², 31 training
        # micrographs with their masks would hold 4 GB.
        micrographs = context.dataset().lazy_micrographs(list(task.train_names)) \
            if task.train_names else []
        native_dir = _mkdir(workdir / NATIVE_DIR)
        native = adapter.to_native(micrographs, native_dir)
        model = adapter.train(native, dict(task.params), _mkdir(workdir / "model"))
        seconds = time.perf_counter() - started
        model_info = adapter.model_info(model)
        record = {"model": _model_record(model, workdir), "seconds": seconds,
                  "adapter": task.adapter, "params": dict(task.params),
                  "model_info": model_info, "trained_on": list(task.train_names)}
        # The tool's copy of the training data is rebuilt from the dataset whenever it is
        # needed again; kept, it would hold every training image once per fold and method.
        # (Unless an adapter returned a model that lives in it.)
        if not Path(str(model)).resolve().is_relative_to(native_dir.resolve()):
            shutil.rmtree(native_dir)
        cache.finish_train(task.key, record)
    except Exception as exc:  # a crashing tool fails its configurations, not the run
        outcome = _failure(task.task_id, context.out, exc, started)
        outcome.notes = notes
        return outcome
    return Outcome(task.task_id, "ok", seconds=seconds, notes=notes, model_info=model_info)


def _damage_note(folder: Path, why: str) -> str:
    return f"cache entry {folder} was damaged ({why}); recomputing it"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def scoring_shape(truth: RegionSet, kind: RegionKind) -> RegionSet:
    """Ground truth in the shape a method is scored against, as the paper does."""
    if kind is RegionKind.BOX:
        return truth.to_boxes()
    if kind is RegionKind.CIRCLE:
        return truth.to_circles()
    return truth


def prediction_file(config_id: str, fold: int, image: str) -> str:
    """The path, relative to OUT, of one configuration's selected prediction of one image."""
    return f"predictions/{config_id}/fold-{fold}/{image}.npz"


def run_predict_task(task: PredictTask, context: RunContext, trained: Outcome) -> Outcome:
    """Predict once (or read the cached predictions), then score every configuration on it."""
    started = time.perf_counter()
    if trained.status != "ok":
        return Outcome(task.task_id, "failed", error=f"training failed: {trained.error}",
                       log_file=trained.log_file)
    cache = context.cache
    notes: list[str] = []
    try:
        record, damage = cache.predict_entry(task.key)
        if damage:
            notes.append(_damage_note(cache.predict_dir(task.key), damage))
        cached = record is not None
        dataset = context.dataset()
        micrographs = dataset.lazy_micrographs(list(task.test_names))
        adapter = context.registry().get(task.adapter, **task.options)
        if cached:
            predictions = cache.load_predictions(task.key, task.test_names)
            seconds = float(record.get("seconds", 0.0))
        else:
            train_dir = cache.train_dir(task.train_key)
            trained_record, damage = cache.train_entry(task.train_key)
            if trained_record is None:
                raise UserError(f"{train_dir}: the trained model's cache entry is "
                                f"{damage or 'gone'}; run again to retrain it")
            model = _model_ref(trained_record["model"], train_dir)
            predictions = adapter.predict(model, micrographs, dict(task.params),
                                          cache.predict_workdir(task.workdir_key))
            if len(predictions) != len(micrographs):
                raise RuntimeError(f"{task.adapter}.predict returned {len(predictions)} "
                                   f"results for {len(micrographs)} micrographs")
            seconds = time.perf_counter() - started
            cache.store_predictions(task.key, task.test_names, predictions,
                                    {"seconds": seconds, "adapter": task.adapter,
                                     "params": dict(task.params)})
        rows = _score(task, context, adapter, micrographs, predictions)
    except Exception as exc:  # a crashing tool fails its configurations, not the run
        outcome = _failure(task.task_id, context.out, exc, started)
        outcome.notes = notes
        return outcome
    return Outcome(task.task_id, "ok", cached=cached, seconds=seconds, rows=rows, notes=notes)


def _score(task: PredictTask, context: RunContext, adapter, micrographs, predictions):
    from lipobench.metrics import match

    rows = []
    thresholds = list(task.iou_thresholds)
    for micrograph, raw in zip(micrographs, predictions):
        if raw.kind is not adapter.region_kind:
            raise RuntimeError(f"{task.adapter}.predict returned {raw.kind.value} regions for "
                               f"{micrograph.name}; its region_kind is "
                               f"{adapter.region_kind.value}")
        truth = micrograph.truth
        if truth is None:
            raise UserError(f"{micrograph.name}: a test micrograph has no ground truth; "
                            "label it or move it out of the test images")
        truth = scoring_shape(truth, adapter.region_kind)
        for scoring in task.scorings:
            selected = adapter.select(raw, dict(scoring.select)) if scoring.select else raw
            relative = prediction_file(scoring.config_id, task.fold, micrograph.name)
            # Rewritten on every run, so the files always match this run's table.
            save_regions(inside(context.out, relative), selected)
            result = match(truth, selected, thresholds)
            rows.append({
                "config_id": scoring.config_id, "image": micrograph.name,
                "prediction_file": relative,
                "iou_threshold": np.asarray(result.thresholds, float).tolist(),
                "tp": np.asarray(result.tp).tolist(), "fp": np.asarray(result.fp).tolist(),
                "fn": np.asarray(result.fn).tolist(),
                "n_true": int(result.n_true), "n_pred": int(result.n_pred),
            })
    return rows


# ---------------------------------------------------------------------------- planning


def make_folds(experiment: Experiment, dataset) -> list[Fold]:
    """The folds of the experiment's split, checked against the dataset's images."""
    where = str(experiment.source or "experiment")
    if not getattr(dataset, "labelled", True):
        raise UserError(f"{where}: dataset: {dataset.root} has no ground-truth masks, so nothing "
                        "can be scored; add masks (see lipobench info) or pick a labelled dataset")
    split = experiment.split
    if isinstance(split, KFoldSplit):
        names = sorted(dataset.names)
        if split.k > len(names):
            raise UserError(f"{where}: split.k: {split.k} folds but the dataset has "
                            f"{len(names)} images; use k <= {len(names)}")
        order = [names[i] for i in np.random.default_rng(split.seed).permutation(len(names))]
        parts = [tuple(sorted(p.tolist())) for p in np.array_split(np.array(order), split.k)]
        return [Fold(i, tuple(sorted(n for j, p in enumerate(parts) if j != i for n in p)), part)
                for i, part in enumerate(parts)]
    subsets = dict(dataset.split)
    for key, subset in (("train", split.train), ("test", split.test)):
        if not subsets.get(subset):
            known = ", ".join(sorted(subsets)) or "none"
            raise UserError(f"{where}: split.{key}: the dataset has no images in split "
                            f"{subset!r} (its splits: {known}); name one of them or use "
                            'mode = "kfold"')
    overlap = sorted(set(subsets[split.train]) & set(subsets[split.test]))
    if overlap:
        raise UserError(f"{where}: split: image {overlap[0]!r} is in both {split.train!r} and "
                        f"{split.test!r}; fix the dataset's split")
    return [Fold(0, tuple(subsets[split.train]), tuple(subsets[split.test]))]


def check_scorable(folds: list[Fold], dataset, *, where: str) -> None:
    """Refuse folds whose test images hold no particle at all.

    With nothing to find and nothing found, precision, recall and F1 are 1 by convention:
    a 1 x 1-pixel test set would score perfectly and say nothing.
    """
    for fold in folds:
        if not any(len(dataset.micrograph(name).truth) for name in fold.test):
            which = "the test images" if len(folds) == 1 else f"fold {fold.index}'s test images"
            raise UserError(f"{where}: {which} ({', '.join(fold.test)}) hold no particles, so "
                            "every score would be 1 by convention; label particles in them or "
                            "choose other test images")


@dataclass
class PlannedConfig:
    """A configuration on one fold: resolved values, its tasks, or why it cannot run."""

    configuration: Configuration
    fold: int
    params: dict[str, Any]
    tool_version: str | None
    status: Status = "ok"
    error: str = ""
    train_key: str = ""
    predict_key: str = ""


@dataclass
class Plan:
    """Everything a run will do, computed before any task runs."""

    folds: list[Fold]
    configs: list[PlannedConfig]
    train_tasks: dict[str, TrainTask]
    predict_tasks: dict[str, PredictTask]
    unavailable: dict[str, str]


def plan_run(experiment: Experiment, registry, dataset) -> Plan:
    """Expand configurations x folds into deduplicated train and predict tasks."""
    folds = make_folds(experiment, dataset)
    where = str(experiment.source or "experiment")
    check_scorable(folds, dataset, where=where)
    configurations = expand_configurations(experiment, registry)
    thresholds = tuple(float(t) for t in experiment.iou_thresholds)
    unavailable: dict[str, str] = {}
    versions: dict[str, str | None] = {}
    adapters = {}
    used = {c.adapter for c in configurations}
    # An adapter may reuse another's training (LipoPose trains as Cellpose): load that one too.
    trainers = {name: getattr(registry.entry(name).adapter_cls, "trains_as", None) or name
                for name in used}
    for adapter_name in used | set(trainers.values()):
        options = experiment.tools.get(adapter_name, {})
        adapters[adapter_name] = registry.get(adapter_name, **options)
        available = adapters[adapter_name].availability()
        versions[adapter_name] = available.tool_version
        if not available.ok:
            unavailable[adapter_name] = "; ".join(p for p in (available.reason, available.fix) if p)
    # A fix to lipobench or to an adapter must not be answered from the old code's cache.
    code_versions = {name: (lipobench_version,
                            str(registry.entry(name).adapter_cls.cache_version))
                     for name in adapters}
    stats_cache: dict[int, Any] = {}
    planned: list[PlannedConfig] = []
    train_tasks: dict[str, TrainTask] = {}
    predict_tasks: dict[str, PredictTask] = {}
    scorings: dict[str, list[Scoring]] = {}
    for fold in folds:
        train_fp = dataset.fingerprint(list(fold.train))
        test_fp = dataset.fingerprint(list(fold.test))
        for configuration in configurations:
            adapter_cls = registry.entry(configuration.adapter).adapter_cls
            if configuration.derives and fold.index not in stats_cache:
                stats_cache[fold.index] = training_statistics(
                    m.truth for m in dataset.lazy_micrographs(list(fold.train)))
            params = resolve_parameters(configuration.spec, stats_cache.get(fold.index))
            if configuration.derives:  # literal values were checked with the experiment
                check_parameters(f"{where}: methods.{configuration.method} (fold "
                                 f"{fold.index})", params, adapter_cls)
            version = versions[configuration.adapter]
            item = PlannedConfig(configuration, fold.index, params, version)
            planned.append(item)
            if configuration.adapter in unavailable:
                item.status, item.error = "unavailable", unavailable[configuration.adapter]
                continue
            stages = adapters[configuration.adapter].split_parameters(params)
            trainable = getattr(adapter_cls, "trainable", True)
            train_names = fold.train if trainable else ()
            trainer = trainers[configuration.adapter]
            trainer_options = experiment.tools.get(trainer, {})
            train_key = sha256_key("train", trainer, versions[trainer], trainer_options,
                                   stages[Stage.TRAIN], train_fp if trainable else None,
                                   code_versions[trainer])
            predictor = (configuration.adapter, code_versions[configuration.adapter])
            workdir_key = sha256_key("predict-work", train_key, test_fp, predictor)
            predict_key = sha256_key("predict", train_key, stages[Stage.PREDICT], test_fp,
                                     predictor)
            item.train_key, item.predict_key = train_key, predict_key
            train_tasks.setdefault(train_key, TrainTask(
                train_key, trainer, dict(trainer_options), stages[Stage.TRAIN],
                tuple(train_names)))
            predict_tasks.setdefault(predict_key, PredictTask(
                predict_key, train_key, configuration.adapter, dict(configuration.options),
                stages[Stage.PREDICT], fold.index, tuple(fold.test), workdir_key, (),
                thresholds))
            scorings.setdefault(predict_key, []).append(
                Scoring(configuration.config_id, stages[Stage.SELECT]))
    for key, task in predict_tasks.items():
        predict_tasks[key] = replace(task, scorings=tuple(scorings[key]))
    return Plan(folds, planned, train_tasks, predict_tasks, unavailable)




# ---------------------------------------------------------------------------- datasets


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
    # Readable and unique: the preset and seed, plus a hash of any overrides.
    key = f"{source.preset}-seed{source.seed}"
    if given:
        key += "-" + sha256_key(given)[:10]
    target = Path(out) / "data" / key
    marker = target / "dataset.toml"
    if not marker.exists():
        from lipobench.synth import make_dataset

        with atomic_dir(target) as tmp:
            made = Path(make_dataset(tmp, preset=source.preset, seed=source.seed, **given))
            if made.resolve() != tmp.resolve():
                raise RuntimeError(f"make_dataset wrote to {made}, not to {tmp}")
    return target.resolve()


# ---------------------------------------------------------------------------- running


@dataclass
class RunSummary:
    """What :func:`run_experiment` did and where it wrote it."""

    out: Path
    table: Any
    summary: Any
    counts: dict[str, int]


def run_experiment(
    experiment: Experiment,
    *,
    out: str | Path | None = None,
    executor=None,
    registry=None,
    registry_factory: Callable[[], Any] | None = None,
    fresh: bool = False,
    console=None,
    keep_other_methods: bool = False,
) -> RunSummary:
    """Run every configuration of ``experiment`` and write the results under ``out``.

    ``executor`` defaults to the one the experiment names (:mod:`lipobench.executors`).
    ``registry_factory`` (picklable) builds the adapter registry in each worker; by default
    workers reuse ``registry`` (its adapter classes must then be importable there) or, when
    neither is given, load the installed plugins. ``fresh`` deletes the cache first, so every task reruns.
    ``keep_other_methods`` (``lipobench run --only``) keeps the rows of the methods this run
    leaves out from the results already in ``out``, instead of replacing the table.

    Everything the user can get wrong is checked before the output folder is touched; the
    run holds an exclusive lock on it (:func:`lipobench.fsutil.folder_lock`).
    """
    from lipobench import executors

    if registry is None:
        registry = registry_factory() if registry_factory is not None else _load_registry()
    elif registry_factory is None:
        # In-process tasks can share the caller's registry; remote workers build their own.
        registry_factory = _SameRegistry(registry)
    where = str(experiment.source or "experiment")
    if out is not None:
        key = "--out"
    elif experiment.output is not None:
        key = f"{where}: output"
    else:
        key = f"{where}: name"
        check_name(experiment.label, where=key, what="experiment")
    out = Path(out if out is not None else
               (experiment.output or Path("results") / experiment.label)).resolve()
    if executor is None:
        executor = executors.from_config(experiment.executor)
    # Check cheap things before drawing data or touching the output folder.
    expand_configurations(experiment, registry)
    check_dataset_source(experiment)
    check_output_dir(out, key=key)
    _check_same_experiment(out, experiment, key)
    from lipobench.data import load_dataset

    dataset_path, plan = experiment.dataset_path(), None
    if dataset_path is not None:  # a dataset on disk is checked before OUT is touched
        dataset_path = dataset_path.resolve()
        plan = plan_run(experiment, registry, load_dataset(dataset_path))
    with folder_lock(out, what=f"lipobench run {where}", key=key):
        try:
            return _run_locked(experiment, out, executor, registry, registry_factory, fresh,
                               console, keep_other_methods, dataset_path, plan)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            raise UserError(os_error_message(exc, exc.filename or out) + "; finished tasks "
                            "are cached: run the same command again to resume") from None


def jobs_for(plan, context) -> list[Job]:
    """The plan's tasks as jobs, each predict job listed right after its train job."""
    by_train: dict[str, list] = {}
    for task in plan.predict_tasks.values():
        by_train.setdefault(task.train_key, []).append(task)
    jobs = []
    for key, task in plan.train_tasks.items():
        jobs.append(Job(key, run_train_task, (task, context), (), task.task_id))
        for predict in by_train.get(key, []):
            jobs.append(Job(predict.key, run_predict_task, (predict, context), (key,),
                            predict.task_id))
    return jobs


def _run_locked(experiment, out, executor, registry, registry_factory, fresh, console,
                keep_other_methods, dataset_path, plan) -> RunSummary:
    from lipobench import executors
    from lipobench.data import load_dataset
    from lipobench.report import results

    jobs: list = []
    progress = executors.Progress(console=console)
    started = time.time()
    try:
        remove_stale_temporaries(out)  # what a killed run was writing; we hold the lock
        if fresh and (out / "cache").exists():
            shutil.rmtree(out / "cache")
        if plan is None:
            dataset_path = prepare_dataset(experiment, out)
            plan = plan_run(experiment, registry, load_dataset(dataset_path))
        context = RunContext(str(dataset_path), str(out), registry_factory)
        for adapter_name, reason in sorted(plan.unavailable.items()):
            progress.note(f"{adapter_name}: unavailable: {reason}")
        jobs = jobs_for(plan, context)
        outcomes = executor.run(jobs, progress)
        table = results.build_table(experiment, plan, outcomes, registry)
        previous = None
        if keep_other_methods:
            table, previous = results.keep_other_methods(out, table, experiment.methods,
                                                         registry)
        summary = results.summarize(table)
        results.write_results(out, table, summary, registry=registry)
        labels = dict(zip(table["config_id"], table["config_label"], strict=True))
        atomic_write_text(out / "run.json", _run_record(experiment, plan, dataset_path,
                                                        previous, started=started,
                                                        labels=labels))
    except Interrupted:
        if not jobs:
            raise Interrupted("interrupted before any task ran: run the same command "
                              "again to start") from None
        done = progress.counts()["done"]
        raise Interrupted(f"interrupted after {done} of {len(jobs)} tasks; finished tasks "
                          f"are kept in {out / 'cache'}: run the same command again to "
                          "resume") from None
    counts = progress.counts()
    progress.note(f"wrote {out / 'results.parquet'} and {out / 'summary.csv'}")
    return RunSummary(out, table, summary, counts)


def _check_same_experiment(out: Path, experiment: Experiment, key: str) -> None:
    """Refuse to write one experiment's results over another's."""
    record = out / "run.json"
    if not record.is_file():
        return
    try:
        previous = json.loads(record.read_text(encoding="utf-8")).get("experiment")
    except (OSError, ValueError, AttributeError):
        return  # an unreadable record is replaced by this run's
    if previous and previous != experiment.label:
        raise UserError(f"{key} {out}: holds the results of experiment {previous!r}, not "
                        f"{experiment.label!r}; give another output folder")


class _SameRegistry:
    """A registry factory returning one registry (pickles by value: classes by reference)."""

    def __init__(self, registry):
        self.registry = registry

    def __call__(self):
        return self.registry


def _load_registry():
    from lipobench.plugins import load_registry

    return load_registry()


def _run_record(experiment: Experiment, plan: Plan, dataset_path: Path,
                previous: Mapping[str, Any] | None = None, *, started: float,
                labels: Mapping[str, str] | None = None) -> str:
    """run.json; ``previous`` (a run.json kept by ``--only``) gives the other methods' entries.

    ``labels`` are the results table's configuration labels (``config_label``).

    ``wall_seconds`` is this invocation's, from ``started`` to now: a resumed run reports
    only what it did itself, since cached tasks cost it nothing.
    """
    from lipobench.provenance import environment

    configs = {}
    labels = labels or {}
    unavailable = dict(plan.unavailable)
    if previous:
        for config_id, entry in previous.get("configurations", {}).items():
            if entry.get("method") not in experiment.methods:
                configs[config_id] = {**entry,
                                      "label": labels.get(config_id, entry.get("label"))}
        for name, reason in previous.get("unavailable", {}).items():
            unavailable.setdefault(name, reason)
    for item in plan.configs:
        entry = configs.setdefault(item.configuration.config_id, {
            "method": item.configuration.method, "adapter": item.configuration.adapter,
            "spec": item.configuration.spec,
            "label": labels.get(item.configuration.config_id, item.configuration.method),
            "resolved": {}})
        entry["resolved"][str(item.fold)] = item.params
    return canonical_json({
        "experiment": experiment.label,
        "source": str(experiment.source) if experiment.source else None,
        "dataset": str(dataset_path),
        "iou_thresholds": list(experiment.iou_thresholds),
        "folds": [{"index": f.index, "train": list(f.train), "test": list(f.test)}
                  for f in plan.folds],
        "configurations": configs,
        "unavailable": unavailable,
        "environment": environment({item.configuration.adapter: item.tool_version
                                    for item in plan.configs}),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": round(time.time() - started, 1),
    })
