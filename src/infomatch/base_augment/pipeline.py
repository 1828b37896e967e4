"""``BaseAugment``, the `base_augment` config group's class: crop + flip, then a policy, then random erasing.

It runs first in the training stage, on the uint8 batch, and gives the clean image every label strategy
compares against; identical for every strategy.
"""

from __future__ import annotations

import torch
from torch import Tensor

from infomatch.base_augment.crop_flip import crop_flip as crop_and_flip
from infomatch.base_augment.erasing import random_erasing as erase
from infomatch.base_augment.policies import Policy
from infomatch.utils.checks import check_integer, check_number, require


class BaseAugment:
    """``crop_flip``: random crop from the zero-padded image (``padding``) + horizontal flip; ``policy``: one of
    the AutoAugment family (``infomatch.base_augment.TrivialAugment``, ...) or None; ``random_erasing``: the
    probability per image of erasing a random rectangle (0: off)."""

    def __init__(self, crop_flip: bool = True, padding: int = 4, policy: Policy | None = None,
                 random_erasing: float = 0.0) -> None:
        require("crop_flip", crop_flip, isinstance(crop_flip, bool), "must be true or false")
        check_integer("padding", padding, 0)
        require("policy", policy, policy is None or isinstance(policy, Policy),
                "must be null or a policy (base_augment=trivialaugment, randaugment, autoaugment or augmix)")
        check_number("random_erasing", random_erasing, 0, 1)
        self.crop_flip, self.padding, self.policy, self.random_erasing = crop_flip, padding, policy, random_erasing

    def __repr__(self) -> str:
        return (f"BaseAugment(crop_flip={self.crop_flip}, padding={self.padding}, policy={self.policy!r}, "
                f"random_erasing={self.random_erasing})")

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """uint8 (B, C, H, W) -> uint8; no random draw for a step that is off, so the others' streams stay put."""
        if self.crop_flip:
            images = crop_and_flip(images, self.padding, generator=generator)
        if self.policy is not None:
            images = self.policy(images, generator)
        if self.random_erasing > 0:
            images = erase(images, self.random_erasing, generator)
        return images
