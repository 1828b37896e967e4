"""Data sets as uint8 tensors in memory (CIFAR-10/100, CIFAR-100's superclasses, generated images) and the
device-side training stage: uint8 batch -> base augmentation -> [0, 1] -> degradation -> TrainingBatch."""

from infomatch.data.batch import TrainingBatch
from infomatch.data.datamodule import (
    CIFAR10DataModule,
    CIFAR100CoarseDataModule,
    CIFAR100DataModule,
    CifarDataModule,
    InMemoryDataModule,
)
from infomatch.data.stage import TrainingStage, to_unit_range
from infomatch.data.synthetic import SyntheticDataModule

__all__ = ["CIFAR10DataModule", "CIFAR100CoarseDataModule", "CIFAR100DataModule", "CifarDataModule",
           "InMemoryDataModule", "SyntheticDataModule", "TrainingBatch", "TrainingStage", "to_unit_range"]
