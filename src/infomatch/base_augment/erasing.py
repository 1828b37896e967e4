"""Random erasing (Zhong et al., AAAI 2020), batched: torchvision's RandomErasing drawn per image."""

from __future__ import annotations

import math

import torch
from torch import Tensor

ATTEMPTS = 10  # torchvision's number of tries for a rectangle that fits


def random_erasing(images: Tensor, probability: float, generator: torch.Generator | None = None,
                   scale: tuple[float, float] = (0.02, 0.33), ratio: tuple[float, float] = (0.3, 3.3)) -> Tensor:
    """With ``probability`` per image, set a random rectangle to 0.

    As torchvision's RandomErasing(value=0): area fraction ~ U(scale), log aspect ratio ~ U(log ratio), sides
    rounded; the first of 10 draws that fits inside the image is used (none: the image is left unchanged), at
    a uniformly random position.
    """
    batch, _, height, width = images.shape
    device = images.device
    erase = torch.rand(batch, generator=generator, device=device) < probability
    area = height * width * (scale[0] + (scale[1] - scale[0]) * torch.rand(batch, ATTEMPTS, generator=generator,
                                                                           device=device, dtype=torch.float64))
    low, high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(low + (high - low) * torch.rand(batch, ATTEMPTS, generator=generator, device=device,
                                                       dtype=torch.float64))
    rows, cols = (area * aspect).sqrt().round().long(), (area / aspect).sqrt().round().long()
    fits = (rows < height) & (cols < width)
    first = fits.long().argmax(dim=1, keepdim=True)  # the first attempt that fits (0 when none does)
    rows, cols = rows.gather(1, first).squeeze(1), cols.gather(1, first).squeeze(1)
    erase &= fits.any(dim=1)
    top = (torch.rand(batch, generator=generator, device=device) * (height - rows + 1)).long()
    left = (torch.rand(batch, generator=generator, device=device) * (width - cols + 1)).long()
    y = torch.arange(height, device=device)
    x = torch.arange(width, device=device)
    inside_rows = (y >= top[:, None]) & (y < (top + rows)[:, None])
    inside_cols = (x >= left[:, None]) & (x < (left + cols)[:, None])
    box = inside_rows[:, :, None] & inside_cols[:, None, :] & erase[:, None, None]
    return images.masked_fill(box[:, None], 0)
