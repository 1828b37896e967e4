"""Random crop with zero padding and horizontal flip, batched: the default base augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def crop_flip(x: Tensor, padding: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """Per image: random crop of the input's size from the zero-padded image, then horizontal flip with p = 0.5.

    Same distribution as torchvision's RandomCrop(size, padding) + RandomHorizontalFlip(); works for
    uint8 and float batches.
    """
    batch, channels, height, width = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, batch, 1), generator=generator, device=x.device)
    flip = torch.rand(batch, 1, generator=generator, device=x.device) < 0.5
    rows = offsets[0] + torch.arange(height, device=x.device)  # (B, H), in padded coordinates
    cols = offsets[1] + torch.arange(width, device=x.device)
    cols = torch.where(flip, cols.flip(1), cols)
    padded = F.pad(x, (padding, padding, padding, padding))
    # one gather of flat pixel indices: 3-6x faster than advanced indexing with four index tensors
    index = (rows[:, :, None] * (width + 2 * padding) + cols[:, None, :]).view(batch, 1, -1)
    return padded.flatten(2).gather(2, index.expand(-1, channels, -1)).view(batch, channels, height, width)
