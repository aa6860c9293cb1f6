"""Chance level for a box picker: random boxes, as many and as large as the picker's.

A picker trained for minutes can look busy without having learnt anything; the random-box
baseline at the same count says what its precision and recall would be by luck alone. Used for
crYOLO trained from random weights on a CPU budget (``experiments/quick.toml``)::

    uv run python -m lipobench.metrics.chance results/quick --method cryolo
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lipobench.regions import RegionSet

__all__ = ["random_boxes", "chance_counts"]


def random_boxes(image_shape: tuple[int, int], n: int, box_size: float, *,
                 rng: np.random.Generator) -> RegionSet:
    """``n`` squares of side ``box_size`` placed uniformly at random, wholly inside the image.

    Wholly inside, because crYOLO deletes every box that is not.

    >>> boxes = random_boxes((100, 80), 5, 20.0, rng=np.random.default_rng(0))
    >>> len(boxes), bool((boxes.boxes[:, 2:] <= [100, 80]).all() and (boxes.boxes >= 0).all())
    (5, True)
    """
    rows, cols = image_shape
    size = min(float(box_size), rows, cols)
    corner = rng.uniform([0.0, 0.0], [rows - size, cols - size], size=(int(n), 2))
    return RegionSet.from_boxes(np.hstack([corner, corner + size]).reshape(-1, 4),
                                image_shape=image_shape)


def chance_counts(truth: RegionSet, n: int, box_size: float, *,
                  iou_thresholds: Sequence[float] = (0.5,), repeats: int = 20,
                  seed: int = 0) -> np.ndarray:
    """Mean true positives of ``n`` random boxes against ``truth``, per IoU threshold.

    Matching as everywhere in lipobench (one-to-one, optimal, IoU strictly above the
    threshold); false positives are ``n - tp`` and false negatives ``len(truth) - tp``.

    >>> truth = RegionSet.from_boxes([[0, 0, 50, 50]], image_shape=(50, 50))
    >>> chance_counts(truth, 1, 50.0).tolist()  # the only box that fits is the particle's
    [1.0]
    """
    from lipobench.metrics import match

    rng = np.random.default_rng(seed)
    boxes = truth.to_boxes()
    total = np.zeros(len(iou_thresholds))
    for _ in range(repeats):
        guess = random_boxes(truth.image_shape, n, box_size, rng=rng)
        total += np.asarray(match(boxes, guess, list(iou_thresholds)).tp, float)
    return total / repeats


def _main(argv: Sequence[str] | None = None) -> int:
    import pandas as pd

    from lipobench.cache import load_regions
    from lipobench.data import load_dataset
    from lipobench.metrics import rates

    parser = argparse.ArgumentParser(prog="python -m lipobench.metrics.chance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a results folder of lipobench run")
    parser.add_argument("--method", default="cryolo", help="a box method of that run")
    parser.add_argument("--iou", type=float, default=0.5)
    args = parser.parse_args(argv)
    if not (args.results / "results.parquet").is_file():
        print(f"{args.results}: no results.parquet; give the output folder of a finished "
              "lipobench run", file=sys.stderr)
        return 2
    table = pd.read_parquet(args.results / "results.parquet")
    rows = table[(table["method"] == args.method) & (table["status"] == "ok")
                 & np.isclose(table["iou_threshold"], args.iou)]
    if rows.empty:
        print(f"{args.results}: no scored rows of {args.method!r} at IoU {args.iou}",
              file=sys.stderr)
        return 2
    dataset = load_dataset(json.loads((args.results / "run.json").read_text())["dataset"])
    print(f"{'configuration':44} {'picks':>6} {'P':>6} {'R':>6} {'P chance':>9} {'R chance':>9}")
    for label, group in rows.groupby("config_label", sort=False):
        chance_tp = 0.0
        for row in group.itertuples():
            picks = load_regions(args.results / row.prediction_file)
            if picks.boxes is None:
                print(f"{args.results}: {args.method!r} predicts {picks.kind.value}s, not "
                      "boxes; give a box method", file=sys.stderr)
                return 2
            side = float(np.median(picks.boxes[:, 2] - picks.boxes[:, 0])) if len(picks) else 0
            truth = dataset.micrograph(row.image).truth
            assert truth is not None, "a scored micrograph has ground truth"
            chance_tp += chance_counts(truth, len(picks), side, iou_thresholds=[args.iou])[0]
        tp, fp, fn = (int(group[c].sum()) for c in ("tp", "fp", "fn"))
        n_pred, n_true = tp + fp, tp + fn
        precision, recall, _ = rates(tp, n_true, n_pred)
        chance_p, chance_r, _ = rates(chance_tp, n_true, n_pred)
        print(f"{label:44} {n_pred:6d} {precision:6.3f} {recall:6.3f} {chance_p:9.3f} "
              f"{chance_r:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
