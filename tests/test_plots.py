"""Plots of real runs: the runner on tiny micrographs with the LoG adapter, then every figure.

The results folders come from :func:`lipobench.run.run_experiment` with the real ``log``
adapter. LipoPose's Fig. 8 needs a ``lipopose`` and a ``cellpose`` method; two test doubles
(LoG detectors registered under those names) stand in, so the merge-threshold figure is
built from a real run's table without training a network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lipobench.adapters.lipopose_report import merge_threshold_figure, merge_threshold_frames
from lipobench.adapters.log import LogAdapter
from lipobench.cli import main
from lipobench.data import write_dataset
from lipobench.errors import UserError
from lipobench.experiment import parse_experiment
from lipobench.metrics import match, precision_recall_curve
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet
from lipobench.registry import AdapterRegistry
from lipobench.report.aggregate import best_configurations, fold_rates
from lipobench.report.figures import overlay_panels, score_curves, size_strata
from lipobench.report.folder import open_results
from lipobench.report.labels import config_labels
from lipobench.report.make import make_plots
from lipobench.report.plots import iou_curves_figure, score_curves_figure
from lipobench.report.results import summarize
from lipobench.report.style import method_colors
from lipobench.run import run_experiment, scoring_shape

PIXEL_SIZE_NM = 0.9
FIGURES = ("precision_recall_vs_iou", "score_precision_recall", "recall_by_size", "overlays")


class FakeLipoposeForTests(LogAdapter):
    """Test double: the LoG detector under the name ``lipopose``, for the Fig. 8 plot."""

    name = "lipopose"


class FakeCellposeForTests(LogAdapter):
    """Test double: the LoG detector under the name ``cellpose``, the Fig. 8 baselines."""

    name = "cellpose"


def registry_with_fakes() -> AdapterRegistry:
    registry = AdapterRegistry()
    for adapter_cls in (LogAdapter, FakeLipoposeForTests, FakeCellposeForTests):
        registry.register(adapter_cls, package="lipobench")
    return registry


def _micrograph(name: str, seed: int) -> Micrograph:
    """Dark disks of several sizes on noisy ice, 96 x 96 pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    labels = np.zeros((96, 96), np.int32)
    image = np.ones((96, 96), np.float32)
    for k, (r, c, radius) in enumerate([(20, 20, 7), (20, 65, 10), (65, 25, 5), (70, 70, 12),
                                        (45, 45, 4)], start=1):
        r, c = r + rng.integers(-3, 4), c + rng.integers(-3, 4)
        disk = (yy - r) ** 2 + (xx - c) ** 2 < radius ** 2
        labels[disk] = k
        image[disk] = 0.2
    image += rng.normal(0, 0.15, image.shape).astype(np.float32)
    return Micrograph(name, image, PIXEL_SIZE_NM, RegionSet.from_labels(labels))


def _dataset(root: Path) -> Path:
    micrographs = [_micrograph(f"mic_{i}", i) for i in range(4)]
    return write_dataset(root, micrographs, name="tiny", pixel_size_nm=PIXEL_SIZE_NM,
                         split={"train": ["mic_0", "mic_1"], "test": ["mic_2", "mic_3"]})


LOG = {"min_sigma": [2.0, 3.0], "max_sigma": 10.0, "downsample": 1, "threshold": [1.0, 3.0]}


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """One fold (the dataset's split), four LoG configurations."""
    root = tmp_path_factory.mktemp("single")
    experiment = parse_experiment({
        "name": "tiny", "dataset": {"path": str(_dataset(root / "data"))},
        "iou_thresholds": [0.5, 0.6, 0.7, 0.8, 0.9], "methods": {"log": LOG}})
    run_experiment(experiment, out=root / "results")
    return root / "results"


