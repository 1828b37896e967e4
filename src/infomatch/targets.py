"""Training targets: hard one-hot labels, fixed label smoothing, and Information Matching (IM).

Each strategy is called as ``strategy(batch, num_classes) -> (targets, epsilon)`` with the
``TrainingBatch`` of the data stage (clean and degraded images, labels, each sample's degradation
type and level); ``targets`` is (B, K) and ``epsilon`` (B,) the smoothing each sample received.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from infomatch.batch import TrainingBatch
from infomatch.checks import check_choice, check_number
from infomatch.nmi import check_bins, nmi

SPREADS = ("all", "others")


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    return F.one_hot(labels, num_classes).float()


def smooth(labels: Tensor, num_classes: int, epsilon: float | Tensor, spread: str = "all") -> Tensor:
    """Smoothed targets with a scalar or per-sample (B,) epsilon.

    all:    y = (1 - eps) * onehot + eps / K           (reference code)
    others: y_c = 1 - eps, y_k = eps / (K - 1), k != c  (reference paper)
    """
    check_choice("spread", spread, SPREADS)
    hot = one_hot(labels, num_classes)
    eps = torch.as_tensor(epsilon, dtype=hot.dtype, device=hot.device).reshape(-1, 1)
    if spread == "all":
        return (1 - eps) * hot + eps / num_classes
    return (1 - eps) * hot + eps / (num_classes - 1) * (1 - hot)


def im_epsilon(nmi_values: Tensor, eps_max: float = 0.9) -> Tensor:
    """IM smoothing: the information the degradation destroyed, clamp(1 - NMI, 0, eps_max)."""
    return (1 - nmi_values).clamp(0, eps_max)


@dataclass
class HardLabels:
    name: ClassVar[str] = "hard"

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        return one_hot(batch.labels, num_classes), torch.zeros(len(batch), device=batch.labels.device)


@dataclass
class LabelSmoothing:
    """The same epsilon for every sample."""

    epsilon: float = 0.1
    spread: str = "all"
    name: ClassVar[str] = "ls"

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, 0, 1, high_open=True)
        check_choice("spread", self.spread, SPREADS)

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        epsilon = torch.full((len(batch),), float(self.epsilon), device=batch.labels.device)
        return smooth(batch.labels, num_classes, epsilon, self.spread), epsilon


@dataclass
class InformationMatching:
    """Per-sample epsilon = clamp(1 - NMI(clean, degraded), 0, eps_max)."""

    eps_max: float = 0.9
    bins: int = 64
    spread: str = "all"
    name: ClassVar[str] = "im"

    def __post_init__(self) -> None:
        check_number("eps_max", self.eps_max, 0, 1)
        check_bins(self.bins)
        check_choice("spread", self.spread, SPREADS)

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        epsilon = im_epsilon(nmi(batch.clean, batch.degraded, self.bins), self.eps_max)
        return smooth(batch.labels, num_classes, epsilon, self.spread), epsilon
