"""The task bodies: train once, predict once, score; each a module-level function for a job.

:func:`run_train_task` and :func:`run_predict_task` run in whichever process the executor
picks (this one or a Dask worker); they find a finished result in the cache or compute and
store it. A task that raises is recorded as ``failed`` with its log under OUT/logs and the
others go on; failures are not cached, so the next run retries them. Three things stop the
run instead of failing a task: Ctrl-C (:class:`~lipobench.errors.Interrupted`), a full or
read-only disk, and a second run on the same output folder (refused before it starts).
:func:`jobs_for` lists a plan's tasks as the jobs an executor runs.
"""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lipobench.cache import NATIVE_DIR
from lipobench.errors import Interrupted, ToolFailedError, UserError, interrupt_requested
from lipobench.fsutil import atomic_write_text, inside, is_disk_full
from lipobench.run.context import RunContext
from lipobench.run.plan import Plan
from lipobench.run.scoring import score_predictions
from lipobench.run.tasks import Job, Outcome, PredictTask, Status, TrainTask
from lipobench.shipped import MODELS_DIR

__all__ = ["run_train_task", "run_predict_task", "jobs_for"]

#: The models lipobench ships; a train record may point there instead of into the cache.
_SHIPPED = MODELS_DIR


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
    return Outcome(task_id, Status.FAILED, seconds=time.perf_counter() - started,
                   error=message, log_file=_write_log(out, task_id, exc))


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
        return Outcome(task.task_id, Status.OK, cached=True,
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
    return Outcome(task.task_id, Status.OK, seconds=seconds, notes=notes, model_info=model_info)


def _damage_note(folder: Path, why: str) -> str:
    return f"cache entry {folder} was damaged ({why}); recomputing it"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_predict_task(task: PredictTask, context: RunContext, trained: Outcome) -> Outcome:
    """Predict once (or read the cached predictions), then score every configuration on it."""
    started = time.perf_counter()
    if trained.status != Status.OK:
        return Outcome(task.task_id, Status.FAILED, error=f"training failed: {trained.error}",
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
        rows = score_predictions(task, context, adapter, micrographs, predictions)
    except Exception as exc:  # a crashing tool fails its configurations, not the run
        outcome = _failure(task.task_id, context.out, exc, started)
        outcome.notes = notes
        return outcome
    return Outcome(task.task_id, Status.OK, cached=cached, seconds=seconds, rows=rows,
                   notes=notes)


def jobs_for(plan: Plan, context: RunContext) -> list[Job]:
    """The plan's tasks as jobs, each predict job listed right after its train job."""
    by_train: dict[str, list[PredictTask]] = {}
    for task in plan.predict_tasks.values():
        by_train.setdefault(task.train_key, []).append(task)
    jobs = []
    for key, task in plan.train_tasks.items():
        jobs.append(Job(key, run_train_task, (task, context), (), task.task_id))
        for predict in by_train.get(key, []):
            jobs.append(Job(predict.key, run_predict_task, (predict, context), (key,),
                            predict.task_id))
    return jobs
