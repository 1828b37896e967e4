"""Batched pixel ops of the AutoAugment family on uint8 (B, C, H, W) images, one magnitude per image.

Each computes what torchvision's tensor op (``torchvision.transforms.functional``) computes image by image,
including its rounding: blends are truncated to uint8, the sharpness filter is rounded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _per_image(values: Tensor) -> Tensor:
    return values.view(-1, 1, 1, 1)


def blend(images: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """torchvision's _blend: factor * images + (1 - factor) * other, clamped and truncated to uint8."""
    ratio = _per_image(factor.double())
    # torchvision forms factor and 1 - factor as Python floats (float64), then each rounds to float32
    mixed = ratio.float() * images + (1.0 - ratio).float() * other
    return mixed.clamp_(0, 255).to(torch.uint8)


def grayscale(images: Tensor) -> Tensor:
    """(B, 1, H, W) uint8 luma, 0.2989 R + 0.587 G + 0.114 B truncated, as torchvision's rgb_to_grayscale."""
    red, green, blue = images.unbind(dim=1)
    return (0.2989 * red + 0.587 * green + 0.114 * blue).to(torch.uint8).unsqueeze(1)


def brightness(images: Tensor, magnitude: Tensor) -> Tensor:
    return blend(images, torch.zeros_like(images), 1.0 + magnitude.double())


def color(images: Tensor, magnitude: Tensor) -> Tensor:
    """Saturation: blend with the grayscale image."""
    return blend(images, grayscale(images), 1.0 + magnitude.double())


def contrast(images: Tensor, magnitude: Tensor) -> Tensor:
    """Blend with the mean of the grayscale image."""
    mean = grayscale(images).float().mean(dim=(1, 2, 3), keepdim=True)
    return blend(images, mean, 1.0 + magnitude.double())


def sharpness(images: Tensor, magnitude: Tensor) -> Tensor:
    """Blend with a 3 x 3 smoothed image ([[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13) whose border pixels are the
    image's own."""
    channels = images.shape[1]
    kernel = torch.ones(3, 3, device=images.device)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(channels, 1, 3, 3)
    smoothed = images.clone()
    smoothed[..., 1:-1, 1:-1] = F.conv2d(images.float(), kernel, groups=channels).round_().to(torch.uint8)
    return blend(images, smoothed, 1.0 + magnitude.double())


def posterize(images: Tensor, magnitude: Tensor) -> Tensor:
    """Keep the int(m) high bits of every channel value."""
    bits = magnitude.long()
    mask = (256 - (2 ** (8 - bits))).to(torch.uint8)
    return images & _per_image(mask)


def solarize(images: Tensor, magnitude: Tensor) -> Tensor:
    """Invert every value >= the threshold m (on the 0-255 scale)."""
    return torch.where(images >= _per_image(magnitude.float()), 255 - images, images)


def autocontrast(images: Tensor, magnitude: Tensor) -> Tensor:
    """Stretch each channel to [0, 255]; a constant channel is left as it is."""
    low = images.amin(dim=(2, 3), keepdim=True).float()
    high = images.amax(dim=(2, 3), keepdim=True).float()
    scale = 255.0 / (high - low)
    constant = ~torch.isfinite(scale)
    low = low.masked_fill(constant, 0)
    scale = scale.masked_fill(constant, 1)
    return ((images - low) * scale).clamp_(0, 255).to(torch.uint8)


def equalize(images: Tensor, magnitude: Tensor) -> Tensor:
    """Histogram equalization per image and channel with torchvision's integer lookup table.

    The 256-bin histograms of all channels come from one scatter; a channel whose values all but its top
    one are too few to fill a step (step = 0) is left unchanged, as torchvision leaves it.
    """
    batch, channels, height, width = images.shape
    flat = images.reshape(batch * channels, height * width).long()
    hist = torch.zeros(batch * channels, 256, dtype=torch.long, device=images.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    top_count = hist.gather(1, flat.amax(dim=1, keepdim=True))  # the last non-empty bin
    step = (height * width - top_count).div(255, rounding_mode="floor")
    lut = (hist.cumsum(1) + step.div(2, rounding_mode="floor")).div(step.clamp(min=1), rounding_mode="floor")
    lut = F.pad(lut, (1, 0))[:, :-1].clamp(0, 255)
    equalized = lut.gather(1, flat)
    return torch.where(step > 0, equalized, flat).to(torch.uint8).view(images.shape)


def invert(images: Tensor, magnitude: Tensor) -> Tensor:
    return 255 - images


def identity(images: Tensor, magnitude: Tensor) -> Tensor:
    return images
