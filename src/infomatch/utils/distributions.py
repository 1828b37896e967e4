"""Seeded draws torch has no generator-taking sampler for: Gamma (Marsaglia-Tsang) and Beta."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _log_uniform(count: int, generator: torch.Generator | None, device: torch.device | None) -> Tensor:
    """log U, U ~ U(0, 1], float64: never log 0."""
    return torch.log1p(-torch.rand(count, generator=generator, dtype=torch.float64, device=device))


def _log_gamma(shape: float, count: int, generator: torch.Generator | None,
               device: torch.device | None = None) -> Tensor:
    """log of ``count`` Gamma(shape, 1) draws, float64, every number from ``generator``.

    Marsaglia and Tsang's exact rejection method (ACM TOMS 26, 2000); for shape < 1 through
    Gamma(shape) = Gamma(shape + 1) * U^(1/shape), kept in logs so small shapes do not underflow.
    torch's own Gamma and Beta samplers take no generator, so a seeded stage could not use them.
    """
    boost = torch.zeros(count, dtype=torch.float64, device=device)
    if shape < 1:
        boost = _log_uniform(count, generator, device) / shape
        shape += 1
    d = shape - 1 / 3
    c = 1 / math.sqrt(9 * d)
    drawn = torch.empty(count, dtype=torch.float64, device=device)
    pending = torch.arange(count, device=device)
    while pending.numel():  # each round accepts at least 95% of the pending draws
        x = torch.randn(pending.numel(), generator=generator, dtype=torch.float64, device=device)
        log_u = _log_uniform(pending.numel(), generator, device)
        v = (1 + c * x) ** 3
        accepted = (v > 0) & (log_u < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        drawn[pending[accepted]] = torch.log(d * v[accepted])
        pending = pending[~accepted]
    return drawn + boost


def sample_beta(alpha: float, count: int, generator: torch.Generator | None = None,
                device: torch.device | None = None, beta: float | None = None) -> Tensor:
    """``count`` Beta(alpha, beta) draws (float64; beta None: alpha) from ``generator``: X / (X + Y) for
    X ~ Gamma(alpha), Y ~ Gamma(beta)."""
    log_x = _log_gamma(alpha, count, generator, device)
    log_y = _log_gamma(alpha if beta is None else beta, count, generator, device)
    return torch.sigmoid(log_x - log_y)  # X / (X + Y), computed from the logs
