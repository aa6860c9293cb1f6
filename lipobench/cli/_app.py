"""The typer application that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="lipobench",
    help="Benchmark particle localization methods on cryo-EM micrographs of lipid nanoparticles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from lipobench import __version__

        typer.echo(f"lipobench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """lipobench: which method, with which parameters, finds my particles best?"""
