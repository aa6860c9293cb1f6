"""``OUT/run.json``: what a run ran, on what, and for how long; and who owns an output folder.

run.json holds the experiment's name and file, the dataset folder, the IoU thresholds, the
folds, every configuration with its spec, label and resolved values per fold, the methods
that were unavailable and why, the environment (:func:`lipobench.provenance.environment`),
and when the run started and how long it took.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lipobench.cache import canonical_json
from lipobench.errors import UserError
from lipobench.experiment import Experiment
from lipobench.run.plan import Plan

__all__ = ["run_record", "check_same_experiment"]


def check_same_experiment(out: Path, experiment: Experiment, key: str) -> None:
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


def run_record(experiment: Experiment, plan: Plan, dataset_path: Path,
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