@pytest.fixture(scope="module")
def crossval(tmp_path_factory) -> Path:
    """Two folds; LoG plus the LipoPose and Cellpose stand-ins for Fig. 8."""
    root = tmp_path_factory.mktemp("crossval")
    experiment = parse_experiment({
        "name": "tiny-cv", "dataset": {"path": str(_dataset(root / "data"))},
        "split": {"mode": "kfold", "k": 2}, "iou_thresholds": [0.5, 0.7, 0.9],
        "methods": {
            "log": {**LOG, "min_sigma": 3.0},
            "lipopose": {"min_sigma": 3.0, "max_sigma": 10.0, "downsample": 1,
                         "threshold": [1.0, 3.0, 5.0]},
            "cellpose": {"min_sigma": [2.0, 3.0], "max_sigma": 10.0, "downsample": 1,
                         "threshold": 1.0},
        }})
    run_experiment(experiment, out=root / "results", registry_factory=registry_with_fakes)
    return root / "results"


# ---------------------------------------------------------------------------- figures


def test_iou_figure_has_one_line_per_configuration_with_readable_labels(single):
    folder = open_results(single)
    labels = config_labels(folder.table)
    rates = fold_rates(folder.table).assign(label=lambda f: f["config_id"].map(labels))
    fig = iou_curves_figure(rates)
    precision_ax, recall_ax = fig.axes[:2]
    assert len(precision_ax.lines) == len(recall_ax.lines) == 4
    assert sorted(line.get_label() for line in precision_ax.lines) == [
        "log σmin=2/t=1", "log σmin=2/t=3", "log σmin=3/t=1", "log σmin=3/t=3"]
    # One fold: no spread to show.
    assert not precision_ax.collections
    line = next(l for l in recall_ax.lines if l.get_label() == "log σmin=3/t=3")
    cid = next(c for c, label in labels.items() if label == "log σmin=3/t=3")
    assert list(line.get_xdata()) == [0.5, 0.6, 0.7, 0.8, 0.9]
    np.testing.assert_allclose(line.get_ydata(), rates[rates.config_id == cid]["recall"])


def test_iou_curve_values_are_the_micro_averages_of_the_table(single):
    folder = open_results(single)
    rates = fold_rates(folder.table)
    summary = pd.read_csv(single / "summary.csv")
    merged = rates.merge(summary, on=["config_id", "iou_threshold"], suffixes=("", "_s"))
    assert len(merged) == len(rates) == 20
    np.testing.assert_allclose(merged["precision"], merged["precision_s"])
    np.testing.assert_allclose(merged["recall"], merged["recall_s"])


def test_cross_validation_draws_pooled_lines_and_interval_bands(crossval):
    folder = open_results(crossval)
    labels = config_labels(folder.table)
    summary = summarize(folder.table)
    rates = summary[summary["status"] == "ok"].assign(
        label=lambda f: f["config_id"].map(labels))
    assert rates["folds"].eq(2).all()
    fig = iou_curves_figure(rates)
    n_configs = folder.table["config_id"].nunique()
    assert len(fig.axes[0].lines) == n_configs == 7
    assert len(fig.axes[0].collections) == n_configs, "one interval band per configuration"
    line, band = fig.axes[0].lines[0], fig.axes[0].collections[0]
    cid = next(c for c, lab in labels.items() if lab == line.get_label())
    rows = rates[rates["config_id"] == cid].sort_values("iou_threshold")
    np.testing.assert_allclose(line.get_ydata(), rows["precision"])
    # The band spans the interval: its outline's lowest and highest points per threshold.
    outline = band.get_paths()[0].vertices
    for x, low, high in zip(rows["iou_threshold"], rows["precision_ci_low"],
                            rows["precision_ci_high"]):
        at = outline[np.isclose(outline[:, 0], x), 1]
        assert at.min() == pytest.approx(low) and at.max() == pytest.approx(high)
    with pytest.raises(ValueError, match="one row per configuration and threshold"):
        iou_curves_figure(fold_rates(folder.table).assign(label="x"))


