"""Intervals in summary.csv, comparisons.csv and ``lipobench compare``, on tables built by hand.

Every table here is constructed so the answer is known: ``good`` finds 90 % of the particles
on each of 12 micrographs, ``poor`` 50 %, ``twin`` exactly what ``good`` finds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lipobench.errors import UserError
from lipobench.metrics import micro_rates
from lipobench.report.intervals import (
    COMPARISON_COLUMNS,
    INTERVAL_COLUMNS,
    best_versus_best,
    compare,
    interval_columns,
    resolve_configuration,
)
from lipobench.report.results import summarize
from lipobench.testing import assert_user_error, run_cli

N_IMAGES = 12
TOTALS = np.array([10, 14, 20, 8, 16, 12, 18, 9, 11, 15, 13, 17])


def _rows(method, config_id, label, found_share, *, false_positives=1, folds=1,
          images=None, thresholds=(0.5, 0.75), status="ok"):
    images = list(images if images is not None else range(N_IMAGES))
    records = []
    for k in images:
        total = int(TOTALS[k % len(TOTALS)])
        for t, threshold in enumerate(thresholds):
            tp = int(round(found_share * total * (1.0 - 0.3 * t)))
            records.append({
                "experiment": "hand", "method": method, "adapter": method,
                "region_kind": "mask", "config_id": config_id, "config_label": label,
                "param_spec": json.dumps({"share": found_share}), "fold": k % folds,
                "image": f"mic_{k:02d}", "iou_threshold": threshold, "tp": tp,
                "fp": false_positives, "fn": total - tp, "n_true": total,
                "n_pred": tp + false_positives, "status": status, "error": "",
                "prediction_file": ""})
    return records


def _table(*groups) -> pd.DataFrame:
    table = pd.DataFrame.from_records([r for g in groups for r in g])
    for column in ("tp", "fp", "fn", "n_true", "n_pred"):
        table[column] = table[column].astype("Int64")
    return table


def _standard(**kwargs) -> pd.DataFrame:
    return _table(_rows("cellpose", "cellpose-good", "cellpose good", 0.9, **kwargs),
                  _rows("cellpose", "cellpose-twin", "cellpose twin", 0.9, **kwargs),
                  _rows("topaz", "topaz-poor", "topaz poor", 0.5, false_positives=4, **kwargs))


def _folder(tmp_path, table) -> "Path":
    folder = tmp_path / "results"
    folder.mkdir()
    table.to_parquet(folder / "results.parquet", index=False)
    (folder / "run.json").write_text(json.dumps({"experiment": "hand"}))
    return folder


def _listing(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*"))


# ---------------------------------------------------------------------------- summary


def test_summary_keeps_its_rates_and_adds_intervals_that_contain_them():
    table = _standard()
    summary = summarize(table)
    for column in INTERVAL_COLUMNS:
        assert column in summary.columns
    p, r, f = micro_rates(summary["tp"], summary["fp"], summary["fn"])
    np.testing.assert_allclose(summary[["precision", "recall", "f1"]], np.c_[p, r, f])
    for metric in ("precision", "recall", "f1"):
        assert (summary[f"{metric}_ci_low"] <= summary[metric]).all()
        assert (summary[metric] <= summary[f"{metric}_ci_high"]).all()
    poor = summary[(summary["config_id"] == "topaz-poor") & (summary["iou_threshold"] == 0.5)]
    assert float(poor["recall_ci_high"].iloc[0] - poor["recall_ci_low"].iloc[0]) > 0
    # One fold: no spread over folds to report.
    assert summary["f1_fold_sd"].isna().all()
    assert summarize(table).equals(summary), "seeded: the same table, the same intervals"


def test_k_fold_summary_reports_the_spread_over_folds():
    summary = summarize(_standard(folds=3))
    row = summary[(summary["config_id"] == "topaz-poor") & (summary["iou_threshold"] == 0.5)]
    table = _standard(folds=3)
    per_fold = table[(table["config_id"] == "topaz-poor") & (table["iou_threshold"] == 0.5)
                     ].groupby("fold")[["tp", "fp", "fn"]].sum()
    recall = per_fold["tp"] / (per_fold["tp"] + per_fold["fn"])
    assert float(row["recall_fold_sd"].iloc[0]) == pytest.approx(recall.std(ddof=1))
    assert int(row["folds"].iloc[0]) == 3


def test_a_failed_configuration_has_empty_intervals_and_the_rest_are_unchanged():
    ok = _standard()
    failed = pd.DataFrame([{**_rows("log", "log-x", "log", 0.5)[0], "image": "", "tp": pd.NA,
                            "fp": pd.NA, "fn": pd.NA, "status": "failed",
                            "error": "tool failed: boom"}])
    summary = summarize(pd.concat([ok, failed], ignore_index=True))
    bad = summary[summary["config_id"] == "log-x"]
    assert len(bad) == 1 and bad[list(INTERVAL_COLUMNS)].isna().all(axis=None)
    pd.testing.assert_frame_equal(
        summary[summary["config_id"] != "log-x"].reset_index(drop=True)[list(INTERVAL_COLUMNS)],
        summarize(ok)[list(INTERVAL_COLUMNS)])


def test_a_run_where_nothing_ran_summarizes_without_intervals():
    failed = pd.DataFrame([{**_rows("log", "log-x", "log", 0.5)[0], "image": "", "tp": pd.NA,
                            "fp": pd.NA, "fn": pd.NA, "status": "failed", "error": "boom"}])
    summary = summarize(failed)
    assert summary["status"].tolist() == ["failed"]
    assert summary[list(INTERVAL_COLUMNS)].isna().all(axis=None)


def test_a_configuration_missing_a_micrograph_is_resampled_on_its_own_micrographs():
    table = _table(_rows("cellpose", "cellpose-good", "good", 0.9),
                   _rows("topaz", "topaz-short", "short", 0.5, images=range(N_IMAGES - 1)))
    found = interval_columns(table)
    assert len(found) == 4 and found[list(INTERVAL_COLUMNS[:6])].notna().all(axis=None)
    # Each is resampled over its own micrographs: as if it were alone in the table.
    for config_id in ("cellpose-good", "topaz-short"):
        alone = interval_columns(table[table["config_id"] == config_id])
        pd.testing.assert_frame_equal(
            found[found["config_id"] == config_id].reset_index(drop=True), alone)


# ---------------------------------------------------------------------------- comparisons


def test_compare_finds_the_clearly_better_configuration_and_no_difference_between_twins():
    table = _standard()
    better = compare(table, "cellpose-good", "topaz-poor", metric="f1")
    assert better.verdict.value == "A better" and better.ci_low > 0
    assert compare(table, "topaz-poor", "cellpose-good").verdict.value == "B better"
    twins = compare(table, "cellpose-good", "cellpose-twin", metric="recall")
    assert twins.ci_low == twins.ci_high == twins.difference == 0.0
    assert twins.verdict.text() == "no significant difference at 95 %"


def test_best_versus_best_pairs_each_methods_best_with_the_better_one_first():
    table = _standard()
    comparisons = best_versus_best(table, summarize(table))
    assert list(comparisons.columns) == list(COMPARISON_COLUMNS)
    assert comparisons["metric"].tolist() == ["f1", "precision", "recall"]
    row = comparisons.iloc[0]
    assert (row["a_method"], row["b_method"]) == ("cellpose", "topaz")
    assert row["a_config_id"] == "cellpose-good" and row["verdict"] == "A better"
    assert row["n_micrographs"] == N_IMAGES and row["iou_threshold"] == 0.5
    alone = best_versus_best(table[table["method"] == "topaz"],
                             summarize(table[table["method"] == "topaz"]))
    assert alone.empty and list(alone.columns) == list(COMPARISON_COLUMNS)


def test_configurations_are_found_by_id_label_method_and_prefix():
    table = _standard()
    assert resolve_configuration(table, "cellpose-twin") == "cellpose-twin"
    assert resolve_configuration(table, "cellpose good") == "cellpose-good"
    assert resolve_configuration(table, "topaz") == "topaz-poor"  # its only configuration
    assert resolve_configuration(table, "cellpose-g") == "cellpose-good"
    with pytest.raises(UserError, match="matches 2 configurations"):
        resolve_configuration(table, "cellpose")


# ---------------------------------------------------------------------------- CLI


def test_cli_compare_prints_the_difference_its_interval_and_the_verdict(tmp_path, capsys):
    folder = _folder(tmp_path, _standard())
    before = _listing(folder)
    code, out, err = run_cli(["compare", folder, "cellpose good", "topaz"], capsys)
    assert code == 0, err
    expected = compare(_standard(), "cellpose-good", "topaz-poor")
    lines = out.splitlines()
    assert lines[0].startswith("A: cellpose-good (cellpose good): F1 ")
    assert lines[1].startswith("B: topaz-poor (topaz poor): F1 ")
    assert (f"A - B: F1 {expected.difference:+.3f}, 95 % interval {expected.ci_low:+.3f} to "
            f"{expected.ci_high:+.3f} (paired bootstrap over 12 shared test micrographs, "
            "2000 resamples, seed 0, IoU > 0.5)") == lines[2]
    assert lines[3] == "verdict: A better"
    assert err == ""  # 12 micrographs: no warning about too few
    assert _listing(folder) == before, "compare writes nothing"


def test_cli_compare_of_twins_on_recall_at_another_threshold(tmp_path, capsys):
    folder = _folder(tmp_path, _standard())
    code, out, _ = run_cli(["compare", folder, "cellpose-good", "cellpose-twin",
                            "--metric", "recall", "--iou", "0.75"], capsys)
    assert code == 0
    assert "A - B: recall +0.000, 95 % interval +0.000 to +0.000" in out
    assert "IoU > 0.75" in out
    assert out.splitlines()[-1] == "verdict: no significant difference at 95 %"


def test_cli_compare_warns_that_few_micrographs_give_too_narrow_intervals(tmp_path, capsys):
    table = _table(_rows("cellpose", "cellpose-good", "good", 0.9, images=range(4)),
                   _rows("topaz", "topaz-poor", "poor", 0.5, images=range(4)))
    code, _, err = run_cli(["compare", _folder(tmp_path, table), "good", "poor"], capsys)
    assert code == 0
    assert err.startswith("note: with 4 micrographs the bootstrap interval is too narrow")


def _other_images(tmp_path):
    table = _table(_rows("cellpose", "cellpose-good", "good", 0.9, images=range(6)),
                   _rows("topaz", "topaz-poor", "poor", 0.5, images=range(6, 12)))
    return _folder(tmp_path, table)


def _failed_b(tmp_path):
    failed = [{**_rows("topaz", "topaz-poor", "poor", 0.5)[0], "image": "", "tp": None,
               "fp": None, "fn": None, "status": "failed", "error": "boom"}]
    return _folder(tmp_path, _table(_rows("cellpose", "cellpose-good", "good", 0.9), failed))


@pytest.mark.parametrize("make, argv, fragments", [
    (lambda p: p / "nowhere", ["good", "poor"], ["no such results folder"]),
    (lambda p: _folder(p, _standard()), ["cellpose good", "nope"],
     ["B 'nope': no such configuration", "results.csv"]),
    (lambda p: _folder(p, _standard()), ["cellpose", "topaz"],
     ["A 'cellpose' matches 2 configurations", "give one config id"]),
    (lambda p: _folder(p, _standard()), ["topaz", "cellpose-good", "--metric", "accuracy"],
     ["--metric accuracy: unknown metric; use f1, precision or recall"]),
    (lambda p: _folder(p, _standard()), ["topaz", "cellpose-good", "--iou", "0.6"],
     ["--iou 0.6: this threshold was not scored", "use one of 0.5, 0.75"]),
    (lambda p: _folder(p, _standard()), ["topaz", "cellpose-good", "--iou", "1.5"],
     ["--iou 1.5", "strictly between 0 and 1"]),
    (_other_images, ["good", "poor"], ["share 0 test micrograph(s)", "at least 2"]),
    (_failed_b, ["good", "poor"], ["B 'topaz-poor'", "status failed"]),
])
def test_cli_compare_refuses_bad_input_on_one_line(tmp_path, capsys, make, argv, fragments):
    folder = make(tmp_path)
    before = _listing(folder) if folder.exists() else None
    code, out, err = run_cli(["compare", folder, *argv], capsys)
    assert_user_error(code, err, *fragments)
    assert out == ""
    assert (_listing(folder) if folder.exists() else None) == before
