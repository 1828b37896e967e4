"""Batched geometric ops of the AutoAugment family: per-image affine matrices, one grid resample for all.

Each matrix is the inverse map (output pixel -> input pixel) that torchvision's ``F.affine`` / ``F.rotate``
build with ``_get_inverse_affine_matrix`` for the op and magnitude, in pixel coordinates centred on the
image; the grid follows torchvision's ``_gen_affine_grid`` (pixel centres, normalized after the matrix),
so a batch resampled here equals torchvision's per-image result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def shear_x_matrix(magnitude: Tensor, height: int, width: int) -> Tensor:
    """F.affine(shear=[degrees(atan(m)), 0], center=[0, 0]): x_in = x + m * (y + H / 2)."""
    slope = _shear_slope(magnitude)
    zero, one = torch.zeros_like(slope), torch.ones_like(slope)
    return torch.stack([torch.stack([one, slope, slope * (height / 2)], -1),
                        torch.stack([zero, one, zero], -1)], -2)


def shear_y_matrix(magnitude: Tensor, height: int, width: int) -> Tensor:
    """F.affine(shear=[0, degrees(atan(m))], center=[0, 0]): y_in = y + m * (x + W / 2)."""
    slope = _shear_slope(magnitude)
    zero, one = torch.zeros_like(slope), torch.ones_like(slope)
    return torch.stack([torch.stack([one, zero, zero], -1),
                        torch.stack([slope, one, slope * (width / 2)], -1)], -2)


def translate_x_matrix(magnitude: Tensor, height: int, width: int) -> Tensor:
    """F.affine(translate=[int(m), 0]): whole pixels, truncated toward zero as int() does."""
    return _translation(-magnitude.double().trunc(), torch.zeros_like(magnitude, dtype=torch.float64))


def translate_y_matrix(magnitude: Tensor, height: int, width: int) -> Tensor:
    return _translation(torch.zeros_like(magnitude, dtype=torch.float64), -magnitude.double().trunc())


def rotate_matrix(magnitude: Tensor, height: int, width: int) -> Tensor:
    """F.rotate(angle=m) about the image centre, counter-clockwise for positive m."""
    angle = torch.deg2rad(-magnitude.double())
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    return torch.stack([torch.stack([cos, sin, zero], -1), torch.stack([-sin, cos, zero], -1)], -2)


def _shear_slope(magnitude: Tensor) -> Tensor:
    # torchvision goes magnitude -> degrees(atan) -> radians -> tan; the same path in float64
    return torch.tan(torch.deg2rad(torch.rad2deg(torch.atan(magnitude.double()))))


def _translation(tx: Tensor, ty: Tensor) -> Tensor:
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return torch.stack([torch.stack([one, zero, tx], -1), torch.stack([zero, one, ty], -1)], -2)


def resample(images: Tensor, matrices: Tensor, interpolation: str = "nearest") -> Tensor:
    """uint8 (B, C, H, W) images resampled through (B, 2, 3) inverse matrices; outside pixels are 0.

    One grid_sample for the whole batch, whatever mix of ops the matrices encode.
    """
    batch, _, height, width = images.shape
    theta = matrices.to(torch.float32)
    xs = torch.linspace(-width * 0.5 + 0.5, width * 0.5 - 0.5, width, device=images.device)
    ys = torch.linspace(-height * 0.5 + 0.5, height * 0.5 - 0.5, height, device=images.device)
    base = torch.stack([xs.expand(height, width), ys[:, None].expand(height, width),
                        torch.ones(height, width, device=images.device)], -1).view(1, height * width, 3)
    scale = torch.tensor([0.5 * width, 0.5 * height], device=images.device)
    grid = base.expand(batch, -1, -1).bmm(theta.transpose(1, 2) / scale).view(batch, height, width, 2)
    out = F.grid_sample(images.float(), grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    return out.round_().to(images.dtype)
