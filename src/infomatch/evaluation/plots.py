"""Publication-style figures (matplotlib, Agg backend): reliability, clean-metric bars, degradation curves, heatmap."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.ticker
import numpy as np
from PIL import Image

from infomatch.evaluation.style import colors, plt

MAX_PIXELS = 1200  # the longer side of a saved figure, at most


def save_figure(fig, path: Path, dpi: float | None = None) -> None:
    """Lay out, write and close ``fig`` (its folder made if needed), at ``dpi`` or the style's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:  # a figure made with layout="constrained" lays itself out
        fig.tight_layout()
    # a wide study figure gets fewer dots per inch, so that no PNG grows past a page's width (and ~150 KB)
    fig.savefig(path, dpi=min(dpi or plt.rcParams["savefig.dpi"], MAX_PIXELS / max(fig.get_size_inches())))
    plt.close(fig)
    # 128 colours look the same in a plot and cut the file to about a third
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def reliability_diagram(name: str, reliability: dict, ece: float, path: Path) -> None:
    """Per confidence bin: the accuracy bar, the bin's mean confidence as a tick, and the gap between them shaded
    red where the model is over-confident (confidence > accuracy) and blue where it is under-confident; the
    histogram below gives each bin's image count."""
    edges = np.array(reliability["edges"])
    count = np.array(reliability["count"])
    accuracy, confidence = np.array(reliability["accuracy"]), np.array(reliability["confidence"])
    centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = count > 0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 7.0), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    top.bar(centers[filled], accuracy[filled], width[filled], color="0.75", edgecolor="black", label="Accuracy")
    for over, color, label in ((True, "tab:red", "Over-confident (conf > acc)"),
                               (False, "tab:blue", "Under-confident (acc > conf)")):
        chosen = filled & ((confidence > accuracy) if over else (confidence < accuracy))
        if chosen.any():
            low = np.minimum(accuracy, confidence)[chosen]
            top.bar(centers[chosen], np.abs(confidence - accuracy)[chosen], width[chosen] * 0.6, bottom=low,
                    color=color, alpha=0.45, edgecolor=color, label=label)
    top.hlines(confidence[filled], (centers - width * 0.45)[filled], (centers + width * 0.45)[filled],
               color="black", linewidth=2, label="Mean confidence in bin")
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="Perfect calibration")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="Accuracy in bin",
            title=f"Reliability: {name}\nECE = {ece:.4f} ({len(count)} bins, {count.sum()} images)")
    top.legend(loc="upper left", fontsize=8)
    bars = bottom.bar(centers, count, width, color="tab:gray", edgecolor="black")
    bottom.bar_label(bars, labels=[str(n) if n else "" for n in count], fontsize=7, padding=1)
    bottom.set(xlabel="Confidence (max softmax probability)", ylabel="Images")
    bottom.margins(y=0.25)
    save_figure(fig, path)


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
    save_figure(fig, path)


def curves(levels: list[float], series: dict[str, dict], path: Path, title: str, ylabel: str,
           percent: bool, palette: dict[str, str] | None = None) -> None:
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
    save_figure(fig, path)


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
    save_figure(fig, path)


# the forest plot's panels: (group, metric key, panel title, scale, unit); the full set is in comparisons.csv
FOREST_PANELS = (
    ("Accuracy", "top1", "Top-1", 100, "points"), ("Accuracy", "top5", "Top-5", 100, "points"),
    ("Accuracy", "robust top1", "Top-1 under degradation", 100, "points"),
    ("Calibration", "nll", "NLL", 1, "nats"), ("Calibration", "ece", "ECE", 1, ""),
    ("Calibration", "confidence_gap", "Confidence − accuracy", 1, ""),
    ("Calibration", "temperature", "Temperature T", 1, ""),
    ("After temperature scaling", "nll (ts)", "NLL", 1, "nats"),
    ("After temperature scaling", "ece (ts)", "ECE", 1, ""),
    ("After temperature scaling", "robust nll (ts)", "NLL under degradation", 1, "nats"),
    ("Selective classification", "aurc", "AURC (MSP)", 1, ""),
    ("Selective classification", "aurc (norm)", "AURC (normalised logits)", 1, ""),
    ("Selective classification", "augrc", "AUGRC (MSP)", 1, ""),
)


