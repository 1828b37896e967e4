"""Temperature scaling: one T per model, fitted on the validation split, that minimises the NLL of logits / T."""

from __future__ import annotations

import torch
from torch import Tensor

from infomatch.metrics import per_sample


def nll(logits: Tensor, labels: Tensor, temperature: float | Tensor = 1.0) -> Tensor:
    """Mean NLL of logits / temperature, in float64."""
    return per_sample.nll(logits.double() / temperature, labels).mean()


TEMPERATURE_BOUNDS = (0.01, 100.0)


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 100) -> float:
    """T > 0 minimising the NLL of logits / T (LBFGS on log T, from T = 1, in float64), within
    ``TEMPERATURE_BOUNDS``: a near-chance model's NLL keeps falling as T grows (towards the uniform prediction),
    and the bound is then reported instead of T ~ 1e10 (``at_bound`` tells).

    Never worse than T = 1 on the data it is fitted on: if the optimiser ends above the start, T = 1 is kept.
    """
    logits = logits.detach().double()
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=1, max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nll(logits, labels, log_temperature.exp())
        loss.backward()
        return loss

    optimizer.step(closure)
    low, high = TEMPERATURE_BOUNDS
    temperature = float(log_temperature.detach().exp().nan_to_num(nan=1.0).clamp(low, high))
    if nll(logits, labels, temperature) > nll(logits, labels):
        return 1.0
    return temperature


def at_bound(temperature: float) -> bool:
    """Whether a fitted temperature is one of ``TEMPERATURE_BOUNDS`` (the optimum lay beyond it)."""
    return temperature in TEMPERATURE_BOUNDS
