"""ResNet-18 with a CIFAR stem (3x3 stride-1 first conv, no max-pool).

Parameter names follow torchvision's ``resnet18`` (conv1, bn1, layer1.0.conv1, ..., downsample.0, fc),
so plain torchvision-style state dicts load. ``width`` scales every stage (64 is the standard network).
"""

from __future__ import annotations

from torch import Tensor, nn

from infomatch.utils.checks import check_integer


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    # the stages are set by name in the loop of __init__
    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, num_classes: int = 100, width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        check_integer("num_classes", num_classes, 2)
        check_integer("width", width, 1)
        self.num_classes = num_classes
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        planes = [width, 2 * width, 4 * width, 8 * width]
        in_planes = width
        for index, (stage_planes, stride) in enumerate(zip(planes, (1, 2, 2, 2)), start=1):
            blocks = nn.Sequential(BasicBlock(in_planes, stage_planes, stride), BasicBlock(stage_planes, stage_planes))
            setattr(self, f"layer{index}", blocks)
            in_planes = stage_planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))

