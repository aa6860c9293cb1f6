"""The reliability corpus: every subcommand answers a user's mistake in one line, before any work.

Each case is one bad input (an argument, an option, a file or a key in one). Every case must
end with exit code 2, exactly one line on stderr starting ``lipobench: error:`` that names the
file or key, no traceback, and nothing written: the whole workspace (inputs, and the working
directory where default outputs would land) is the same file for file afterwards. The entry
points of the expensive work (executors, simulation, training, Cellpose inference) raise if a
case reaches them, so every mistake is caught before any work starts.

The fault-injection tests (SIGKILL, SIGINT, damaged cache, read-only folder, full disk,
concurrent runs) live in tests/test_faults.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_runner import DiskDetectorForTests, make_dataset, make_registry

from lipobench.adapters.base import Availability
from lipobench.testing import assert_user_error, run_cli

GOOD_DATASET = "data/good"
#: dataset.toml lines pointing a variant folder at the good dataset's files.
_FILES = 'images = "../../data/good/images"\nmasks = "../../data/good/masks"\n'


class ToolPathAdapterForTests(DiskDetectorForTests):
    """Test double whose ``bin_dir`` option names programs it would run."""

    name = "toolpath"
    code_options = ("bin_dir",)

    def __init__(self, bin_dir: str | None = None):
        self.bin_dir = bin_dir

    def availability(self) -> Availability:
        # Available only when the option reached it, so an "ok" row proves it did.
        if self.bin_dir is None:
            return Availability(False, reason="no bin_dir", fix="set bin_dir")
        return Availability(True, tool_version="toolpath 1.0")


def corpus_registry():
    registry = make_registry()
    registry.register(ToolPathAdapterForTests, package="tests")
    from lipobench.adapters.log import LogAdapter

    registry.register(LogAdapter, package="lipobench")
    return registry


# ---------------------------------------------------------------------------- the workspace

#: dataset.toml variants: folder name -> text (each under bad/<name>/dataset.toml).
BAD_DATASETS = {
    "toml_syntax": "[dataset\n",
    "unknown_key": f"[dataset]\n{_FILES}colour = 3\n",
    "unknown_table": f"[dataset]\n{_FILES}[extra]\nx = 1\n",
    "trust_yes": f'[dataset]\n{_FILES}mask_format = "cellpose_seg"\ntrust_pickles = "yes"\n',
    "trust_one": f'[dataset]\n{_FILES}mask_format = "cellpose_seg"\ntrust_pickles = 1\n',
    "seg_untrusted": '[dataset]\nimages = "../../data/good/images"\nmasks = "../seg_masks"\n'
                     'mask_format = "cellpose_seg"\n',
    "pixel_string": f'[dataset]\n{_FILES}pixel_size_nm = "0.888"\n',
    "pixel_inf": f"[dataset]\n{_FILES}pixel_size_nm = inf\n",
    "pixel_huge": f"[dataset]\n{_FILES}pixel_size_nm = 1e308\n",
    "pixel_negative": f"[dataset]\n{_FILES}pixel_size_nm = -1.0\n",
    "pixel_bool": f"[dataset]\n{_FILES}pixel_size_nm = true\n",
    "mask_format": f'[dataset]\n{_FILES}mask_format = "polygons"\n',
    "images_missing": '[dataset]\nimages = "nowhere"\n',
    "masks_missing": '[dataset]\nimages = "../../data/good/images"\nmasks = "nowhere"\n',
    "split_unknown": f'[dataset]\n{_FILES}[split]\ntrain = ["m0", "m9"]\n',
    "split_twice": f'[dataset]\n{_FILES}[split]\ntrain = ["m0", "m0"]\ntest = ["m1"]\n',
    "split_overlap": f'[dataset]\n{_FILES}[split]\ntrain = ["m0", "m1"]\ntest = ["m1"]\n',
    "split_type": f'[dataset]\n{_FILES}[split]\ntrain = "m0"\n',
    "split_key": f'[dataset]\n{_FILES}[split]\ntraining = ["m0"]\n',
    "images_type": "[dataset]\nimages = 3\n",
    "no_mask": '[dataset]\nimages = "../../data/good/images"\nmasks = "../few_masks"\n',
    "stray_mask": '[dataset]\nimages = "../few_images"\nmasks = "../../data/good/masks"\n',
    "bad_image": '[dataset]\nimages = "../garbage_images"\n',
    "empty_image": '[dataset]\nimages = "../empty_images"\n',
    "roi_corrupt": '[dataset]\nimages = "../roi_images"\nmasks = "../roi_masks"\n'
                   'mask_format = "roi"\n',
    "shape_mismatch": '[dataset]\nimages = "../small_images"\nmasks = "../small_masks"\n',
}

_EXP_HEAD = 'iou_thresholds = [0.5]\n[dataset]\npath = "../data/good"\n'
#: experiment variants: file stem -> text (each as exp/<stem>.toml).
BAD_EXPERIMENTS = {
    "syntax": "name = \n",
    "unknown_top": _EXP_HEAD + "colour = 1\n[methods.log]\n",
    "no_methods": _EXP_HEAD,
    "no_dataset": "[methods.log]\n",
    "both_sources": '[dataset]\npath = "../data/good"\nsynthetic = { preset = "quick" }\n'
                    "[methods.log]\n",
    "dataset_missing": '[dataset]\npath = "../data/nowhere"\n[methods.log]\n',
    "unknown_method": _EXP_HEAD + "[methods.magic]\n",
    "unknown_adapter": _EXP_HEAD + '[methods.mine]\nadapter = "magic"\n',
    "unknown_param": _EXP_HEAD + "[methods.log]\nsharpness = 3\n",
    # 1 x 1-pixel micrographs with no particles would score P = R = F1 = 1.
    "no_particles": 'iou_thresholds = [0.5]\n[dataset]\npath = "../data/onepixel"\n'
                    '[methods.log]\n',
    "param_type": _EXP_HEAD + '[methods.log]\nthreshold = "high"\n',
    "param_inf": _EXP_HEAD + "[methods.log]\nthreshold = inf\n",
    "param_nan_grid": _EXP_HEAD + "[methods.log]\nthreshold = [0.1, nan]\n",
    "param_empty_grid": _EXP_HEAD + "[methods.log]\nthreshold = []\n",
    "param_table": _EXP_HEAD + "[methods.log]\nthreshold = { value = 3 }\n",
    "iou_high": 'iou_thresholds = [1.5]\n[dataset]\npath = "../data/good"\n[methods.log]\n',
    "iou_string": 'iou_thresholds = ["0.5"]\n[dataset]\npath = "../data/good"\n[methods.log]\n',
    "iou_nan": 'iou_thresholds = [nan]\n[dataset]\npath = "../data/good"\n[methods.log]\n',
    "iou_empty": 'iou_thresholds = []\n[dataset]\npath = "../data/good"\n[methods.log]\n',
    "k_string": _EXP_HEAD + '[split]\nmode = "kfold"\nk = "3"\n[methods.log]\n',
    "k_one": _EXP_HEAD + '[split]\nmode = "kfold"\nk = 1\n[methods.log]\n',
    "k_float": _EXP_HEAD + '[split]\nmode = "kfold"\nk = 2.0\n[methods.log]\n',
    "k_too_many": _EXP_HEAD + '[split]\nmode = "kfold"\nk = 9\n[methods.log]\n',
    "split_mode": _EXP_HEAD + '[split]\nmode = "random"\n[methods.log]\n',
    "split_name": _EXP_HEAD + '[split]\ntest = "holdout"\n[methods.log]\n',
    "executor_kind": _EXP_HEAD + '[executor]\nkind = "slurm"\n[methods.log]\n',
    "executor_workers": _EXP_HEAD + "[executor]\nworkers = 2.5\n[methods.log]\n",
    "synthetic_preset": '[dataset]\nsynthetic = { preset = "huge" }\n[methods.log]\n',
    "synthetic_seed": '[dataset]\nsynthetic = { preset = "quick", seed = "0" }\n[methods.log]\n',
    "synthetic_size": '[dataset]\nsynthetic = { preset = "quick", size = 4 }\n[methods.log]\n',
    "synthetic_pixel": '[dataset]\nsynthetic = { preset = "quick", pixel_size_nm = 1e308 }\n'
                       "[methods.log]\n",
    "synthetic_key": '[dataset]\nsynthetic = { preset = "quick", colour = 1 }\n[methods.log]\n',
    "derive_round": _EXP_HEAD + '[methods.log]\nmin_sigma = { derive = "radius", '
                                'round_to_int = "yes" }\n',
    "derive_q": _EXP_HEAD + '[methods.log]\nmin_sigma = { derive = "radius", q = 0.5 }\n',
    "derive_quantity": _EXP_HEAD + '[methods.log]\nmin_sigma = { derive = "volume" }\n',
    "derive_scale": _EXP_HEAD + '[methods.log]\nmin_sigma = { derive = "radius", '
                                'scale = "2" }\n',
    "method_escape": _EXP_HEAD + '[methods."../../x"]\nadapter = "log"\n',
    "method_hidden": _EXP_HEAD + '[methods.".hidden"]\nadapter = "log"\n',
    "name_escape": 'name = "../.."\n' + _EXP_HEAD + "[methods.log]\n",
    "tools_unknown": _EXP_HEAD + "[tools.magic]\nx = 1\n[methods.log]\n",
    "tools_option": _EXP_HEAD + "[tools.log]\ncolour = 1\n[methods.log]\n",
    "tool_path": _EXP_HEAD + '[tools.toolpath]\nbin_dir = "/tmp/anything"\n[methods.toolpath]\n',
    "unlabelled": '[dataset]\npath = "../data/plain"\n[methods.log]\n',
    "other_experiment": 'name = "second"\n' + _EXP_HEAD + '[methods.log]\n',
}


def _write_mrc(path: Path, data) -> None:
    import mrcfile

    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, dtype=np.float32))


def build_workspace(root: Path) -> Path:
    """Every file the corpus needs; nothing in it is ever written by a case."""
    good = make_dataset(root / GOOD_DATASET)
    for name, text in BAD_DATASETS.items():
        (root / "bad" / name).mkdir(parents=True)
        (root / "bad" / name / "dataset.toml").write_text(text)
    bad = root / "bad"
    (bad / "seg_masks").mkdir()
    for i in range(4):
        np.save(bad / "seg_masks" / f"m{i}_seg.npy", {"masks": np.zeros((96, 96), np.int32)},
                allow_pickle=True)
    shutil.copytree(good / "masks", bad / "few_masks")
    (bad / "few_masks" / "m3.tif").unlink()
    shutil.copytree(good / "images", bad / "few_images")
    (bad / "few_images" / "m3.mrc").unlink()
    (bad / "garbage_images").mkdir()
    (bad / "garbage_images" / "m0.mrc").write_bytes(b"this is not an MRC file" * 10)
    (bad / "empty_images").mkdir()
    _write_mrc(bad / "empty_images" / "m0.mrc", np.zeros((0, 5)))  # mrcfile warns reading it
    (bad / "roi_images").mkdir()
    shutil.copyfile(good / "images" / "m0.mrc", bad / "roi_images" / "m0.mrc")
    (bad / "roi_masks").mkdir()
    with zipfile.ZipFile(bad / "roi_masks" / "m0.zip", "w") as archive:
        # An ROI of unknown type 99: roifile logs a warning, lipobench refuses the ROI.
        header = bytearray(b"Iout" + bytes(60))
        header[4:6], header[6] = (228).to_bytes(2, "big"), 99
        archive.writestr("0001.roi", bytes(header))
    (bad / "small_images").mkdir()
    (bad / "small_masks").mkdir()
    _write_mrc(bad / "small_images" / "m0.mrc", np.zeros((40, 50)))
    from lipobench.imageio import write_labels_tiff

    write_labels_tiff(bad / "small_masks" / "m0.tif", np.zeros((50, 40), np.int32))
    from lipobench.data import DatasetManifest, DatasetSection, SplitSection, write_manifest

    (root / "data" / "onepixel" / "images").mkdir(parents=True)
    (root / "data" / "onepixel" / "masks").mkdir()
    for name in ("m0", "m1"):
        _write_mrc(root / "data" / "onepixel" / "images" / f"{name}.mrc", np.zeros((1, 1)))
        write_labels_tiff(root / "data" / "onepixel" / "masks" / f"{name}.tif",
                          np.zeros((1, 1), np.int32))
    write_manifest(root / "data" / "onepixel", DatasetManifest(
        dataset=DatasetSection(masks="masks"), split=SplitSection(train=["m0"], test=["m1"])))
    (root / "data" / "plain").mkdir()
    shutil.copyfile(good / "images" / "m0.mrc", root / "data" / "plain" / "m0.mrc")
    shutil.copyfile(good / "images" / "m1.mrc", root / "data" / "plain" / "m1.mrc")
    (root / "exp").mkdir()
    for name, text in BAD_EXPERIMENTS.items():
        (root / "exp" / f"{name}.toml").write_text(text)
    (root / "exp" / "good.toml").write_text('name = "good"\n' + _EXP_HEAD + "[methods.log]\n")
    (root / "exp" / "folder.toml").mkdir()
    (root / "exp" / "latin1.toml").write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    # A results folder of experiment "first", to refuse a different experiment into it.
    taken = root / "exp" / "taken"
    taken.mkdir()
    (taken / "run.json").write_text(json.dumps({"experiment": "first"}))
    (root / "files").mkdir()
    files = root / "files"
    (files / "a_file").write_text("not a folder")
    (files / "empty.npz").write_bytes(b"")
    (files / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (files / "pred.xyz").write_text("1 2 3\n")
    (files / "truth.tif").write_bytes(b"")
    from lipobench.imageio import write_labels_tiff as write_labels

    labels = np.zeros((32, 32), np.int32)
    labels[4:10, 4:10] = 1
    write_labels(files / "labels.tif", labels)
    (files / "params.json").write_text("{ not json")
    shutil.copyfile(good / "images" / "m0.mrc", files / "...mrc")  # its stem is ".."
    (files / "model.bin").write_bytes(b"\x00" * 16)
    (files / "nonempty").mkdir()
    (files / "nonempty" / "x").write_text("x")
    results = root / "results_bad"
    results.mkdir()
    (results / "results.parquet").write_bytes(b"PAR1 garbage")
    (results / "run.json").write_text("{}")
    (root / "not_results").mkdir()
    return root


# ---------------------------------------------------------------------------- the corpus

#: (case id, argv with {ws} for the workspace, fragments the one line must hold)
CASES = [
    # ---- info
    ("info-missing", ["info", "{ws}/data/none"], ["data/none", "no such dataset folder"]),
    ("info-file", ["info", "{ws}/files/a_file"], ["a_file", "a dataset is a folder"]),
    ("info-bad-option", ["info", "{ws}/data/good", "--colour"], ["--colour"]),
    *[(f"info-{name}", ["info", f"{{ws}}/bad/{name}"], [f"bad/{name}"])
      for name in BAD_DATASETS],
    # ---- convert
    ("convert-to-bogus", ["convert", "{ws}/data/good", "{ws}/out", "--to", "png"], ["--to"]),
    ("convert-no-to", ["convert", "{ws}/data/good", "{ws}/out"], ["--to"]),
    ("convert-out-file", ["convert", "{ws}/data/good", "{ws}/files/a_file", "--to", "roi"],
     ["a_file", "not a folder"]),
    ("convert-out-nonempty", ["convert", "{ws}/data/good", "{ws}/files/nonempty", "--to",
                              "roi"], ["nonempty", "--overwrite"]),
    ("convert-out-inside", ["convert", "{ws}/data/good", "{ws}/data/good/conv", "--to", "roi"],
     ["overlaps the dataset"]),
    ("convert-cryolo-no-box", ["convert", "{ws}/data/good", "{ws}/out", "--to", "cryolo"],
     ["--box-size", "--tight"]),
    ("convert-topaz-box", ["convert", "{ws}/data/good", "{ws}/out", "--to", "topaz",
                           "--box-size", "5"], ["--box-size"]),
    ("convert-box-negative", ["convert", "{ws}/data/good", "{ws}/out", "--to", "cryolo",
                              "--box-size", "-3"], ["--box-size"]),
    ("convert-split", ["convert", "{ws}/data/good", "{ws}/out", "--to", "roi", "--split",
                       "holdout"], ["--split holdout"]),
    ("convert-unlabelled", ["convert", "{ws}/data/plain", "{ws}/out", "--to", "roi"],
     ["data/plain", "no masks"]),
    ("convert-bad-dataset", ["convert", "{ws}/bad/trust_yes", "{ws}/out", "--to", "roi"],
     ["trust_pickles"]),
    # ---- run
    ("run-missing", ["run", "{ws}/exp/none.toml"], ["none.toml", "no such experiment"]),
    ("run-folder", ["run", "{ws}/exp/folder.toml"], ["folder.toml"]),
    ("run-latin1", ["run", "{ws}/exp/latin1.toml"], ["latin1.toml", "UTF-8"]),
    ("run-executor", ["run", "{ws}/exp/good.toml", "--executor", "slurm"], ["--executor"]),
    ("run-workers-local", ["run", "{ws}/exp/good.toml", "--executor", "local", "--workers",
                           "2"], ["--workers"]),
    ("run-workers-scheduler", ["run", "{ws}/exp/good.toml", "--workers", "2", "--scheduler",
                               "tcp://x:1"], ["--scheduler"]),
    ("run-workers-zero", ["run", "{ws}/exp/good.toml", "--workers", "0"], ["--workers"]),
    ("run-only-unknown", ["run", "{ws}/exp/good.toml", "--only", "magic"], ["--only magic"]),
    ("run-out-file", ["run", "{ws}/exp/good.toml", "--out", "{ws}/files/a_file"],
     ["--out", "a_file", "not a folder"]),
    ("run-out-under-file", ["run", "{ws}/exp/good.toml", "--out", "{ws}/files/a_file/sub"],
     ["--out", "a_file", "not a folder"]),
    ("run-other-experiment", ["run", "{ws}/exp/other_experiment.toml", "--out",
                              "{ws}/exp/taken"], ["exp/taken", "'first'"]),
    *[(f"run-{name}", ["run", f"{{ws}}/exp/{name}.toml"], [f"{name}.toml"])
      for name in BAD_EXPERIMENTS if name != "other_experiment"],
    # ---- plot
    ("plot-missing", ["plot", "{ws}/none"], ["none", "no such results folder"]),
    ("plot-not-results", ["plot", "{ws}/not_results"], ["not_results"]),
    ("plot-bad-parquet", ["plot", "{ws}/results_bad"], ["results.parquet"]),
    ("plot-format", ["plot", "{ws}/results_bad", "--format", "gif"], ["--format"]),
    ("plot-out-file", ["plot", "{ws}/results_bad", "--out", "{ws}/files/a_file"],
     ["--out", "a_file"]),
    # ---- compare
    ("compare-missing", ["compare", "{ws}/none", "a", "b"], ["none"]),
    ("compare-not-results", ["compare", "{ws}/not_results", "a", "b"], ["not_results"]),
    ("compare-resamples", ["compare", "{ws}/results_bad", "a", "b", "--resamples", "5"],
     ["--resamples"]),
    # ---- tools
    ("tools-install-unknown", ["tools", "install", "magic"], ["magic"]),
    ("tools-option", ["tools", "list", "--colour"], ["--colour"]),
    # ---- synth
    ("synth-preset", ["synth", "{ws}/out", "--preset", "huge"], ["huge"]),
    ("synth-out-file", ["synth", "{ws}/files/a_file"], ["a_file", "not a folder"]),
    ("synth-params-missing", ["synth", "{ws}/out", "--params", "{ws}/files/none.json"],
     ["none.json"]),
    ("synth-params-garbage", ["synth", "{ws}/out", "--params", "{ws}/files/params.json"],
     ["params.json"]),
    ("synth-size-text", ["synth", "{ws}/out", "--size", "big"], ["--size"]),
    ("synth-realism-preset", ["synth-realism", "--preset", "huge"], ["huge", "realistic"]),
    ("synth-realism-n-images", ["synth-realism", "--n-images", "0"], ["--n-images"]),
    ("synth-realism-reference", ["synth-realism", "--reference", "{ws}/files/none.png"],
     ["none.png", "--reference"]),
    ("synth-realism-binning", ["synth-realism", "--binning", "0"], ["--binning"]),
    ("synth-n-images-zero", ["synth", "{ws}/out", "--n-images", "0"], ["--n-images"]),
    # ---- score
    ("score-truth-missing", ["score", "--truth", "{ws}/files/none.tif", "--pred",
                             "{ws}/files/labels.tif"], ["none.tif"]),
    ("score-pred-type", ["score", "--truth", "{ws}/files/labels.tif", "--pred",
                         "{ws}/files/pred.xyz"], ["pred.xyz"]),
    ("score-no-pred", ["score", "--truth", "{ws}/files/labels.tif"], ["--pred"]),
    ("score-iou-text", ["score", "--truth", "{ws}/files/labels.tif", "--pred",
                        "{ws}/files/labels.tif", "--iou", "half"], ["--iou"]),
    ("score-iou-range", ["score", "--truth", "{ws}/files/labels.tif", "--pred",
                         "{ws}/files/labels.tif", "--iou", "0.9:0.5:0.1"], ["--iou"]),
    ("score-empty-npz", ["score", "--truth", "{ws}/files/labels.tif", "--pred",
                         "{ws}/files/empty.npz"], ["empty.npz"]),
    ("score-garbage-npz", ["score", "--truth", "{ws}/files/labels.tif", "--pred",
                           "{ws}/files/garbage.npz"], ["garbage.npz"]),
    ("score-empty-truth", ["score", "--truth", "{ws}/files/truth.tif", "--pred",
                           "{ws}/files/labels.tif"], ["truth.tif"]),
    ("score-truth-shape", ["score", "--truth", "{ws}/files/labels.tif", "--pred",
                           "{ws}/files/labels.tif", "--truth-shape", "star"], ["--truth-shape"]),
    # ---- segment
    ("segment-model-missing", ["segment", "{ws}/data/good/images/m0.mrc", "--model",
                               "{ws}/files/none.pt", "--out", "{ws}/out"], ["--model"]),
    ("segment-device", ["segment", "{ws}/data/good/images/m0.mrc", "--model", "default",
                        "--out", "{ws}/out", "--device", "tpu"], ["--device"]),
    ("segment-window-alone", ["segment", "{ws}/data/good/images/m0.mrc", "--model", "default",
                              "--out", "{ws}/out", "--window", "3"], ["--window"]),
    ("segment-sliding-no-window", ["segment", "{ws}/data/good/images/m0.mrc", "--model",
                                   "default", "--out", "{ws}/out", "--confidence",
                                   "sliding_window"], ["--window"]),
    ("segment-until", ["segment", "{ws}/data/good/images/m0.mrc", "--model", "default",
                       "--out", "{ws}/out", "--until", "150"], ["--until"]),
    ("segment-out-file", ["segment", "{ws}/data/good/images/m0.mrc", "--model", "default",
                          "--out", "{ws}/files/a_file"], ["--out", "a_file"]),
    ("segment-image-missing", ["segment", "{ws}/files/none.mrc", "--model", "default",
                               "--out", "{ws}/out"], ["none.mrc"]),
    ("segment-image-garbage", ["segment", "{ws}/bad/garbage_images/m0.mrc", "--model",
                               "default", "--out", "{ws}/out"], ["m0.mrc"]),
    ("segment-merge", ["segment", "{ws}/data/good/images/m0.mrc", "--model", "default",
                       "--out", "{ws}/out", "--merge", "union"], ["--merge"]),
    ("segment-pixel-size", ["segment", "{ws}/data/good/images/m0.mrc", "--model", "default",
                            "--out", "{ws}/out", "--pixel-size-nm", "-1"], ["--pixel-size-nm"]),
    ("segment-dot-name", ["segment", "{ws}/files/...mrc", "--model", "default", "--out",
                          "{ws}/out"], ["...mrc", "micrograph name '..'"]),
    ("segment-diameters", ["segment", "{ws}/data/good/images/m0.mrc", "--model", "default",
                           "--out", "{ws}/out", "--diameters", "big"], ["--diameters"]),
    # ---- pick
    ("pick-scale", ["pick", "{ws}/data/good/images/m0.mrc", "--out", "{ws}/out", "--scale",
                    "sideways"], ["--scale"]),
    ("pick-device", ["pick", "{ws}/data/good/images/m0.mrc", "--out", "{ws}/out", "--device",
                     "tpu"], ["--device"]),
    ("pick-pixel-size", ["pick", "{ws}/data/good/images/m0.mrc", "--out", "{ws}/out",
                         "--pixel-size-nm", "0"], ["--pixel-size-nm"]),
    ("pick-min-score", ["pick", "{ws}/data/good/images/m0.mrc", "--out", "{ws}/out",
                        "--min-score", "inf"], ["--min-score"]),
    ("pick-image-missing", ["pick", "{ws}/files/none.mrc", "--out", "{ws}/out"], ["none.mrc"]),
    ("pick-image-garbage", ["pick", "{ws}/bad/garbage_images/m0.mrc", "--out", "{ws}/out"],
     ["m0.mrc"]),
    ("pick-out-file", ["pick", "{ws}/data/good/images/m0.mrc", "--out", "{ws}/files/a_file"],
     ["--out", "a_file"]),
    # ---- train-defaults
    ("train-work-dir-file", ["train-defaults", "--work-dir", "{ws}/files/a_file"],
     ["--work-dir", "a_file"]),
    ("train-out-file", ["train-defaults", "--work-dir", "{ws}/out", "--out",
                        "{ws}/files/a_file"], ["--out", "a_file"]),
    ("train-device", ["train-defaults", "--device", "tpu"], ["--device"]),
    ("train-tool", ["train-defaults", "--tool", "magic"], ["--tool"]),
    ("train-epochs", ["train-defaults", "--cellpose-epochs", "0"], ["--cellpose-epochs"]),
    # ---- adapters, doctor, the command itself
    ("adapters-option", ["adapters", "--colour"], ["--colour"]),
    ("doctor-argument", ["doctor", "extra"], ["extra"]),
    ("unknown-command", ["benchmark"], ["benchmark"]),
]


def _snapshot(root: Path) -> dict[str, tuple]:
    state = {}
    for path in root.rglob("*"):
        info = path.lstat()
        state[str(path.relative_to(root))] = (path.is_dir(), info.st_size,
                                              0 if path.is_dir() else info.st_mtime_ns)
    return state


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("corpus"))


def test_the_corpus_is_large_and_distinct():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))
    assert len({json.dumps(case[1]) for case in CASES}) == len(CASES)
    assert len(CASES) >= 80
    commands = {case[1][0] for case in CASES}
    from lipobench.cli import _load_commands
    from lipobench.cli._app import app

    _load_commands([])
    every = {c.name or c.callback.__name__ for c in app.registered_commands}
    every |= {g.name for g in app.registered_groups}
    assert every and every <= commands, every - commands


class WorkStarted(BaseException):
    """Raised where the expensive work of a command begins: no bad input may get that far."""


@pytest.fixture()
def no_work(monkeypatch):
    import lipobench.adapters.lipopose
    import lipobench.defaults
    import lipobench.run.executors
    import lipobench.synth
    import lipobench.synth.dataset

    def refuse(*args, **kwargs):
        raise WorkStarted("a bad input reached the work")

    for owner, name in ((lipobench.run.executors.LocalExecutor, "run"),
                        (lipobench.run.executors.DaskExecutor, "run"),
                        (lipobench.defaults, "train_defaults"),
                        (lipobench.defaults, "validate_defaults"),
                        (lipobench.synth.dataset, "make_dataset"),
                        (lipobench.synth, "make_dataset"),
                        (lipobench.adapters.lipopose.LipoPoseAdapter, "iter_masks")):
        monkeypatch.setattr(owner, name, refuse)


@pytest.mark.parametrize("argv", [
    ["run", "--no-plots", "{ws}/exp/good.toml", "--out", "{ws}/good_out"],
    ["synth", "{ws}/synth_out", "--n-images", "2", "--size", "64"],
    ["segment", "{ws}/data/good/images/m0.mrc", "--model", "default", "--out", "{ws}/seg"],
], ids=["run", "synth", "segment"])
def test_the_work_guard_stops_a_good_input(workspace, argv, capsys, monkeypatch, no_work,
                                           tmp_path):
    """The corpus' guard is real: a good input does reach the work (and is stopped there)."""
    import lipobench.plugins

    monkeypatch.setattr(lipobench.plugins, "load_registry", lambda **kwargs: corpus_registry())
    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy)
    with pytest.raises(WorkStarted):
        run_cli([a.format(ws=copy) for a in argv], capsys)


