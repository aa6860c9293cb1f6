"""Command line entry point: ``lipobench COMMAND ...``.

Each command lives in its own module under ``lipobench.cli`` and registers itself on the shared
typer app when imported. :func:`main` is the one boundary between the user and the code
(:func:`console`, the ``lipobench`` executable, calls it and exits):

- a :class:`~lipobench.errors.UserError`, a usage error or a file-system error (missing,
  not a folder, read-only, disk full, permission) becomes one line on stderr and exit code 2;
- Ctrl-C becomes one line and exit code 130 (:class:`~lipobench.errors.Interrupted`);
- warnings and log records of libraries are held back while the command runs, dropped when
  it ends in an error (so the error is the only line) and printed after it otherwise.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import signal
import sys
import threading
import warnings

import click

from lipobench.cli._app import app
from lipobench.errors import (
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    Interrupted,
    UserError,
    clear_interrupt,
    interrupt_requested,
    request_interrupt,
)

# typer >= 0.20 parses with its own vendored copy of click (typer._click) and raises
# typer.Exit/typer.Abort; catch those as well as click's, or a usage error is a traceback.
try:
    from typer import _click as _typer_click
except ImportError:  # an older typer on plain click
    _typer_click = click
import typer as _typer

_USAGE_ERRORS = (click.exceptions.ClickException, _typer_click.exceptions.ClickException)
_ABORTS = (click.exceptions.Abort, _typer.Abort)
_EXITS = (click.exceptions.Exit, _typer.Exit)

#: Command modules, imported in this order (which is the order of ``lipobench --help``).
COMMAND_MODULES = (
    "adapters",
    "info",
    "convert",
    "run",
    "plot",
    "compare",
    "synth",
    "score",
    "segment",
    "pick",
    "train_defaults",
    "tools",
)


def _load_commands(argv: list[str]) -> None:
    """Import the module of the command ``argv`` names, or every command module.

    Only the named command's module, because each pulls in its own libraries (pandas, scipy,
    pydantic models) and a user pays that start-up on every run; every module for the
    top-level help, an unknown name (so typer lists the choices) or a command whose name is
    not its module's (``doctor``).
    """
    words = [word for word in argv if not word.startswith("-")]
    named = words[0].replace("-", "_") if words else None
    for module in (named,) if named in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(f"lipobench.cli.{module}")


def fail(message: str) -> None:
    """Print a user error on one line and exit with code 2."""
    click.echo(f"lipobench: error: {message}", err=True)
    sys.exit(EXIT_USER_ERROR)


class _HeldRecords(logging.Handler):
    """Keeps library log records (roifile warns through logging) until the command ends."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _sigint_raises_interrupted():
    """Ctrl-C raises Interrupted (not KeyboardInterrupt) in the main thread while we run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if signum == signal.SIGINT:
            request_interrupt()
        elif not interrupt_requested():
            return  # an alarm that is not ours to act on
        if _inside(frame, _DEFER_IN):
            # Python may be running on behalf of C++ here (torch's pybind11 module set-up):
            # an exception raised into it aborts the process (exit -6). Look again shortly;
            # errors.raise_if_interrupted catches it at the next safe point at the latest.
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            return
        raise Interrupted("interrupted")

    previous_hook = sys.unraisablehook

    def unraisable(report):
        # Raised inside a finalizer or weakref callback (numba's), Python would print a
        # traceback and go on; the flag is set, so the next safe point stops the run.
        if not isinstance(report.exc_value, Interrupted):
            previous_hook(report)

    clear_interrupt()
    previous = signal.signal(signal.SIGINT, handler)
    previous_alarm = signal.signal(signal.SIGALRM, handler)
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGINT, previous)
        clear_interrupt()


#: Packages whose Python code C++ may be running (pybind11 callbacks), where an exception
#: raised by a signal handler terminates the process instead of unwinding.
_DEFER_IN = ("torch", "torchvision")


def _inside(frame, packages: tuple[str, ...]) -> bool:
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".", 1)[0] in packages:
            return True
        frame = frame.f_back
    return False


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    _load_commands(sys.argv[1:] if argv is None else list(argv))
    held = _HeldRecords()
    root = logging.getLogger()
    root.addHandler(held)
    failed = True
    try:
        with warnings.catch_warnings(record=True) as caught, _sigint_raises_interrupted():
            code = _run(argv)
            failed = code in (EXIT_USER_ERROR, EXIT_INTERRUPTED)
    finally:
        root.removeHandler(held)
    if not failed:
        # After the command's own output, so they never stand in front of a result or error.
        for item in caught:
            click.echo(f"lipobench: warning: {item.category.__name__}: {item.message}",
                       err=True)
        for record in held.records:
            click.echo(f"lipobench: warning: {record.name}: {record.getMessage()}", err=True)
    if code == EXIT_USER_ERROR:
        sys.exit(code)  # as click does, so callers of main() see a SystemExit(2)
    return code


def console() -> None:
    """The ``lipobench`` executable: :func:`main`, then exit with its code.

    Before the interpreter shuts down, ``gc.freeze()`` moves every object out of the garbage
    collector's reach: its last collections would walk all that the imports made (scipy,
    pydantic, typer) to free memory the system takes back at exit anyway, measured at
    0.12-0.15 s of a 3 s ``lipobench synth`` (0.02 s with the freeze). Objects still go when
    their last reference does, atexit handlers run and files are flushed and closed as
    before; only unreachable cycles left at exit are not collected.
    """
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


def _run(argv) -> int:
    try:
        result = app(args=argv, standalone_mode=False, prog_name="lipobench")
    except UserError as exc:
        return _print_error(str(exc))
    except Interrupted as exc:
        message = str(exc)
        click.echo("lipobench: " + (message if message.startswith("interrupted")
                                    else f"interrupted: {message}"), err=True)
        return EXIT_INTERRUPTED
    except _ABORTS as exc:
        if isinstance(exc.__context__, EOFError):  # click turns an EOFError into Abort too
            return _print_error(f"a file ended too early ({exc.__context__}); check the input "
                                "files")
        click.echo("lipobench: interrupted", err=True)
        return EXIT_INTERRUPTED
    except _USAGE_ERRORS as exc:
        message = exc.format_message().replace("\n", " ")
        if not message.strip():  # `lipobench` alone: the help is already printed
            return EXIT_USER_ERROR
        return _print_error(message)
    except _EXITS as exc:
        return exc.exit_code
    except BrokenPipeError:  # `lipobench ... | head`: the reader has all it wanted
        return 0
    except OSError as exc:  # a file system refusing a write or a read is the user's to fix
        from lipobench.fsutil import os_error_message

        return _print_error(os_error_message(exc))
    return result if isinstance(result, int) else 0


def _print_error(message: str) -> int:
    click.echo(f"lipobench: error: {message.replace(chr(10), ' ').replace(chr(13), ' ')}",
               err=True)
    return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
