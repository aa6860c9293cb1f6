"""File-system helpers: atomic output, output-folder checks, safe names, folder locks.

Atomic writes mean a killed run never leaves a half-written result behind; the checks here
turn a folder that cannot be written, a name that would leave its folder, or a folder in use
by another run into one :class:`~lipobench.errors.UserError` line before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from lipobench.errors import UserError

__all__ = ["atomic_path", "atomic_dir", "atomic_write_text", "os_error_message",
           "check_output_dir", "check_name", "inside", "file_sha256", "folder_lock",
           "remove_stale_temporaries"]


#: In the name of every temporary file or folder of an atomic write, so that what a killed
#: process left behind can be told from a user's own hidden files.
TEMP_MARK = ".lbtmp-"


def remove_stale_temporaries(root: str | os.PathLike) -> int:
    """Delete what killed atomic writes left under ``root``; return how many.

    Only call it while no other process writes there (under :func:`folder_lock`).
    """
    removed = 0
    for path in sorted(Path(root).rglob(f".*{TEMP_MARK}*"), key=lambda p: -len(p.parts)):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    The temporary name keeps ``suffix`` (or the target's), so writers that pick a format
    from the extension still work. On an exception the temporary file is removed and
    ``target`` is untouched.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "result.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}{TEMP_MARK}",
                                suffix=suffix or target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    # mkstemp creates 0600; a result file should get the permissions any new file gets.
    os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; it becomes ``target`` only on success.

    An existing ``target`` is replaced. A crash leaves only a hidden ``.target.*`` folder that
    the next call ignores.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TEMP_MARK}", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_current_umask())  # mkdtemp creates 0700
    try:
        yield tmp
        # Rename the old target aside first: an interrupt then leaves the old folder, the
        # new one, or none, never a half-deleted one.
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}{TEMP_MARK}old-",
                                        dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` atomically and return the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


# ---------------------------------------------------------------------------- errors

_OS_FIXES = {
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "check the path"),
    errno.EISDIR: ("is a folder, not a file", "give a file path"),
    errno.EEXIST: ("already exists", "remove it or choose another path"),
    errno.EACCES: ("permission denied", "fix its permissions or choose a path you may write"),
    errno.EPERM: ("operation not permitted", "fix its permissions or choose another path"),
    errno.EROFS: ("read-only file system", "choose a folder on a writable disk"),
    errno.ENOSPC: ("no space left on the device (disk full)",
                   "free some space or choose a folder on another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose a folder on another disk"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path"),
}
#: numpy and zipfile report a short write without an errno; it means the disk filled up.
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def os_error_message(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for a file-system error: the path, what went wrong and what to do.

    >>> os_error_message(OSError(errno.ENOSPC, "No space left on device", "/data/out.npz"))
    '/data/out.npz: no space left on the device (disk full); free some space or choose a folder on another disk'
    >>> os_error_message(OSError("262144 requested and 171964 written"), "out")
    'out: no space left on the device (disk full); free some space or choose a folder on another disk'
    """
    where = path if path is not None else (exc.filename or "(a file)")
    code = exc.errno
    if code is None and _SHORT_WRITE.search(str(exc)):
        code = errno.ENOSPC
    if code in _OS_FIXES:
        what, fix = _OS_FIXES[code]
        return f"{where}: {what}; {fix}"
    detail = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}: {detail}; check the path and the disk"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says that the disk (or the quota) is full, or it is read-only."""
    if not isinstance(exc, OSError):
        return False
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) or (
        exc.errno is None and bool(_SHORT_WRITE.search(str(exc))))


# ---------------------------------------------------------------------------- checks


def check_output_dir(path: str | os.PathLike, *, key: str) -> Path:
    """Refuse, before any work, an output folder that cannot be created or written.

    ``path`` may exist (a folder) or not; nothing is left behind: writability is probed with
    a temporary file in the folder or its nearest existing parent, removed at once. ``key``
    names the option or file key in the message (``--out``, ``output``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{key} {path}: exists and is not a folder; give a folder path")
    probe_in = path
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise UserError(f"{key} {path}: {probe_in} is a file, not a folder; give a folder path")
    try:
        fd, name = tempfile.mkstemp(prefix=".lipobench-probe.", dir=probe_in)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise UserError(f"{key} " + os_error_message(exc, probe_in)) from None
    return path


#: One path component: no separator or control character, not hidden, not "." or "..".
_SAFE_NAME = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]*")


def check_name(name: str, *, where: str, what: str) -> str:
    """``name`` if it is safe as one file or folder name, else one UserError line.

    Names of experiments, methods and micrographs become paths under the output folder;
    one with a separator, ``..`` or a leading dot could write outside it or hide a file.

    >>> check_name("cellpose diameter 30", where="x.toml", what="method")
    'cellpose diameter 30'
    >>> check_name("../x", where="x.toml: methods", what="method")
    Traceback (most recent call last):
    ...
    lipobench.errors.UserError: x.toml: methods: method name '../x' would become a path outside its folder or a hidden file; drop '/', '\\' and control characters and do not start it with '.'
    """
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or len(name) > 200:
        raise UserError(f"{where}: {what} name {name!r} would become a path outside its folder "
                        "or a hidden file; drop '/', '\\' and control characters and do not "
                        "start it with '.'")
    return name


def inside(root: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """``root / relative``, refusing a path that leaves ``root`` (after resolving links).

    >>> str(inside("/out", "predictions/a.npz"))
    '/out/predictions/a.npz'
    >>> inside("/out", "../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: ../etc/passwd leaves /out
    """
    root = Path(root)
    target = root / relative
    if not target.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{relative} leaves {root}")
    return target


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- locks

LOCK_NAME = ".lipobench.lock"


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str, key: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the ``with`` block.

    A second holder gets one UserError line naming the first (pid, host, ``what``, since
    when). The lock is an ``flock`` on ``folder/.lipobench.lock``, so the kernel releases it
    when the holder dies, even by SIGKILL: a stale lock file never blocks the next run.
    """
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                   f"{holder.get('what', 'another lipobench run')}, since "
                   f"{holder.get('since', '?')}")
            raise UserError(f"{key} {folder}: in use by another run ({who}); wait for it to "
                            "finish or give another output folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "what": what,
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        yield path
    finally:
        handle.close()  # closing the file releases the flock
