"""Wide ResNet for CIFAR (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016): WRN-depth-k.

(depth - 4) / 6 pre-activation blocks in each of three stages of width * k, 2 * width * k and 4 * width * k
channels (width 16 in the paper), dropout between a block's convolutions, BN-ReLU before pooling.
WRN-28-10 has 36.5M parameters, WRN-28-4 5.9M (100 classes).
"""

from __future__ import annotations

from infomatch.models.preact_resnet import PreActNetwork
from infomatch.utils.checks import check_integer, require


class WideResNet(PreActNetwork):
    def __init__(self, num_classes: int = 100, depth: int = 28, widen_factor: int = 10, width: int = 16,
                 dropout: float = 0.0, in_channels: int = 3) -> None:
        check_integer("depth", depth, 10)
        require("depth", depth, (depth - 4) % 6 == 0, "must be 6n + 4 (10, 16, 22, 28, 40, ...)")
        check_integer("widen_factor", widen_factor, 1)
        check_integer("width", width, 1)
        stages = [(width * widen_factor * scale, stride) for scale, stride in ((1, 1), (2, 2), (4, 2))]
        super().__init__(num_classes, width, stages, (depth - 4) // 6, dropout, in_channels)
