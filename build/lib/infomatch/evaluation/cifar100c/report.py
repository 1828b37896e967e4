"""Corruption robustness in the outputs: a summary.md section, metrics.csv rows and two figures.

Every table, row and figure names its source; regenerated corruptions say "regenerated, not the official
files", since their numbers are not comparable to published CIFAR-100-C tables.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from infomatch.evaluation.plots import colors, plt, save_figure  # plots sets the Agg backend and the figure style
from infomatch.evaluation.tables import markdown_table, stats_text

# (summary key, column header, scale, decimals): fractions shown in %, mCE already in %
SUMMARY_COLUMNS = (("mean_top1_benchmark", "mean top-1 %, benchmark", 100, 2),
                   ("mean_top1_all", "mean top-1 %, all", 100, 2),
                   ("mean_top1_resemble_training", "top-1 %, like training", 100, 2),
                   ("mean_top1_other", "top-1 %, other", 100, 2), ("mce", "mCE %", 1, 2),
                   ("relative_mce", "relative mCE %", 1, 2), ("mean_ece", "mean ECE", 1, 4),
                   ("mean_nll", "mean NLL", 1, 4))


def title(part: dict[str, Any]) -> str:
    return f"CIFAR-100-C ({part['label']})"


def markdown(results: dict[str, Any], aggregated: bool) -> str:
    part = results["corruptions"]
    names = part["names"]
    lines = [f"## Corruption robustness: {title(part)}", ""]
    if part["source"] == "regenerated":
        lines += ["**Regenerated, not the official files**: the corruptions were recomputed from the test set with "
                  "CIFAR-100-C's published procedure and constants; these numbers are not comparable to published "
                  "CIFAR-100-C tables.", ""]
    lines += [f"- {part['num_images']} test images per set; severities {part['severities']}; "
              f"{len(names)} corruptions: {', '.join(names)}",
              f"- benchmark means over {len(part['benchmark'])} of the 15 benchmark corruptions"
              + (f"; not evaluated (missing): {', '.join(part['missing'])}" if part["missing"] else ""),
              f"- like training = the noise, blur and pixelate corruptions evaluated "
              f"({', '.join(part['resemble_training']) or 'none'}); other = the rest",
              "- mCE and relative mCE: % of the baseline's errors over the benchmark corruptions, baseline "
              + (f"`{part['compare_to']}` (compare_to)" if part["compare_to"]
                 else "none (no `hard` model; set compare_to)")
              + "; relative mCE counts the drop from clean accuracy, undefined if the baseline has none",
              "- calibration under shift: ECE and NLL averaged over all corrupted sets", ""]
    columns = [column for column in SUMMARY_COLUMNS
               if any(column[0] in model["summary"] for model in part["models"].values())]
    lines += ["### Summary", ""]
    lines += markdown_table(["model", "clean top-1 %", *(header for _, header, _, _ in columns)],
                    [[name, stats_text(results["models"][name]["clean"]["top1"], 100),
                      *(stats_text(model["summary"][key], scale, decimals) for key, _, scale, decimals in columns)]
                     for name, model in part["models"].items()])
    if aggregated:
        lines += ["Per strategy, mean ± std over seeds:", ""]
        lines += markdown_table(["strategy", "models", *(header for _, header, _, _ in columns)],
                        [[strategy, group["n"],
                          *(stats_text(group["summary"][key], scale, decimals) for key, _, scale, decimals in columns)]
                         for strategy, group in part["aggregate"].items()])
    models = list(part["models"])
    lines += ["### Top-1 % per corruption, mean over severities", ""]
    lines += markdown_table(["corruption", *models],
                            [[name, *(f"{100 * np.mean(part['models'][model]['sets'][name]['top1']):.2f}"
                                      for model in models)] for name in names])
    for metric, label, scale in (("top1", "Top-1 %", 100), ("ece", "ECE", 1), ("nll", "NLL", 1)):
        lines += [f"### {label} per corruption and severity", ""]
        lines += markdown_table(["corruption", "severity", *models],
                        [[name, severity, *(stats_text(part["models"][model]["sets"][name][metric][index], scale)
                                            for model in models)]
                         for name in names for index, severity in enumerate(part["severities"])])
    return "\n".join(lines)


def csv_rows(results: dict[str, Any]) -> list[list]:
    """Rows for metrics.csv (model, strategy, seed, analysis, degradation, level, metric, value); the analysis
    names the source: cifar100c_official or cifar100c_regenerated."""
    part = results["corruptions"]
    analysis = f"cifar100c_{part['source']}"
    rows = []
    for name, model in part["models"].items():
        info = results["models"][name]
        prefix = [name, info["strategy"], "" if info["seed"] is None else info["seed"]]
        for corruption, values in model["sets"].items():
            for metric, per_severity in values.items():
                rows += [[*prefix, analysis, corruption, severity, metric, value]
                         for severity, value in zip(part["severities"], per_severity)]
        rows += [[*prefix, f"{analysis}_summary", "", "", key, value] for key, value in model["summary"].items()]
    return rows


def _series(results: dict[str, Any], aggregated: bool) -> dict[str, dict[str, Any]]:
    """{label: {"clean": {"mean", "std"}, "sets": {corruption: {"mean": [...], "std": [...] or None}}}}."""
    part = results["corruptions"]
    if aggregated:
        clean = {strategy: group["clean"]["top1"] for strategy, group in results["aggregate"].items()}
        return {f"{strategy}, n={group['n']}": {"clean": clean[strategy],
                                                "sets": {name: values["top1"]
                                                         for name, values in group["sets"].items()}}
                for strategy, group in part["aggregate"].items()}
    return {name: {"clean": {"mean": results["models"][name]["clean"]["top1"], "std": None},
                   "sets": {corruption: {"mean": values["top1"], "std": None}
                            for corruption, values in model["sets"].items()}}
            for name, model in part["models"].items()}


def severity_curves(results: dict[str, Any], path: Path, aggregated: bool) -> None:
    """One panel per corruption: top-1 against severity (0 = clean), one line per model or strategy."""
    part = results["corruptions"]
    series = _series(results, aggregated)
    palette = colors(list(series))
    names, severities = part["names"], [0, *part["severities"]]
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows + 0.6), squeeze=False, sharey=True)
    for axis, name in zip(axes.flat, names):
        for index, (label, values) in enumerate(series.items()):
            mean = 100 * np.array([values["clean"]["mean"], *values["sets"][name]["mean"]])
            axis.plot(severities, mean, marker="osD^v<>ph*"[index % 10], markersize=4, color=palette[label],
                      label=label)
            std = values["sets"][name]["std"]
            if std is not None:
                spread = 100 * np.array([values["clean"]["std"] or 0.0, *std])
                axis.fill_between(severities, mean - spread, mean + spread, color=palette[label], alpha=0.2)
        axis.set(title=name.replace("_", " "), xticks=severities)
        axis.set_ylim(bottom=0)
    for axis in axes.flat[len(names):]:
        axis.set_visible(False)
    for axis in axes[:, 0]:
        axis.set_ylabel("Top-1 (%)")
    for axis in axes[-1]:
        axis.set_xlabel("Severity (0 = clean)")
    axes.flat[0].legend(loc="lower left", fontsize=7)
    fig.suptitle(f"Top-1 under corruption, {title(part)}, {part['num_images']} test images")
    save_figure(fig, path)


def heatmap(results: dict[str, Any], path: Path) -> None:
    """Corruption x model: top-1 % averaged over severities, annotated."""
    part = results["corruptions"]
    models, names = list(part["models"]), part["names"]
    values = 100 * np.array([[np.mean(part["models"][model]["sets"][name]["top1"]) for model in models]
                             for name in names])
    fig, axis = plt.subplots(figsize=(max(5.0, 1.1 * len(models) + 3), 0.4 * len(names) + 2))
    image = axis.imshow(values, cmap="viridis", vmin=0, vmax=max(float(values.max()), 1e-6), aspect="auto")
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, f"{value:.1f}", ha="center", va="center", fontsize=8,
                  color="white" if value < 0.6 * values.max() else "black")
    axis.set_xticks(range(len(models)), models, rotation=30 if len(models) > 3 else 0,
                    ha="right" if len(models) > 3 else "center")
    axis.set_yticks(range(len(names)), [name.replace("_", " ") for name in names])
    axis.set(title=f"Top-1 % averaged over severities {part['severities']}\n{title(part)}")
    axis.grid(False)
    fig.colorbar(image, ax=axis, label="Top-1 (%)")
    save_figure(fig, path)


def write_plots(results: dict[str, Any], folder: Path, aggregated: bool) -> None:
    severity_curves(results, folder / "corruptions_severity.png", aggregated)
    heatmap(results, folder / "corruptions_heatmap.png")
