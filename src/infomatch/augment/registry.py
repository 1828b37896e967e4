"""The registry of degradations (type index order, settings, plot titles) and the grouped batch apply.

A new degradation is one function in ``degradations.py`` registered here plus its ``configs/augment`` YAML.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from infomatch.augment.degradations import blur, diffusion, dropout, heat, mosaic, noise
from infomatch.utils.checks import SettingError, check_number


@dataclass(frozen=True)
class Setting:
    """A numeric setting of a degradation: its function's keyword, the training default, the least valid value."""

    keyword: str
    default: float
    minimum: float


@dataclass(frozen=True)
class Degradation:
    """A registered degradation: the batched function, its settings by config name, and a plot title that
    may quote them (``{blur_sigma_max:g}``). The function is called as function(x, level, **settings),
    plus ``generator`` when it takes one."""

    function: Callable[..., Tensor]
    title: str
    settings: dict[str, Setting] = field(default_factory=dict)
    random: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "random", "generator" in inspect.signature(self.function).parameters)

    def __call__(self, x: Tensor, level: Tensor, generator: torch.Generator | None, settings: dict) -> Tensor:
        keywords = {setting.keyword: settings[name] for name, setting in self.settings.items()}
        if self.random:
            keywords["generator"] = generator
        return self.function(x, level, **keywords)


# the degradations in type-index order; the defaults are the training parameters
REGISTRY: dict[str, Degradation] = {
    "diffusion": Degradation(diffusion, "Diffusion noise (DDPM, t = 999·d)"),
    "blur": Degradation(blur, "Gaussian blur (σ = {blur_sigma_max:g}·d, kernel ≤ {blur_kernel_max})",
                        {"blur_sigma_max": Setting("sigma_max", 50.0, 0),
                         "blur_kernel_max": Setting("kernel_max", 51, 1)}),
    "dropout": Degradation(dropout, "Patch dropout ({dropout_patch}×{dropout_patch} patches, fraction d zeroed)",
                           {"dropout_patch": Setting("patch", 8, 1)}),
    "mosaic": Degradation(mosaic, "Mosaic (block side ⌊32·(d + 0.001)²⌋ px)"),
    # Mollification's pair (augment=mollify)
    "noise": Degradation(noise, "Cosine-schedule noise (signal cos(πd/2), noise sin(πd/2))"),
    "heat": Degradation(heat, "Heat dissipation blur (scale {heat_scale_min:g}→{heat_scale_max:g} px, log in d)",
                        {"heat_scale_min": Setting("scale_min", 0.3, 0),
                         "heat_scale_max": Setting("scale_max", 32.0, 0)}),
}
DEGRADATIONS = tuple(REGISTRY)
# the reference's four, augment=all: the default of a Degrader
REFERENCE_DEGRADATIONS = ("diffusion", "blur", "dropout", "mosaic")
SETTINGS = {name: setting for degradation in REGISTRY.values() for name, setting in degradation.settings.items()}
DEFAULT_SETTINGS = {name: setting.default for name, setting in SETTINGS.items()}


def degradation_settings(**given: float) -> dict[str, float]:
    """Every registered setting: ``given`` over the training defaults, range-checked."""
    for name, value in given.items():
        if name not in SETTINGS:
            raise SettingError(name, value, f"is not a degradation setting; known: {', '.join(SETTINGS)}")
        check_number(name, value, SETTINGS[name].minimum)
    return {**DEFAULT_SETTINGS, **given}


def describe(name: str, settings: dict) -> str:
    """Title of a degradation and what its level d means, with ``settings`` quoted."""
    return REGISTRY[name].title.format(**settings)


def apply_degradations(
    x: Tensor, types: Tensor, level: Tensor, generator: torch.Generator | None = None,
    grouping: tuple[Tensor, list[int]] | None = None, **settings: float
) -> Tensor:
    """Degrade image i by DEGRADATIONS[types[i]] at level[i]; type -1 leaves it unchanged.

    ``settings`` override DEFAULT_SETTINGS. Random draws happen type by type in DEGRADATIONS order, each
    on that type's subset. ``grouping`` (order, sizes), when the caller knows it, says which images form
    each type's group: order[:sizes[0]] stay unchanged, the next sizes[1] get DEGRADATIONS[0], and so on.
    Without it the batch is sorted by type (a stable sort keeps each group in batch order), which costs
    one host sync to learn the group sizes.
    """
    unknown = settings.keys() - DEFAULT_SETTINGS.keys()
    if unknown:
        raise SettingError("settings", sorted(unknown), f"are unknown: known are {', '.join(DEFAULT_SETTINGS)}")
    settings = {**DEFAULT_SETTINGS, **settings}
    if grouping is None:
        order = types.argsort(stable=True)
        type_ids = torch.arange(-1, len(DEGRADATIONS), device=types.device)
        sizes = (types[:, None] == type_ids).sum(dim=0).tolist()
    else:
        order, sizes = grouping
    image_groups = x.index_select(0, order).split(sizes)
    level_groups = level.index_select(0, order).split(sizes)
    pieces = [image_groups[0]]  # type -1: unchanged
    for degradation, images, levels in zip(REGISTRY.values(), image_groups[1:], level_groups[1:]):
        pieces.append(degradation(images, levels, generator, settings) if images.shape[0] else images)
    return torch.empty_like(x).index_copy_(0, order, torch.cat(pieces))
