"""Similarity measures besides plain NMI that a label strategy can turn into epsilon: SSIM and chance-corrected NMI."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

# how similar the degraded image still is to the clean one; epsilon = clamp(1 - similarity, 0, eps_max)
MEASURES = ("nmi", "nmi_adjusted", "ssim")


def ssim(a: Tensor, b: Tensor) -> Tensor:
    """(B,) SSIM of each image pair in [0, 1] (torchmetrics: 11x11 Gaussian window, sigma 1.5)."""
    # in float32 even under bf16 autocast: its rounding would move SSIM's small variance terms
    with torch.autocast(a.device.type, enabled=False):
        # a tensor: the tuple comes only with return_full_image=True
        return cast(Tensor, structural_similarity_index_measure(a.float(), b.float(), data_range=1.0,
                                                                reduction="none"))


def adjusted_nmi(nmi_values: Tensor, chance: float) -> Tensor:
    """Chance-corrected NMI, (NMI - E0) / (1 - E0) clamped to [0, 1], with E0 the NMI of unrelated images."""
    return ((nmi_values - chance) / (1 - chance)).clamp(0, 1)
