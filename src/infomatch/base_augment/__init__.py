"""Base augmentation (the `base_augment` config group): what every training image gets before degradation.

``crop_flip`` (random crop + flip), the AutoAugment family in ``policies`` (TrivialAugmentWide, RandAugment,
AutoAugment, AugMix) built from the batched ops in ``geometric`` and ``colour`` (registry: ``ops``), and
``erasing``; ``pipeline.BaseAugment`` chains them. All run batched on the device on uint8 images.
"""

from infomatch.base_augment.crop_flip import crop_flip
from infomatch.base_augment.erasing import random_erasing
from infomatch.base_augment.ops import OPS, apply_ops
from infomatch.base_augment.pipeline import BaseAugment
from infomatch.base_augment.policies import POLICIES, AugMix, AutoAugment, Policy, RandAugment, TrivialAugment

__all__ = ["OPS", "POLICIES", "AugMix", "AutoAugment", "BaseAugment", "Policy", "RandAugment", "TrivialAugment",
           "apply_ops", "crop_flip", "random_erasing"]
