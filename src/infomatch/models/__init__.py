from infomatch.models.resnet import ResNet18

__all__ = ["ResNet18"]
