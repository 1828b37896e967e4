"""A trained model's strategy name: its labels strategy plus what set its training apart from that strategy's own
recipe (im_ssim, hard_mollify, im_trivialaugment_mixup). Models sharing a name are pooled over seeds, so every
setting that changes what a run learns from must show in the name or be refused where runs are pooled
(:func:`infomatch.tasks.results.load_study`)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from infomatch.augment import Degrader
from infomatch.base_augment import POLICIES

AUGMENT_OPTIONS = Path(__file__).resolve().parents[1] / "configs" / "augment"
DEFAULT_DEGRADATION = "all"  # train.yaml's augment option: every strategy's, unless it or its crop says otherwise


def degradation_identity(settings: Mapping[str, Any]) -> tuple:
    """What tells two degradation configs apart in a name: the types, the share of images degraded and the level
    distribution (Degrader's defaults for what an older config did not store yet)."""
    given = {key: value for key, value in settings.items() if key != "_target_"}
    bound = inspect.signature(Degrader).bind_partial(**given)
    bound.apply_defaults()
    arguments = bound.arguments
    types = arguments["types"]
    types = (types,) if isinstance(types, str) else tuple(dict.fromkeys(types))
    if not types or float(arguments["probability"]) == 0:
        return ()
    beta = arguments["level_distribution"] == "beta"
    return (types, float(arguments["probability"]), arguments["level_distribution"],
            (float(arguments["level_a"]), float(arguments["level_b"])) if beta else None)


@cache
def degradation_options() -> dict[tuple, str]:
    """{identity: option name} of configs/augment/*.yaml (an option's ``defaults`` merged under it)."""
    options: dict[tuple, str] = {}
    for file in sorted(AUGMENT_OPTIONS.glob("*.yaml")):
        option = cast(DictConfig, OmegaConf.load(file))  # an augment option is a mapping
        parents = [name for name in option.pop("defaults", []) if name != "_self_"]
        merged = OmegaConf.merge(*(OmegaConf.load(AUGMENT_OPTIONS / f"{name}.yaml") for name in parents), option)
        options.setdefault(degradation_identity(cast(dict[str, Any], OmegaConf.to_container(merged))), file.stem)
    return options


def degradation_name(settings: Mapping[str, Any]) -> str:
    """The augment option these settings are, or a description of them (blur_p0.5, noise_heat_beta1-2)."""
    identity = degradation_identity(settings)
    option = degradation_options().get(identity)
    if option is not None:
        return option
    types, probability, distribution, shape = identity
    words = ["_".join(types)]
    if probability < 1:
        words.append(f"p{probability:.2g}")
    if distribution != "uniform":
        words.append(distribution + ("" if shape is None else f"{shape[0]:g}-{shape[1]:g}"))
    return "_".join(words)


def own_degradation(labels: Any, soft_crop: bool) -> str:
    """The augment option a strategy's recipe trains with: the one its class names (mollify: Mollification's
    inputs), none with the soft crop (Soft Augmentation: the crop is the degradation), else train.yaml's."""
    return getattr(labels, "degradation", None) or ("none" if soft_crop else DEFAULT_DEGRADATION)


def recipe_parts(config: Mapping[str, Any], labels: Any) -> list[str]:
    """What sets a model's training apart from its strategy's own recipe, for its name: a measure other than NMI,
    a degradation other than the recipe's, a base augmentation policy, the soft crop, random erasing, mixing.
    Runs stored before a setting existed had its default and keep their names."""
    parts = []
    measure = getattr(labels, "measure", "nmi")
    if measure != "nmi":
        parts.append(measure)
    base_augment = config.get("base_augment") or {}
    soft_crop = bool(base_augment.get("soft_crop"))
    if config.get("augment") is not None:
        degradation = degradation_name(config["augment"])
        if degradation != own_degradation(labels, soft_crop):
            parts.append(degradation)
    policy = (base_augment.get("policy") or {}).get("_target_", "")
    parts += [name for name, cls in POLICIES.items() if policy.endswith(f".{cls.__name__}")]
    if soft_crop:
        parts.append("soft_crop")
    if (base_augment.get("random_erasing") or 0) > 0:
        parts.append("erasing")
    kind = (config.get("mix") or {}).get("kind", "none")
    if kind != "none":
        parts.append(kind)
    return parts


def strategy_name(config: Mapping[str, Any], labels: Any) -> str:
    """The name a model's seeds are pooled under: its labels strategy's name and :func:`recipe_parts`."""
    return "_".join([labels.name, *recipe_parts(config, labels)])
