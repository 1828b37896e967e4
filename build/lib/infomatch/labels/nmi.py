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

from infomatch.utils.checks import check_integer
from infomatch.utils.precision import wide_dtype, wide_float

MAX_BINS = 4096  # joint bin indices up to MAX_BINS**2 are whole numbers that float32 holds exactly


def check_bins(bins: int) -> None:
    check_integer("bins", bins, 2, MAX_BINS)


def quantize(x: Tensor, bins: int = 64) -> Tensor:
    """Bin index floor(x * (bins - 1)), clamped to [0, bins - 1], as whole float32 numbers
    (float arithmetic on bin indices is exact and cheaper than int64 on CPU)."""
    return (x.float() * (bins - 1)).clamp_(0, bins - 1).floor_()


def nmi(a: Tensor, b: Tensor, bins: int = 64) -> Tensor:
    """(B,) float32 NMI between the (B, C, H, W) batches ``a`` and ``b`` (values in [0, 1])."""
    check_bins(bins)
    batch, channels = a.shape[:2]
    rows = batch * channels
    pixels = math.prod(a.shape[2:])
    # narrow counts cut the memory traffic of the joint histograms; int16 only on CPU (GPUs add int32 natively)
    count_dtype = torch.int16 if a.device.type == "cpu" and pixels < 2**15 else torch.int32
    # one row per (image, channel): joint bin index of each pixel pair, histogrammed along the row
    # (a row-wise scatter-add runs in parallel over rows and, unlike bincount, never syncs a GPU)
    key = quantize(a.reshape(rows, pixels), bins).mul_(bins).add_(quantize(b.reshape(rows, pixels), bins)).long()
    ones = torch.ones(rows, pixels, dtype=count_dtype, device=a.device)
    joint = torch.zeros(rows, bins * bins, dtype=count_dtype, device=a.device).scatter_add_(1, key, ones)
    # marginals: summing the joint histogram is cheaper than two more scatter passes over the pixels
    joint_2d = joint.view(rows, bins, bins)
    counts = torch.stack((joint_2d.sum(dim=2, dtype=count_dtype), joint_2d.sum(dim=1, dtype=count_dtype)))
    # from probabilities, not counts: a constant channel (p = 1) then has entropy exactly 0
    probabilities = wide_float(counts) / pixels
    entropy_a, entropy_b = -torch.xlogy(probabilities, probabilities).sum(dim=-1)
    # for the joint histogram, sum over occupied bins of n log n == sum over pixels of log n at the
    # pixel's own bin: one gather per pixel instead of bins^2 logs; float32 logs of integers are
    # accurate to 1e-7 relative, and the float64 sum keeps the total exact enough for the NMI tests
    log_count_sum = joint.gather(1, key).float().log_().sum(dim=1, dtype=wide_dtype(a.device))
    joint_entropy = math.log(pixels) - log_count_sum / pixels
    # I = H1 + H2 - H12 == sum p log(p / (p1 p2)); clamp rounding below 0, as scikit-learn does
    entropy_sum = entropy_a + entropy_b
    mutual_information = (entropy_sum - joint_entropy).clamp(min=0)
    per_channel = torch.where(entropy_sum > 0, 2 * mutual_information / entropy_sum, 1.0)
    return per_channel.view(batch, channels).mean(dim=1).float()


def chance_nmi(images: Tensor, bins: int = 64) -> Tensor:
    """(B,) NMI of each image with the next one (an unrelated image): the floor below which NMI carries no signal."""
    return nmi(images, images.roll(1, dims=0), bins)
