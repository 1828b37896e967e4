"""Out-of-distribution detection from one score per input, higher meaning "more in-distribution"."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from infomatch.metrics.gathered import Gathered
from infomatch.utils.checks import require


def _check(score_in: Tensor, score_out: Tensor) -> None:
    valid = score_in.ndim == 1 and score_out.ndim == 1 and len(score_in) > 0 and len(score_out) > 0
    require("(score_in.shape, score_out.shape)", (tuple(score_in.shape), tuple(score_out.shape)), valid,
            "must both be non-empty 1-D")


def auroc(score_in: Tensor, score_out: Tensor) -> float:
    """P(in-score > out-score) + P(equal) / 2: the area under the ROC curve with in-distribution as positive."""
    _check(score_in, score_out)
    scores = torch.cat([score_in, score_out]).double()
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    first_rank = counts.cumsum(0) - counts + 1  # ranks of tied values are averaged (Mann-Whitney U)
    ranks = (first_rank + (counts - 1) / 2).double()[inverse]
    positives, negatives = len(score_in), len(score_out)
    return float((ranks[:positives].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(score_positive: Tensor, score_negative: Tensor) -> float:
    """Step-wise area under the precision-recall curve, one step per distinct score (scikit-learn's definition)."""
    _check(score_positive, score_negative)
    scores = torch.cat([score_positive, score_negative]).double()
    positive = torch.cat([torch.ones(len(score_positive)), torch.zeros(len(score_negative))]).double()
    values, inverse = torch.unique(scores, return_inverse=True)  # ascending
    true_per_value = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, positive)
    all_per_value = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(positive))
    true_positives = true_per_value.flip(0).cumsum(0)  # thresholds from the highest score down
    predicted = all_per_value.flip(0).cumsum(0)
    recall_step = true_per_value.flip(0) / len(score_positive)
    return float((recall_step * true_positives / predicted).sum())


def fpr_at_tpr(score_in: Tensor, score_out: Tensor, tpr: float = 0.95) -> float:
    """Fraction of out-of-distribution inputs accepted at the highest threshold that keeps ``tpr`` of the
    in-distribution ones (score >= threshold)."""
    _check(score_in, score_out)
    kept = math.ceil(tpr * len(score_in) - 1e-9)
    threshold = torch.sort(score_in.double(), descending=True).values[kept - 1]
    return float((score_out.double() >= threshold).double().mean())


def ood_detection(score_in: Tensor, score_out: Tensor) -> dict[str, float]:
    """``auroc``, ``aupr_in`` (in-distribution as positive), ``aupr_out`` (out as positive, scores negated) and
    ``fpr95`` (FPR on out-of-distribution inputs at 95% TPR on in-distribution ones)."""
    return {"auroc": auroc(score_in, score_out), "aupr_in": average_precision(score_in, score_out),
            "aupr_out": average_precision(-score_out, -score_in), "fpr95": fpr_at_tpr(score_in, score_out)}


class OODDetection(Gathered):
    """:func:`ood_detection` over batches: ``update(score, is_in)`` with ``is_in`` True for in-distribution."""

    def compute(self) -> dict[str, float]:
        score, is_in = self.gathered()
        is_in = is_in.bool()
        return ood_detection(score[is_in], score[~is_in])
