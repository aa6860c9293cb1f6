"""The default-model lookup: checked bytes, clear messages, and the adapters' 'default' init."""

import json

import pytest

from lipobench import defaults
from lipobench.errors import ToolUnavailableError, UserError


def _fake_models_dir(tmp_path, payload=b"weights"):
    models = tmp_path / "models"
    models.mkdir()
    (models / "cellpose_default").write_bytes(payload)
    manifest = {"models": {"cellpose": {"file": "cellpose_default",
                                        "sha256": defaults.sha256_of(models / "cellpose_default")}}}
    (models / "manifest.json").write_text(json.dumps(manifest))
    return models


def _tiny_cellpose_folder(tmp_path):
    """Cellpose's training layout with one 8x8 image and its mask: enough for train() to
    reach its init checks."""
    import numpy as np
    import tifffile

    native = tmp_path / "native"
    native.mkdir()
    tifffile.imwrite(native / "a.tif", np.zeros((8, 8), np.float32))
    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    tifffile.imwrite(native / "a_masks.tif", labels)
    return native


def test_packaged_model_is_found_when_its_bytes_match(tmp_path):
    models = _fake_models_dir(tmp_path)
    assert defaults.packaged_model("cellpose", models) == models / "cellpose_default"


def test_packaged_model_with_changed_bytes_is_refused(tmp_path):
    models = _fake_models_dir(tmp_path)
    (models / "cellpose_default").write_bytes(b"tampered")
    with pytest.raises(ToolUnavailableError, match="does not match the sha256"):
        defaults.packaged_model("cellpose", models)


def test_missing_default_model_says_how_to_make_it(tmp_path):
    with pytest.raises(ToolUnavailableError, match="lipobench train-defaults"):
        defaults.packaged_model("topaz", tmp_path)


def test_cellpose_default_init_resolves_to_the_packaged_file(tmp_path, monkeypatch):
    from lipobench.adapters.cellpose import CellposeAdapter

    from lipobench import shipped

    models = _fake_models_dir(tmp_path)
    monkeypatch.setattr(shipped, "MODELS_DIR", models)
    adapter = CellposeAdapter(device="cpu")
    native = _tiny_cellpose_folder(tmp_path)
    model = adapter.train(native, {"init": "default", "n_epochs": 0}, tmp_path / "train")
    assert model == models / "cellpose_default"


def test_cellpose_untrained_scratch_model_is_a_user_error(tmp_path):
    from lipobench.adapters.cellpose import CellposeAdapter

    native = _tiny_cellpose_folder(tmp_path)
    with pytest.raises(UserError, match="n_epochs = 0"):
        CellposeAdapter(device="cpu").train(native, {"n_epochs": 0}, tmp_path / "train")


def test_shipped_manifest_records_what_the_brief_asks():
    manifest = defaults.read_manifest()
    if not manifest["models"]:
        pytest.fail("lipobench/models/manifest.json is missing: run `lipobench train-defaults`")
    for name, entry in manifest["models"].items():
        assert defaults.packaged_model(name) .is_file()
        assert {"sha256", "command", "train_seconds", "device",
                "validation_iou_0.5"} <= set(entry)
    assert {"reproduce", "recipe", "versions", "dataset"} <= set(manifest)


def test_default_cellpose_model_meets_the_accuracy_the_demo_promises():
    """The bar of the default-models issue, on the manifest's held-out validation."""
    entry = defaults.read_manifest()["models"]["cellpose"]
    cellpose = entry["validation_iou_0.5"]
    assert cellpose["precision"] >= 0.6 and cellpose["recall"] >= 0.6
    # LipoPose at its lowest merge threshold recovers at least as many particles
    assert entry["lipopose_validation_iou_0.5"]["recall"] >= cellpose["recall"]


def test_models_dir_can_be_moved_by_environment(tmp_path, monkeypatch):
    models = _fake_models_dir(tmp_path)
    monkeypatch.setenv("LIPOBENCH_MODELS_DIR", str(models))
    assert defaults.packaged_model("cellpose") == models / "cellpose_default"


