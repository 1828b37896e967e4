"""Soft-target cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """-sum_k y_k log softmax(z)_k, averaged over the batch; log-softmax in float32 for bf16/fp16 logits."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    log_probs = F.log_softmax(logits, dim=-1, dtype=dtype)
    return -(targets.to(dtype) * log_probs).sum(dim=-1).mean()
