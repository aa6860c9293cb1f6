"""Command line entry point: ``lipobench COMMAND ...``.

Each command lives in its own module under ``lipobench.cli`` and registers itself on the shared
typer app when imported. :func:`main` turns a :class:`~lipobench.errors.UserError` into one line
on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from lipobench.cli._app import app
from lipobench.errors import EXIT_USER_ERROR, UserError

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
    "synth",
    "score",
    "segment",
    "train_defaults",
    "tools",
)


def _load_commands() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(f"lipobench.cli.{module}")


def fail(message: str) -> None:
    """Print a user error on one line and exit with code 2."""
    click.echo(f"lipobench: error: {message}", err=True)
    sys.exit(EXIT_USER_ERROR)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    _load_commands()
    try:
        result = app(args=argv, standalone_mode=False, prog_name="lipobench")
    except UserError as exc:
        fail(str(exc).replace("\n", " "))
    except _ABORTS:
        click.echo("lipobench: aborted", err=True)
        return 130
    except _USAGE_ERRORS as exc:
        message = exc.format_message().replace("\n", " ")
        if not message.strip():  # `lipobench` alone: the help is already printed
            return EXIT_USER_ERROR
        fail(message)
    except _EXITS as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
