"""The torchmetrics base of every metric here that needs all samples at once (a ranking, a kernel, bins)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class Gathered(Metric):
    """Keeps each batch's two tensors (scores and what they are judged against); ``gathered()`` joins them."""

    full_state_update = False
    # states, one tensor a batch (add_state in __init__)
    first: list[Tensor]
    second: list[Tensor]

    def __init__(self) -> None:
        super().__init__()
        self.add_state("first", default=[], dist_reduce_fx="cat")
        self.add_state("second", default=[], dist_reduce_fx="cat")

    def update(self, first: Tensor, second: Tensor) -> None:  # pylint: disable=arguments-differ
        self.first.append(first.detach())
        self.second.append(second.detach())

    def gathered(self) -> tuple[Tensor, Tensor]:
        return torch.cat(self.first), torch.cat(self.second)
