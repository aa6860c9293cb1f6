"""Planning: an experiment and a dataset become folds, then deduplicated train and predict tasks.

Each configuration (one point of a method's grid, :mod:`lipobench.experiment`) is resolved
per fold (derived values from that fold's training truth) and split by stage:

- one **train task** per (adapter, tool version, options, TRAIN parameters, training images);
  a method that needs no training (``trainable = False``) trains once for every fold;
- one **predict task** per (train task, PREDICT parameters, test images); it also scores,
  for every configuration that shares it, each SELECT combination on each test image at every
  IoU threshold, so a sweep over a SELECT parameter never reruns the tool.

What goes into each key is :mod:`lipobench.run.keys`'s. Everything the user can get wrong in
the split is refused here, before any task runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lipobench.adapters.base import Stage
from lipobench.errors import UserError
from lipobench.experiment import (
    Configuration,
    Experiment,
    KFoldSplit,
    check_parameters,
    expand_configurations,
    resolve_parameters,
    training_statistics,
)
from lipobench.run import keys
from lipobench.run.tasks import Fold, PredictTask, Scoring, Status, TrainTask

__all__ = ["make_folds", "check_scorable", "PlannedConfig", "Plan", "plan_run"]


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
    status: Status = Status.OK
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
    code_versions = {name: keys.code_version(registry, name) for name in adapters}
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
                item.status = Status.UNAVAILABLE
                item.error = unavailable[configuration.adapter]
                continue
            stages = adapters[configuration.adapter].split_parameters(params)
            trainable = getattr(adapter_cls, "trainable", True)
            train_names = fold.train if trainable else ()
            trainer = trainers[configuration.adapter]
            trainer_options = experiment.tools.get(trainer, {})
            train_key = keys.train_key(trainer, versions[trainer], trainer_options,
                                       stages[Stage.TRAIN], train_fp if trainable else None,
                                       code_versions[trainer])
            code = code_versions[configuration.adapter]
            workdir_key = keys.predict_workdir_key(train_key, configuration.adapter, code,
                                                   test_fp)
            predict_key = keys.predict_key(train_key, configuration.adapter, code,
                                           stages[Stage.PREDICT], test_fp)
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
