"""Copy a finished run's summaries and figures here and write its README.md.

    uv run python docs/results/publish.py results/paper21 --wall-seconds 2220 \
        --command "lipobench run experiments/paper21.toml" --note "..."

Copies ``summary.csv``, ``comparisons.csv``, ``results.csv``, ``results.parquet``,
``run.json`` and ``plots/*.png`` into ``docs/results/<experiment>/`` (so ``lipobench compare
docs/results/<experiment> A B`` works on the published table) and writes a README.md whose
every number is read from those files: the environment of ``run.json``, each configuration's
precision, recall and F1 at IoU 0.5 with their 95 % intervals, and the paired comparisons.
``--wall-seconds`` is the wall time of the work itself, and ``--note`` says how it was
measured (``run.json`` holds the last invocation's, which after a resume is only what that
one did).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from lipobench.report.folder import open_results

HERE = Path(__file__).resolve().parent
COPIED = ("summary.csv", "comparisons.csv", "results.csv", "results.parquet", "run.json")
IOU = 0.5


def _rate(row: pd.Series, metric: str) -> str:
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if pd.isna(row[metric]):
        return "–"
    if low is None or pd.isna(low):
        return f"{row[metric]:.3f}"
    return f"{row[metric]:.3f} ({low:.3f}–{high:.3f})"


def _summary_table(summary: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    rows = summary[(summary["iou_threshold"].round(6) == IOU)]
    has_folds = "f1_fold_sd" in rows and rows["f1_fold_sd"].notna().any()
    head = "| configuration | tp | fp | fn | precision | recall | F1 |"
    rule = "|---|---:|---:|---:|---|---|---|"
    if has_folds:
        head += " F1 s.d. over folds |"
        rule += "---:|"
    lines = [head, rule]
    for _, row in rows.sort_values(["method", "f1"], ascending=[True, False]).iterrows():
        label = labels.get(row["config_id"], row["config_label"])
        if row["status"] != "ok":
            lines.append(f"| {label} | | | | {row['status']} | | |" + (" |" if has_folds else ""))
            continue
        line = (f"| {label} | {int(row['tp'])} | {int(row['fp'])} | {int(row['fn'])} | "
                f"{_rate(row, 'precision')} | {_rate(row, 'recall')} | {_rate(row, 'f1')} |")
        if has_folds:
            line += f" {row['f1_fold_sd']:.3f} |"
        lines.append(line)
    return lines


def _comparison_table(comparisons: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    rows = comparisons[(comparisons["iou_threshold"].round(6) == IOU)
                       & (comparisons["metric"] == "f1")]
    lines = ["| A | B | F1 A | F1 B | A − B (95 % interval) | verdict |",
             "|---|---|---:|---:|---|---|"]
    for _, row in rows.iterrows():
        lines.append(
            f"| {labels.get(row['a_config_id'], row['a_config_label'])} "
            f"| {labels.get(row['b_config_id'], row['b_config_label'])} "
            f"| {row['a_value']:.3f} | {row['b_value']:.3f} "
            f"| {row['difference']:+.3f} ({row['ci_low']:+.3f} to {row['ci_high']:+.3f}) "
            f"| {row['verdict']} |")
    return lines


def publish(results: Path, *, wall_seconds: float, command: str, note: str) -> Path:
    folder = open_results(results)
    record = folder.run
    name = record["experiment"]
    dest = HERE / name
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "plots").mkdir(parents=True)
    for file in COPIED:
        shutil.copy2(results / file, dest / file)
    figures = sorted((results / "plots").glob("*.png"))
    for figure in figures:
        shutil.copy2(figure, dest / "plots" / figure.name)
    labels = folder.labels
    summary = pd.read_csv(dest / "summary.csv")
    comparisons = pd.read_csv(dest / "comparisons.csv")
    env = record.get("environment", {})
    packages = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items() if v)
    tools = ", ".join(f"{k}: {v}" for k, v in env.get("tools", {}).items() if v)
    source = Path(record.get("source") or f"{name}.toml")
    # The experiment as a user of the repository names it, not where this machine kept it.
    shown_source = f"{source.parent.name}/{source.name}" if source.parent.name else source.name
    folds = record["folds"]
    tested = sorted({image for fold in folds for image in fold["test"]})
    lines = [
        f"# {name}",
        "",
        f"Made by `{command}` ({shown_source}), then "
        f"`uv run python docs/results/publish.py results/{results.name}`. {note}".rstrip(),
        "",
        f"- **Wall time:** {wall_seconds / 60:.1f} min ({wall_seconds:.0f} s); how it was "
        "measured is in the paragraph above.",
        f"- **Machine:** {env.get('cpu', '?')}, {env.get('cpu_count', '?')} cores, "
        f"{env.get('memory_gib', '?')} GiB, {env.get('platform', '?')}, "
        f"Python {env.get('python', '?')}; no GPU.",
        f"- **Packages:** {packages}.",
        f"- **Tools:** {tools}.",
        f"- **Test micrographs:** {len(tested)} over {len(folds)} fold(s); intervals are 95 % "
        "percentile-bootstrap intervals over whole micrographs (2,000 resamples, seed 0).",
        "",
        f"## Every configuration at IoU > {IOU:g}",
        "",
        *_summary_table(summary, labels),
        "",
        "All IoU thresholds: `summary.csv`; per micrograph: `results.csv`.",
        "",
        f"## Best configuration of each method against each other's (F1, IoU > {IOU:g})",
        "",
        *_comparison_table(comparisons, labels),
        "",
        "## Figures",
        "",
        *[f"![{figure.stem}](plots/{figure.name})\n" for figure in figures],
    ]
    (dest / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--wall-seconds", type=float, required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    print(publish(args.results, wall_seconds=args.wall_seconds, command=args.command,
                  note=args.note))


if __name__ == "__main__":
    main()