def test_score_curve_per_detector_run_from_its_loosest_selection(single):
    folder = open_results(single)
    curves = score_curves(folder, select={"log": ["threshold"]})
    assert sorted(curves["label"].unique()) == ["log σmin=2", "log σmin=3"]
    table = folder.ok.drop_duplicates(["config_id", "fold", "image"])
    for label, curve in curves.groupby("label"):
        cid = curve["config_id"].iloc[0]
        # The loosest member keeps the most predictions of its group; its curve ends there.
        sigma = json.loads(table.loc[table.config_id == cid, "param_spec"].iloc[0])["min_sigma"]
        group = table[table["param_spec"].map(lambda s: json.loads(s)["min_sigma"] == sigma)]
        assert group["config_id"].nunique() == 2
        most = group.groupby("config_id")["n_pred"].sum().max()
        assert curve["n_pred"].max() == table.loc[table.config_id == cid, "n_pred"].sum() == most
        rows = table[table.config_id == cid]
        truths = [scoring_shape(folder.micrograph(i).truth, RegionKind.CIRCLE)
                  for i in rows["image"]]
        preds = [folder.predictions(p) for p in rows["prediction_file"]]
        direct = precision_recall_curve(truths, preds, iou_threshold=0.5)
        assert curve["auc"].iloc[0] == pytest.approx(direct.area())
    fig = score_curves_figure(curves)
    legend = fig.axes[0].get_legend_handles_labels()[1]
    assert len(fig.axes[0].lines) == 2 and all("(AUC " in text for text in legend)


def test_recall_by_size_counts_every_particle_and_the_scored_matches(single):
    folder = open_results(single)
    best = best_configurations(folder.table)
    strata = size_strata(folder, best)
    assert set(strata["unit"]) == {"nm"}
    cid = best["log"]
    rows = folder.ok[(folder.ok.config_id == cid) & np.isclose(folder.ok.iou_threshold, 0.5)]
    assert strata["n_true"].sum() == rows["n_true"].sum() == 10
    assert strata["matched"].sum() == rows["tp"].sum()
    # Diameters are in nm: the smallest disk (radius 4 px) is about 7 px = 6.5 nm.
    assert strata["bin_low"].min() == pytest.approx(
        min(folder.micrograph(i).truth.equivalent_diameters().min()
            for i in rows["image"]) * PIXEL_SIZE_NM)


def test_best_configuration_has_the_highest_f1_at_iou_half(single):
    summary = pd.read_csv(single / "summary.csv")
    at = summary[np.isclose(summary["iou_threshold"], 0.5)]
    best = best_configurations(open_results(single).table)
    assert at.set_index("config_id").loc[best["log"], "f1"] == at["f1"].max()


def test_overlay_counts_agree_with_the_results_table(crossval):
    folder = open_results(crossval)
    best = best_configurations(folder.table)
    image = folder.first_test_image
    micrograph, panels = overlay_panels(folder, best, image)
    assert micrograph.name == image and len(panels) == 3
    for method, panel in zip(sorted(best), panels):
        row = folder.ok[(folder.ok.config_id == best[method]) & (folder.ok.image == image)
                        & np.isclose(folder.ok.iou_threshold, 0.5)].iloc[0]
        assert panel.counts() == (row["tp"], row["fp"], row["fn"])
        truth = scoring_shape(micrograph.truth, panel.pred.kind)
        assert match(truth, panel.pred, [0.5]).tp[0] == row["tp"]


