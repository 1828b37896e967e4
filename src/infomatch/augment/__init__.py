"""Degradative augmentations: the `augment` config group (``python train.py augment=all``).

``degradations`` holds the batched functions, ``registry`` their settings and type order, ``sampler``
the per-image draw of (type, level) that training applies; the base augmentation before it is
``infomatch.base_augment``.
``mix`` is the `mix` config group: mixup / cutmix of the network's input and the targets (``Mixer``).
"""

from infomatch.augment.degradations import blur, diffusion, dropout, heat, mosaic, noise
from infomatch.augment.mix import MIX_KINDS, Mixer, MixPlan, mix_images, mix_targets
from infomatch.augment.registry import (
                                        DEFAULT_SETTINGS,
                                        DEGRADATIONS,
                                        REFERENCE_DEGRADATIONS,
                                        REGISTRY,
                                        SETTINGS,
                                        Degradation,
                                        Setting,
                                        apply_degradations,
                                        degradation_settings,
                                        describe,
)
from infomatch.augment.sampler import LEVEL_DISTRIBUTIONS, SAMPLINGS, Degrader

__all__ = ["DEFAULT_SETTINGS", "DEGRADATIONS", "LEVEL_DISTRIBUTIONS", "MIX_KINDS", "REFERENCE_DEGRADATIONS",
           "REGISTRY", "SAMPLINGS", "SETTINGS", "Degradation", "Degrader", "MixPlan", "Mixer", "Setting",
           "apply_degradations", "blur", "degradation_settings", "describe", "diffusion", "dropout", "heat",
           "mix_images", "mix_targets", "mosaic", "noise"]
