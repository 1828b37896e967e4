"""Epsilon against degradation level for each similarity measure: the numbers and the figure behind
``python -m infomatch.tasks.epsilon_curve``."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from infomatch.augment import DEGRADATIONS
from infomatch.labels.measures import MEASURES
from infomatch.labels.nmi import chance_nmi
from infomatch.labels.strategies import MeasuredSmoothing, epsilon_by_level


def epsilon_curves(images: Tensor, levels: Tensor, bins: int = 64, eps_max: float = 0.9, seed: int = 0,
                   measures: tuple[str, ...] = MEASURES, floor: float | None = None,
                   **degradation_params) -> dict[str, dict[str, Tensor]]:
    """{measure: {type: (len(levels), N) epsilon}} for every image at every level of every degradation type.

    Every measure sees the same degraded images (the generator is reseeded per measure); nmi_adjusted's E0 is
    the mean NMI of unrelated pairs of ``images`` (``floor``, when the caller has it already).
    """
    if floor is None:
        floor = float(chance_nmi(images, bins).mean())
    curves = {}
    for measure in measures:
        strategy = MeasuredSmoothing(eps_max=eps_max, bins=bins, measure=measure, chance_nmi=floor)
        generator = torch.Generator(device=images.device).manual_seed(seed)
        curves[measure] = epsilon_by_level(images, DEGRADATIONS, levels.tolist(), strategy.measured_epsilon, generator,
                                           f"measure {measure}", **degradation_params)
    return curves


def plot_epsilon_curves(levels: Tensor, curves: dict[str, dict[str, Tensor]], floor_nmi: float, eps_max: float,
                        path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = list(next(iter(curves.values())))
    columns = min(2, len(types))
    rows = math.ceil(len(types) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4 * rows), squeeze=False, sharey=True)
    for axis in axes.flat[len(types):]:
        axis.set_visible(False)
    for axis, name in zip(axes.flat, types):
        for measure, by_type in curves.items():
            epsilon = by_type[name]
            low, high = epsilon.quantile(torch.tensor([0.1, 0.9]), dim=1)
            axis.plot(levels, epsilon.mean(dim=1), marker="o", markersize=3, label=measure)
            axis.fill_between(levels, low, high, alpha=0.2)
        axis.axhline(min(1 - floor_nmi, eps_max), color="gray", linestyle="--",
                     label=f"nmi of unrelated images ({floor_nmi:.2f})")
        axis.set(xlabel="degradation level d", ylabel="ε = clamp(1 − similarity, 0, ε_max)", title=name,
                 ylim=(0, 1), xlim=(0, 1))
        axis.grid(alpha=0.3)
    axes.flat[0].legend(loc="lower right", fontsize=8)
    figure.suptitle("Label smoothing per measure and degradation (mean, 10–90% band)")
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
