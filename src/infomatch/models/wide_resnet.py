"""Wide ResNet for CIFAR (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016): WRN-depth-k.

(depth - 4) / 6 pre-activation blocks in each of three stages of width * k, 2 * width * k and 4 * width * k
channels (width 16 in the paper), dropout between a block's convolutions, BN-ReLU before pooling.
WRN-28-10 has 36.5M parameters, WRN-28-4 5.9M (100 classes).
"""

from __future__ import annotations

from torch import Tensor, nn

from infomatch.utils.checks import check_integer, check_number, require


class WideBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float) -> None:
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
        identity = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(self.dropout(self.relu(self.bn2(self.conv1(out)))))
        return out + identity


class WideResNet(nn.Module):
    def __init__(self, num_classes: int = 100, depth: int = 28, widen_factor: int = 10, width: int = 16,
                 dropout: float = 0.0, in_channels: int = 3) -> None:
        super().__init__()
        check_integer("num_classes", num_classes, 2)
        check_integer("depth", depth, 10)
        require("depth", depth, (depth - 4) % 6 == 0, "must be 6n + 4 (10, 16, 22, 28, 40, ...)")
        check_integer("widen_factor", widen_factor, 1)
        check_integer("width", width, 1)
        check_number("dropout", dropout, 0, 1, high_open=True)
        self.num_classes, self.width = num_classes, width
        blocks = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        layers, in_planes = [], width
        for planes, stride in zip((width * widen_factor, 2 * width * widen_factor, 4 * width * widen_factor),
                                  (1, 2, 2)):
            for index in range(blocks):
                layers.append(WideBlock(in_planes, planes, stride if index == 0 else 1, dropout))
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
