"""Robustness grid and confidence analysis: scores of every model on degraded copies of the same images.

Each (type, level) is degraded once, chunk by chunk, with a generator seeded from (seed, type, level),
and every model scores the same degraded chunk, so all models see identical images.
"""

from __future__ import annotations

from itertools import product
from typing import cast

import torch
from torch import Tensor, nn

from infomatch.augment import DEGRADATIONS, apply_degradations
from infomatch.data.stage import to_unit_range
from infomatch.metrics.per_sample import brier, correct, nll
from infomatch.utils.console import progress
from infomatch.utils.seeding import mix_seed

# the per-image scores of robustness_scores, in its column order
ROBUSTNESS_SCORES = ("top1", "nll", "brier", "nll_ts", "brier_ts")


def robustness_scores(logits: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """(B, 5) per image: correct, NLL and Brier score, then NLL and Brier after temperature scaling by
    ``temperature``."""
    columns = [correct(logits.float(), labels)]
    for scaled in (logits.float(), logits.float() / temperature):
        columns += [nll(scaled, labels), brier(scaled, labels)]
    return torch.stack(columns, dim=1)


@torch.inference_mode()
def degradation_curves(classifiers: list[nn.Module], images: Tensor, labels: Tensor, degradations: list[str],
                       levels: list[float], score, seed: int, batch_size: int, settings: dict,
                       description: str) -> Tensor:
    """Mean per-image score, (degradations, levels, models[, scores]), for uint8 images on the models' device.

    ``score(logits, labels)`` gives (B,) or (B, scores) per image; a list holds one score function per model.
    ``settings`` holds apply_degradations' keyword settings (blur_sigma_max, ...).
    """
    device = images.device
    scores = score if isinstance(score, list) else [score] * len(classifiers)
    result: Tensor | None = None
    # chunk index -> the models' score sums on the undegraded chunk: level 0 leaves the images unchanged for
    # every evaluation type, so the clean chunk is scored once, not once per type
    unchanged: dict[int, Tensor] = {}
    grid = list(product(enumerate(degradations), enumerate(levels)))
    for (row, name), (level_index, level) in progress(grid, desc=description, unit="level"):
        type_id = DEGRADATIONS.index(name)
        generator = torch.Generator(device=device).manual_seed(mix_seed(seed, type_id, level_index))
        totals: Tensor | None = None
        for index, (chunk, chunk_labels) in enumerate(zip(images.split(batch_size), labels.split(batch_size))):
            chunk = to_unit_range(chunk)
            types = torch.full((len(chunk),), type_id, device=device)
            degraded = apply_degradations(chunk, types, torch.full((len(chunk),), float(level), device=device),
                                          generator, **settings)
            same = torch.equal(degraded, chunk)
            if not same or index not in unchanged:
                sums = torch.stack([model_score(classifier(degraded).float(), chunk_labels).double().sum(dim=0)
                                    for model_score, classifier in zip(scores, classifiers)])
                if same:
                    unchanged[index] = sums
            part = unchanged[index] if same else sums
            totals = part if totals is None else totals + part
        totals = cast(Tensor, totals)  # images.split gives at least one chunk, even of no images
        if result is None:
            result = torch.zeros(len(degradations), len(levels), *totals.shape, dtype=torch.float64)
        result[row, level_index] = totals.cpu() / len(labels)
    # set: the config checks ask for two levels or more and a type (confidence.heatmap_type is one of them)
    return cast(Tensor, result)


def curves_by_model(values: Tensor, names: list[str], degradations: list[str]) -> dict[str, dict[str, list[float]]]:
    """(degradations, levels, models) tensor -> {model: {degradation: [value per level]}}."""
    return {name: {degradation: values[row, :, model_index].tolist() for row, degradation in enumerate(degradations)}
            for model_index, name in enumerate(names)}
