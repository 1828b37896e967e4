"""Per-sample confidence scores of logits, higher meaning "more confident / more in-distribution"."""

from __future__ import annotations

from torch import Tensor

SCORES = ("msp", "max_logit", "energy", "neg_entropy", "msp_normalized")


def normalized_logits(logits: Tensor, p: float = 2.0) -> Tensor:
    """Logits divided by their p-norm per sample (Xia et al., ICLR 2025: the post-hoc fix of label smoothing's
    selective classification); a zero row stays zero."""
    return logits / logits.norm(p=p, dim=1, keepdim=True).clamp_min(1e-12)


def confidence_scores(logits: Tensor, p: float = 2.0, normalized_temperature: float = 1.0) -> dict[str, Tensor]:
    """(B,) float64 scores of (B, K) logits: ``msp`` (max softmax), ``max_logit``, ``energy`` (logsumexp),
    ``neg_entropy`` (sum p log p) and ``msp_normalized`` (MSP of the p-normalised logits over
    ``normalized_temperature``, the temperature fitted to the normalised logits on held-out data)."""
    logits = logits.double()
    log_probs = logits.log_softmax(dim=1)
    probs = log_probs.exp()
    return {
        "msp": probs.max(dim=1).values,
        "max_logit": logits.max(dim=1).values,
        "energy": logits.logsumexp(dim=1),
        "neg_entropy": (probs * log_probs).sum(dim=1),
        "msp_normalized": (normalized_logits(logits, p) / normalized_temperature).softmax(dim=1).max(dim=1).values,
    }
