"""Mixing of training images and their targets, mixup and cutmix: the `mix` config group (``train.py mix=mixup``).

A ``MixPlan`` is drawn once per batch by the training stage (``Mixer.draw``) and applied by the training step:
``mix_images`` to the network's input and ``mix_targets`` to the label strategy's targets. One plan (the same
partners, the same lambda, the same box) holds for every image tensor of the batch, clean and degraded alike;
the label strategy sees the unmixed clean/degraded pair, so each image's targets are its own strategy's targets
(IM's NMI is per original image) and the mixed targets are mixed from them. That is why mixing combines with
every label strategy. Under DDP each rank mixes within its own share of the batch, from its own stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from infomatch.utils.checks import check_choice, check_number
from infomatch.utils.distributions import sample_beta

MIX_KINDS = ("none", "mixup", "cutmix")


@dataclass
class MixPlan:
    """How one batch is mixed.

    partner: (B,) int64, a permutation: the image each image is mixed with
    weight:  (B,) float, lambda: the weight of the image itself (its share of the pixels for cutmix); one value
             for the whole batch, as in the mixup and cutmix papers
    box:     cutmix: (B, 1, H, W) bool, True where the pixel is pasted from the partner; None for mixup
    """

    partner: Tensor
    weight: Tensor
    box: Tensor | None = None


def mix_images(images: Tensor, plan: MixPlan) -> Tensor:
    """(B, C, H, W) -> the mixed batch: inside the box the partner's pixels (cutmix), else
    weight * x + (1 - weight) * x[partner] (mixup)."""
    partners = images[plan.partner]
    if plan.box is not None:
        return torch.where(plan.box, partners, images)
    weight = plan.weight.to(images.dtype).view(-1, *([1] * (images.dim() - 1)))
    return torch.lerp(partners, images, weight)  # partners + weight * (images - partners)


def mix_targets(targets: Tensor, plan: MixPlan) -> Tensor:
    """(B, K) targets -> weight * t + (1 - weight) * t[partner]: still a distribution per row."""
    weight = plan.weight.to(targets.dtype)[:, None]
    return torch.lerp(targets[plan.partner], targets, weight)


class Mixer:
    """Draws a batch's ``MixPlan``: ``kind`` none, mixup (Zhang et al. 2018) or cutmix (Yun et al. 2019).

    Both draw lambda ~ Beta(alpha, alpha) and pair each image with the image a random permutation gives it.
    cutmix pastes the partner's pixels inside a box of side ratio sqrt(1 - lambda) whose centre is uniform over
    the image, clipped to it, and then sets lambda to the share of the image's own pixels, 1 - box area / (H W),
    as the CutMix paper's code does. ``none`` draws nothing, so a run without mixing keeps its random streams.
    """

    def __init__(self, kind: str = "none", alpha: float = 1.0) -> None:
        check_choice("kind", kind, MIX_KINDS)
        check_number("alpha", alpha, 0, low_open=True)
        self.kind = kind
        self.alpha = float(alpha)

    def __repr__(self) -> str:
        return f"Mixer(kind={self.kind!r}, alpha={self.alpha})"

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    def draw(self, batch_size: int, height: int, width: int, generator: torch.Generator | None = None,
             host_generator: torch.Generator | None = None) -> MixPlan | None:
        """The plan of one (B, C, height, width) batch, or None for kind none (and then no random draw at all).

        The partner permutation comes from ``generator``, on its device; lambda and the box, a few numbers per
        batch, from ``host_generator`` (a CPU generator, so no device sync; default ``generator``).
        """
        if not self.enabled:
            return None
        host = host_generator if host_generator is not None else generator
        device = generator.device if generator is not None else torch.device("cpu")
        host_device = host.device if host is not None else None
        partner = torch.randperm(batch_size, generator=generator, device=device)
        weight = float(sample_beta(self.alpha, 1, host, host_device)[0])
        box = None
        if self.kind == "cutmix":
            side = math.sqrt(1 - weight)
            cut_h, cut_w = int(height * side), int(width * side)
            centre_y = int(torch.randint(height, (1,), generator=host, device=host_device))
            centre_x = int(torch.randint(width, (1,), generator=host, device=host_device))
            top, bottom = max(centre_y - cut_h // 2, 0), min(centre_y + cut_h // 2, height)
            left, right = max(centre_x - cut_w // 2, 0), min(centre_x + cut_w // 2, width)
            rows = torch.arange(height, device=device)
            cols = torch.arange(width, device=device)
            inside = ((rows >= top) & (rows < bottom))[:, None] & ((cols >= left) & (cols < right))[None, :]
            box = inside.expand(batch_size, 1, height, width)  # one box for the batch, as in the paper's code
            weight = 1 - (bottom - top) * (right - left) / (height * width)
        return MixPlan(partner, torch.full((batch_size,), weight, device=device), box)