@pytest.mark.parametrize("case_id, argv, fragments", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_exit_2_and_writes_nothing(workspace, case_id, argv, fragments,
                                                           capsys, monkeypatch, no_work):
    import lipobench.plugins

    monkeypatch.setattr(lipobench.plugins, "load_registry", lambda **kwargs: corpus_registry())
    monkeypatch.chdir(workspace)  # default outputs (results/<name>) would land here
    before = _snapshot(workspace)
    code, out, err = run_cli([a.format(ws=workspace) for a in argv], capsys)
    assert_user_error(code, err, *[f.format(ws=workspace) for f in fragments])
    assert "warning" not in err.lower()
    after = _snapshot(workspace)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))


# ---------------------------------------------------------------------------- behaviour


def test_only_merges_into_the_existing_results(tmp_path, capsys, monkeypatch):
    import pandas as pd

    import lipobench.plugins

    monkeypatch.setattr(lipobench.plugins, "load_registry", lambda **kwargs: corpus_registry())
    make_dataset(tmp_path / "tiny")
    path = tmp_path / "exp.toml"
    path.write_text('iou_thresholds = [0.5]\n[dataset]\npath = "tiny"\n'
                    "[methods.diskdetect]\nradius = [6.0, 7.0]\n"
                    '[methods.other]\nadapter = "diskdetect"\nradius = 5.0\n')
    out = tmp_path / "out"
    assert run_cli(["run", "--no-plots", path, "--out", out], capsys)[0] == 0
    full = pd.read_parquet(out / "results.parquet")
    run_json = json.loads((out / "run.json").read_text())
    path.write_text(path.read_text().replace("[6.0, 7.0]", "[6.0, 8.0]"))

    code, _, err = run_cli(["run", "--no-plots", path, "--out", out, "--only", "diskdetect"], capsys)
    assert code == 0, err
    merged = pd.read_parquet(out / "results.parquet")
    assert set(merged["method"]) == {"diskdetect", "other"}
    before = full[full["method"] == "other"].reset_index(drop=True)
    after = merged[merged["method"] == "other"].reset_index(drop=True)
    pd.testing.assert_frame_equal(after[before.columns], before,
                                  check_dtype=False)
    assert sorted(merged[merged["method"] == "diskdetect"]["param.radius"].unique()) == [6, 8]
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["method"]) == {"diskdetect", "other"}
    configurations = json.loads((out / "run.json").read_text())["configurations"]
    other_ids = {k for k, v in run_json["configurations"].items() if v["method"] == "other"}
    assert other_ids <= set(configurations)
    assert {v["method"] for v in configurations.values()} == {"diskdetect", "other"}

    # Without --only the table is the experiment's, nothing more.
    path.write_text(path.read_text().split("[methods.other]")[0])
    assert run_cli(["run", "--no-plots", path, "--out", out], capsys)[0] == 0
    assert set(pd.read_parquet(out / "results.parquet")["method"]) == {"diskdetect"}


