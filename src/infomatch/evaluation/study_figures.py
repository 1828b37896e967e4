"""A study's figures over seeds, drawn from its files alone (docs/results/<study>/evaluations/*/metrics.json):
reliability pooled over seeds, the degradation grid with seed bands, CIFAR-C differences to a baseline and the OOD
score histograms. ``models`` is ``load_study``'s merge of the study's evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.ticker
import numpy as np

from infomatch.evaluation.plots import save_figure
from infomatch.evaluation.style import colors, plt


def by_strategy(models: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The models of each strategy, in the order the strategies first appear."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for model in models.values():
        grouped.setdefault(model["strategy"], []).append(model)
    return grouped


def pooled_reliability(group: list[dict[str, Any]], key: str = "reliability") -> dict[str, np.ndarray] | None:
    """Reliability bins summed over seeds: image counts added, accuracy and confidence count-weighted; None when a
    model lacks ``key`` (evaluations before it was stored)."""
    if not all(key in model for model in group):
        return None
    count = np.sum([model[key]["count"] for model in group], axis=0).astype(float)
    pooled = {"edges": np.array(group[0][key]["edges"]), "count": count}
    for part in ("accuracy", "confidence"):
        weighted = np.sum([np.array(model[key][part]) * np.array(model[key]["count"]) for model in group], axis=0)
        pooled[part] = np.divide(weighted, count, out=np.zeros_like(count), where=count > 0)
    return pooled


PANELS_PER_ROW = 6  # strategies side by side before a figure wraps onto another row


def reliability_figure(models: dict[str, dict[str, Any]], path: Path) -> bool:
    """Per strategy: accuracy per confidence bin over all seeds' test images (bars: before temperature scaling,
    orange steps: after, where stored) above the images per bin (log scale, so a nearly empty bin shows as such)."""
    groups = by_strategy(models)
    columns = min(len(groups), PANELS_PER_ROW)
    rows = -(-len(groups) // columns)
    fig, axes = plt.subplots(2 * rows, columns, figsize=(2.0 * columns + 0.6, 3.6 * rows), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.3] * rows})
    for index in range(len(groups), rows * columns):  # the last row's empty places
        row, column = divmod(index, columns)
        axes[2 * row, column].set_visible(False)
        axes[2 * row + 1, column].set_visible(False)
    for index, (strategy, group) in enumerate(groups.items()):
        row, column = divmod(index, columns)
        top, bottom = axes[2 * row, column], axes[2 * row + 1, column]
        before, after = pooled_reliability(group), pooled_reliability(group, "reliability_calibrated")
        if before is None:  # an evaluation that stored no reliability bins
            top.set_title(f"{strategy}: no bins stored")
            continue
        edges = before["edges"]
        centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        filled = before["count"] > 0
        top.bar(centers[filled], before["accuracy"][filled], width[filled], color="0.8", edgecolor="0.3",
                label="before TS")
        top.plot([0, 1], [0, 1], "k--", linewidth=0.8)
        bottom.bar(centers, before["count"], width, color="0.8", edgecolor="0.3")
        if after is not None:
            shown = np.where(after["count"] > 0, after["accuracy"], np.nan)
            top.stairs(shown, edges, color="#E69F00", linewidth=1.6, label="after TS")
            bottom.stairs(after["count"], edges, color="#E69F00", linewidth=1.4)
        top.set(xlim=(0, 1), ylim=(0, 1), title=f"{strategy} (n={len(group)})")
        top.set_xticklabels([])
        bottom.set(xlim=(0, 1), yscale="log", xlabel="Confidence (max softmax)")
        bottom.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if column == 0:
            top.set_ylabel("Accuracy in bin")
            bottom.set_ylabel("Images")
        if index == 0:
            top.legend(loc="upper left")
    fig.suptitle("Reliability over all seeds' test images (dashed: perfect calibration)")
    save_figure(fig, path)
    return True


def degradation_figure(models: dict[str, dict[str, Any]], levels: list[float], path: Path) -> bool:
    """Top-1 against degradation level, a panel per type: the mean over seeds per strategy, the band from the
    lowest to the highest seed."""
    groups = by_strategy(models)
    types = list(next(iter(models.values()))["robustness"])
    palette = colors(list(groups))
    fig, axes = plt.subplots(1, len(types), figsize=(2.6 * len(types) + 0.8, 3.2), squeeze=False, sharey=True)
    for axis, kind in zip(axes[0], types):
        for strategy, group in groups.items():
            values = np.array([model["robustness"][kind] for model in group]) * 100
            axis.plot(levels, values.mean(axis=0), marker="o", markersize=3, color=palette[strategy],
                      label=f"{strategy} (n={len(group)})")
            if len(group) > 1:
                axis.fill_between(levels, values.min(axis=0), values.max(axis=0), color=palette[strategy], alpha=0.2)
        axis.set(title=kind, xlabel="Level d", xlim=(0, 1))
    axes[0, 0].set_ylabel("Test top-1 (%)")
    axes[0, -1].legend(loc="upper right")
    fig.suptitle("Top-1 under each degradation (mean over seeds, band: lowest to highest)")
    save_figure(fig, path)
    return True


def corruption_differences(models: dict[str, dict[str, Any]],
                           baseline: str) -> dict[str, tuple[list[str], np.ndarray, int]]:
    """{strategy: (corrupted sets, (sets, severities) top-1 points minus the baseline's on the same seed, averaged
    over the paired seeds, number of pairs)} for each strategy with a seed the baseline also has."""
    seeds = {(model["strategy"], model["seed"]): model["corruptions"]["sets"] for model in models.values()
             if "sets" in model.get("corruptions", {})}
    panels = {}
    for strategy in by_strategy(models):
        pairs = [(ours, seeds[(baseline, seed)]) for (kind, seed), ours in seeds.items()
                 if kind == strategy and strategy != baseline and (baseline, seed) in seeds]
        if pairs:
            sets = list(pairs[0][0])
            differences = [[np.subtract(ours[name]["top1"], theirs[name]["top1"]) * 100 for name in sets]
                           for ours, theirs in pairs]
            panels[strategy] = (sets, np.mean(differences, axis=0), len(pairs))
    return panels


def corruption_figure(models: dict[str, dict[str, Any]], baseline: str, path: Path) -> bool:
    """``corruption_differences`` as a heatmap per strategy: corrupted sets (rows) by severity (columns), diverging
    colours centred on 0. False when nothing can be paired."""
    panels = corruption_differences(models, baseline)
    if not panels:
        return False
    limit = max(float(np.abs(values).max()) for _, values, _ in panels.values()) or 1.0
    sets = next(iter(panels.values()))[0]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels) + 2.6, 0.24 * len(sets) + 1.6),
                             squeeze=False, sharey=True, layout="constrained")
    for axis, (strategy, (_, values, pairs)) in zip(axes[0], panels.items()):
        image = axis.imshow(values, cmap="PuOr", vmin=-limit, vmax=limit, aspect="auto")
        axis.set_xticks(range(values.shape[1]), [str(severity + 1) for severity in range(values.shape[1])])
        axis.set(title=f"{strategy} − {baseline} (n={pairs})", xlabel="Severity")
        axis.grid(False)
    axes[0, 0].set_yticks(range(len(sets)), [name.replace("_", " ") for name in sets])
    fig.colorbar(image, ax=axes[0].tolist(), label="Top-1 difference (points)", shrink=0.8)
    fig.suptitle(f"Corrupted test sets: top-1 difference to {baseline}, seed-paired mean")
    save_figure(fig, path)
    return True


def ood_figure(models: dict[str, dict[str, Any]], path: Path) -> bool:
    """Max-softmax histograms of in- and out-of-distribution images, a row per OOD set and a column per strategy
    (shares averaged over seeds). False when no model stored them."""
    groups = {strategy: [model for model in group if "ood_histograms" in model]
              for strategy, group in by_strategy(models).items()}
    groups = {strategy: group for strategy, group in groups.items() if group}
    if not groups:
        return False
    sets = list(next(iter(groups.values()))[0]["ood_histograms"])
    fig, axes = plt.subplots(len(sets), len(groups), figsize=(2.2 * len(groups) + 0.6, 1.9 * len(sets) + 0.8),
                             squeeze=False, sharex=True)
    for row, kind in enumerate(sets):
        for column, (strategy, group) in enumerate(groups.items()):
            axis = axes[row, column]
            edges = np.array(group[0]["ood_histograms"][kind]["edges"])
            for part, colour, label in (("in", "#0072B2", "test"), ("out", "#D55E00", "OOD")):
                shares = np.mean([model["ood_histograms"][kind][part] for model in group], axis=0) * 100
                axis.stairs(shares, edges, fill=True, alpha=0.35, color=colour, label=label)
            axis.set_title(f"{strategy}: {kind.replace('_', ' ')}", fontsize=9)
            if column == 0:
                axis.set_ylabel("Images (%)")
            if row == len(sets) - 1:
                axis.set_xlabel("Max softmax")
    axes[0, 0].legend(loc="upper left")
    fig.suptitle("Confidence of test and out-of-distribution images (mean over seeds)")
    save_figure(fig, path)
    return True
