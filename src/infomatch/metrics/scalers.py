"""Post-hoc scalers beside temperature scaling, each fitted on held-out logits by minimising the NLL (LBFGS,
float64) and applied as ``scaler(logits) -> calibrated logits``.

- vector scaling: w * z + b (one weight and one bias per class; Guo et al., ICML 2017);
- matrix scaling: W z + b, with off-diagonal and intercept regularisation (ODIR, Kull et al., NeurIPS 2019):
  NLL + lambda / (K (K - 1)) * sum of squared off-diagonal entries of W + mu / K * sum of squared b;
- Dirichlet calibration: the same map and regulariser on the log-probabilities, W log softmax(z) + b
  (Kull et al., NeurIPS 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from infomatch.utils.checks import check_choice

SCALERS = ("vector", "matrix", "dirichlet")


@dataclass
class Scaler:
    """A fitted scaler: ``kind`` (one of SCALERS), weight (K,) for vector or (K, K) otherwise, bias (K,)."""

    kind: str
    weight: Tensor
    bias: Tensor

    def inputs(self, logits: Tensor) -> Tensor:
        logits = logits.double()
        return logits.log_softmax(dim=1) if self.kind == "dirichlet" else logits

    def __call__(self, logits: Tensor) -> Tensor:
        inputs = self.inputs(logits)
        mapped = inputs * self.weight if self.kind == "vector" else inputs @ self.weight.T
        return mapped + self.bias

    def summary(self) -> dict[str, float]:
        """A few numbers that say what was fitted (the full weights are stored apart)."""
        weight = self.weight if self.kind == "vector" else self.weight.diagonal()
        values = {"diagonal_mean": float(weight.mean()), "diagonal_std": float(weight.std()),
                  "bias_abs_mean": float(self.bias.abs().mean())}
        if self.kind != "vector":
            off = self.weight - torch.diag(self.weight.diagonal())
            values["off_diagonal_abs_mean"] = float(off.abs().sum() / max(1, off.numel() - len(off)))
        return values


def _regulariser(kind: str, weight: Tensor, bias: Tensor, off_diagonal: float, intercept: float) -> Tensor:
    if kind == "vector":
        return torch.zeros((), dtype=torch.float64)
    classes = len(bias)
    off = weight - torch.diag(weight.diagonal())
    return (off_diagonal * off.pow(2).sum() / (classes * (classes - 1)) + intercept * bias.pow(2).sum() / classes)


def fit_scaler(kind: str, logits: Tensor, labels: Tensor, off_diagonal: float = 0.01, intercept: float = 0.01,
               max_iter: int = 200) -> Scaler:
    """Fit ``kind`` on (logits, labels) from the identity map (which is where it stays when nothing helps)."""
    check_choice("kind", kind, SCALERS)
    classes = logits.shape[1]
    weight = (torch.ones(classes) if kind == "vector" else torch.eye(classes)).double().requires_grad_()
    bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    start = Scaler(kind, weight, bias)
    inputs = start.inputs(logits.detach())
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-10, tolerance_change=1e-12)

    def loss() -> Tensor:
        mapped = inputs * weight if kind == "vector" else inputs @ weight.T
        return (F.cross_entropy(mapped + bias, labels)
                + _regulariser(kind, weight, bias, off_diagonal, intercept))

    def closure() -> Tensor:
        optimizer.zero_grad()
        value = loss()
        value.backward()
        return value

    optimizer.step(closure)
    return Scaler(kind, weight.detach(), bias.detach())


def fit_scaler_selected(kind: str, logits: Tensor, labels: Tensor, strengths: tuple[float, ...] = (1e2, 1e3, 1e4, 1e5),
                        ) -> tuple[Scaler, float | None]:
    """Fit ``kind`` with its ODIR strength (lambda = mu) chosen among ``strengths``: each fitted on the first half
    of the held-out logits and scored by NLL on the second, the best refitted on all. Vector scaling has no
    regulariser (strength None)."""
    if kind == "vector":
        return fit_scaler(kind, logits, labels), None
    half = len(labels) // 2
    scored = []
    for strength in strengths:
        scaler = fit_scaler(kind, logits[:half], labels[:half], strength, strength)
        scored.append((float(F.cross_entropy(scaler(logits[half:]), labels[half:])), strength))
    strength = min(scored)[1]
    return fit_scaler(kind, logits, labels, strength, strength), strength
