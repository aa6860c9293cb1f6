"""Fault injection: what a run survives, and what it says when it cannot go on.

SIGKILL at several points then a rerun (the results equal an uninterrupted run's), Ctrl-C
(exit 130, one line, nothing recorded as failed), a damaged cache entry (reported, recomputed),
a read-only output folder, a full disk, and two runs on one output folder.

Runs that must be killed or interrupted run in a child process (the test doubles of
tests/test_runner.py, so no real tool trains); the rest run the command line in process.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lipobench.plugins
from lipobench.testing import assert_user_error, run_cli
from test_runner import (
    SLEEP_ENV,
    DiskDetectorForTests,
    experiment_file,
    make_dataset,
    make_registry,
    markers,
    tiny_workspace,
)

TESTS = Path(__file__).parent
KILL_AT_ENV = "LIPOBENCH_TEST_KILL_AT_REPLACE"

#: The child: the CLI with the test doubles; it can SIGKILL itself at the N-th os.replace
#: (a result file written to its temporary name, not yet renamed: the middle of a write).
CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import lipobench.plugins
from test_faults import fault_registry
lipobench.plugins.load_registry = lambda **kwargs: fault_registry()
kill_at = int(os.environ.get({kill_env!r}, "0"))
if kill_at:
    real_replace, calls = os.replace, [0]
    def replace(src, dst, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, **kwargs)
    os.replace = replace
from lipobench.cli import main
sys.exit(main(sys.argv[1:]))
"""


class SwallowingDetectorForTests(DiskDetectorForTests):
    """A tool that turns any interruption into its own error, as Cellpose's inference did."""

    name = "swallow"

    def predict(self, model, micrographs, params, workdir: Path):
        try:
            return super().predict(model, micrographs, params, workdir)
        except BaseException as exc:  # noqa: BLE001 - the behaviour under test
            raise RuntimeError("inference aborted") from exc


class SilentSwallowingDetectorForTests(DiskDetectorForTests):
    """A tool that swallows an interruption and carries on, as a library callback can."""

    name = "silent"

    def predict(self, model, micrographs, params, workdir: Path):
        try:
            return super().predict(model, micrographs, params, workdir)
        except BaseException:  # noqa: BLE001 - the behaviour under test
            return super().predict(model, micrographs, params, workdir)


def fault_registry():
    registry = make_registry()
    registry.register(SwallowingDetectorForTests, package="tests")
    registry.register(SilentSwallowingDetectorForTests, package="tests")
    return registry


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    monkeypatch.setattr(lipobench.plugins, "load_registry", lambda **kwargs: fault_registry())
    return tiny_workspace(tmp_path, monkeypatch)


def _child(folder: Path, argv, **env) -> list[str]:
    script = folder / "child.py"
    script.write_text(CHILD.format(tests=str(TESTS), kill_env=KILL_AT_ENV))
    return [sys.executable, str(script), *map(str, argv)]


def _comparable(out: Path) -> pd.DataFrame:
    """The results table without what differs between a fresh and a resumed run."""
    table = pd.read_parquet(out / "results.parquet")
    table = table.drop(columns=["train_seconds", "predict_seconds", "seconds", "cached"])
    return table.sort_values(["config_id", "fold", "image", "iou_threshold"],
                             ignore_index=True)


def _predictions(out: Path) -> dict[str, bytes]:
    from lipobench.cache import load_regions

    found = {}
    for path in sorted((out / "predictions").rglob("*.npz")):
        regions = load_regions(path)
        found[str(path.relative_to(out))] = regions.circles.tobytes()
    return found