def test_merge_threshold_figure_from_a_cross_validated_run(crossval):
    # The stand-ins' parameters are named in legends as their registered adapters say.
    folder = open_results(crossval, registry=registry_with_fakes())
    pipeline, baselines, per_fold = merge_threshold_frames(folder,
                                                           threshold_parameter="threshold")
    assert sorted(pipeline["threshold"]) == [1.0, 3.0, 5.0]
    assert per_fold["fold"].nunique() == 2 and len(per_fold) == 6
    assert sorted(baselines["label"]) == ["cellpose σmin=2", "cellpose σmin=3"]
    summary = summarize(folder.table).set_index(["config_id", "iou_threshold"])
    fig = merge_threshold_figure(pipeline, baselines, folds=per_fold)
    precision_ax = fig.axes[0]
    assert len(precision_ax.patches) == 3
    heights = [p.get_height() for p in precision_ax.patches]
    expected = pipeline.sort_values("threshold", ascending=False)
    np.testing.assert_allclose(heights, expected["precision"])
    # The bars are the pooled rates of summary.csv, not means over folds.
    pooled = [summary.loc[(cid, 0.5), "precision"] for cid in folder.table.loc[
        folder.table["adapter"] == "lipopose"].drop_duplicates("config_id").sort_values(
        "param.threshold", ascending=False)["config_id"]]
    np.testing.assert_allclose(heights, pooled)
    # Error bars run from the interval's low to its high end.
    caps = [line for line in precision_ax.lines if line.get_marker() == "_"]
    assert sorted(np.round([y for line in caps for y in line.get_ydata()], 9)) == sorted(
        np.round([*expected["precision_ci_low"], *expected["precision_ci_high"]], 9))
    assert len(precision_ax.collections) >= 1 + 2  # the error bars, the fold dots, the bands
    legend = precision_ax.get_legend_handles_labels()[1]
    assert "cellpose σmin=2" in legend and "LipoPose pipeline" in legend
    assert "one fold (of 2)" in legend


def test_every_figure_of_a_folder_colours_a_method_the_same(crossval):
    from matplotlib.colors import to_rgb

    from lipobench.adapters.lipopose_report import lipobench_figures

    folder = open_results(crossval, registry=registry_with_fakes())
    colors = folder.colors
    assert sorted(colors) == ["cellpose", "lipopose", "log"]
    (fig,) = lipobench_figures(folder=folder).values()
    bars = {to_rgb(p.get_facecolor()) for p in fig.axes[0].patches}
    # Fig. 8's bars are LipoPose's, in LipoPose's colour, not Cellpose's.
    assert bars == {to_rgb(colors["lipopose"])} and colors["lipopose"] != colors["cellpose"]
    labels = folder.labels
    summary = folder.summary
    rates = summary[summary["status"] == "ok"].assign(label=summary["config_id"].map(labels))
    pair = rates[rates["method"].isin(["lipopose", "log"])]
    lines = iou_curves_figure(pair, colors=colors).axes[0].lines
    darkest = {line.get_label().split()[0]: to_rgb(line.get_color()) for line in lines[::-1]}
    assert darkest == {"lipopose": to_rgb(colors["lipopose"]), "log": to_rgb(colors["log"])}


def test_make_plots_writes_every_figure_of_a_cross_validated_run(crossval, tmp_path):
    written, notes = make_plots(crossval, out=tmp_path, formats="png",
                                registry=registry_with_fakes())
    assert notes == []
    pairs = ("cellpose_vs_lipopose", "cellpose_vs_log", "lipopose_vs_log")
    assert sorted(p.name for p in written) == sorted(
        f"{stem}.png" for stem in (*FIGURES, "lipopose_merge_thresholds",
                                   *(f"precision_recall_vs_iou_{pair}" for pair in pairs)))
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_figure_of_two_methods_colours_them_as_the_figure_of_all_does():
    rates = pd.DataFrame({"method": ["cellpose", "cryolo", "topaz"] * 2,
                          "label": ["cellpose d=70", "cryolo box=70", "topaz r=30"] * 2,
                          "iou_threshold": [0.5] * 3 + [0.75] * 3,
                          "precision": [0.9, 0.2, 0.6, 0.7, 0.1, 0.3],
                          "recall": [0.8, 0.3, 0.5, 0.6, 0.1, 0.2]})
    colors = method_colors(rates["method"])
    pair = rates[rates["method"] != "cryolo"]
    alone = iou_curves_figure(pair)
    shared = iou_curves_figure(pair, colors=colors)
    by_label = {line.get_label(): line.get_color() for line in shared.axes[0].lines}
    assert by_label == {"cellpose d=70": colors["cellpose"], "topaz r=30": colors["topaz"]}
    # on its own, topaz would take the colour the whole run gave cryolo
    assert {line.get_label(): line.get_color() for line in alone.axes[0].lines}[
        "topaz r=30"] == colors["cryolo"]


