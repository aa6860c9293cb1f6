"""``lipobench tools install NAME``: build the environment of a tool that needs its own Python."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lipobench.cli._app import app

tools_app = typer.Typer(help="Install and list the environments of tools that need their own "
                             "Python (crYOLO: Python 3.7, TensorFlow 1.15).",
                        no_args_is_help=True)
app.add_typer(tools_app, name="tools")


def _environments():
    from lipobench.plugins import load_registry

    registry = load_registry()
    return {name: registry.entry(name).adapter_cls.environment for name in registry.names()
            if registry.entry(name).adapter_cls.environment is not None}


@tools_app.command("install")
def install_command(
    name: str = typer.Argument(..., help="The adapter whose tool to install (cryolo)."),
    python: Optional[Path] = typer.Option(
        None, "--python", metavar="PATH",
        help="The interpreter to build from (default: found in pyenv, PATH, uv, conda)."),
    prefix: Optional[Path] = typer.Option(
        None, "--prefix", metavar="DIR",
        help="Environment folder (default: $LIPOBENCH_TOOLS_DIR or "
             "~/.local/share/lipobench/tools, then NAME-VERSION)."),
    if_python_available: bool = typer.Option(
        False, "--if-python-available",
        help="When no interpreter of the needed version is found, say so and exit 0 (for "
             "test set-ups on machines without one)."),
) -> None:
    """Create the tool's environment from its pinned requirements and check that it runs.

    Idempotent; a killed install leaves nothing that looks installed. The location is recorded
    beside the user config (installed-tools.json), where `lipobench doctor` and the adapter
    find it.
    """
    from lipobench.errors import UserError
    from lipobench.toolenv import find_python, install_environment

    environments = _environments()
    if name not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise UserError(f"tools install {name!r}: no adapter of that name needs an environment "
                        f"of its own; the tools lipobench installs: {known}")
    env = environments[name]
    if python is None and if_python_available and find_python(env.python)[0] is None:
        typer.echo(f"{name}: skipped: {find_python(env.python)[1]}")
        return
    install_environment(env, python=python, prefix=prefix, echo=typer.echo)


@tools_app.command("list")
def list_command() -> None:
    """The tools lipobench can install, and where each is installed."""
    from lipobench.toolenv import installed_bin_dir

    for name, env in sorted(_environments().items()):
        folder, source = installed_bin_dir(name)
        where = f"installed: {folder.parent}" if folder else source
        typer.echo(f"{name} {env.version} (Python {env.python}): {where}")