def test_tool_paths_from_an_experiment_need_the_explicit_flag(tmp_path, capsys, monkeypatch):
    import pandas as pd

    import lipobench.plugins

    monkeypatch.setattr(lipobench.plugins, "load_registry", lambda **kwargs: corpus_registry())
    make_dataset(tmp_path / "tiny")
    path = tmp_path / "exp.toml"
    path.write_text('[dataset]\npath = "tiny"\n[tools.toolpath]\nbin_dir = "/opt/tool"\n'
                    "[methods.toolpath]\n")
    code, _, err = run_cli(["run", "--no-plots", path, "--out", tmp_path / "out"], capsys)
    assert_user_error(code, err, "exp.toml: tools.toolpath.bin_dir", "--allow-tool-paths",
                      "config.toml")
    assert not (tmp_path / "out").exists()
    code, _, err = run_cli(["run", "--no-plots", path, "--out", tmp_path / "out", "--allow-tool-paths"],
                           capsys)
    assert code == 0, err
    assert set(pd.read_parquet(tmp_path / "out" / "results.parquet")["status"]) == {"ok"}


def test_the_executable_exits_with_mains_code_and_skips_the_last_collections(tmp_path):
    # `lipobench` is console(): main's exit code, user errors included, and the collector
    # frozen before the interpreter's shutdown (atexit handlers still run, after it).
    code = ("import atexit, gc, sys\nfrom lipobench.cli import console\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "sys.argv = ['lipobench', *sys.argv[1:]]\nconsole()\n")
    ok = subprocess.run([sys.executable, "-c", code, "synth", str(tmp_path / "d"),
                         "--n-images", "1", "--size", "64"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == "frozen True"
    assert (tmp_path / "d" / "dataset.toml").is_file()
    bad = subprocess.run([sys.executable, "-c", code, "synth", str(tmp_path / "e"),
                          "--n-images", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["lipobench: error: --n-images must be positive, "
                                               "got 0"]
    assert bad.stdout.splitlines()[-1] == "frozen True"


def test_a_command_imports_only_its_own_module_and_help_lists_every_command(tmp_path):
    # Start-up is paid on every command: `synth` must not import `run`'s or `score`'s stack,
    # nor, at the benchmark's 0.222 nm/px unbinned, scipy.ndimage (0.07 s; the simulator
    # blurs its small arrays itself, the full-size ones of binned grids through ndimage).
    code = ("import sys\nfrom lipobench.cli import main\n"
            f"main(['synth', {str(tmp_path / 'd')!r}, '--n-images', '1', '--size', '128', "
            "'--pixel-size', '0.222', '--binning', '1'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('lipobench.cli.')))\n"
            "print('scipy.ndimage' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-2:] == [
        "['lipobench.cli._app', 'lipobench.cli.synth']", "False"]
    listed = subprocess.run(
        [sys.executable, "-c", "from lipobench.cli import main; main(['--help'])"],
        capture_output=True, text=True, timeout=120).stdout
    for command in ("adapters", "doctor", "info", "convert", "run", "plot", "compare", "synth",
                    "score", "segment", "pick", "train-defaults", "tools"):
        assert command in listed, command