def test_a_vanished_dataset_skips_the_truth_figures_with_a_note(single, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(single, copy, ignore=shutil.ignore_patterns("cache"))
    record = json.loads((copy / "run.json").read_text())
    record["dataset"] = str(tmp_path / "gone")
    (copy / "run.json").write_text(json.dumps(record))
    written, notes = make_plots(copy, formats="svg")
    assert [p.name for p in written] == ["precision_recall_vs_iou.svg"]
    assert len(notes) == 1 and "no longer exists" in notes[0]


def test_config_labels_name_derived_values_that_differ_between_folds():
    spec = json.dumps({"diameter": {"derive": "diameter", "statistic": "quantile", "q": 0.25,
                                    "scale": 1.0, "round_to_int": False}, "seed": 0})
    table = pd.DataFrame({"config_id": ["a", "a", "b", "b"], "method": "cellpose",
                          "adapter": "cellpose",
                          "param_spec": [spec, spec] + ['{"diameter": 30, "seed": 0}'] * 2,
                          "param.diameter": [28.5, 31.0, 30.0, 30.0]})
    assert config_labels(table) == {"a": "cellpose d=q0.25(diameter)", "b": "cellpose d=30"}
    same = table.assign(**{"param.diameter": [31.0, 31.0, 30.0, 30.0]})
    assert config_labels(same)["a"] == "cellpose d=31"


# ---------------------------------------------------------------------------- CLI


def test_cli_writes_png_and_svg_under_results_plots(single, capsys):
    assert main(["plot", str(single)]) == 0
    printed = capsys.readouterr().out.split()
    plots = single / "plots"
    for stem in FIGURES:
        png, svg = plots / f"{stem}.png", plots / f"{stem}.svg"
        assert str(png) in printed and str(svg) in printed
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        text = svg.read_text()
        assert text.startswith("<?xml") and "<svg" in text and len(text) > 1000
    assert not list(plots.glob(".*")), "no temporary files left behind"


def test_cli_format_and_out(single, tmp_path, capsys):
    assert main(["plot", str(single), "--out", str(tmp_path / "figs"), "--format", "svg"]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(
        f"{stem}.svg" for stem in FIGURES)


@pytest.mark.parametrize("setup, expected", [
    ("missing", "no such results folder"),
    ("empty", "not a lipobench results folder (no results.parquet)"),
    ("damaged", "cannot read the results table"),
])
def test_cli_refuses_a_folder_that_is_not_a_results_folder(setup, expected, tmp_path, capsys):
    folder = tmp_path / "results"
    if setup != "missing":
        folder.mkdir()
    if setup == "damaged":
        (folder / "results.parquet").write_bytes(b"not parquet")
        (folder / "run.json").write_text("{}")
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(folder)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lipobench: error: ")
    assert expected in err and str(folder) in err and "Traceback" not in err
    assert not (folder / "plots").exists()


def test_cli_refuses_an_unknown_format(single, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(single), "--format", "jpg", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "--format jpg: unknown format; use png, svg or both" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_open_results_refuses_a_table_without_the_runner_columns(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "results.parquet")
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(UserError, match="not a lipobench results table"):
        open_results(tmp_path)


def test_a_failed_configuration_is_left_out_of_the_figures(single, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(single, copy, ignore=shutil.ignore_patterns("cache", "plots"))
    table = pd.read_parquet(copy / "results.parquet")
    failed = table.iloc[[0]].assign(config_id="log-failed", status="failed", image="",
                                    error="tool failed: boom", tp=pd.NA, fp=pd.NA, fn=pd.NA,
                                    precision=np.nan, recall=np.nan, f1=np.nan,
                                    prediction_file="",
                                    param_spec='{"min_sigma": 9.0, "threshold": 1.0}')
    pd.concat([table, failed], ignore_index=True).to_parquet(copy / "results.parquet")
    folder = open_results(copy)
    assert "log-failed" not in set(fold_rates(folder.table)["config_id"])
    assert "log-failed" not in best_configurations(folder.table).values()
    written, notes = make_plots(copy, formats="png")
    assert len(written) == len(FIGURES) and notes == []


def test_cli_refuses_a_run_where_nothing_ran(single, tmp_path, capsys):
    copy = tmp_path / "results"
    shutil.copytree(single, copy, ignore=shutil.ignore_patterns("cache", "plots"))
    table = pd.read_parquet(copy / "results.parquet").assign(status="failed")
    table.to_parquet(copy / "results.parquet")
    with pytest.raises(SystemExit) as exc:
        main(["plot", str(copy)])
    assert exc.value.code == 2
    assert "no configuration ran successfully" in capsys.readouterr().err
    assert not (copy / "plots").exists()


def test_cli_run_prints_intervals_and_comparisons_then_plots_unless_told_not_to(tmp_path,
                                                                                capsys):
    from lipobench.testing import run_cli

    data = _dataset(tmp_path / "data")
    experiment = tmp_path / "two.toml"
    experiment.write_text(
        f'name = "two"\niou_thresholds = [0.5, 0.7]\n[dataset]\npath = "{data}"\n'
        '[methods.small]\nadapter = "log"\nmin_sigma = 2.0\nmax_sigma = 10.0\n'
        'downsample = 1\nthreshold = 1.0\n'
        '[methods.large]\nadapter = "log"\nmin_sigma = 3.0\nmax_sigma = 10.0\n'
        'downsample = 1\nthreshold = [1.0, 3.0]\n')
    out = tmp_path / "results"
    code, printed, err = run_cli(["run", experiment, "--out", out, "--no-plots"], capsys)
    assert code == 0, err
    assert not (out / "plots").exists()
    assert "95 % bootstrap" in printed and "intervals over 2 test micrographs" in printed
    assert "with 2 micrographs the intervals are too narrow" in " ".join(printed.split())
    summary = pd.read_csv(out / "summary.csv")
    best = summary[np.isclose(summary["iou_threshold"], 0.5)].sort_values(
        "f1", ascending=False, kind="stable").drop_duplicates("method")
    lines = printed.splitlines()
    for row in best.itertuples():
        # The table's row of this method: the estimate, and its interval on the next line.
        line = next(k for k, text in enumerate(lines) if text.startswith(f"│ {row.method} "))
        assert f"{row.f1:.3f}" in lines[line].split("│")[-2]
        assert f"({row.f1_ci_low:.3f}–{row.f1_ci_high:.3f})" in lines[line + 1].split("│")[-2]
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert comparisons["metric"].tolist() == ["f1", "precision", "recall"]
    row = comparisons.iloc[0]
    assert (f"  {row.a_method} vs {row.b_method}: {row.difference:+.3f} "
            f"({row.ci_low:+.3f} to {row.ci_high:+.3f}): ") in printed

    code, printed, err = run_cli(["run", experiment, "--out", out], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(
        f"{stem}.{suffix}" for stem in FIGURES for suffix in ("png", "svg"))
    assert f"8 figure files in {out / 'plots'}" in printed


def test_large_micrographs_reach_matplotlib_block_reduced_with_full_image_contrast():
    from matplotlib.figure import Figure

    from lipobench.regions import RegionSet
    from lipobench.report.overlays import DISPLAY_SIDE, display_image, draw_regions

    image = np.zeros((3000, 2100), dtype=np.float32)
    image[:, 1050:] = 1.0
    image[0, 0] = 50.0  # one hot pixel: above the 99th percentile, clipped, not the scale
    shown = display_image(image)
    assert shown.shape == (1000, 700)  # blocks of 3
    assert shown.max() == 1.0 and shown[500, 0] == 0.0 and shown[500, 699] == 1.0

    labels = np.zeros((3000, 2100), dtype=np.int32)
    labels[100:400, 100:400] = 1  # its one-pixel boundary must survive the reduction
    ax = Figure().subplots()
    draw_regions(ax, RegionSet.from_labels(labels), color="red")
    layer = ax.images[0].get_array()
    assert max(layer.shape[:2]) <= DISPLAY_SIDE and layer.dtype == np.uint8
    assert layer[33:134, 33, 0].min() == 255  # the left edge, pooled into the block column
    assert ax.images[0].get_extent() == [0, 2100, 3000, 0]
