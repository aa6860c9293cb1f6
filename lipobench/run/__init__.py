"""Running an experiment: it becomes train and predict tasks, run once each, cached, scored.

Modules, by concept; imports point one way, each only to those above it:

- :mod:`~lipobench.run.tasks`: the task types, jobs, outcomes and their :class:`Status`;
- :mod:`~lipobench.run.context`: what every task needs (dataset, OUT, the registry, built
  once per process and run);
- :mod:`~lipobench.run.keys`: what goes into each cache key;
- :mod:`~lipobench.run.plan`: folds, and configurations x folds into deduplicated tasks;
- :mod:`~lipobench.run.scoring`: each configuration's selection against the ground truth;
- :mod:`~lipobench.run.work`: the task bodies (train, predict) and the jobs that run them;
- :mod:`~lipobench.run.progress` and :mod:`~lipobench.run.executors`: where jobs run (in
  process or on Dask) and the progress line;
- :mod:`~lipobench.run.dataset`: the dataset folder, or a synthetic one drawn once;
- :mod:`~lipobench.run.record`: ``run.json``;
- :mod:`~lipobench.run.orchestrate`: :func:`run_experiment`, which ties them together.

Tasks are plain picklable dataclasses naming adapters and paths (never live objects); the
worker that runs one builds its own registry and dataset once per run, so the in-process and
the Dask executors run the very same code.

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

from lipobench.run.context import RunContext
from lipobench.run.dataset import check_dataset_source, prepare_dataset
from lipobench.run.executors import DaskExecutor, LocalExecutor, from_config
from lipobench.run.orchestrate import RunSummary, run_experiment
from lipobench.run.plan import Plan, PlannedConfig, make_folds, plan_run
from lipobench.run.progress import Progress
from lipobench.run.scoring import prediction_file, scoring_shape
from lipobench.run.tasks import Fold, Job, Outcome, PredictTask, Scoring, Status, TrainTask
from lipobench.run.work import jobs_for, run_predict_task, run_train_task

__all__ = ["run_experiment", "RunSummary", "Status", "Outcome", "Job", "Fold", "TrainTask",
           "PredictTask", "Scoring", "RunContext", "Plan", "PlannedConfig", "plan_run",
           "make_folds", "run_train_task", "run_predict_task", "jobs_for", "scoring_shape",
           "prediction_file", "check_dataset_source", "prepare_dataset", "LocalExecutor",
           "DaskExecutor", "from_config", "Progress"]
