"""Publication-style figures (matplotlib, Agg backend): reliability, clean-metric bars, degradation curves, heatmap."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "axes.grid": True, "grid.alpha": 0.3,
                     "legend.fontsize": 9, "savefig.dpi": 150})

def colors(names: list[str]) -> dict[str, tuple]:
    """One fixed colour per series, the same in every figure."""
    palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: palette(index % palette.N) for index, name in enumerate(names)}


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def reliability_diagram(name: str, reliability: dict, ece: float, path: Path) -> None:
    """Accuracy per confidence bin against the diagonal, with the confidence histogram below."""
    edges = np.array(reliability["edges"])
    count = np.array(reliability["count"])
    accuracy, confidence = np.array(reliability["accuracy"]), np.array(reliability["confidence"])
    centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = count > 0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(centers[filled], accuracy[filled], width[filled], color="tab:blue", edgecolor="black", label="Accuracy")
    gap_bottom = np.minimum(accuracy, confidence)[filled]
    top.bar(centers[filled], np.abs(confidence - accuracy)[filled], width[filled], bottom=gap_bottom,
            color="tab:red", alpha=0.35, edgecolor="tab:red", hatch="//", label="Gap to mean confidence")
    top.plot([0, 1], [0, 1], "k--", label="Perfect calibration")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="Accuracy in bin",
            title=f"Reliability: {name}\nECE = {ece:.4f} ({len(count)} bins, {count.sum()} images)")
    top.legend(loc="upper left")
    bottom.bar(centers, count / count.sum() * 100, width, color="tab:gray", edgecolor="black")
    bottom.set(xlabel="Confidence (max softmax probability)", ylabel="Images (%)")
    _save(fig, path)


def clean_bars(series: dict[str, dict[str, dict]], panels: list[tuple[str, str, bool]], path: Path, title: str) -> None:
    """One bar panel per (metric key, axis label, percent?) in ``panels``, in a near-square grid; each
    series maps metric -> {"mean", "std" (None), "points"}."""
    names = list(series)
    palette = colors(names)
    columns = math.ceil(math.sqrt(len(panels)))
    rows = math.ceil(len(panels) / columns)
    width = max(3.5, 0.55 * len(names) + 2)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, 3.25 * rows), squeeze=False)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    x = np.arange(len(names))
    for axis, (key, label, percent) in zip(axes.flat, panels):
        scale = 100 if percent else 1
        means = np.array([series[name][key]["mean"] for name in names]) * scale
        stds = [series[name][key]["std"] for name in names]
        errors = None if all(std is None for std in stds) else np.array([std or 0 for std in stds]) * scale
        bars = axis.bar(x, means, yerr=errors, capsize=4, color=[palette[name] for name in names], edgecolor="black")
        for index, name in enumerate(names):
            points = np.array(series[name][key]["points"]) * scale
            if len(points) > 1:
                axis.scatter(np.full(len(points), index), points, s=14, color="black", zorder=3)
        axis.bar_label(bars, fmt="%.1f" if percent else "%.3f", padding=2, fontsize=8)
        axis.set(ylabel=label, title=label.split(" (")[0])
        axis.set_xticks(x, names, rotation=30 if len(names) > 3 else 0, ha="right" if len(names) > 3 else "center")
        axis.margins(y=0.15)
        if (means >= 0).all():  # non-negative metrics: error bars may not reach below 0
            axis.set_ylim(bottom=0)
        else:  # a signed metric (confidence - accuracy)
            axis.axhline(0, color="black", linewidth=0.8)
        axis.grid(axis="x", visible=False)
    fig.suptitle(title)
    _save(fig, path)


def curves(levels: list[float], series: dict[str, dict], path: Path, title: str, ylabel: str,
           percent: bool, palette: dict[str, tuple] | None = None) -> None:
    """One line per series ({"mean": [...], "std": [...] or None}), shaded ±1 std where given."""
    palette = palette or colors(list(series))
    scale = 100 if percent else 1
    fig, axis = plt.subplots(figsize=(6.5, 4.5))
    for index, (name, values) in enumerate(series.items()):
        mean = np.array(values["mean"]) * scale
        # distinct markers keep overlapping curves apart (and readable in greyscale)
        axis.plot(levels, mean, marker="osD^v<>ph*"[index % 10], markersize=5, color=palette[name], label=name)
        if values.get("std") is not None:
            std = np.array(values["std"]) * scale
            axis.fill_between(levels, mean - std, mean + std, color=palette[name], alpha=0.2)
    axis.set(xlabel="Degradation level d (0 = clean, 1 = strongest)", ylabel=ylabel, title=title, xlim=(-0.02, 1.02))
    axis.set_ylim(0, min(axis.get_ylim()[1], 100 if percent else 1) * 1.05)
    axis.legend(loc="best", ncol=2 if len(series) > 6 else 1)
    _save(fig, path)


def heatmap(levels: list[float], names: list[str], values: np.ndarray, path: Path, title: str, label: str) -> None:
    """values (levels, models), annotated; rows are levels from clean (top) to strongest (bottom).

    The colour scale runs from 0 to the largest value, so weak models still show contrast; read the numbers.
    """
    fig, axis = plt.subplots(figsize=(max(4.5, 1.0 * len(names) + 2.5), 6.0))
    top = max(float(values.max()), 1e-6)
    image = axis.imshow(values, cmap="viridis", vmin=0, vmax=top, aspect="auto")
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, f"{value:.3f}", ha="center", va="center", fontsize=8,
                  color="white" if value < 0.6 * top else "black")
    axis.set_xticks(range(len(names)), names, rotation=30 if len(names) > 3 else 0,
                    ha="right" if len(names) > 3 else "center")
    axis.set_yticks(range(len(levels)), [f"{level:.1f}" for level in levels])
    axis.set(xlabel="Model", ylabel="Degradation level d", title=title)
    axis.grid(False)
    fig.colorbar(image, ax=axis, label=label)
    _save(fig, path)


def forest(rows: list[dict], path: Path, title: str) -> None:
    """One panel per metric: each strategy's difference to the baseline with its 95% CI; the dashed line is 0."""
    metrics = list(dict.fromkeys(row["metric"] for row in rows))
    strategies = list(dict.fromkeys(row["strategy"] for row in rows))
    palette = colors(strategies)
    columns = min(4, len(metrics))
    grid_rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(3.6 * columns, 0.45 * len(strategies) * grid_rows + 1.6 * grid_rows),
                             squeeze=False)
    for axis in axes.flat[len(metrics):]:
        axis.set_visible(False)
    for axis, metric in zip(axes.flat, metrics):
        for position, strategy in enumerate(strategies):
            row = next((row for row in rows if row["metric"] == metric and row["strategy"] == strategy), None)
            if row is None:
                continue
            color = palette[strategy]
            if row["low"] is not None:
                axis.plot([row["low"], row["high"]], [position, position], color=color, linewidth=2)
            # filled: the interval excludes 0 (separated); open: not separated or no interval
            axis.plot(row["difference"], position, "o", color=color,
                      markerfacecolor=color if row["separated"] else "white")
        axis.axvline(0, color="gray", linestyle="--", linewidth=1)
        axis.set_yticks(range(len(strategies)), strategies)
        axis.set_ylim(len(strategies) - 0.5, -0.5)
        axis.set_title(metric, fontsize=10)
    fig.suptitle(title)
    _save(fig, path)