def _leftovers(out: Path) -> list[str]:
    """Hidden temporary files or folders of atomic writes (the lock file excepted)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*")
                  if p.name != ".lipobench.lock")


BODY = "[methods.diskdetect]\nradius = [6.0, 7.0, 8.0]\nmin_score = [0.0, 1.0]\n"


# ---------------------------------------------------------------------------- SIGKILL


@pytest.mark.parametrize("kill_at", [1, 3, 6, 10])
def test_sigkill_anywhere_then_rerun_equals_an_uninterrupted_run(workspace, capsys, kill_at):
    folder, marker_dir = workspace
    path = experiment_file(folder, BODY)
    assert run_cli(["run", "--no-plots", path, "--out", folder / "reference"], capsys)[0] == 0
    out = folder / "out"
    killed = subprocess.run(_child(folder, ["run", "--no-plots", path, "--out", out]),
                            env={**os.environ, KILL_AT_ENV: str(kill_at)},
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "results.parquet").exists()

    code, _, err = run_cli(["run", "--no-plots", path, "--out", out], capsys)
    assert code == 0, err
    pd.testing.assert_frame_equal(_comparable(out), _comparable(folder / "reference"))
    assert _predictions(out) == _predictions(folder / "reference")
    assert set(_comparable(out)["status"]) == {"ok"}
    assert not (out / "logs").exists()


# ---------------------------------------------------------------------------- SIGINT


def _interrupted_run(folder: Path, marker_dir: Path, method: str, out: Path
                     ) -> tuple[int, str, float]:
    """Run METHOD over four radii in a child, Ctrl-C it while a predict task sleeps in the
    tool; return its exit code, stderr and how long it took to stop."""
    path = experiment_file(folder, f"[methods.{method}]\nradius = [6.0, 7.0, 8.0, 9.0]\n")
    process = subprocess.Popen(_child(folder, ["run", "--no-plots", path, "--out", out]),
                               env={**os.environ, SLEEP_ENV: "1.0"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if len(markers(marker_dir, "predict")) >= 2:  # one done, one sleeping in the tool
                break
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        return process.returncode, err, time.monotonic() - sent
    finally:
        process.kill()
        process.wait()


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_fails_no_configuration(workspace,
                                                                             capsys):
    folder, marker_dir = workspace
    out = folder / "out"
    # The swallowing tool turns the interrupt into a RuntimeError: it must still not count
    # as a failed configuration.
    code, err, stopped_after = _interrupted_run(folder, marker_dir, "swallow", out)
    assert code == 130, err
    assert stopped_after < 5
    assert "Traceback" not in err
    assert err.count("\n") == 1, err  # the progress bar is cleared: one line is left
    assert err.startswith("lipobench: interrupted after "), err
    assert "run the same command again to resume" in err and str(out / "cache") in err
    assert not (out / "logs").exists()  # no configuration was recorded as failed
    assert not (out / "results.parquet").exists() and not _leftovers(out)

    path = experiment_file(folder, "[methods.swallow]\nradius = [6.0, 7.0, 8.0, 9.0]\n")
    code, stdout, err = run_cli(["run", "--no-plots", path, "--out", out], capsys)
    assert code == 0, err
    table = pd.read_parquet(out / "results.parquet")
    assert set(table["status"]) == {"ok"} and table["config_id"].nunique() == 4
    assert table.groupby("config_id")["cached"].first().sum() >= 1  # finished work was kept


def test_ctrl_c_that_a_tool_swallows_still_stops_the_run_after_its_task(workspace):
    folder, marker_dir = workspace
    out = folder / "out"
    code, err, _ = _interrupted_run(folder, marker_dir, "silent", out)
    assert code == 130, err
    assert err.count("\n") == 1 and err.startswith("lipobench: interrupted after "), err
    assert not (out / "logs").exists() and not (out / "results.parquet").exists()


def test_ctrl_c_inside_torch_code_is_deferred_then_raised():
    # An exception raised into torch's pybind11 callbacks aborts the process (exit -6).
    from lipobench.cli import _sigint_raises_interrupted
    from lipobench.errors import Interrupted

    namespace = {"__name__": "torch.stand_in_for_tests", "os": os, "signal": signal}
    code = compile("os.kill(os.getpid(), signal.SIGINT)\nfor _ in range(200000): pass\n"
                   "finished = True\n", "<torch stand-in>", "exec")
    started = time.monotonic()
    with pytest.raises(Interrupted):
        with _sigint_raises_interrupted():
            exec(code, namespace)  # its frame belongs to "torch.": the handler only notes it
            assert namespace["finished"]
            time.sleep(5)  # the handler looks again 0.2 s later, outside torch, and raises
    assert namespace["finished"] and time.monotonic() - started < 2


def test_ctrl_c_inside_a_finalizer_prints_nothing_and_stops_at_the_next_safe_point(
        monkeypatch):
    import weakref

    from lipobench.cli import _sigint_raises_interrupted
    from lipobench.errors import Interrupted, raise_if_interrupted

    class Held:
        pass

    reported = []  # what Python would print as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    with pytest.raises(Interrupted):
        with _sigint_raises_interrupted():
            held = Held()
            ref = weakref.ref(held, lambda _: [os.kill(os.getpid(), signal.SIGINT),
                                               sum(range(1000))])
            del held  # the callback runs, the handler raises inside it: Python ignores that
            assert ref() is None
            raise_if_interrupted()
    assert reported == []


# ---------------------------------------------------------------------------- the cache


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif how == "emptied":
        path.write_bytes(b"")
    else:
        path.write_bytes(os.urandom(len(path.read_bytes())))


@pytest.mark.parametrize("how", ["truncated", "emptied", "garbage"])
def test_a_damaged_prediction_is_reported_on_one_line_and_recomputed(workspace, capsys, how):
    folder, marker_dir = workspace
    path = experiment_file(folder, BODY)
    out = folder / "out"
    assert run_cli(["run", "--no-plots", path, "--out", out], capsys)[0] == 0
    reference = _comparable(out)
    calls = len(markers(marker_dir, "predict"))
    victim = sorted((out / "cache" / "predict").glob("*/*.npz"))[0]
    _damage(victim, how)

    code, _, err = run_cli(["run", "--no-plots", path, "--out", out], capsys)
    assert code == 0, err
    notes = [line for line in err.splitlines() if "was damaged" in line]
    assert len(notes) == 1, err
    assert str(victim.parent) in notes[0] and victim.name in notes[0] and "recomputing" in notes[0]
    assert len(markers(marker_dir, "predict")) == calls + 1  # that entry only, once
    pd.testing.assert_frame_equal(_comparable(out), reference)

    code, _, err = run_cli(["run", "--no-plots", path, "--out", out], capsys)  # and it stays repaired
    assert code == 0 and "was damaged" not in err
    assert len(markers(marker_dir, "predict")) == calls + 1


def test_a_damaged_model_is_retrained_before_any_prediction_uses_it(workspace, capsys):
    folder, marker_dir = workspace
    path = experiment_file(folder, BODY)
    out = folder / "out"
    assert run_cli(["run", "--no-plots", path, "--out", out], capsys)[0] == 0
    reference = _comparable(out)
    model = next((out / "cache" / "train").glob("*/model/model.json"))
    model.write_text(json.dumps({"shrink": -1, "counts": {}}))  # predict would assert on it
    for entry in (out / "cache" / "predict").iterdir():  # force predictions to use it
        (entry / "done.json").unlink()

    code, _, err = run_cli(["run", "--no-plots", path, "--out", out], capsys)
    assert code == 0, err
    assert "model/model.json does not match its checksum" in err
    assert len(markers(marker_dir, "train")) == 2
    pd.testing.assert_frame_equal(_comparable(out), reference)


def test_a_model_reference_pointing_outside_the_cache_is_never_loaded(workspace, capsys):
    folder, marker_dir = workspace
    path = experiment_file(folder, BODY)
    out = folder / "out"
    assert run_cli(["run", "--no-plots", path, "--out", out], capsys)[0] == 0
    planted = folder / "planted.json"
    planted.write_text(json.dumps({"shrink": -1, "counts": {}}))
    done = next((out / "cache" / "train").glob("*/done.json"))
    record = json.loads(done.read_text())
    for reference in (str(planted), os.path.relpath(planted, done.parent)):
        record["model"] = {"path": reference}
        done.write_text(json.dumps(record))
        for entry in (out / "cache" / "predict").iterdir():
            (entry / "done.json").unlink(missing_ok=True)
        code, _, err = run_cli(["run", "--no-plots", path, "--out", out], capsys)
        assert code == 0, err
        assert "leaves its folder" in err and "recomputing" in err
        table = pd.read_parquet(out / "results.parquet")
        assert set(table["status"]) == {"ok"}  # retrained: the planted file was not used
        record = json.loads(done.read_text())
        assert record["model"] == {"path": "model/model.json"}


def test_a_topaz_manifest_naming_a_file_elsewhere_is_refused(tmp_path):
    from lipobench.adapters.topaz import _read_model_ref
    from lipobench.errors import UserError

    planted = tmp_path / "evil.sav"
    planted.write_bytes(b"not a model")
    entry = tmp_path / "cache" / "train" / "k"
    entry.mkdir(parents=True)
    (entry / "models").mkdir()
    (entry / "models" / "model_epoch1.sav").write_bytes(b"weights")
    (entry / "notes.txt").write_text("x")
    manifest = entry / "topaz_model.json"
    for named, refused in ((str(planted), "outside its folder"),
                           ("../../../evil.sav", "outside its folder"),
                           ("notes.txt", "not a Topaz .sav")):
        manifest.write_text(json.dumps({"model": named, "downsample": 1}))
        with pytest.raises(UserError, match=refused):
            _read_model_ref(manifest)
    manifest.write_text(json.dumps({"model": "models/model_epoch1.sav", "downsample": 4}))
    assert _read_model_ref(manifest) == (str((entry / "models" / "model_epoch1.sav")
                                             .resolve()), 4)


# ---------------------------------------------------------------------------- the disk


@pytest.fixture()
def read_only(monkeypatch):
    """Make writes under a folder fail as on a read-only file system.

    Tests run as root here, where a mode of 0555 stops nothing, so the refusal is injected
    where every file creation passes: os.open (and os.mkdir for folders).
    """
    folders: list[Path] = []
    real_open, real_mkdir = os.open, os.mkdir

    def refused(path) -> bool:
        return any(Path(os.fsdecode(path)).resolve().is_relative_to(f) for f in folders)

    def fake_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and refused(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if refused(path):
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    return lambda folder: folders.append(Path(folder).resolve())


@pytest.mark.parametrize("command", ["run", "convert", "synth", "segment"])
def test_a_read_only_output_folder_is_one_line_before_any_work(workspace, capsys, read_only,
                                                               command):
    folder, marker_dir = workspace
    locked = folder / "locked"
    locked.mkdir()
    read_only(locked)
    target = locked / "out"
    argv = {
        "run": ["run", experiment_file(folder, BODY), "--out", target],
        "convert": ["convert", folder / "tiny", target, "--to", "roi"],
        "synth": ["synth", target, "--n-images", "2", "--size", "64"],
        "segment": ["segment", folder / "tiny" / "images" / "m0.mrc", "--model", "default",
                    "--out", target],
    }[command]
    code, _, err = run_cli(argv, capsys)
    assert_user_error(code, err, str(locked), "read-only file system")
    assert list(locked.iterdir()) == []
    assert markers(marker_dir, "train") == markers(marker_dir, "predict") == []


def test_plot_into_a_read_only_results_folder_is_one_line(workspace, capsys, read_only):
    folder, marker_dir = workspace
    out = folder / "out"
    assert run_cli(["run", "--no-plots", experiment_file(folder, BODY), "--out", out],
                   capsys)[0] == 0
    before = sorted(p.name for p in out.iterdir())
    read_only(out)
    code, _, err = run_cli(["plot", out], capsys)
    assert_user_error(code, err, "--out", str(out), "read-only file system")
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError("262144 requested and 171964 written"),  # numpy's short write, no errno
], ids=["ENOSPC", "short-write"])
def test_a_full_disk_stops_the_run_with_one_line_and_a_rerun_finishes(workspace, capsys,
                                                                      monkeypatch, error):
    folder, marker_dir = workspace
    path = experiment_file(folder, BODY)
    assert run_cli(["run", "--no-plots", path, "--out", folder / "reference"], capsys)[0] == 0
    out = folder / "out"
    real_savez, calls = np.savez_compressed, [0]

    def savez_until_full(handle, **arrays):
        calls[0] += 1
        if calls[0] == 4:
            handle.write(b"\0" * 100)  # part of the file made it to disk
            raise error
        return real_savez(handle, **arrays)

    monkeypatch.setattr(np, "savez_compressed", savez_until_full)
    code, _, err = run_cli(["run", "--no-plots", path, "--out", out], capsys)
    assert_user_error(code, err, "no space left on the device (disk full)",
                      "run the same command again to resume")
    assert not (out / "logs").exists()  # the tool is not blamed
    assert not (out / "results.parquet").exists() and not _leftovers(out)

    monkeypatch.setattr(np, "savez_compressed", real_savez)
    code, _, err = run_cli(["run", "--no-plots", path, "--out", out], capsys)
    assert code == 0, err
    pd.testing.assert_frame_equal(_comparable(out), _comparable(folder / "reference"))


# ---------------------------------------------------------------------------- two runs


def test_a_second_run_on_a_folder_in_use_is_refused_naming_the_holder(workspace, capsys):
    folder, marker_dir = workspace
    first = experiment_file(folder, BODY)
    second = folder / "second.toml"
    second.write_text('name = "second"\n[dataset]\npath = "tiny"\n[methods.diskdetect]\n')
    out = folder / "out"
    process = subprocess.Popen(_child(folder, ["run", "--no-plots", first, "--out", out]),
                               env={**os.environ, SLEEP_ENV: "0.5"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if markers(marker_dir, "predict"):
                break
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()
        for other in (first, second):
            code, _, err = run_cli(["run", "--no-plots", other, "--out", out], capsys)
            assert_user_error(code, err, f"--out {out}", "in use by another run",
                              f"pid {process.pid}", str(first))
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    table = pd.read_parquet(out / "results.parquet")
    assert set(table["experiment"]) == {"exp"} and set(table["status"]) == {"ok"}
    assert table["config_id"].nunique() == 6
    # Once the first has finished, the folder still refuses a different experiment.
    code, _, err = run_cli(["run", "--no-plots", second, "--out", out], capsys)
    assert_user_error(code, err, "holds the results of experiment 'exp'")


def test_library_warnings_never_precede_the_error_line(tmp_path):
    """In a real process (pytest's own log handlers would hide a stray line in process)."""
    folder = tmp_path / "ds"
    make_dataset(folder / "data")
    (folder / "roi").mkdir()
    import shutil
    import zipfile

    shutil.copyfile(folder / "data" / "images" / "m0.mrc", folder / "roi" / "m0.mrc")
    header = bytearray(b"Iout" + bytes(60))
    header[4:6], header[6] = (228).to_bytes(2, "big"), 99  # roifile warns on type 99
    with zipfile.ZipFile(folder / "roi" / "m0.zip", "w") as archive:
        archive.writestr("0001.roi", bytes(header))
    (folder / "dataset.toml").write_text('[dataset]\nimages = "roi"\nmasks = "roi"\n'
                                         'mask_format = "roi"\n')
    main = "import sys; from lipobench.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", main, "info", str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("lipobench: error: ") and "m0.zip" in done.stderr


@pytest.mark.parametrize("command", ["train-defaults", "segment"])
def test_cuda_without_a_gpu_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    make_dataset(tmp_path / "tiny")
    work = tmp_path / "work"
    argv = {"train-defaults": ["train-defaults", "--device", "cuda", "--work-dir", work,
                               "--out", work / "models"],
            "segment": ["segment", tmp_path / "tiny" / "images" / "m0.mrc", "--model",
                        "default", "--device", "cuda", "--out", work]}[command]
    code, _, err = run_cli(argv, capsys)
    assert_user_error(code, err, "cuda", "no GPU")
    assert not work.exists()


def test_a_full_disk_outside_run_is_one_line_and_leaves_no_output(tmp_path, capsys,
                                                                 monkeypatch):
    import lipobench.roi

    make_dataset(tmp_path / "tiny")
    calls = [0]
    real = lipobench.roi.write_roi_zip

    def write_until_full(path, regions):
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, regions)

    monkeypatch.setattr(lipobench.roi, "write_roi_zip", write_until_full)
    code, _, err = run_cli(["convert", tmp_path / "tiny", tmp_path / "rois", "--to", "roi"],
                           capsys)
    assert_user_error(code, err, "m1.zip", "no space left on the device (disk full)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no OUT, no temporary


@pytest.mark.parametrize("how", ["truncated", "emptied", "garbage"])
def test_damaged_lipopose_masks_are_a_cache_miss_not_a_failure(tmp_path, how):
    from lipobench.lipopose.pipeline import load_labels as _load_labels
    from lipobench.lipopose.pipeline import save_labels as _save_labels

    path = tmp_path / "masks" / "m0" / "d30_flow0.4_prob0.npz"
    labels = np.arange(64, dtype=np.int32).reshape(8, 8)
    _save_labels(path, labels)
    assert np.array_equal(_load_labels(path), labels)
    _damage(path, how)
    with pytest.warns(UserWarning, match="damaged cached masks; recomputing"):
        assert _load_labels(path) is None
