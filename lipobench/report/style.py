"""What every figure shares: the colour of each method, shades, line styles, legends, saving.

Public, so that a plugin's figures (hook ``lipobench_figures``) look like the built-in ones:
one method has one hue in every figure of a results folder (:func:`method_colors` of all of
its methods, :attr:`lipobench.report.folder.ResultsFolder.colors`); the configurations of a
method differ by :func:`shade` and line style.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lipobench.fsutil import atomic_path

__all__ = ["LINESTYLES", "MARKERS", "Color", "method_colors", "colors_for", "shade",
           "new_figure", "figure_legend", "check_columns", "configurations", "interval",
           "save_figure"]

LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

#: A colour as matplotlib takes it: RGB components in [0, 1].
Color = tuple[float, ...]


def method_colors(methods: Iterable[str]) -> dict[str, Color]:
    """One colour-blind-safe colour per method, in sorted order of the method names.

    >>> colors = method_colors(["topaz", "cellpose", "topaz"])
    >>> sorted(colors), len(set(colors.values()))
    (['cellpose', 'topaz'], 2)
    """
    import seaborn as sns

    names = sorted(set(methods))
    palette = sns.color_palette("colorblind", n_colors=max(len(names), 1))
    return {name: tuple(palette[k % len(palette)]) for k, name in enumerate(names)}


def colors_for(methods: Iterable[str], colors: Mapping[str, Color] | None) -> Mapping[str, Color]:
    """``colors`` when given (a results folder's), else :func:`method_colors` of ``methods``."""
    return method_colors(methods) if colors is None else colors


def shade(color: Color, k: int, n: int) -> Color:
    """The k-th of n shades of ``color``, darkest first, so configurations stay apart.

    >>> shade((0.0, 0.0, 0.0), 1, 2)
    (0.55, 0.55, 0.55)
    """
    if n <= 1:
        return color
    mix = 0.55 * k / (n - 1)
    return tuple(c + (1.0 - c) * mix for c in color)


def new_figure(rows: int, cols: int, *, width: float, height: float):
    """A Figure (no pyplot, nothing global) and its ``rows`` x ``cols`` axes, whitegrid style."""
    import seaborn as sns
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def figure_legend(fig, axes, *, title: str | None = None, entries: int) -> None:
    """One legend for the figure, outside the panels, in as many columns as it needs."""
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if not handles:
        return
    ncol = 1 if entries <= 14 else 2 if entries <= 30 else 3
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", ncol=ncol,
               title=title, frameon=False)


def check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ValueError naming the columns ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: the frame lacks columns {missing}")


def configurations(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(method, label) pairs in a stable order: by method, then label."""
    pairs = frame[["method", "label"]].drop_duplicates()
    return sorted(zip(pairs["method"], pairs["label"], strict=True))


def interval(rows: pd.DataFrame, metric: str):
    """The (low, high) interval columns of ``metric`` when the frame has them, else None."""
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    if low not in rows.columns or high not in rows.columns:
        return None
    values = rows[[low, high]].to_numpy(dtype=float)
    return None if np.all(np.isnan(values)) else (values[:, 0], values[:, 1])


def save_figure(fig, out_dir: str | Path, stem: str, formats: Sequence[str]) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<format>`` for each format, atomically.

    >>> import tempfile
    >>> fig, _ = new_figure(1, 1, width=2.0, height=2.0)
    >>> [p.suffix for p in save_figure(fig, tempfile.mkdtemp(), "x", ["png", "svg"])]
    ['.png', '.svg']
    """
    written = []
    for fmt in formats:
        target = Path(out_dir) / f"{stem}.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
        written.append(target)
    return written
