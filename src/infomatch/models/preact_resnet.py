"""Pre-activation ResNet-18 with a CIFAR stem (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016).

Each block normalises and activates its input before each convolution (BN-ReLU-conv, twice) and adds the identity
or a 1x1 projection; the network ends with BN-ReLU before pooling. ``width`` scales every stage (64: standard).
"""

from __future__ import annotations

from torch import Tensor, nn

from infomatch.utils.checks import check_integer


class PreActBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride, bias=False)
                         if stride != 1 or in_planes != planes else None)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        # the projection sees the activated input, as in the paper's full pre-activation unit
        identity = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + identity


class PreActResNet18(nn.Module):
    def __init__(self, num_classes: int = 100, width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        check_integer("num_classes", num_classes, 2)
        check_integer("width", width, 1)
        self.num_classes = num_classes
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        layers, in_planes = [], width
        for planes, stride in zip((width, 2 * width, 4 * width, 8 * width), (1, 2, 2, 2)):
            layers += [PreActBlock(in_planes, planes, stride), PreActBlock(planes, planes)]
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
