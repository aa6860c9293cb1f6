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

#: Command modules, imported in this order (which is the order of ``lipobench --help``).
COMMAND_MODULES = (
    "adapters",
    "info",
    "convert",
    "run",
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
    except click.exceptions.Abort:
        click.echo("lipobench: aborted", err=True)
        return 130
    except click.exceptions.ClickException as exc:
        fail(exc.format_message().replace("\n", " "))
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