def test_a_finished_training_is_reused_and_new_parameters_retrain(tmp_path, monkeypatch):
    """Through the runner's cache: a second train-defaults trains nothing; new parameters do.

    Cellpose's training is a counting stand-in and both predictions return the truth, so the
    run, its cache and the export are real and take seconds.
    """
    from lipobench.adapters.cellpose import CellposeAdapter
    from lipobench.adapters.lipopose import LipoPoseAdapter

    calls = []

    def train(self, native, params, workdir):
        calls.append(dict(params))
        (workdir / "cellpose_model").write_text(json.dumps(params))
        return workdir / "cellpose_model"

    def predict(self, model, micrographs, params, workdir):
        return [m.truth for m in micrographs]

    monkeypatch.setattr(CellposeAdapter, "train", train)
    monkeypatch.setattr(CellposeAdapter, "predict", predict)
    monkeypatch.setattr(LipoPoseAdapter, "predict", predict)
    recipe = defaults.DefaultsRecipe(preset="quick", data_seed=1, n_images=3)
    out, work = tmp_path / "models", tmp_path / "work"

    def train_defaults(recipe):
        return defaults.train_defaults(out, recipe=recipe, device="cpu", work_dir=work,
                                       tools=("cellpose",), log=lambda _: None)

    first = train_defaults(recipe)["models"]["cellpose"]
    again = train_defaults(recipe)["models"]["cellpose"]
    assert first == again and len(calls) == 1
    train_defaults(recipe.model_copy(update={"cellpose": defaults.CellposeRecipe(n_epochs=4)}))
    assert len(calls) == 2 and calls[1]["n_epochs"] == 4


def test_the_recipe_is_the_adapters_schemas_and_the_shipped_models_recipe():
    """Each method's values are its adapter's own schemas (their checks apply); the recipe
    the shipped manifest records reads back as today's."""
    from pydantic import ValidationError

    from lipobench.adapters.cellpose import CellposeTrainParams

    recipe = defaults.DefaultsRecipe()
    assert type(recipe.cellpose.train) is CellposeTrainParams
    assert defaults.DefaultsRecipe.model_validate(defaults.read_manifest()["recipe"]) == recipe
    assert defaults.DefaultsRecipe.model_validate(recipe.model_dump(mode="json")) == recipe
    with pytest.raises(ValidationError, match="n_epochs"):
        defaults.CellposeRecipe(n_epochs=-1)
    with pytest.raises(ValidationError, match="unknown parameter 'epochs'"):
        defaults.TopazRecipe(epochs=3)


@pytest.mark.slow
def test_the_recipe_trains_validates_and_writes_a_checked_manifest(tmp_path):
    """The real path, at toy size: simulate, train Cellpose and Topaz, validate, package."""
    recipe = defaults.DefaultsRecipe(
        preset="quick", data_seed=1, n_images=3,
        cellpose=defaults.CellposeRecipe(n_epochs=1),
        lipopose=defaults.LipoPoseValidation(diameter_step=40.0),
        topaz=defaults.TopazRecipe(num_epochs=1, epoch_size=2, minibatch_size=16))
    out = tmp_path / "models"
    manifest = defaults.train_defaults(out, recipe=recipe, device="cpu",
                                       work_dir=tmp_path / "work", log=lambda _: None)
    assert set(manifest["models"]) == {"cellpose", "topaz"}
    for name, entry in manifest["models"].items():
        assert defaults.packaged_model(name, out).is_file()  # sha256 checked
        scores = entry["validation_iou_0.5"]
        assert scores["tp"] + scores["fn"] > 0  # the held-out truth was scored
    assert defaults.read_manifest(out)["recipe"]["n_images"] == 3
    # lipobench pick reads the detector's training width from the entry.
    assert 10 < manifest["models"]["topaz"]["particle_width_px"] < 200


def test_validate_only_without_models_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    from lipobench.testing import assert_user_error, run_cli

    monkeypatch.setenv("LIPOBENCH_MODELS_DIR", str(tmp_path / "none"))
    code, _, err = run_cli(["train-defaults", "--validate-only", "--work-dir",
                            tmp_path / "work"], capsys)
    assert_user_error(code, err, "lipobench train-defaults")
    assert not (tmp_path / "work").exists()
