"""The Cellpose adapter: cheap checks without cellpose, and one real train/predict run."""


import numpy as np
import pytest

from lipobench.adapters.base import Stage
from lipobench.adapters.cellpose import (
    CellposeAdapter,
    Device,
    builtin_model_file,
    prepare_image,
)
from lipobench.errors import ToolUnavailableError, UserError
from lipobench.regions import RegionKind
from lipobench.testing import make_test_micrographs


def test_importing_the_adapter_does_not_import_cellpose_or_torch(imported_by):
    assert imported_by("lipobench.adapters.cellpose", ('cellpose', 'torch')) == []


def test_availability_reports_cellpose_3():
    available = CellposeAdapter().availability()
    assert available.ok, available.reason
    assert available.tool_version.startswith("3.")
    assert CellposeAdapter().describe()["citation"].startswith("Stringer")


def test_device_is_an_enum_and_rejects_unknown_values():
    assert CellposeAdapter(device="cpu").device is Device.CPU
    with pytest.raises(ValueError):
        CellposeAdapter(device="tpu")


def test_to_native_writes_cellpose_folder_convention(tmp_path):
    import tifffile

    micrographs = make_test_micrographs(2, shape=(64, 64), radius=6)
    folder = CellposeAdapter().to_native(micrographs, tmp_path)
    image = tifffile.imread(folder / "conformance_0.tif")
    masks = tifffile.imread(folder / "conformance_0_masks.tif")
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, micrographs[0].image)
    np.testing.assert_array_equal(masks, micrographs[0].truth.to_label_image())
    names, images, labels = CellposeAdapter.read_native(folder)
    assert names == ["conformance_0", "conformance_1"]
    assert [im.shape for im in images] == [(64, 64)] * 2


def test_to_native_without_truth_names_the_micrograph(tmp_path):
    from lipobench.micrograph import Micrograph

    bare = Micrograph("no_truth", np.zeros((8, 8), np.float32))
    with pytest.raises(UserError, match="no_truth"):
        CellposeAdapter().to_native([bare], tmp_path)
    assert not (tmp_path / "cellpose_train").exists()


def test_prepare_image_makes_dark_particles_bright_without_touching_input():
    image = np.array([[1.0, 0.2]], dtype=np.float32)
    prepared = prepare_image(image)
    assert prepared[0, 1] > prepared[0, 0]
    assert image.tolist() == [[1.0, pytest.approx(0.2)]]


def test_bad_train_parameter_names_the_key(tmp_path):
    micrographs = make_test_micrographs(1, shape=(32, 32), radius=4)
    native = CellposeAdapter().to_native(micrographs, tmp_path)
    with pytest.raises(UserError, match="'n_epochs'"):
        CellposeAdapter().train(native, {"n_epochs": -1}, tmp_path / "train")
    with pytest.raises(UserError, match="'epochs'"):
        CellposeAdapter().train(native, {"epochs": 3}, tmp_path / "train")


def test_missing_builtin_model_says_no_download_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path / "models"))
    with pytest.raises(ToolUnavailableError) as info:
        builtin_model_file("cyto3")
    message = str(info.value)
    assert "never downloads" in message and str(tmp_path / "models") in message
    assert "\n" not in message
    assert not (tmp_path / "models").exists()


def test_present_builtin_model_resolves_to_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path))
    (tmp_path / "cytotorch_0").write_bytes(b"weights")
    assert builtin_model_file("cyto") == tmp_path / "cytotorch_0"


@pytest.mark.slow
def test_missing_or_broken_init_model_is_a_clear_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path / "models"))
    from cellpose import utils

    def no_download(*args, **kwargs):
        raise AssertionError("cellpose tried to download a model")

    monkeypatch.setattr(utils, "download_url_to_file", no_download)
    adapter = CellposeAdapter(device="cpu")
    native = adapter.to_native(make_test_micrographs(1, shape=(32, 32), radius=4), tmp_path)
    with pytest.raises(ToolUnavailableError, match="'cyto3'"):
        adapter.train(native, {"init": "cyto3", "n_epochs": 1}, tmp_path / "train")
    with pytest.raises(UserError, match="neither an existing model file"):
        adapter.train(native, {"init": str(tmp_path / "absent.pt")}, tmp_path / "train")
    garbage = tmp_path / "garbage_model"
    garbage.write_bytes(b"not a cellpose model")
    with pytest.raises(UserError, match="could not load it as a model") as info:
        adapter.train(native, {"init": str(garbage)}, tmp_path / "train")
    assert str(garbage) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(UserError, match="garbage_model"):
        adapter.predict(garbage, [], {}, tmp_path / "predict")
    assert not (tmp_path / "train" / "cellpose_model").exists()
    assert not (tmp_path / "train" / ".cellpose_training").exists()


