"""Networks (the `model` config group) and the wrapper that normalises their [0, 1] input."""

from infomatch.models.classifier import Normalize, NormalizedClassifier
from infomatch.models.preact_resnet import PreActResNet18
from infomatch.models.resnet import ResNet18
from infomatch.models.wide_resnet import WideResNet

__all__ = ["Normalize", "NormalizedClassifier", "PreActResNet18", "ResNet18", "WideResNet"]
