"""Random crop with zero padding and horizontal flip, batched: the default base augmentation; and Soft
Augmentation's aggressive crop (``soft_crop``). Both also return each image's visible fraction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def visible_fraction(shift_rows: Tensor, shift_cols: Tensor, height: int, width: int) -> Tensor:
    """(B,) share of the original image still inside the frame after shifting it by (rows, cols) pixels."""
    rows = (height - shift_rows.abs()).clamp(min=0)
    cols = (width - shift_cols.abs()).clamp(min=0)
    return (rows * cols).float() / (height * width)


def _shifted(x: Tensor, shift_rows: Tensor, shift_cols: Tensor, flip: Tensor, padding: int,
             fill: Tensor | None = None) -> Tensor:
    """Per image: output pixel (i, j) = input (i + shift_rows, j' + shift_cols), j' = j or W - 1 - j when flipped,
    ``fill`` (or 0) outside the input. Shifts lie in [-padding, padding]."""
    batch, channels, height, width = x.shape
    rows = shift_rows[:, None] + padding + torch.arange(height, device=x.device)  # (B, H), in padded coordinates
    cols = shift_cols[:, None] + padding + torch.arange(width, device=x.device)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    if fill is None:
        padded = F.pad(x, (padding, padding, padding, padding))
    else:  # the image on a canvas of the fill colour
        padded = fill.to(device=x.device, dtype=x.dtype).view(1, -1, 1, 1).repeat(
            batch, 1, height + 2 * padding, width + 2 * padding)
        padded[:, :, padding:padding + height, padding:padding + width] = x
    # one gather of flat pixel indices: 3-6x faster than advanced indexing with four index tensors
    index = (rows[:, :, None] * (width + 2 * padding) + cols[:, None, :]).view(batch, 1, -1)
    return padded.flatten(2).gather(2, index.expand(-1, channels, -1)).view(batch, channels, height, width)


def crop_flip(x: Tensor, padding: int = 4, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(images, visible fraction): per image a random crop of the input's size from the zero-padded image, then
    horizontal flip with p = 0.5.

    Same distribution as torchvision's RandomCrop(size, padding) + RandomHorizontalFlip(); works for
    uint8 and float batches.
    """
    batch, _, height, width = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, batch), generator=generator, device=x.device) - padding
    flip = torch.rand(batch, generator=generator, device=x.device) < 0.5
    return _shifted(x, offsets[0], offsets[1], flip, padding), visible_fraction(offsets[0], offsets[1], height, width)


def _truncated_normal_shift(sigma: float, limit: int, count: int, generator: torch.Generator | None,
                            device: torch.device, tries: int = 8) -> Tensor:
    """(count,) int(N(0, sigma^2)) redrawn while |draw| > limit (the first of ``tries`` that fits, else 0), as
    Soft Augmentation draws its offsets; with sigma <= limit a fallback has odds below 0.32^8 = 1e-4."""
    draws = torch.randn(tries, count, generator=generator, device=device) * sigma
    fits = draws.abs() <= limit
    first = fits.to(torch.uint8).argmax(dim=0)  # first fitting try, 0 when none fits
    chosen = draws.gather(0, first[None]).squeeze(0)
    return torch.where(fits.any(dim=0), chosen, 0).trunc().long()


def soft_crop(x: Tensor, sigma: float = 12.0, fill: Tensor | None = None,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(images, visible fraction): Soft Augmentation's crop (Liu et al., CVPR 2023; code: youngleox/soft_augmentation):
    horizontal flip with p = 0.5, then the image shifted by an offset per axis drawn from int(N(0, sigma^2)) within
    +-(image side), the uncovered area filled with ``fill`` (C,) (None: zeros; the reference: about the data set's
    mean colour).
    """
    batch, _, height, width = x.shape
    flip = torch.rand(batch, generator=generator, device=x.device) < 0.5
    shift_rows = _truncated_normal_shift(sigma, height, batch, generator, x.device)
    shift_cols = _truncated_normal_shift(sigma, width, batch, generator, x.device)
    shifted = _shifted(x, shift_rows, shift_cols, flip, max(height, width), fill)
    return shifted, visible_fraction(shift_rows, shift_cols, height, width)
