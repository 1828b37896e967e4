"""Clean test-set metrics (top-1, top-5, NLL, ECE, Brier) and reliability-diagram bins, from one pass of logits."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from infomatch.metrics import BrierScore, EvaluationMetrics


@torch.inference_mode()
def predict(classifier: nn.Module, images: Tensor, batch_size: int) -> Tensor:
    """Logits (N, K) for uint8 images (N, C, H, W), batched on the images' device."""
    return torch.cat([classifier(chunk.float().div_(255)) for chunk in images.split(batch_size)])


def clean_metrics(logits: Tensor, labels: Tensor, ece_bins: int) -> dict[str, float]:
    metrics = EvaluationMetrics(logits.shape[1], ece_bins).to(logits.device)
    metrics.update(logits, labels)
    brier = BrierScore().to(logits.device)
    brier.update(logits, labels)
    values = {**metrics.compute(), "brier": float(brier.compute())}
    return {key: values[key] for key in ("top1", "top5", "nll", "ece", "brier")}


def reliability_bins(logits: Tensor, labels: Tensor, bins: int) -> dict[str, list[float]]:
    """Per confidence bin: sample count, mean confidence and accuracy (0 for empty bins).

    Binned like torchmetrics' ECE (bucketize on linspace(0, 1, bins + 1), right-closed edges), so the
    diagram's gaps weighted by counts add up to the reported ECE.
    """
    confidence, prediction = logits.float().softmax(dim=1).max(dim=1)
    correct = (prediction == labels).double()
    edges = torch.linspace(0, 1, bins + 1, device=logits.device)
    index = (torch.bucketize(confidence, edges, right=True) - 1).clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins).double()
    denominator = count.clamp(min=1)
    return {
        "edges": edges.tolist(),
        "count": count.long().tolist(),
        "confidence": (torch.bincount(index, confidence.double(), minlength=bins) / denominator).tolist(),
        "accuracy": (torch.bincount(index, correct, minlength=bins) / denominator).tolist(),
    }
