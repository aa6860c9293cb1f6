"""``lipobench train-defaults``: train, validate and package the default models."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from lipobench.adapters.device import Device
from lipobench.cli._app import app


class ToolChoice(str, enum.Enum):
    cellpose = "cellpose"
    topaz = "topaz"


@app.command("train-defaults")
def train_defaults_command(
    device: Device = typer.Option(Device.AUTO, help="Where to train."),
    work_dir: Path = typer.Option(Path("lipobench-runs/train-defaults"),
                                  help="Synthetic data and training folders (reused)."),
    out: Path = typer.Option(None, help="Folder for the models and manifest.json "
                                        "[default: the installed lipobench/models]"),
    tool: list[ToolChoice] = typer.Option([ToolChoice.cellpose, ToolChoice.topaz],
                                          help="Which default models to train."),
    cellpose_epochs: int = typer.Option(None, min=1, help="Override the recipe's epochs."),
    validate_only: bool = typer.Option(
        False, "--validate-only",
        help="Train nothing: validate the shipped models again and compare with the manifest."),
) -> None:
    """Train the default Cellpose and Topaz models on the synthetic paper preset and validate
    them on its held-out split (precision and recall at IoU 0.5 go into the manifest)."""
    from lipobench.defaults import MODELS_DIR, DefaultsRecipe, train_defaults, validate_defaults

    tools = tuple(t.value for t in tool)
    if validate_only:
        report = validate_defaults(device=device.value, work_dir=work_dir, tools=tools,
                                   log=typer.echo)
        for name, scores in report.items():
            typer.echo(f"{name}: now {scores['now']}")
            typer.echo(f"{' ' * len(name)}  manifest {scores['manifest']}")
        return

    recipe = DefaultsRecipe()
    if cellpose_epochs is not None:
        recipe = recipe.model_copy(update={
            "cellpose": recipe.cellpose.model_copy(update={"n_epochs": cellpose_epochs})})
    manifest = train_defaults(out or MODELS_DIR, recipe=recipe, device=device.value,
                              work_dir=work_dir, tools=tools,
                              log=typer.echo)
    for name, entry in manifest["models"].items():
        typer.echo(f"{name}: {entry['file']} sha256 {entry['sha256'][:12]}... "
                   f"validation {entry['validation_iou_0.5']}")
