from infomatch.data.datamodule import CIFAR100DataModule, InMemoryDataModule, SyntheticDataModule

__all__ = ["CIFAR100DataModule", "InMemoryDataModule", "SyntheticDataModule"]
