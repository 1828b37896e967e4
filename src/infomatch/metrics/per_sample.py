"""Per-sample scores of logits against hard labels, one implementation each: the torchmetrics classes, the
robustness grid and temperature scaling all call these. They compute in the logits' dtype; callers choose it."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def nll(logits: Tensor, labels: Tensor) -> Tensor:
    """(B,) negative log-likelihood of the true class."""
    return -logits.log_softmax(dim=1).gather(1, labels[:, None]).squeeze(1)


def brier(logits: Tensor, labels: Tensor) -> Tensor:
    """(B,) multiclass Brier score: squared L2 distance between the softmax and the one-hot label."""
    probabilities = logits.softmax(dim=1)
    return (probabilities - F.one_hot(labels, probabilities.shape[1])).pow(2).sum(dim=1)


def correct(logits: Tensor, labels: Tensor) -> Tensor:
    """(B,) 1.0 where the logits' arg-max is the true class, else 0.0 (no softmax needed)."""
    return (logits.argmax(dim=1) == labels).to(logits.dtype)


def confidence_and_correct(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(B,) max softmax probability and (B,) 1.0 where the arg-max is the true class, else 0.0."""
    confidence, prediction = logits.softmax(dim=1).max(dim=1)
    return confidence, (prediction == labels).to(confidence.dtype)


def true_class_probability(logits: Tensor, labels: Tensor) -> Tensor:
    """(B,) softmax probability of the true class."""
    return logits.softmax(dim=1).gather(1, labels[:, None]).squeeze(1)
