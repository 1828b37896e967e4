"""``BaseAugment``, the `base_augment` config group's class: a crop (crop + flip, or Soft Augmentation's soft crop),
then a policy, then random erasing.

It runs first in the training stage, on the uint8 batch, and gives the clean image every label strategy
compares against, and each image's visible fraction after the crop (``labels=visibility`` reads it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from infomatch.base_augment.crop_flip import crop_flip as crop_and_flip
from infomatch.base_augment.crop_flip import soft_crop as soft_crop_and_flip
from infomatch.base_augment.erasing import random_erasing as erase
from infomatch.base_augment.policies import Policy
from infomatch.utils.checks import check_integer, check_number, require


class BaseAugment:
    """``crop_flip``: random crop from the zero-padded image (``padding``) + horizontal flip; ``soft_crop``: instead,
    Soft Augmentation's flip + shift by int(N(0, soft_crop_sigma^2)) per axis, the rest filled with ``fill`` (uint8
    per channel, by default CIFAR-100's mean colour); ``policy``: one of the AutoAugment family
    (``infomatch.base_augment.TrivialAugment``, ...) or None; ``random_erasing``: the probability per image of
    erasing a random rectangle (0: off)."""

    def __init__(self, crop_flip: bool = True, padding: int = 4, policy: Policy | None = None,
                 random_erasing: float = 0.0, soft_crop: bool = False, soft_crop_sigma: float = 12.0,
                 fill: Sequence[int] = (129, 124, 112)) -> None:
        require("crop_flip", crop_flip, isinstance(crop_flip, bool), "must be true or false")
        require("soft_crop", soft_crop, isinstance(soft_crop, bool), "must be true or false")
        require("soft_crop", soft_crop, not (soft_crop and crop_flip),
                "and crop_flip cannot both be on: the soft crop replaces crop + flip (set crop_flip=false)")
        check_integer("padding", padding, 0)
        check_number("soft_crop_sigma", soft_crop_sigma, 0)
        fill = [int(value) for value in fill] if isinstance(fill, Sequence) else fill
        require("fill", fill, isinstance(fill, list) and all(0 <= value <= 255 for value in fill),
                "must list one uint8 value (0-255) per channel")
        require("policy", policy, policy is None or isinstance(policy, Policy),
                "must be null or a policy (base_augment=trivialaugment, randaugment, autoaugment or augmix)")
        check_number("random_erasing", random_erasing, 0, 1)
        self.crop_flip, self.padding, self.policy, self.random_erasing = crop_flip, padding, policy, random_erasing
        self.soft_crop, self.soft_crop_sigma, self.fill = soft_crop, soft_crop_sigma, fill

    def __repr__(self) -> str:
        crop = (f"soft_crop=True, soft_crop_sigma={self.soft_crop_sigma}, fill={self.fill}" if self.soft_crop
                else f"crop_flip={self.crop_flip}, padding={self.padding}")
        return f"BaseAugment({crop}, policy={self.policy!r}, random_erasing={self.random_erasing})"

    def _fill_on(self, device: torch.device) -> Tensor:
        """The fill colour as a uint8 tensor on ``device``, made once per device rather than copied per batch."""
        cache = self.__dict__.setdefault("_fills", {})
        if device not in cache:
            cache[device] = torch.tensor(self.fill, dtype=torch.uint8, device=device)
        return cache[device]

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """uint8 (B, C, H, W) -> (uint8 images, (B,) visible fraction after the crop, 1 without one); no random
        draw for a step that is off, so the others' streams stay put."""
        visible = torch.ones(images.shape[0], device=images.device)
        if self.crop_flip:
            images, visible = crop_and_flip(images, self.padding, generator=generator)
        elif self.soft_crop:
            require("fill", self.fill, len(self.fill) == images.shape[1], f"must have {images.shape[1]} values")
            images, visible = soft_crop_and_flip(images, self.soft_crop_sigma, self._fill_on(images.device),
                                                 generator=generator)
        if self.policy is not None:
            images = self.policy(images, generator)
        if self.random_erasing > 0:
            images = erase(images, self.random_erasing, generator)
        return images, visible
