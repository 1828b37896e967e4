"""Clean test-set metrics (top-1, top-5, NLL, ECE, Brier) and reliability-diagram bins, from one pass of logits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from infomatch.metrics.calibration import bin_index
from infomatch.metrics.classification import AdaptiveCalibrationError, BrierScore, ConfidenceGap, EvaluationMetrics
from infomatch.metrics.per_sample import confidence_and_correct


@dataclass(frozen=True)
class CleanMetric:
    """A clean metric as every output shows it: key (metrics.json, metrics.csv), summary.md heading, bar-chart
    axis label, shown in percent or not; ``extra`` makes a torchmetrics Metric updated with (logits, labels)
    for a metric that training's EvaluationMetrics does not compute."""

    key: str
    heading: str
    label: str
    percent: bool
    extra: Callable[[], Metric] | None = None


# every clean metric, in the order of the tables and the bar chart: adding one here adds it to all outputs
CLEAN_METRICS = (
    CleanMetric("top1", "top-1 %", "Top-1 accuracy (%)", True),
    CleanMetric("top5", "top-5 %", "Top-5 accuracy (%)", True),
    CleanMetric("nll", "NLL", "NLL (nats / image)", False),
    CleanMetric("ece", "ECE", "ECE (L1)", False),
    CleanMetric("brier", "Brier", "Brier score", False, BrierScore),
    # signed: > 0 over-confident, < 0 under-confident (what ECE alone does not say)
    CleanMetric("confidence_gap", "conf − acc", "Mean confidence − accuracy", False, ConfidenceGap),
    CleanMetric("adaptive_ece", "adaptive ECE", "Adaptive ECE (15 equal-mass bins)", False, AdaptiveCalibrationError),
)
# the metrics that temperature scaling changes (it keeps every prediction, hence top-1 and top-5)
CALIBRATION_METRICS = ("nll", "ece", "brier", "confidence_gap", "adaptive_ece")


@torch.inference_mode()
def predict(classifier: nn.Module, images: Tensor, batch_size: int) -> Tensor:
    """Logits (N, K) for uint8 images (N, C, H, W), batched on the images' device."""
    return torch.cat([classifier(chunk.float().div_(255)) for chunk in images.split(batch_size)])


def clean_metrics(logits: Tensor, labels: Tensor, ece_bins: int) -> dict[str, float]:
    metrics = EvaluationMetrics(logits.shape[1], ece_bins).to(logits.device)
    metrics.update(logits, labels)
    values = metrics.compute()
    for metric in CLEAN_METRICS:
        if metric.extra is not None:
            extra = metric.extra().to(logits.device)
            extra.update(logits, labels)
            values[metric.key] = float(extra.compute())
    return {metric.key: values[metric.key] for metric in CLEAN_METRICS}


def reliability_bins(logits: Tensor, labels: Tensor, bins: int) -> dict[str, list[float]]:
    """Per confidence bin: sample count, mean confidence and accuracy (0 for empty bins).

    Binned like torchmetrics' ECE ([b/B, (b+1)/B), 1.0 in the last bin), so the
    diagram's gaps weighted by counts add up to the reported ECE.
    """
    confidence, correct = confidence_and_correct(logits.float(), labels)
    correct = correct.double()
    edges = torch.linspace(0, 1, bins + 1, device=logits.device)
    index = bin_index(confidence, bins)
    count = torch.bincount(index, minlength=bins).double()
    denominator = count.clamp(min=1)
    return {
        "edges": edges.tolist(),
        "count": count.long().tolist(),
        "confidence": (torch.bincount(index, confidence.double(), minlength=bins) / denominator).tolist(),
        "accuracy": (torch.bincount(index, correct, minlength=bins) / denominator).tolist(),
    }
