"""Two studies of the same strategies at two training lengths: each contrast (a − b) in each study, seed-paired,
and how it changed (long − short, paired on the seeds both studies have); and validation top-1 against epoch."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from infomatch.evaluation.compare import mean_interval, scalar_metrics
from infomatch.evaluation.tables import interval_text, markdown_table, number_text


def _by_seed(models: dict[str, dict[str, Any]], strategy: str, metric: str) -> dict[int, float]:
    return {model["seed"]: scalar_metrics(model)[metric] for model in models.values() if model["strategy"] == strategy}


def _cell(values: list[float], scale: float) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{number_text(values[0], scale, signed=True)} (1 seed)"
    mean, low, high = mean_interval(values)
    cell = f"{number_text(mean, scale, signed=True)} {interval_text(low, high, scale)}"
    return f"**{cell}**" if low > 0 or high < 0 else cell


def contrast_rows(studies: dict[str, dict[str, dict[str, Any]]], contrasts: list[tuple[str, str]], metric: str,
                  scale: float) -> list[list[str]]:
    """One row per contrast: its paired difference in each study on the seeds the last study has, then the change
    from the first study to the last on the seeds both have."""
    rows = []
    for a, b in contrasts:
        differences = []
        for models in studies.values():
            first, second = _by_seed(models, a, metric), _by_seed(models, b, metric)
            differences.append({seed: first[seed] - second[seed] for seed in first if seed in second})
        # every study on the seeds the last one has, so the columns compare the same seeds
        differences = [{seed: value for seed, value in found.items() if seed in differences[-1]}
                       for found in differences]
        short, long = differences[0], differences[-1]
        common = sorted(seed for seed in long if seed in short)
        change = [long[seed] - short[seed] for seed in common]
        rows.append([f"{a} − {b}", *(f"{_cell(list(found.values()), scale)}, seeds {_seeds(found)}"
                                     for found in differences), _cell(change, scale)])
    return rows


def _seeds(found: dict[int, float]) -> str:
    return ",".join(str(seed) for seed in sorted(found)) or "none"


def gap_markdown(studies: dict[str, dict[str, dict[str, Any]]], contrasts: list[tuple[str, str]],
                 metrics: list[tuple[str, str, float]]) -> list[str]:
    """A table per metric (key, heading, scale) of the contrasts across the studies (in their order)."""
    names = list(studies)
    lines = []
    for key, heading, scale in metrics:
        lines += [f"{heading}: difference with its 95% seed-paired t-interval in each study (on the seeds "
                  f"{names[-1]} has), and its change ({names[-1]} − {names[0]}, paired on the seeds both have); "
                  "**bold**: the interval excludes 0.", ""]
        lines += markdown_table(["contrast", *names, f"change {names[-1]} − {names[0]}"],
                                contrast_rows(studies, contrasts, key, scale))
    return lines


def read_history(path: Path) -> dict[str, list[float]]:
    """A run's history.csv as columns of floats (NaN where a row lacks the number)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) if row[key] else float("nan") for row in rows] for key in rows[0]} if rows else {}


def histories_by_strategy(study: Path, models: dict[str, dict[str, Any]], column: str = "val/top1",
                          ) -> dict[str, list[list[float]]]:
    """{strategy: [one curve per seed]} of ``column`` from runs/<run>/history.csv, the strategy of each run as its
    evaluation names it."""
    curves: dict[str, list[list[float]]] = {}
    for model in models.values():
        path = study / "runs" / Path(model["checkpoint"]).parent.parent.name / "history.csv"
        if path.is_file():
            history = read_history(path)
            if column in history:
                curves.setdefault(model["strategy"], []).append(history[column])
    return curves


def history_figure(curves: dict[str, list[list[float]]], path: Path, title: str) -> None:
    """Validation top-1 against epoch: the mean over seeds per strategy with a band from the lowest to the
    highest seed."""
    from infomatch.evaluation import plots

    palette = plots.colors(list(curves))
    fig, axis = plots.plt.subplots(figsize=(6.5, 4.5))
    for strategy, runs in curves.items():
        length = min(len(run) for run in runs)
        values = np.array([run[:length] for run in runs]) * 100
        epochs = np.arange(1, length + 1)
        axis.plot(epochs, values.mean(axis=0), color=palette[strategy], label=f"{strategy} (n={len(runs)})")
        if len(runs) > 1:
            axis.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=palette[strategy], alpha=0.2)
    axis.set(xlabel="Epoch", ylabel="Validation top-1 (%)", title=title)
    axis.legend(loc="lower right")
    plots.save_figure(fig, path)