def forest(rows: list[dict], path: Path, title: str, keys: tuple[str, ...] | None = None, dpi: int = 150) -> None:
    """A panel per metric in FOREST_PANELS (only ``keys``, if given), a row of panels per group: each strategy's
    difference to the baseline with its 95% CI (filled dot: the interval excludes 0); the dashed line is 0."""
    by_key = {(row["metric"], row["strategy"]): row for row in rows}
    strategies = list(dict.fromkeys(row["strategy"] for row in rows))
    palette = colors(strategies)
    panels = [panel for panel in FOREST_PANELS if any((panel[1], strategy) in by_key for strategy in strategies)
              and (keys is None or panel[1] in keys)]
    if keys is not None:  # a chosen few: one row, each panel titled with its group
        panels = [("", key, f"{label}{' (ts)' if group.startswith('After') else ''}", scale, unit)
                  for group, key, label, scale, unit in panels]
    groups = list(dict.fromkeys(panel[0] for panel in panels))
    columns = max(sum(panel[0] == group for panel in panels) for group in groups)
    height = 0.32 * len(strategies) + 1.3
    fig, axes = plt.subplots(len(groups), columns, figsize=(3.3 * columns, height * len(groups) + 0.8),
                             squeeze=False, layout="constrained")
    for group_index, group in enumerate(groups):
        members = [panel for panel in panels if panel[0] == group]
        for axis in axes[group_index, len(members):]:
            axis.set_visible(False)
        for column, (_, key, label, scale, unit) in enumerate(members):
            axis = axes[group_index, column]
            for position, strategy in enumerate(strategies):
                row = by_key.get((key, strategy))
                if row is None:
                    continue
                color = palette[strategy]
                if row["low"] is not None:
                    axis.plot([row["low"] * scale, row["high"] * scale], [position, position], color=color, linewidth=2)
                axis.plot(row["difference"] * scale, position, "o", color=color,
                          markerfacecolor=color if row["separated"] else "white")
            axis.axvline(0, color="gray", linestyle="--", linewidth=1)
            axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4, symmetric=True))
            axis.tick_params(axis="x", labelsize=8)
            axis.set_yticks(range(len(strategies)), strategies if column == 0 else [""] * len(strategies))
            axis.set_ylim(len(strategies) - 0.5, -0.5)
            axis.set_title(label, fontsize=10)
            axis.set_xlabel(f"difference ({unit})" if unit else "difference", fontsize=8)
        axes[group_index, 0].set_ylabel(group, fontsize=10, fontweight="bold")
    fig.suptitle(title, fontsize=11)
    save_figure(fig, path, dpi)


def risk_coverage(curves: dict[str, dict[str, dict[str, list[float]]]], path: Path, title: str) -> None:
    """Selective risk against coverage per model: solid with the max softmax probability, dashed with the
    normalised logits (``curves[model][score] = {"coverage", "risk"}``)."""
    palette = colors(list(curves))
    fig, axis = plt.subplots(figsize=(6.5, 4.5))
    for name, scores in curves.items():
        for score, style in (("msp", "-"), ("msp_normalized", "--")):
            if score in scores:
                axis.plot(np.array(scores[score]["coverage"]) * 100, np.array(scores[score]["risk"]) * 100, style,
                          color=palette[name], label=f"{name}{' (norm)' if score != 'msp' else ''}")
    axis.set(xlabel="Coverage (% of test images accepted, most confident first)", ylabel="Selective risk (% errors)",
             title=title, xlim=(0, 100))
    axis.set_ylim(bottom=0)
    axis.legend(loc="best", ncol=2 if len(curves) > 3 else 1)
    save_figure(fig, path)


def score_histograms(histograms: dict[str, list[float]], path: Path, title: str, xlabel: str) -> None:
    """In- and out-of-distribution shares per score bin, as two overlaid step histograms."""
    edges = np.array(histograms["edges"])
    fig, axis = plt.subplots(figsize=(6.5, 4.0))
    for part, label, colour in (("in", "in-distribution (test)", "tab:blue"), ("out", "out-of-distribution",
                                                                              "tab:orange")):
        shares = np.array(histograms[part]) * 100
        axis.stairs(shares, edges, fill=True, alpha=0.35, color=colour, label=label)
        axis.stairs(shares, edges, color=colour)
    axis.set(xlabel=xlabel, ylabel="Share of the set's images (%)", title=title, xlim=(edges[0], edges[-1]))
    axis.legend(loc="best")
    save_figure(fig, path)
