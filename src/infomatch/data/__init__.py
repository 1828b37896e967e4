from infomatch.data.datamodule import (
    CIFAR10DataModule,
    CIFAR100CoarseDataModule,
    CIFAR100DataModule,
    CifarDataModule,
    InMemoryDataModule,
)
from infomatch.data.synthetic import SyntheticDataModule

__all__ = ["CIFAR10DataModule", "CIFAR100CoarseDataModule", "CIFAR100DataModule", "CifarDataModule",
           "InMemoryDataModule", "SyntheticDataModule"]
