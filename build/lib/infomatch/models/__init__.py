from infomatch.models.classifier import Normalize, NormalizedClassifier
from infomatch.models.resnet import ResNet18

__all__ = ["Normalize", "NormalizedClassifier", "ResNet18"]
