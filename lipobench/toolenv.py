"""Tool environments lipobench installs and manages, for tools that cannot share its Python.

crYOLO 1.9 needs Python 3.7 and TensorFlow 1.15, which cannot live next to lipobench's
Python 3.11. An adapter that needs such an environment declares a :class:`ToolEnvironment`
(a Python version, a file of exact pins, commands that prove the install works);
``lipobench tools install NAME`` then builds it with :func:`install_environment`:

1. find a Python of that version (``--python``, pyenv, ``PATH``, ``uv python find``, conda);
2. create a virtual environment in ``tools_dir()/NAME-VERSION``, install its build tools
   (``build_pins``) alone, then ``pip install --no-deps`` the pins into it, with progress on
   screen and pip's output in a log file;
3. run the check commands;
4. write the marker file ``lipobench-environment.json`` last, so a killed install never looks
   installed (the next install removes the half-built folder and starts again);
5. record the environment's ``bin`` folder in ``installed-tools.json`` beside the user config,
   where :func:`installed_bin_dir` (and so ``doctor`` and the adapter) find it.

The folder is built in place, not renamed into place, because a virtual environment's scripts
carry its absolute path in their first line.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lipobench.errors import ToolFailedError, UserError
from lipobench.fsutil import atomic_write_text, folder_lock, os_error_message

__all__ = ["ToolEnvironment", "tools_dir", "installed_bin_dir", "find_python",
           "install_environment", "MARKER", "TOOLS_DIR_ENV"]

TOOLS_DIR_ENV = "LIPOBENCH_TOOLS_DIR"
MARKER = "lipobench-environment.json"
_RECORD = "installed-tools.json"
#: Written first into a folder being built, so a later install knows it may delete it.
_BUILDING = ".lipobench-building"


@dataclass(frozen=True)
class ToolEnvironment:
    """What an adapter needs installed in an environment of its own.

    Attributes
    ----------
    tool, version : str
        The tool's name and version, which name the environment's folder.
    python : str
        ``"MAJOR.MINOR"`` of the interpreter the environment is built from.
    requirements : Path
        A pip requirements file of exact pins, installed with ``--no-deps`` so that pip never
        resolves (the tool's own metadata may name packages that cannot be installed).
    checks : tuple of tuple of str
        Commands, their first word a script in the environment's ``bin``, that must exit 0.
    size : str
        What the install costs, for the progress line ("about 900 MB").
    build_pins : tuple of str
        Exact pins installed first, on their own, before the requirements. ``wheel`` belongs
        here: without it pip 22 falls back to ``setup.py install`` for source-only pins, whose
        launchers go through ``pkg_resources`` and refuse to start when an ``install_requires``
        left out on purpose (crYOLO's wxPython) is missing.
    """

    tool: str
    version: str
    python: str
    requirements: Path
    checks: tuple[tuple[str, ...], ...] = ()
    size: str = ""
    build_pins: tuple[str, ...] = ()

    @property
    def folder_name(self) -> str:
        return f"{self.tool}-{self.version}"

    def requirements_digest(self) -> str:
        # The build tools change what pip builds, so an environment built without them is
        # outdated too.
        build = "".join(f"{pin}\n" for pin in self.build_pins).encode()
        return hashlib.sha256(build + self.requirements.read_bytes()).hexdigest()

    def pinned_count(self) -> int:
        lines = self.requirements.read_text().splitlines()
        return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


def tools_dir() -> Path:
    """Where managed environments live: ``$LIPOBENCH_TOOLS_DIR``, else the user data folder.

    >>> import os
    >>> os.environ["LIPOBENCH_TOOLS_DIR"] = "/data/envs"
    >>> str(tools_dir())
    '/data/envs'
    >>> del os.environ["LIPOBENCH_TOOLS_DIR"]
    """
    if os.environ.get(TOOLS_DIR_ENV):
        return Path(os.environ[TOOLS_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "lipobench" / "tools"


def _record_path() -> Path:
    from lipobench.toolrun import user_config_path

    return user_config_path().parent / _RECORD


def _read_record() -> dict:
    path = _record_path()
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{path}: unreadable; delete it and run `lipobench tools install` "
                        "again") from None
    return record if isinstance(record, dict) else {}


def installed_bin_dir(tool: str) -> tuple[Path | None, str]:
    """The ``bin`` folder ``lipobench tools install TOOL`` recorded, and where that came from.

    Returns ``(folder, source)``, or ``(None, reason)`` when nothing is recorded or the
    recorded environment is incomplete (its marker file is missing).
    """
    entry = _read_record().get(tool)
    if not isinstance(entry, dict) or not isinstance(entry.get("prefix"), str):
        return None, f"not installed by `lipobench tools install {tool}`"
    prefix = Path(entry["prefix"])
    if not (prefix / MARKER).is_file():
        return None, (f"{_record_path()} names {prefix}, which holds no finished install; "
                      f"run `lipobench tools install {tool}` again")
    return prefix / "bin", f"`lipobench tools install {tool}` ({_record_path()})"


def _python_version(executable: Path) -> str | None:
    try:
        done = subprocess.run([os.fspath(executable), "-c",
                               "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _python_candidates(version: str) -> list[tuple[Path, str]]:
    """Interpreters that may be Python ``version``, with where each was found."""
    candidates: list[tuple[Path, str]] = []
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for folder in sorted((pyenv_root / "versions").glob(f"{version}.*"), reverse=True):
        candidates.append((folder / "bin" / f"python{version}", f"pyenv ({folder})"))
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append((Path(on_path), "PATH"))
    uv = shutil.which("uv")
    if uv:
        try:
            found = subprocess.run([uv, "python", "find", version], capture_output=True,
                                   text=True, timeout=30, check=False)
            if found.returncode == 0 and found.stdout.strip():
                candidates.append((Path(found.stdout.strip()), "uv python find"))
        except (OSError, subprocess.SubprocessError):
            pass
    conda_envs = [Path(os.environ["CONDA_PREFIX"])] if os.environ.get("CONDA_PREFIX") else []
    for root in ("miniconda3", "miniforge3", "mambaforge", "anaconda3"):
        conda_envs += sorted((Path.home() / root).glob("envs/*"))
    for folder in conda_envs:
        candidates.append((folder / "bin" / f"python{version}", f"conda ({folder})"))
    return candidates


def find_python(version: str, explicit: str | os.PathLike | None = None
                ) -> tuple[Path | None, str]:
    """An interpreter of Python ``version`` (``"3.7"``) and where it was found.

    ``explicit`` (the user's ``--python``) must be that version, or it is a UserError. Without
    it, pyenv's versions, ``python3.7`` on PATH, ``uv python find`` and conda environments are
    tried in that order. Returns ``(None, reason)`` when none is there.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        found = _python_version(path)
        if found is None:
            raise UserError(f"--python {path}: not a Python interpreter that runs here; give "
                            f"the path of a Python {version} executable")
        if found != version:
            raise UserError(f"--python {path}: is Python {found}; give a Python {version}")
        return path, "--python"
    for path, source in _python_candidates(version):
        if path.is_file() and _python_version(path) == version:
            return path, source
    return None, (f"no Python {version} found (looked in pyenv, PATH, `uv python find`, "
                  f"conda); install one (`pyenv install {version}` or `conda create -n "
                  f"py{version.replace('.', '')} python={version}`) or pass --python PATH")


def _is_ours(prefix: Path) -> bool:
    """Whether lipobench may delete ``prefix``: empty, or a (half-)built environment of ours."""
    if prefix.is_file():
        return False
    return any((prefix / name).exists() for name in (MARKER, _BUILDING, "pyvenv.cfg")) \
        or not any(prefix.iterdir())


def _marker_matches(prefix: Path, env: ToolEnvironment) -> bool:
    try:
        marker = json.loads((prefix / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (marker.get("tool") == env.tool and marker.get("version") == env.version
            and marker.get("requirements_sha256") == env.requirements_digest())


def _record(env: ToolEnvironment, prefix: Path) -> None:
    record = _read_record()
    record[env.tool] = {"prefix": os.fspath(prefix), "version": env.version}
    atomic_write_text(_record_path(), json.dumps(record, indent=1) + "\n")


def _run_logged(argv: Sequence[str], log, *, echo: Callable[[str], None] | None = None,
                total: int = 0, timeout: float | None = None) -> int:
    """Run ``argv`` with its output in ``log``; with ``echo``, one line per package pip takes."""
    log.write(("$ " + " ".join(argv) + "\n").encode())
    log.flush()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    started, seen = time.monotonic(), 0
    assert process.stdout is not None
    for raw in process.stdout:
        log.write(raw)
        line = raw.decode(errors="replace").strip()
        if echo is not None and line.startswith(("Collecting ", "Processing ")):
            seen += 1
            echo(f"  [{seen}/{total}] {Path(line.split()[1]).name}")
        if timeout is not None and time.monotonic() - started > timeout:
            process.kill()
    log.flush()
    return process.wait()


def install_environment(env: ToolEnvironment, *, python: str | os.PathLike | None = None,
                        prefix: str | os.PathLike | None = None,
                        echo: Callable[[str], None] = print) -> Path:
    """Build (or find finished) the environment ``env`` and return its ``bin`` folder.

    Idempotent: a finished environment with the same pins is kept and only recorded again.
    Raises UserError when no suitable Python is found or the folder cannot be written, and
    ToolFailedError (naming the log) when pip or a check command fails; a failed or killed
    install leaves no folder that looks installed.
    """
    prefix = Path(prefix).expanduser().absolute() if prefix else tools_dir() / env.folder_name
    if not env.requirements.is_file():
        raise UserError(f"{env.requirements}: the pinned requirements of {env.tool} are "
                        "missing; reinstall lipobench")
    if _marker_matches(prefix, env) and _checks_pass(env, prefix, log=None):
        _record(env, prefix)
        echo(f"{env.tool} {env.version}: already installed in {prefix}")
        return prefix / "bin"
    interpreter, source = find_python(env.python, python)
    if interpreter is None:
        raise UserError(f"{env.tool} needs Python {env.python}: {source}")
    try:
        return _build(env, prefix, interpreter, source, echo)
    except OSError as exc:
        raise UserError(os_error_message(exc, prefix)) from None


def _build(env: ToolEnvironment, prefix: Path, interpreter: Path, source: str,
           echo: Callable[[str], None]) -> Path:
    log_path = prefix.parent / f"{env.folder_name}.install.log"
    with folder_lock(prefix.parent, what=f"installing {env.tool}", key="tools folder"):
        if prefix.exists():
            if not _is_ours(prefix):
                raise UserError(f"--prefix {prefix}: exists and is not an environment lipobench "
                                "built; give a new or empty folder")
            echo(f"removing an unfinished or outdated environment in {prefix}")
            shutil.rmtree(prefix)
        prefix.mkdir(parents=True)
        (prefix / _BUILDING).touch()
        echo(f"{env.tool} {env.version}: creating a Python {env.python} environment in "
             f"{prefix} from {interpreter} ({source})")
        try:
            with open(log_path, "wb") as log:
                if _run_logged([os.fspath(interpreter), "-m", "venv", os.fspath(prefix)],
                               log) != 0:
                    raise ToolFailedError(f"creating the environment failed; see log {log_path}",
                                          log_path=log_path)
                if env.build_pins:
                    echo("installing the build tools: " + ", ".join(env.build_pins))
                    code = _run_logged([os.fspath(prefix / "bin" / "python"), "-m", "pip",
                                        "install", "--no-deps", "--disable-pip-version-check",
                                        "--no-input", *env.build_pins], log)
                    if code != 0:
                        raise ToolFailedError(f"pip install of the build tools failed (exit "
                                              f"{code}); see log {log_path}",
                                              log_path=log_path)
                total = env.pinned_count()
                echo(f"installing {total} pinned packages{f' ({env.size})' if env.size else ''}"
                     f"; pip's output goes to {log_path}")
                code = _run_logged([os.fspath(prefix / "bin" / "python"), "-m", "pip", "install",
                                    "--no-deps", "--disable-pip-version-check",
                                    "--no-input", "-r", os.fspath(env.requirements)],
                                   log, echo=echo, total=total)
                if code != 0:
                    raise ToolFailedError(f"pip install failed (exit {code}); see log {log_path}",
                                          log_path=log_path)
                echo("checking: " + "; ".join(" ".join(c) for c in env.checks))
                if not _checks_pass(env, prefix, log=log):
                    raise ToolFailedError(f"{env.tool} installed but its scripts do not run; "
                                          f"see log {log_path}", log_path=log_path)
        except BaseException:
            # Nothing half-built may stay behind looking like an environment.
            shutil.rmtree(prefix, ignore_errors=True)
            raise
        marker = {"tool": env.tool, "version": env.version, "python": os.fspath(interpreter),
                  "requirements_sha256": env.requirements_digest(),
                  "installed": time.strftime("%Y-%m-%d %H:%M:%S")}
        atomic_write_text(prefix / MARKER, json.dumps(marker, indent=1) + "\n")
        (prefix / _BUILDING).unlink()
    _record(env, prefix)
    echo(f"{env.tool} {env.version}: installed in {prefix}")
    return prefix / "bin"


def _checks_pass(env: ToolEnvironment, prefix: Path, *, log) -> bool:
    for command in env.checks:
        script = prefix / "bin" / command[0]
        if not os.access(script, os.X_OK):
            if log is not None:
                log.write(f"missing script: {script}\n".encode())
            return False
        if log is None:
            continue  # a finished install is only checked for its scripts: starting is slow
        if _run_logged([os.fspath(script), *command[1:]], log, timeout=300) != 0:
            return False
    return True
