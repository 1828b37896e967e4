"""Calibration measures beyond the top-label ECE, on probabilities (B, K) and hard labels (B,).

Bins are [b/B, (b+1)/B) with 1.0 in the last, as torchmetrics' ECE bins them, so every binned measure here and the
reliability diagram agree with the ECE reported beside them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from infomatch.metrics.gathered import Gathered


def bin_index(values: Tensor, bins: int) -> Tensor:
    """Bin of each value in [0, 1] among ``bins`` equal-width bins (torchmetrics' ECE binning)."""
    edges = torch.linspace(0, 1, bins + 1, dtype=values.dtype, device=values.device)
    return (torch.bucketize(values.contiguous(), edges, right=True) - 1).clamp(0, bins - 1)


def _bin_gaps(confidence: Tensor, outcome: Tensor, bins: int) -> tuple[Tensor, Tensor]:
    """Per bin: share of the samples, |mean confidence - mean outcome| (0 for an empty bin)."""
    index = bin_index(confidence, bins)
    count = torch.bincount(index, minlength=bins).double()
    confidence_sum = torch.bincount(index, confidence.double(), minlength=bins)
    outcome_sum = torch.bincount(index, outcome.double(), minlength=bins)
    return count / len(confidence), (confidence_sum - outcome_sum).abs() / count.clamp_min(1)


def _top_label(probs: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    confidence, prediction = probs.double().max(dim=1)
    return confidence, (prediction == labels).double()


def classwise_ece(probs: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """Mean over classes k of the binned ECE of p_k against 1[y = k] (Kull et al., NeurIPS 2019)."""
    probs = probs.double()
    total = 0.0
    for k in range(probs.shape[1]):
        share, gap = _bin_gaps(probs[:, k], (labels == k).double(), n_bins)
        total += float((share * gap).sum())
    return total / probs.shape[1]


def max_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """The largest |accuracy - mean confidence| over the non-empty top-label confidence bins."""
    share, gap = _bin_gaps(*_top_label(probs, labels), n_bins)
    return float(gap[share > 0].max())


def _reflected_gaussian(grid: int, bandwidth: float, device: torch.device) -> Tensor:
    """(G, G) Gaussian kernel between the points of a G-point grid on [0, 1], reflected at both ends so each column
    integrates to 1 over [0, 1]; images of x lie at 2k + x and 2k - x (k = -2..2; farther ones add < 1e-300)."""
    steps = grid - 1
    offsets = torch.arange(-6 * steps, 6 * steps + 1, dtype=torch.float64, device=device)
    gaussian = torch.exp(-0.5 * (offsets / (steps * bandwidth)) ** 2) / (bandwidth * math.sqrt(2 * math.pi))
    index = torch.arange(grid, device=device)
    difference, total = index[:, None] - index[None, :], index[:, None] + index[None, :]
    kernel = torch.zeros(grid, grid, dtype=torch.float64, device=device)
    for shift in range(-2, 3):
        kernel += gaussian[difference - 2 * steps * shift + 6 * steps] + gaussian[total - 2 * steps * shift + 6 * steps]
    return kernel


def _residual_on_grid(confidence: Tensor, outcome: Tensor, grid: int) -> Tensor:
    """The residuals y - f spread onto a G-point grid by linear interpolation (the kernel is then G x G, not G x n)."""
    position = confidence.double().clamp(0, 1) * (grid - 1)
    left = position.floor().long().clamp(max=grid - 2)
    right_share = position - left
    residual = outcome.double() - confidence.double()
    mass = torch.zeros(grid, dtype=torch.float64, device=confidence.device)
    mass.index_add_(0, left, residual * (1 - right_share))
    return mass.index_add_(0, left + 1, residual * right_share)


def smooth_ece_at(confidence: Tensor, outcome: Tensor, bandwidth: float, grid: int = 401) -> float:
    """smECE at one bandwidth: the integral over t in [0, 1] of |mean_i K(t, f_i)(y_i - f_i)| (trapezoid rule on
    the grid, each f_i spread onto its two neighbouring grid points)."""
    mass = _residual_on_grid(confidence, outcome, grid)
    smoothed = (_reflected_gaussian(grid, bandwidth, confidence.device) @ mass).abs() / len(confidence)
    return float(torch.trapezoid(smoothed, dx=1 / (grid - 1)))


def smooth_ece(probs: Tensor, labels: Tensor, bandwidth: float | None = None) -> float:
    """Smooth ECE of the top-label confidence (Blasiok & Nakkiran, ICLR 2024): kernel-smoothed residuals with a
    reflected Gaussian kernel, at the bandwidth sigma where smECE(sigma) = sigma (bisection) unless given."""
    confidence, correct = _top_label(probs, labels)
    if not bool(torch.isfinite(confidence).all()):  # NaN probabilities (a model with non-finite weights)
        return float("nan")
    if bandwidth is not None:
        return smooth_ece_at(confidence, correct, bandwidth)
    low, high = 1e-4, 1.0  # smECE(sigma) - sigma falls with sigma: one crossing
    if smooth_ece_at(confidence, correct, low) <= low:
        return smooth_ece_at(confidence, correct, low)
    for _ in range(20):  # bisection on log sigma: 20 steps leave sigma within a factor 1.00001
        middle = math.sqrt(low * high)
        if smooth_ece_at(confidence, correct, middle) > middle:
            low = middle
        else:
            high = middle
    return smooth_ece_at(confidence, correct, high)


class _Binned(Gathered):
    """(probs, labels) over batches, reduced with ``n_bins`` bins."""

    def __init__(self, n_bins: int = 15) -> None:
        super().__init__()
        self.n_bins = n_bins


class ClasswiseCalibrationError(_Binned):
    """:func:`classwise_ece` over every batch seen."""

    def compute(self) -> Tensor:
        return torch.tensor(classwise_ece(*self.gathered(), self.n_bins), dtype=torch.float64)


class MaxCalibrationError(_Binned):
    """:func:`max_calibration_error` over every batch seen."""

    def compute(self) -> Tensor:
        return torch.tensor(max_calibration_error(*self.gathered(), self.n_bins), dtype=torch.float64)


class SmoothCalibrationError(Gathered):
    """:func:`smooth_ece` over every batch seen."""

    def compute(self) -> Tensor:
        return torch.tensor(smooth_ece(*self.gathered()), dtype=torch.float64)
