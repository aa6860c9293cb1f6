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
    cryolo = "cryolo"


@app.command("train-defaults")
def train_defaults_command(
    device: Device = typer.Option(Device.AUTO, help="Where to train."),
    work_dir: Path = typer.Option(Path("lipobench-runs/train-defaults"),
                                  help="Synthetic data and the training and validation runs "
                                       "(reused: a killed run resumes)."),
    out: Path = typer.Option(None, help="Folder for the models and manifest.json "
                                        "[default: the installed lipobench/models; crYOLO's "
                                        "~/.local/share/lipobench/models]"),
    tool: list[ToolChoice] = typer.Option([ToolChoice.cellpose, ToolChoice.topaz],
                                          help="Which default models to train (cryolo: "
                                               "hours on a CPU; not by default)."),
    cellpose_epochs: int = typer.Option(None, min=1, help="Override the recipe's epochs."),
    cryolo_epochs: int = typer.Option(None, min=1, help="Override crYOLO's recipe epochs."),
    validate_only: bool = typer.Option(
        False, "--validate-only",
        help="Train nothing: validate the shipped models again and compare with the manifest."),
) -> None:
    """Train the default Cellpose and Topaz models (and, with --tool cryolo, a crYOLO model to
    start from) on the synthetic paper preset and validate them on its held-out split
    (precision and recall at IoU 0.5 go into the manifest)."""
    from lipobench.defaults import (MODELS_DIR, CellposeRecipe, CryoloRecipe, DefaultsRecipe,
                                    train_defaults, user_models_dir, validate_defaults)
    from lipobench.fsutil import check_output_dir

    tools = tuple(t.value for t in tool)
    shipped = tuple(t for t in tools if t != "cryolo")
    # Minutes of simulation and training come next: refuse what would fail at their end.
    check_output_dir(work_dir, key="--work-dir")
    if not validate_only:
        if shipped:
            check_output_dir(out or MODELS_DIR, key="--out")
        if "cryolo" in tools:
            check_output_dir(out or user_models_dir(), key="--out")
    if "cryolo" in tools:
        from lipobench.adapters.cryolo import CryoloAdapter
        from lipobench.errors import ToolUnavailableError

        available = CryoloAdapter().availability()
        if not available:
            raise ToolUnavailableError(f"--tool cryolo: {available.reason}; {available.fix}")
    if device is Device.CUDA:
        from lipobench.adapters.device import resolve_torch_device

        resolve_torch_device(device)
    if validate_only:
        report = validate_defaults(device=device.value, work_dir=work_dir, tools=tools,
                                   log=typer.echo)
        for name, scores in report.items():
            typer.echo(f"{name}: now {scores['now']}")
            typer.echo(f"{' ' * len(name)}  manifest {scores['manifest']}")
        return

    # An override replaces one value of the recipe; the rest of it stays.
    recipe = DefaultsRecipe()
    if cellpose_epochs is not None:
        recipe = recipe.model_copy(update={"cellpose": CellposeRecipe(n_epochs=cellpose_epochs)})
    if cryolo_epochs is not None:
        recipe = recipe.model_copy(update={"cryolo": CryoloRecipe(nb_epoch=cryolo_epochs)})
    models = {}
    # crYOLO's model is too large for the repository: it goes to the user's models folder.
    for names, folder in ((shipped, out or MODELS_DIR),
                          (("cryolo",) if "cryolo" in tools else (), out or user_models_dir())):
        if names:
            manifest = train_defaults(folder, recipe=recipe, device=device.value,
                                      work_dir=work_dir, tools=names, log=typer.echo)
            models.update({name: manifest["models"][name] for name in names})
    for name, entry in models.items():
        typer.echo(f"{name}: {entry['file']} sha256 {entry['sha256'][:12]}... "
                   f"validation {entry['validation_iou_0.5']}")
