"""Classification metrics on the hard label: top-1, top-5 and binned L1 ECE from torchmetrics; NLL and the
Brier score, which torchmetrics lacks, as per-sample means."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric, Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from infomatch.metrics.per_sample import brier, confidence_and_correct, nll


class NegativeLogLikelihood(MeanMetric):
    """Mean cross-entropy of the hard label, averaged over samples (not over batches)."""

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        super().update(nll(logits.float(), target))


class BrierScore(MeanMetric):
    """Multiclass Brier score: squared L2 distance between softmax and one-hot label, averaged over samples.

    torchmetrics has no multiclass Brier score.
    """

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        super().update(brier(logits.float(), target))


class ConfidenceGap(MeanMetric):
    """Mean (confidence - correct) = mean confidence - accuracy: > 0 over-confident, < 0 under-confident."""

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        confidence, correct = confidence_and_correct(logits.float(), target)
        super().update(confidence - correct)


class AdaptiveCalibrationError(Metric):
    """Equal-mass (adaptive) ECE: samples sorted by confidence, cut into ``bins`` groups of (nearly) equal size,
    sum over groups of (size / N) * |mean confidence - accuracy|. Unlike the binned ECE, no bin is nearly empty."""

    # states, one tensor a batch (add_state in __init__)
    confidence: list[torch.Tensor]
    correct: list[torch.Tensor]

    def __init__(self, bins: int = 15) -> None:
        super().__init__()
        self.bins = bins
        self.add_state("confidence", default=[], dist_reduce_fx="cat")
        self.add_state("correct", default=[], dist_reduce_fx="cat")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        confidence, correct = confidence_and_correct(logits.float(), target)
        self.confidence.append(confidence.double())
        self.correct.append(correct.double())

    def compute(self) -> torch.Tensor:
        confidence, correct = torch.cat(self.confidence), torch.cat(self.correct)
        order = confidence.argsort()
        gaps = [(group_confidence.sum() - group_correct.sum()).abs()
                for group_confidence, group_correct in zip(confidence[order].tensor_split(self.bins),
                                                           correct[order].tensor_split(self.bins))]
        return torch.stack(gaps).sum() / len(confidence)


def classification_metrics(num_classes: int, ece_bins: int = 15) -> MetricCollection:
    """Metrics that take (probabilities, labels). Accuracy must be micro-averaged to be plain accuracy."""
    return MetricCollection({
        "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
        "top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
        "ece": MulticlassCalibrationError(num_classes, n_bins=ece_bins, norm="l1"),
    })


class EvaluationMetrics(torch.nn.Module):
    """top-1, top-5, ECE on probabilities and NLL on logits, updated together from logits."""

    def __init__(self, num_classes: int, ece_bins: int = 15) -> None:
        super().__init__()
        self.probability_metrics = classification_metrics(num_classes, ece_bins)
        self.nll: Metric = NegativeLogLikelihood()

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.probability_metrics.update(logits.float().softmax(dim=1), target)
        self.nll.update(logits, target)

    def compute(self) -> dict[str, float]:
        values = {name: float(value) for name, value in self.probability_metrics.compute().items()}
        values["nll"] = float(self.nll.compute())
        return values

    def reset(self) -> None:
        self.probability_metrics.reset()
        self.nll.reset()
