"""Pre-activation ResNet-18 with a CIFAR stem (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016).

Each block normalises and activates its input before each convolution (BN-ReLU-conv, twice) and adds the identity
or a 1x1 projection; the network ends with BN-ReLU before pooling. ``width`` scales every stage (64: standard).
``PreActNetwork`` is the stem, stages and head that the Wide ResNet shares.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from infomatch.utils.checks import check_integer, check_number


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-(dropout)-conv3x3, plus the input or its 1x1 projection."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride, bias=False)
                         if stride != 1 or in_planes != planes else None)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        # the projection sees the activated input, as in the paper's full pre-activation unit
        identity = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(self.dropout(self.relu(self.bn2(self.conv1(out)))))
        return out + identity


class PreActNetwork(nn.Module):
    """conv3x3 stem of ``width`` channels, then ``blocks`` pre-activation blocks per (planes, first stride) stage,
    BN-ReLU, global average pooling and a linear classifier."""

    def __init__(self, num_classes: int, width: int, stages: Sequence[tuple[int, int]], blocks: int,
                 dropout: float = 0.0, in_channels: int = 3) -> None:
        super().__init__()
        for name, value, low in (("num_classes", num_classes, 2), ("width", width, 1), ("blocks", blocks, 1)):
            check_integer(name, value, low)
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.num_classes, self.width = num_classes, width
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        layers, in_planes = [], width
        for planes, stride in stages:
            for index in range(blocks):
                layers.append(PreActBlock(in_planes, planes, stride if index == 0 else 1, dropout))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(in_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn(self.layers(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


class PreActResNet18(PreActNetwork):
    def __init__(self, num_classes: int = 100, width: int = 64, in_channels: int = 3) -> None:
        stages = [(width * scale, stride) for scale, stride in ((1, 1), (2, 2), (4, 2), (8, 2))]
        super().__init__(num_classes, width, stages, blocks=2, in_channels=in_channels)
