import os
import stat

import pytest

from lipobench.fsutil import atomic_dir, atomic_path, atomic_write_text


def test_atomic_path_leaves_target_untouched_on_error(tmp_path):
    target = tmp_path / "result.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.csv"]


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        written = atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "folder") as folder:
            (folder / "inside").write_text("y")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as folder:
        (folder / "one").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(target) as folder:
            (folder / "two").write_text("2")
            raise ValueError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["one"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_check_output_dir_probes_without_leaving_anything(tmp_path):
    from lipobench.errors import UserError
    from lipobench.fsutil import check_output_dir

    (tmp_path / "exists").mkdir()
    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "exists", tmp_path / "new" / "deeper"):
        assert check_output_dir(target, key="--out") == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists", "file"]
    assert list((tmp_path / "exists").iterdir()) == []
    for target in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(UserError, match="--out .*file.*not a folder"):
            check_output_dir(target, key="--out")


def test_folder_lock_refuses_a_second_holder_and_is_released_after(tmp_path):
    from lipobench.errors import UserError
    from lipobench.fsutil import folder_lock

    with folder_lock(tmp_path / "out", what="lipobench run a.toml"):
        # flock locks belong to an open file: a second open in this process conflicts too.
        with pytest.raises(UserError, match=rf"pid {os.getpid()} .*lipobench run a.toml"):
            with folder_lock(tmp_path / "out", what="lipobench run b.toml"):
                pass
    with folder_lock(tmp_path / "out", what="lipobench run b.toml") as lock:
        assert "b.toml" in lock.read_text()


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    from lipobench.fsutil import TEMP_MARK, remove_stale_temporaries

    keep = [tmp_path / ".hidden", tmp_path / "a.npz", tmp_path / "sub" / ".config"]
    stale = [tmp_path / f".a.npz{TEMP_MARK}x1.npz", tmp_path / "sub" / f".d{TEMP_MARK}x2"]
    for path in keep + stale[:1]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    stale[1].mkdir()
    (stale[1] / "inside.npz").write_text("x")
    assert remove_stale_temporaries(tmp_path) == 2
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
