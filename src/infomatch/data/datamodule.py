"""The base data module, which holds images as uint8 tensors (degradations run later, on the device), and CIFAR-100."""

from __future__ import annotations

import lightning as L
import torch

from infomatch.checks import check_integer, require
from infomatch.data import cifar100
from infomatch.data.loading import batch_loader
from infomatch.errors import ConfigError


def split_train_val(num_train: int, val_size: int, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed held-out split, independent of the run seed so every run validates on the same images."""
    if not 0 <= val_size < num_train:
        raise ConfigError(f"data.val_size={val_size} must be in [0, {num_train}): the data set has {num_train} "
                          "training images")
    order = torch.randperm(num_train, generator=torch.Generator().manual_seed(split_seed))
    return order[val_size:], order[:val_size]


class InMemoryDataModule(L.LightningDataModule):
    """Shared logic. A data set subclass sets ``num_classes``, ``mean`` and ``std`` (per-channel statistics of its
    [0, 1] training images, for normalization) and implements ``load()`` and ``class_names()``."""

    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(self, batch_size: int = 128, eval_batch_size: int = 512, val_size: int = 5000,
                 split_seed: int = 0, validate_on_test: bool = False, shuffle_seed: int = 0,
                 train_limit: int | None = None) -> None:
        super().__init__()
        check_integer("batch_size", batch_size, 1)
        check_integer("eval_batch_size", eval_batch_size, 1)
        check_integer("val_size", val_size, 0)
        if train_limit is not None:
            check_integer("train_limit", train_limit, 1)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.validate_on_test = validate_on_test
        self.shuffle_seed = shuffle_seed
        self.train_limit = train_limit
        self.train_set: tuple[torch.Tensor, torch.Tensor] | None = None

    def load(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(train images, train labels, test images, test labels): (N, C, H, W) uint8 and (N,) int64."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def class_names(self) -> list[str]:
        """The name of each class, by label (evaluation titles its confidence analysis with one)."""
        raise NotImplementedError(f"{type(self).__name__} must implement class_names()")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train_x, train_y, test_x, test_y = self.load()
        self.test_set = (test_x, test_y)
        if self.validate_on_test:
            # the reference scripts' protocol: checkpoints selected on the test set
            self.train_set, self.val_set = (train_x, train_y), (test_x, test_y)
        else:
            train_idx, val_idx = split_train_val(len(train_y), self.val_size, self.split_seed)
            # a fixed random subset (split order), for quick protocols such as experiment=cpu_proxy
            train_idx = train_idx[: self.train_limit]
            self.train_set = (train_x[train_idx], train_y[train_idx])
            self.val_set = (train_x[val_idx], train_y[val_idx])

    def _pin(self) -> bool:
        return torch.cuda.is_available()

    def train_dataloader(self):
        return batch_loader(*self.train_set, self.batch_size, shuffle=True, seed=self.shuffle_seed, pin_memory=self._pin())

    def val_dataloader(self):
        if len(self.val_set[1]) == 0:
            return []
        return batch_loader(*self.val_set, self.eval_batch_size, shuffle=False, pin_memory=self._pin())

    def test_dataloader(self):
        return batch_loader(*self.test_set, self.eval_batch_size, shuffle=False, pin_memory=self._pin())


class CIFAR100DataModule(InMemoryDataModule):
    mean = cifar100.MEAN
    std = cifar100.STD

    def __init__(self, root: str = "data/cifar100", download: bool = True, num_classes: int = cifar100.NUM_CLASSES,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        # a setting only so that the model's num_classes can follow ${data.num_classes}
        require("num_classes", num_classes, num_classes == cifar100.NUM_CLASSES,
                f"must be {cifar100.NUM_CLASSES}: CIFAR-100 has {cifar100.NUM_CLASSES} classes")
        self.num_classes = num_classes
        self.root = root
        self.download = download

    def prepare_data(self) -> None:
        cifar100.ensure_downloaded(self.root, self.download)

    def load(self):
        folder = cifar100.ensure_downloaded(self.root, self.download)
        return (*cifar100.read_split(folder, "train"), *cifar100.read_split(folder, "test"))

    def class_names(self) -> list[str]:
        return cifar100.read_class_names(cifar100.ensure_downloaded(self.root, self.download))
