"""A network behind its input normalization, as trained and as evaluated: [0, 1] images -> logits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Normalize(nn.Module):
    """(x - mean) / std per channel.

    The statistics are not part of the state dict (training checkpoints keep them beside it, under
    ``infomatch_normalization``), so a training checkpoint's weights stay the network's own, under ``net.``.
    """

    # buffers, registered in __init__
    mean: Tensor
    std: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return (images - self.mean) / self.std

    def statistics(self) -> dict[str, list[float]]:
        """{"mean": [...], "std": [...]}, as checkpoints store them."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}


class NormalizedClassifier(nn.Module):
    """``net`` with its own normalization: takes [0, 1] images, returns logits."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.net = net

    def forward(self, images: Tensor) -> Tensor:
        return self.net(self.normalize(images))
