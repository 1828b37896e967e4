"""Robustness grid and confidence analysis: scores of every model on degraded copies of the same images.

Each (type, level) is degraded once, chunk by chunk, with a generator seeded from (seed, type, level),
and every model scores the same degraded chunk, so all models see identical images.
"""

from __future__ import annotations

from itertools import product

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from infomatch.augment import DEGRADATIONS, apply_degradations
from infomatch.seeding import mix_seed


def correct(logits: Tensor, labels: Tensor) -> Tensor:
    return (logits.argmax(dim=1) == labels).float()


def true_class_probability(logits: Tensor, labels: Tensor) -> Tensor:
    return logits.float().softmax(dim=1).gather(1, labels[:, None]).squeeze(1)


@torch.inference_mode()
def degradation_curves(classifiers: list[nn.Module], images: Tensor, labels: Tensor, types: list[str],
                       levels: list[float], score, seed: int, batch_size: int, settings: dict,
                       description: str) -> Tensor:
    """Mean per-image score, (types, levels, models), for uint8 images on the models' device.

    ``settings`` holds apply_degradations' keyword options (blur_sigma_max, blur_kernel_max, dropout_patch).
    """
    device = images.device
    result = torch.zeros(len(types), len(levels), len(classifiers), dtype=torch.float64)
    grid = list(product(enumerate(types), enumerate(levels)))
    for (type_index, kind), (level_index, level) in tqdm(grid, desc=description, unit="level"):
        generator = torch.Generator(device=device).manual_seed(mix_seed(seed, DEGRADATIONS.index(kind), level_index))
        totals = torch.zeros(len(classifiers), dtype=torch.float64, device=device)
        for chunk, chunk_labels in zip(images.split(batch_size), labels.split(batch_size)):
            chunk = chunk.float().div_(255)
            kinds = torch.full((len(chunk),), DEGRADATIONS.index(kind), device=device)
            degraded = apply_degradations(chunk, kinds, torch.full((len(chunk),), float(level), device=device),
                                          generator, **settings)
            for model_index, classifier in enumerate(classifiers):
                totals[model_index] += score(classifier(degraded), chunk_labels).sum()
        result[type_index, level_index] = totals.cpu() / len(labels)
    return result


def curves_by_model(values: Tensor, names: list[str], types: list[str]) -> dict[str, dict[str, list[float]]]:
    """(types, levels, models) tensor -> {model: {type: [value per level]}}."""
    return {name: {kind: values[type_index, :, model_index].tolist() for type_index, kind in enumerate(types)}
            for model_index, name in enumerate(names)}