@pytest.mark.slow
def test_real_train_then_predict_on_tiny_images(tmp_path, stage_values):
    adapter = CellposeAdapter(device="cpu")
    micrographs = make_test_micrographs(2, shape=(128, 128), radius=10)
    params = adapter.test_parameters()
    native = adapter.to_native(micrographs, tmp_path / "native")
    model = adapter.train(native, stage_values(adapter, Stage.TRAIN, params), tmp_path / "train")
    assert model == tmp_path / "train" / "cellpose_model" and model.is_file()
    assert (tmp_path / "train" / "train.log").read_text()
    assert not (tmp_path / "train" / ".cellpose_training").exists()

    predictions = adapter.predict(model, micrographs, stage_values(adapter, Stage.PREDICT, params),
                                  tmp_path / "predict")
    assert len(predictions) == 2
    for regions, micrograph in zip(predictions, micrographs):
        assert regions.kind is RegionKind.MASK
        assert regions.image_shape == micrograph.shape
        assert regions.scores is None

    # Fine-tuning from the saved file, then LipoPose's entry point: one load, two diameters.
    tuned = adapter.train(native, {"init": str(model), "n_epochs": 1}, tmp_path / "tuned")
    masks = adapter.masks_at_diameters(tuned, micrographs[:1], [15.0, 25.0])
    assert [[m.shape for m in row] for row in masks] == [[(128, 128)] * 2]
    assert all(m.dtype == np.int32 for row in masks for m in row)


@pytest.mark.slow
def test_training_with_the_same_seed_is_reproducible(tmp_path):
    import torch

    adapter = CellposeAdapter(device="cpu")
    native = adapter.to_native(make_test_micrographs(1, shape=(96, 96), radius=8), tmp_path)
    runs = [adapter.train(native, {"n_epochs": 1, "seed": 3}, tmp_path / f"run{k}")
            for k in range(2)]
    losses = [(run.parent / "train_losses.json").read_text() for run in runs]
    assert losses[0] == losses[1]
    first, second = (torch.load(run, map_location="cpu", weights_only=True) for run in runs)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)


@pytest.mark.slow
@pytest.mark.parametrize("diameter", [None, 48.0, 110.0])
def test_segment_equals_cellpose_eval_label_for_label(diameter):
    # segment() runs eval's steps one by one to save memory; it must change no mask.
    from cellpose import models

    from lipobench.adapters.cellpose import load_cellpose_model, prepare_image, segment
    from lipobench.shipped import packaged_model
    from lipobench.synth import simulate_micrograph
    from lipobench.synth.dataset import resolve_params

    sim = simulate_micrograph(resolve_params(preset="quick", size=512), index=0, seed=3)
    image = np.asarray(sim.to_micrograph("m").image)
    model = load_cellpose_model(packaged_model("cellpose"), "cpu")
    ours = segment(model, image, diameter=diameter, flow_threshold=0.4, cellprob_threshold=0.0)
    reference = models.CellposeModel(gpu=False, pretrained_model=str(packaged_model("cellpose")))
    theirs, _, _ = reference.eval(prepare_image(image), channels=[0, 0], diameter=diameter,
                                  flow_threshold=0.4, cellprob_threshold=0.0)
    assert ours.max() >= 3
    np.testing.assert_array_equal(ours, np.asarray(theirs).astype(np.int32))


def _shipped_model_and_network_input(size):
    """The shipped model and a synthetic micrograph normalised as segment() feeds it."""
    from cellpose import transforms
    from cellpose.models import normalize_default

    from lipobench.adapters.cellpose import load_cellpose_model, prepare_image
    from lipobench.shipped import packaged_model
    from lipobench.synth import simulate_micrograph
    from lipobench.synth.dataset import resolve_params

    sim = simulate_micrograph(resolve_params(preset="quick", size=size), index=0, seed=3)
    model = load_cellpose_model(packaged_model("cellpose"), "cpu")
    x = transforms.convert_image(prepare_image(np.asarray(sim.to_micrograph("m").image)),
                                 [0, 0], nchan=model.nchan)
    return model, transforms.normalize_img(
        x[np.newaxis], **{**normalize_default, "normalize": True, "invert": False})


