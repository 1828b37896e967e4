from infomatch.data.datamodule import CIFAR100DataModule, InMemoryDataModule
from infomatch.data.synthetic import SyntheticDataModule

__all__ = ["CIFAR100DataModule", "InMemoryDataModule", "SyntheticDataModule"]
