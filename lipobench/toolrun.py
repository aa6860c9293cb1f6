"""Running an external tool as a subprocess, with its output kept in a log file.

Used by every adapter that drives a command-line tool (crYOLO in its own environment, the
Topaz CLI). Also reads the user's tool settings from ``~/.config/lipobench/config.toml``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lipobench.errors import ToolFailedError, ToolUnavailableError, UserError

__all__ = ["run_tool", "user_config_path", "user_tool_config", "tail"]


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/lipobench/config.toml`` (``~/.config`` when XDG_CONFIG_HOME is unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "lipobench" / "config.toml"


def user_tool_config(tool: str) -> dict[str, Any]:
    """The ``[tools.TOOL]`` table of the user config file, or ``{}`` when there is none.

    A config file that is not valid TOML is a UserError naming the file and the line.
    """
    path = user_config_path()
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix or delete the file") from None
    tools = data.get("tools", {})
    if not isinstance(tools, dict):
        raise UserError(f"{path}: tools must be a table of [tools.NAME] sections")
    table = tools.get(tool, {})
    if not isinstance(table, dict):
        raise UserError(f"{path}: [tools.{tool}] must be a table such as bin_dir = \"/path\"")
    return table


def tail(path: str | os.PathLike, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ('' if it cannot be read)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_tool(
    argv: Sequence[str | os.PathLike],
    *,
    log_path: str | os.PathLike,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float | None = None,
    strip_pythonpath: bool = False,
) -> Path:
    """Run ``argv`` with stdout and stderr appended to ``log_path``; return the log path.

    Parameters
    ----------
    argv : sequence of str or path
        The command; ``argv[0]`` is looked up on PATH (of ``env`` if given) unless it is a path.
    log_path : path
        Log file, created with its parent folder; output is appended so one log can hold the
        steps of one job.
    env : mapping, optional
        Extra environment variables, laid over the current environment.
    cwd : path, optional
        Working directory.
    timeout : float, optional
        Seconds before the tool is killed (a ToolFailedError).
    strip_pythonpath : bool
        Remove PYTHONPATH and PYTHONHOME, so a tool in another Python environment does not
        import this environment's packages.

    Raises
    ------
    ToolUnavailableError
        ``argv[0]`` is not found or not executable.
    ToolFailedError
        The tool exited with a non-zero code or timed out; the message names the log.

    Examples
    --------
    >>> import sys, tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "tool.log"
    >>> _ = run_tool([sys.executable, "-c", "print('hello')"], log_path=log)
    >>> "hello" in log.read_text()
    True
    """
    argv = [os.fspath(a) for a in argv]
    if not argv:
        raise ValueError("run_tool needs a command")
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    if strip_pythonpath:
        full_env.pop("PYTHONPATH", None)
        full_env.pop("PYTHONHOME", None)
    executable = argv[0]
    if os.sep not in executable:
        found = shutil.which(executable, path=full_env.get("PATH"))
        if found is None:
            raise ToolUnavailableError(
                f"{executable} was not found on PATH; install it or put its folder on PATH"
            )
        executable = found
    elif not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        raise ToolUnavailableError(
            f"{executable} does not exist or is not executable; check the configured tool folder"
        )
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        log.flush()
        try:
            completed = subprocess.run([executable, *argv[1:]], stdout=log,
                                       stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                       timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ToolFailedError(f"{argv[0]} did not finish within {timeout} s; see log {log_path}",
                                  log_path=log_path) from None
        except OSError as exc:
            raise ToolUnavailableError(f"{argv[0]} could not be started ({exc}); "
                                       "check that it is an executable for this machine") from None
    if completed.returncode != 0:
        raise ToolFailedError(
            f"{Path(argv[0]).name} exited with code {completed.returncode}; see log {log_path}",
            log_path=log_path,
        )
    return log_path
