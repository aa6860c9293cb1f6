"""``lipobench adapters`` (what is installed) and ``lipobench doctor`` (what can run here)."""

from __future__ import annotations

from typing import Optional

import typer

from lipobench.cli._app import app


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def _availability(adapter):
    from lipobench.adapters.base import Availability

    try:
        return adapter.availability()
    except Exception as exc:  # a plugin's bug must not hide the other adapters
        return Availability(False, reason=f"availability() raised {type(exc).__name__}: {exc}",
                            fix="report this to the adapter's package")


@app.command("adapters")
def adapters_command() -> None:
    """List the installed adapters: name, region kind, package, version and status."""
    from lipobench.plugins import DISABLE_ENV, load_registry, plugins_disabled

    registry = load_registry()
    rows = [["NAME", "KIND", "PACKAGE", "VERSION", "STATUS"]]
    for entry in registry.entries():
        available = _availability(entry.adapter_cls())
        status = "ok" if available.ok else f"unavailable: {available.reason}"
        rows.append([entry.name, entry.adapter_cls.region_kind.value, entry.package,
                     entry.package_version or "-", status])
    typer.echo(_table(rows))
    if plugins_disabled():
        typer.echo(f"(third-party plugins disabled by {DISABLE_ENV})")


@app.command("doctor")
def doctor_command(
    names: Optional[list[str]] = typer.Argument(
        None, help="Adapters to check (default: all installed)."),
) -> None:
    """Check that each adapter's tool can run here, say how to fix what is missing, report CUDA."""
    from lipobench.plugins import load_registry

    registry = load_registry()
    for name in names or registry.names():
        entry = registry.entry(name)
        available = _availability(entry.adapter_cls())
        version = f" ({available.tool_version})" if available.tool_version else ""
        if available.ok:
            typer.echo(f"{name}: ok{version}")
        else:
            typer.echo(f"{name}: unavailable{version}")
            typer.echo(f"  reason: {available.reason}")
            typer.echo(f"  fix: {available.fix}")
    typer.echo(_torch_report())


def _torch_report() -> str:
    try:
        import torch  # only here: importing torch takes seconds
    except Exception as exc:
        return f"torch: not importable ({type(exc).__name__}: {exc}); reinstall lipobench's environment"
    if torch.cuda.is_available():
        devices = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return f"torch {torch.__version__}: CUDA available ({devices})"
    return (f"torch {torch.__version__}: no CUDA device found; Cellpose and Topaz run on the CPU "
            "(slow for training)")
