"""Batched normalized mutual information between images and their degraded copies.

Per channel: both images quantized to ``bins`` levels, the joint histogram of the pixel pairs,
I = sum p log(p / (p1 p2)), NMI_c = 2 I / (H1 + H2) (1 when both channels are constant), averaged
over channels. This is scikit-learn's ``normalized_mutual_info_score`` (arithmetic average) on the
binned pixels, computed for a whole batch at once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from infomatch.augment import wide_float


def quantize(x: Tensor, bins: int = 64, dtype: torch.dtype = torch.long) -> Tensor:
    """Bin index floor(x * (bins - 1)), clamped to [0, bins - 1]."""
    # after the clamp x * (bins - 1) >= 0, so the integer cast (truncation) is the floor
    return (x * (bins - 1)).clamp_(0, bins - 1).to(dtype)


def _histogram(keys: Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """Counts of each key in [0, size). Unlike bincount, a scatter-add can count in a narrow dtype
    and does not sync a GPU to find the largest key."""
    ones = torch.ones((), dtype=dtype, device=keys.device).expand(keys.numel())
    return torch.zeros(size, dtype=dtype, device=keys.device).index_add_(0, keys.flatten(), ones)


def _entropy(counts: Tensor, total: int) -> Tensor:
    p = wide_float(counts) / total
    return -torch.where(p > 0, p * p.log(), 0).sum(dim=-1)


def nmi(a: Tensor, b: Tensor, bins: int = 64) -> Tensor:
    """(B,) float32 NMI between the (B, C, H, W) batches ``a`` and ``b`` (values in [0, 1])."""
    batch, channels = a.shape[:2]
    rows = batch * channels
    pixels = math.prod(a.shape[2:])
    # narrow dtypes cut the memory traffic of the big joint histogram; int16 counts only on CPU
    # (GPUs add int32 natively)
    count_dtype = torch.int16 if a.device.type == "cpu" and pixels < 2**15 else torch.int32
    key_dtype = torch.int32 if rows * bins * bins < 2**31 else torch.int64
    # all (image, channel) rows in one histogram: keys offset by the row
    row_offset = torch.arange(0, rows * bins, bins, dtype=key_dtype, device=a.device)[:, None]
    key_joint = quantize(a.reshape(rows, pixels), bins, key_dtype).add_(row_offset).mul_(bins)
    key_joint += quantize(b.reshape(rows, pixels), bins, key_dtype)
    count_joint = _histogram(key_joint, rows * bins * bins, count_dtype)
    # marginals: summing the joint histogram is cheaper than two more scatter passes over the pixels
    joint_2d = count_joint.view(rows, bins, bins)
    count_a, count_b = joint_2d.sum(dim=2, dtype=count_dtype), joint_2d.sum(dim=1, dtype=count_dtype)
    # sum over occupied bins of n log n == sum over pixels of log n at the pixel's own bin: N table
    # look-ups per row instead of bins^2 logs
    log_table = wide_float(torch.arange(pixels + 1, device=a.device)).log()
    pixel_count = count_joint.index_select(0, key_joint.view(-1)).int()
    log_count_sum = log_table.index_select(0, pixel_count).view(rows, pixels).sum(dim=1)
    joint_entropy = math.log(pixels) - log_count_sum / pixels
    entropy_a, entropy_b = _entropy(count_a, pixels), _entropy(count_b, pixels)
    # I = H1 + H2 - H12 == sum p log(p / (p1 p2)); clamp rounding below 0, as scikit-learn does
    mutual_information = (entropy_a + entropy_b - joint_entropy).clamp(min=0)
    entropy_sum = entropy_a + entropy_b
    per_channel = torch.where(entropy_sum > 0, 2 * mutual_information / entropy_sum, 1.0)
    return per_channel.view(batch, channels).mean(dim=1).float()