@pytest.mark.slow
def test_network_flows_do_not_depend_on_the_tiles_per_forward_pass():
    # segment() sends fewer tiles through the network at once than eval does; the 512² images
    # of the label-for-label test make too few tiles to tell, 25 tiles here do.
    from cellpose import core

    from lipobench.adapters.cellpose import _TILES_PER_FORWARD

    model, x = _shipped_model_and_network_input(768)
    evals, _ = core.run_net(model.net, x, batch_size=8)  # eval's default
    ours, _ = core.run_net(model.net, x, batch_size=_TILES_PER_FORWARD)
    assert _TILES_PER_FORWARD < 8
    np.testing.assert_array_equal(ours, evals)


@pytest.mark.slow
def test_object_by_object_flow_check_removes_the_masks_cellpose_removes():
    # segment() checks flows crop by crop to save memory; at each threshold the masks it
    # drops must be the ones cellpose's whole-image remove_bad_flow_masks drops.
    from cellpose import core, dynamics, transforms

    from lipobench.adapters.cellpose import remove_inconsistent_masks

    model, x = _shipped_model_and_network_input(512)
    rescale = model.diam_mean / 48.0
    flows, _ = core.run_net(model.net, x, rsz=rescale)
    flows = transforms.resize_image(flows, 512, 512)
    flow_field, cellprob = flows[0, ..., :2].transpose((2, 0, 1)), flows[0, ..., 2]
    masks = dynamics.compute_masks(flow_field, cellprob, niter=200 / rescale, flow_threshold=0,
                                   device=model.device)
    before = masks.copy()
    kept_counts = []
    for threshold in (0.02, 0.05, 0.1, 0.4):
        ours = remove_inconsistent_masks(masks, flow_field, threshold=threshold)
        theirs = dynamics.remove_bad_flow_masks(masks.copy(), flow_field, threshold=threshold)
        np.testing.assert_array_equal(ours, theirs)
        kept_counts.append(len(np.unique(ours)) - 1)
    np.testing.assert_array_equal(masks, before)  # the input is not changed
    # The thresholds span removing every mask, some, and none.
    assert kept_counts[0] == 0 and 0 < kept_counts[1] < masks.max() == kept_counts[-1]


@pytest.mark.slow
def test_training_from_files_equals_cellpose_in_memory_training_weight_for_weight(tmp_path):
    # train() streams images and flows from files; cellpose's in-memory route is the oracle.
    import torch
    from cellpose import train

    from lipobench.adapters.cellpose import CellposeTrainParams, _cellpose_model
    from lipobench.micrograph import Micrograph
    from lipobench.regions import RegionSet

    micrographs = make_test_micrographs(3, shape=(96, 96), radius=8, seed=4)
    empty = np.zeros((96, 96), dtype=np.int32)  # dropped by both routes (min_train_masks=1)
    micrographs.append(Micrograph("empty", micrographs[0].image.copy(), None,
                                  RegionSet.from_labels(empty)))
    adapter = CellposeAdapter(device="cpu")
    native = adapter.to_native(micrographs, tmp_path / "native")
    ours = adapter.train(native, {"n_epochs": 2, "seed": 5, "bsize": 64}, tmp_path / "ours")

    p = CellposeTrainParams(n_epochs=2, seed=5, bsize=64)
    torch.manual_seed(p.seed)
    np.random.seed(p.seed)
    model = _cellpose_model(None, torch.device("cpu"), diam_mean=p.diam_mean, mkldnn=False)
    _, images, labels = CellposeAdapter.read_native(native)
    (tmp_path / "reference").mkdir()
    reference, _, _ = train.train_seg(
        model.net, train_data=[prepare_image(im) for im in images], train_labels=labels,
        channels=[0, 0], normalize=True, n_epochs=p.n_epochs, learning_rate=p.learning_rate,
        weight_decay=p.weight_decay, save_path=str(tmp_path / "reference"),
        model_name="reference", min_train_masks=1, bsize=p.bsize)
    mine, theirs = (torch.load(path, map_location="cpu", weights_only=True)
                    for path in (ours, reference))
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert torch.equal(mine[key], theirs[key]), key
