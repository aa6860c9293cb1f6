"""Executors: the Dask executor runs the same tasks into the same cache and the same table."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lipobench.cli import main
from lipobench.data import load_dataset, write_dataset
from lipobench.errors import UserError
from lipobench.run.executors import DaskExecutor, LocalExecutor, from_config
from lipobench.run.work import jobs_for
from lipobench.experiment import ExecutorConfig, ExecutorKind, load_experiment
from lipobench.micrograph import Micrograph
from lipobench.plugins import load_registry
from lipobench.regions import RegionSet
from lipobench.run.context import RunContext
from lipobench.run.plan import plan_run

TIMING = ["train_seconds", "predict_seconds", "seconds", "cached"]

EXPERIMENT = """
iou_thresholds = [0.5, 0.75]
[dataset]
path = "tiny"
[methods.log]
threshold = [2.0, 4.0]
min_sigma = [{ derive = "radius", statistic = "median", scale = 0.5 }, 4.0]
max_sigma = 12.0
downsample = 1
"""


def make_dataset(root: Path) -> Path:
    """Four 96^2 images of three dark disks each (radius 8 + i), 2 train / 2 test."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    micrographs = []
    for i in range(4):
        image = np.ones((96, 96), np.float32)
        labels = np.zeros((96, 96), np.int32)
        for k, (r, c) in enumerate([(25, 25), (25, 70), (70, 40)]):
            inside = (yy - r) ** 2 + (xx - c) ** 2 < (8 + i) ** 2
            image[inside], labels[inside] = 0.2, k + 1
        image += rng.normal(0, 0.05, image.shape).astype(np.float32)
        micrographs.append(Micrograph(f"m{i}", image, 1.0, RegionSet.from_labels(labels)))
    return write_dataset(root, micrographs, name="tiny",
                         split={"train": ["m0", "m1"], "test": ["m2", "m3"]})


@pytest.fixture()
def experiment_path(tmp_path):
    make_dataset(tmp_path / "tiny")
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT)
    return path


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_table_as_local(experiment_path, tmp_path):
    assert main(["run", str(experiment_path), "--out", str(tmp_path / "local")]) == 0
    assert main(["run", str(experiment_path), "--out", str(tmp_path / "dask"),
                 "--executor", "dask", "--workers", "2"]) == 0
    local = pd.read_parquet(tmp_path / "local" / "results.parquet")
    dask = pd.read_parquet(tmp_path / "dask" / "results.parquet")
    assert len(local) == 4 * 2 * 2 and set(local["status"]) == {"ok"}
    assert local["tp"].sum() > 0
    keep = [c for c in local.columns if c not in TIMING]
    pd.testing.assert_frame_equal(local[keep], dask[keep])
    for name in ("summary.csv",):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "local" / name),
                                      pd.read_csv(tmp_path / "dask" / name))
    # the Dask run filled the same kind of cache: a local rerun on it does no work
    assert main(["run", str(experiment_path), "--out", str(tmp_path / "dask")]) == 0
    rerun = pd.read_parquet(tmp_path / "dask" / "results.parquet")
    assert rerun["cached"].all()


def test_jobs_are_picklable_and_name_no_live_objects(experiment_path, tmp_path):
    registry = load_registry()
    experiment = load_experiment(experiment_path, registry)
    dataset = load_dataset(tmp_path / "tiny")
    plan = plan_run(experiment, registry, dataset)
    context = RunContext(str(tmp_path / "tiny"), str(tmp_path / "out"), load_registry)
    jobs = jobs_for(plan, context)
    assert len(jobs) == 1 + 2  # log trains once; two PREDICT combinations (min_sigma)
    assert jobs[0].deps == () and all(job.deps == (jobs[0].key,) for job in jobs[1:])
    restored = pickle.loads(pickle.dumps(jobs))
    assert [job.key for job in restored] == [job.key for job in jobs]
    assert restored[1].args[0].adapter == "log"


def test_from_config_prefers_command_line_flags():
    assert isinstance(from_config(ExecutorConfig()), LocalExecutor)
    dask = from_config(ExecutorConfig(kind="dask", workers=3))
    assert isinstance(dask, DaskExecutor) and dask.workers == 3 and dask.scheduler is None
    assert from_config(ExecutorConfig(kind="dask", workers=3), workers=1).workers == 1
    joined = from_config(ExecutorConfig(), scheduler="tcp://10.0.0.1:8786")
    assert isinstance(joined, DaskExecutor) and joined.scheduler == "tcp://10.0.0.1:8786"
    assert isinstance(from_config(ExecutorConfig(kind="dask"), kind=ExecutorKind.LOCAL),
                      LocalExecutor)


def test_unreachable_scheduler_is_a_user_error():
    executor = DaskExecutor(scheduler="tcp://127.0.0.1:9", connect_timeout="2s")
    with pytest.raises(UserError, match="--scheduler tcp://127.0.0.1:9: cannot reach"):
        executor.run([], None)


def test_existing_scheduler_and_a_job_that_kills_its_worker_task():
    import io
    import operator

    from distributed import LocalCluster
    from rich.console import Console

    from lipobench.run.progress import Progress
    from lipobench.run.tasks import Job, Outcome

    console = Console(file=io.StringIO(), width=200)
    # an in-process cluster starts in about a second; the executor only sees its address
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        executor = DaskExecutor(scheduler=cluster.scheduler_address)
        jobs = [Job("good", Outcome, ("makes", "ok"), (), "makes"),
                Job("bad", operator.truediv, (1, 0), (), "divides")]
        outcomes = executor.run(jobs, Progress(console=console))
    assert outcomes["good"].status == "ok" and outcomes["good"].task_id == "makes"
    assert outcomes["bad"].status == "failed"
    assert "ZeroDivisionError" in outcomes["bad"].error
    assert "failed divides: ZeroDivisionError" in console.file.getvalue()
