"""Selective classification: how well a confidence score ranks a model's own errors.

The samples are accepted in order of decreasing confidence (ties in the order of the input); at coverage k/n the
k most confident are accepted. Selective risk = errors accepted / k; generalized risk (Traub et al., 2024,
"Overcoming Common Flaws in the Evaluation of Selective Classification Systems") = errors accepted / n.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from infomatch.metrics.gathered import Gathered
from infomatch.utils.checks import check_number, require


def _accepted_errors(confidence: Tensor, correct: Tensor) -> Tensor:
    """(n,) float64 count of errors among the k most confident samples, k = 1..n."""
    valid = confidence.ndim == 1 and confidence.shape == correct.shape and len(confidence) > 0
    require("(confidence.shape, correct.shape)", (tuple(confidence.shape), tuple(correct.shape)), valid,
            "must be one non-empty 1-D shape")
    order = torch.sort(confidence.double(), descending=True, stable=True).indices
    return (1 - correct.double()[order]).cumsum(0)


def risk_coverage(confidence: Tensor, correct: Tensor) -> tuple[Tensor, Tensor]:
    """(coverage, risk), each (n,) float64: coverage k/n and the selective risk of the k most confident samples."""
    errors = _accepted_errors(confidence, correct)
    accepted = torch.arange(1, len(errors) + 1, dtype=torch.float64, device=errors.device)
    return accepted / len(errors), errors / accepted


def aurc(confidence: Tensor, correct: Tensor) -> float:
    """Area under the risk-coverage curve: the mean selective risk over the n coverages k/n (lower is better)."""
    return float(risk_coverage(confidence, correct)[1].mean())


def augrc(confidence: Tensor, correct: Tensor) -> float:
    """Area under the generalized risk-coverage curve: the mean over k of errors among the k most confident / n."""
    errors = _accepted_errors(confidence, correct)
    return float((errors / len(errors)).mean())


def risk_at_coverage(confidence: Tensor, correct: Tensor, coverage: float = 0.8) -> float:
    """Selective risk of the ceil(coverage * n) most confident samples (coverage in (0, 1])."""
    check_number("coverage", coverage, 0, 1, low_open=True)
    _, risk = risk_coverage(confidence, correct)
    accepted = max(1, math.ceil(coverage * len(risk) - 1e-9))
    return float(risk[accepted - 1])


def coverage_at_risk(confidence: Tensor, correct: Tensor, risk: float = 0.05) -> float:
    """The largest coverage k/n whose selective risk is at most ``risk``; 0.0 when no k reaches it."""
    coverage, risks = risk_coverage(confidence, correct)
    allowed = risks <= risk + 1e-12
    return float(coverage[allowed].max()) if bool(allowed.any()) else 0.0


class AURC(Gathered):
    """:func:`aurc` over every batch seen."""

    def compute(self) -> Tensor:
        return torch.tensor(aurc(*self.gathered()), dtype=torch.float64)


class AUGRC(Gathered):
    """:func:`augrc` over every batch seen."""

    def compute(self) -> Tensor:
        return torch.tensor(augrc(*self.gathered()), dtype=torch.float64)


class RiskAtCoverage(Gathered):
    """:func:`risk_at_coverage` over every batch seen."""

    def __init__(self, coverage: float = 0.8) -> None:
        super().__init__()
        self.coverage = coverage

    def compute(self) -> Tensor:
        return torch.tensor(risk_at_coverage(*self.gathered(), self.coverage), dtype=torch.float64)


class CoverageAtRisk(Gathered):
    """:func:`coverage_at_risk` over every batch seen."""

    def __init__(self, risk: float = 0.05) -> None:
        super().__init__()
        self.risk = risk

    def compute(self) -> Tensor:
        return torch.tensor(coverage_at_risk(*self.gathered(), self.risk), dtype=torch.float64)
