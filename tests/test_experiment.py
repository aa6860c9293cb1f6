"""Experiment files: parsing, checks against the adapters, derivation, and CLI refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipobench.cli import main
from lipobench.errors import UserError
from lipobench.experiment import (
    DEFAULT_IOU_THRESHOLDS,
    Derived,
    KFoldSplit,
    Quantity,
    Statistic,
    check_experiment,
    expand_configurations,
    load_experiment,
    parse_experiment,
    resolve_parameters,
    training_statistics,
)
from lipobench.plugins import load_registry
from lipobench.regions import RegionSet

REPO = Path(__file__).resolve().parents[1]

GOOD = """
name = "demo"
iou_thresholds = [0.5, 0.7]

[dataset]
synthetic = { preset = "quick", seed = 3 }

[split]
mode = "kfold"
k = 3

[methods.log]
threshold = [3.0, 4.0]
min_sigma = [{ derive = "radius", statistic = "quantile", q = 0.25, scale = 0.5 }, 4.0]
downsample = 1
"""


@pytest.fixture(scope="module")
def registry():
    return load_registry(disable_plugins=True)


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_parse_good_file(tmp_path, registry):
    experiment = load_experiment(write(tmp_path, GOOD), registry)
    assert experiment.label == "demo"
    assert experiment.iou_thresholds == [0.5, 0.7]
    assert isinstance(experiment.split, KFoldSplit) and experiment.split.k == 3
    grid = experiment.methods["log"].params["min_sigma"]
    assert isinstance(grid[0], Derived) and grid[0].q == 0.25 and grid[0].scale == 0.5
    assert grid[1] == 4.0 and not isinstance(grid[1], Derived)
    # downsample given as one value, not a list
    assert experiment.methods["log"].params["downsample"] == 1


def test_defaults(tmp_path):
    experiment = load_experiment(write(tmp_path, '[dataset]\npath = "d"\n[methods.log]\n'))
    assert tuple(experiment.iou_thresholds) == DEFAULT_IOU_THRESHOLDS
    assert DEFAULT_IOU_THRESHOLDS[0] == 0.5 and DEFAULT_IOU_THRESHOLDS[-1] == 0.95
    assert len(DEFAULT_IOU_THRESHOLDS) == 10
    assert experiment.label == "exp"
    assert experiment.dataset_path() == tmp_path / "d"
    assert experiment.split.mode == "dataset"


def test_expand_configurations_fills_defaults(tmp_path, registry):
    experiment = load_experiment(write(tmp_path, GOOD), registry)
    configurations = expand_configurations(experiment, registry)
    assert len(configurations) == 4  # threshold x min_sigma
    parameters = registry.entry("log").adapter_cls.parameters
    for configuration in configurations:
        assert set(configuration.spec) == set(parameters)
        assert configuration.spec["num_sigma"] == parameters["num_sigma"].grid[0]
        assert configuration.spec["downsample"] == 1
    ids = {c.config_id for c in configurations}
    assert len(ids) == 4
    again = expand_configurations(load_experiment(write(tmp_path, GOOD), registry), registry)
    assert [c.config_id for c in again] == [c.config_id for c in configurations]


def test_training_statistics_and_resolution():
    labels = np.zeros((40, 40), dtype=np.int32)
    labels[0:4, 0:10] = 1   # box 4 x 10
    labels[10:20, 10:20] = 2  # box 10 x 10
    other = np.zeros((40, 40), dtype=np.int32)
    stats = training_statistics([RegionSet.from_labels(labels), RegionSet.from_labels(other)])
    assert sorted(stats[Quantity.BOX_SIZE].tolist()) == [10.0, 10.0]
    assert stats[Quantity.COUNT_PER_IMAGE].tolist() == [2.0, 0.0]
    np.testing.assert_allclose(np.sort(stats[Quantity.DIAMETER]),
                               2 * np.sqrt(np.array([40.0, 100.0]) / np.pi))
    # radius: the minimal enclosing circle contains every pixel centre of the mask
    assert stats[Quantity.RADIUS].max() >= np.hypot(9, 9) / 2

    mean_count = Derived(derive="count_per_image", statistic="mean")
    assert mean_count.resolve(stats) == 1.0
    q = Derived(derive="diameter", statistic=Statistic.QUANTILE, q=1.0, scale=0.5,
                round_to_int=True)
    assert q.resolve(stats) == round(np.sqrt(100 / np.pi))
    resolved = resolve_parameters({"a": mean_count, "b": "x"}, stats)
    assert resolved == {"a": 1.0, "b": "x"}


def test_derived_needs_q_only_with_quantile():
    with pytest.raises(ValueError, match="needs q"):
        Derived(derive="diameter", statistic="quantile")
    with pytest.raises(ValueError, match="only used with"):
        Derived(derive="diameter", statistic="mean", q=0.5)


def test_no_particles_cannot_derive():
    stats = training_statistics([RegionSet.from_labels(np.zeros((5, 5), np.int32))])
    with pytest.raises(UserError, match="no ground-truth particles"):
        Derived(derive="diameter").resolve(stats)


BAD = [
    # (file text, the key the one-line message must name)
    ('[dataset]\npath = "d"\n[methods.log]\ntreshold = [1.0]\n', "methods.log.treshold: unknown key"),
    ('[dataset]\npath = "d"\n[methods.nosuch]\n', "methods.nosuch: unknown method"),
    ('[dataset]\npath = "d"\n[methods.log]\nthreshold = []\n', "methods.log.threshold: empty grid"),
    ('[dataset]\npath = "d"\n[methods.log]\nthreshold = ["high"]\n',
     "methods.log.threshold.0: 'high' has the wrong type"),
    ('[dataset]\npath = "d"\n[methods.log]\nnum_sigma = 2.5\n', "methods.log.num_sigma"),
    ('[dataset]\npath = "d"\n[methods.log]\nnum_sigma = { derive = "count_per_image" }\n',
     "round_to_int"),
    ('[dataset]\npath = "d"\n[methods.log]\ndark_particles = { derive = "radius" }\n',
     "methods.log.dark_particles: a derived value needs a numeric parameter"),
    ('[dataset]\npath = "d"\n[methods.log]\nmin_sigma = { derive = "diamter" }\n',
     "methods.log.min_sigma.derive"),
    ('[dataset]\npath = "d"\n[methods.log]\nmin_sigma = { derive = "radius", qq = 1 }\n',
     "methods.log.min_sigma.qq: unknown key; allowed: derive, q, round_to_int, scale, statistic"),
    ('[dataset]\npth = "d"\n[methods.log]\n', "dataset.pth: unknown key; allowed: path, synthetic"),
    ('[dataset]\npath = "d"\n[split]\nmode = "kfold"\nk = 1\n[methods.log]\n', "split.k"),
    ('ouptut = "x"\n[dataset]\npath = "d"\n[methods.log]\n', "ouptut: unknown key"),
    ('[dataset]\npath = "d"\n', "methods: missing key"),
    ('[dataset]\npath = "d"\n[methods.log]\n[executor]\nkind = "slurm"\n', "executor.kind"),
    ('[dataset]\npath = "d"\n[methods.x]\nadapter = "nope"\n', "methods.x.adapter: unknown method"),
    ('[dataset]\npath = "nowhere"\n[methods.log]\n', "dataset.path: "),
    ('[dataset]\nsynthetic = { preset = "quick", n_images = 4 }\n'
     '[split]\nmode = "kfold"\nk = 5\n[methods.log]\n', "split.k: 5 folds but the dataset has 4"),
    ('[dataset]\nsynthetic = { preset = "huge" }\n[methods.log]\n',
     "dataset.synthetic.preset: unknown preset"),
    ('[dataset\n', "not valid TOML"),
    # values each adapter's schema refuses, before any work
    ('[dataset]\npath = "d"\n[methods.cellpose]\ndiameter = "big"\n',
     "methods.cellpose.diameter: 'big' has the wrong type"),
    ('[dataset]\npath = "d"\n[methods.cellpose]\ndiameter = -30\n',
     "methods.cellpose.diameter: -30: Input should be greater than 0"),
    ('[dataset]\npath = "d"\n[methods.cellpose]\ndiameter = [30.0, 0]\n',
     "methods.cellpose.diameter.1: 0: Input should be greater than 0"),
    ('[dataset]\npath = "d"\n[methods.cellpose]\nn_epochs = -3\n',
     "methods.cellpose.n_epochs: -3: Input should be greater than or equal to 0"),
    ('iou_thresholds = [0.0]\n[dataset]\npath = "d"\n[methods.log]\n',
     "iou_thresholds.0: Input should be greater than 0"),
    ('[dataset]\npath = "d"\n[methods.log]\nmin_sigma = 30.0\nmax_sigma = 2.0\n',
     "methods.log: min_sigma 30 is above max_sigma 2; give min_sigma <= max_sigma"),
    ('[dataset]\npath = "d"\n[methods.log]\nmin_sigma = -5.0\n',
     "methods.log.min_sigma: -5.0: Input should be greater than 0"),
    ('[dataset]\npath = "d"\n[methods.topaz]\nextract_radius = 0\n',
     "methods.topaz.extract_radius: 0: Input should be greater than 0"),
    ('[dataset]\npath = "d"\n[methods.cryolo]\nconfidence = 2.0\n',
     "methods.cryolo.confidence: 2.0: Input should be less than or equal to 1"),
    ('[dataset]\npath = "d"\n[methods.lipopose]\nmerge = "union"\n',
     "methods.lipopose.merge: 'union' has the wrong type"),
    ('[dataset]\npath = "d"\n[methods.topaz]\nbogus = 1\n', "methods.topaz.bogus: unknown key"),
    ('[dataset]\npath = "d"\n[methods.cellpose]\nbogus = 1\n',
     "methods.cellpose.bogus: unknown key"),
    ('[dataset]\npath = "d"\n[methods.lipopose]\nbogus = 1\n',
     "methods.lipopose.bogus: unknown key"),
    ('[dataset]\npath = "d"\n[methods.cryolo]\nbogus = 1\n', "methods.cryolo.bogus: unknown key"),
]


@pytest.mark.parametrize("text, expected", BAD, ids=[b[1][:40] for b in BAD])
def test_cli_refuses_bad_experiment_before_any_work(tmp_path, capsys, monkeypatch, text,
                                                    expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    path = write(tmp_path, text)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lipobench: error: ") and "\n" not in err, err
    assert expected in err, err
    assert str(path) in err or expected.startswith("not valid")
    assert "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "exp.toml"]


def test_cli_refuses_conflicting_flags(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "--executor", "local", "--workers", "2",
              "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "--executor dask" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(path), "--executor", "ray", "--out", str(tmp_path / "o")])
    assert "--executor ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(path), "--only", "cellpose", "--out", str(tmp_path / "o")])
    assert "--only cellpose: no such method" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_check_experiment_on_parsed_mapping(registry):
    experiment = parse_experiment({"dataset": {"path": "d"},
                                   "methods": {"log": {"threshold": [3.0, 4.0]}}})
    check_experiment(experiment, registry)
    with pytest.raises(UserError, match="tools.log: "):
        check_experiment(parse_experiment({"dataset": {"path": "d"}, "tools": {"log": {"x": 1}},
                                           "methods": {"log": {}}}), registry)


@pytest.mark.parametrize("name", ["paper21.toml", "paper21_gpu.toml", "quick.toml",
                                  "lipopose_cv.toml", "lipopose_cv_gpu.toml"])
def test_shipped_experiments_are_valid(name):
    registry = load_registry()
    experiment = load_experiment(REPO / "experiments" / name, registry)
    configurations = expand_configurations(experiment, registry)
    assert experiment.dataset.synthetic is not None
    assert experiment.name == name.removesuffix(".toml")
    if name in ("paper21.toml", "lipopose_cv.toml"):
        # the CPU-sized study starts from the shipped Cellpose model (paper21 fine-tunes it,
        # the cross-validation scores it as it is), the GPU one starts afresh
        cellpose_like = [c for c in configurations if c.adapter in ("cellpose", "lipopose")]
        epochs = 10 if name == "paper21.toml" else 0
        assert {(c.spec["init"], c.spec["n_epochs"]) for c in cellpose_like} == {
            ("default", epochs)}
    elif name.endswith("_gpu.toml"):
        assert {c.spec["init"] for c in configurations if c.adapter == "cellpose"} == {"scratch"}
    if name.startswith("paper21"):
        assert experiment.dataset.synthetic.preset == "paper"
        assert len(configurations) == 21
        per_adapter = {}
        for c in configurations:
            per_adapter[c.adapter] = per_adapter.get(c.adapter, 0) + 1
        assert per_adapter == {"cellpose": 3, "cryolo": 9, "topaz": 9}
    elif name == "quick.toml":
        assert experiment.dataset.synthetic.preset == "quick"
        assert {c.adapter for c in configurations} == {"log", "cellpose", "lipopose", "topaz",
                                                       "cryolo"}
        # the demo scores the shipped models: nothing trains on the user's CPU
        for c in configurations:
            if c.adapter in ("cellpose", "lipopose"):
                assert (c.spec["init"], c.spec["n_epochs"]) == ("default", 0)
            if c.adapter == "topaz":
                assert c.spec["pretrained"] == "default"
    else:
        assert isinstance(experiment.split, KFoldSplit) and experiment.split.k == 5
        assert {c.adapter for c in configurations} == {"cellpose", "lipopose"}


def test_the_default_models_finetune_stage_is_a_valid_experiment():
    """experiments/default_cellpose_finetune.toml (how the shipped Cellpose model was made)."""
    registry = load_registry()
    experiment = load_experiment(REPO / "experiments" / "default_cellpose_finetune.toml",
                                 registry)
    (configuration,) = expand_configurations(experiment, registry)
    assert experiment.dataset.synthetic.preset == "realistic"
    assert configuration.spec["init"] == "results/default-stage1/cellpose_default"
    assert configuration.spec["n_epochs"] == 60


def test_the_default_detectors_finetune_stage_is_a_valid_experiment():
    """experiments/default_topaz_finetune.toml (how the shipped Topaz detector was made)."""
    registry = load_registry()
    experiment = load_experiment(REPO / "experiments" / "default_topaz_finetune.toml", registry)
    (configuration,) = expand_configurations(experiment, registry)
    assert experiment.dataset.synthetic.preset == "realistic"
    assert configuration.spec["init"] == "results/default-stage1/topaz_default.sav"
    assert configuration.spec["trust_init"] is True and configuration.spec["downsample"] == 4
