"""The base data module, which holds images as uint8 tensors and runs the training data stage on the device, and
the CIFAR data sets (CIFAR-10, CIFAR-100 with fine or coarse labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import lightning as L
import torch

from infomatch.data import cifar
from infomatch.data.batch import TrainingBatch
from infomatch.data.batching import DeviceBatches, batch_loader
from infomatch.data.classes import keep_class_names, keep_classes, kept_class_count
from infomatch.data.stage import TrainingStage, to_unit_range
from infomatch.utils.checks import check_integer, require
from infomatch.utils.errors import ConfigError


def split_train_val(num_train: int, val_size: int, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed held-out split, independent of the run seed so every run validates on the same images."""
    if not 0 <= val_size < num_train:
        raise ConfigError(f"data.val_size={val_size} must be in [0, {num_train}): the data set has {num_train} "
                          "training images")
    order = torch.randperm(num_train, generator=torch.Generator().manual_seed(split_seed))
    return order[val_size:], order[:val_size]


class InMemoryDataModule(L.LightningDataModule):
    """Shared logic. A data set subclass sets ``mean`` and ``std`` (per-channel statistics of its [0, 1] training
    images, for normalization), calls ``set_classes`` and implements ``load()`` and ``class_names()``.

    Batches reach the device as uint8; ``on_after_batch_transfer`` scales them to [0, 1] and, for training
    batches, runs ``stage`` (crop/flip, degradation), handing the LightningModule a TrainingBatch.
    ``on_device``: keep the uint8 sets on the training device and gather batches there (no DataLoader, no
    per-step host-to-device copy); ``auto`` does so on GPUs. ``classes``: keep only these classes in every split,
    relabelled 0..k-1 (a count k: the first k; a list: those labels, in that order); ``num_classes`` is then k.

    In a distributed run every rank loads the whole sets and takes its own share of each batch
    (``batching.rank_batches``): ``batch_size`` is the global batch of one optimizer step, all ranks together,
    and ``eval_batch_size`` is per device. Lightning's own sampler replacement must stay off
    (``trainer.use_distributed_sampler: false``).
    """

    num_classes: int  # the classes the model predicts: all_classes, or the count data.classes keeps
    all_classes: int  # the data set's own
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(self, batch_size: int = 128, eval_batch_size: int = 512, val_size: int = 5000,
                 split_seed: int = 0, validate_on_test: bool = False, shuffle_seed: int = 0,
                 train_limit: int | None = None, on_device: bool | str = "auto",
                 classes: int | list[int] | None = None, stage: TrainingStage | None = None) -> None:
        super().__init__()
        check_integer("batch_size", batch_size, 1)
        check_integer("eval_batch_size", eval_batch_size, 1)
        check_integer("val_size", val_size, 0)
        if train_limit is not None:
            check_integer("train_limit", train_limit, 1)
        require("on_device", on_device, on_device in (True, False, "auto"), "must be true, false or auto")
        self.on_device = on_device
        self.stage = stage if stage is not None else TrainingStage()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.val_size = val_size
        self.split_seed = split_seed
        self.validate_on_test = validate_on_test
        self.shuffle_seed = shuffle_seed
        self.train_limit = train_limit
        # a list from the config as a plain list (a count stays a count; anything else set_classes refuses)
        self.classes = list(classes) if isinstance(classes, Sequence) and not isinstance(classes, str) else classes
        self.train_set: tuple[torch.Tensor, torch.Tensor] | None = None

    def set_classes(self, all_classes: int) -> None:
        """Called by a subclass's constructor with its data set's class count: checks ``classes`` against it."""
        self.all_classes = all_classes
        self.num_classes = kept_class_count(all_classes, self.classes)

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
        if self.classes is not None:
            train_x, train_y = keep_classes(train_x, train_y, self.classes, self.all_classes)
            test_x, test_y = keep_classes(test_x, test_y, self.classes, self.all_classes)
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

    def _ranks(self) -> tuple[int, int]:
        """(this process's global rank, the number of ranks): (0, 1) outside a distributed run."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _resident_device(self) -> torch.device | None:
        """The device the sets live on when ``on_device`` applies (every rank holds the whole sets), else None."""
        trainer = self.trainer
        if trainer is None or self.on_device is False:
            return None
        device = trainer.strategy.root_device
        return device if self.on_device is True or device.type == "cuda" else None

    def _loader(self, split: tuple[torch.Tensor, torch.Tensor], batch_size: int, shuffle: bool):
        """Batches of this rank's share; ``batch_size`` is the global batch, all ranks together."""
        rank, world_size = self._ranks()
        if len(split[1]) < world_size:
            raise ConfigError(f"a data split has {len(split[1])} images, fewer than the {world_size} ranks "
                              "(trainer.devices x trainer.num_nodes); every rank needs at least one")
        device = self._resident_device()
        if device is not None:  # a resident device needs an attached trainer (_resident_device), so it is set
            return DeviceBatches(*split, batch_size, shuffle, seed=self.shuffle_seed, device=device,
                                 epoch=lambda: cast(L.Trainer, self.trainer).current_epoch, rank=rank,
                                 world_size=world_size)
        return batch_loader(*split, batch_size, shuffle=shuffle, seed=self.shuffle_seed, pin_memory=self._pin(),
                            rank=rank, world_size=world_size)

    def train_dataloader(self):
        # data.batch_size is the global batch: each of N ranks trains on batch_size / N images per step
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self):
        if len(self.val_set[1]) == 0:
            return []
        # eval_batch_size is per device: it only bounds memory, the metrics do not depend on it
        return self._loader(self.val_set, self.eval_batch_size * self._ranks()[1], shuffle=False)

    def test_dataloader(self):
        return self._loader(self.test_set, self.eval_batch_size * self._ranks()[1], shuffle=False)

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, torch.Tensor],
                                dataloader_idx: int) -> TrainingBatch | tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        trainer = self.trainer
        if trainer is not None and trainer.training:
            return self.stage(images, labels, epoch=trainer.current_epoch, rank=trainer.global_rank)
        return to_unit_range(images), labels


class CifarDataModule(InMemoryDataModule):
    """A data set in the official CIFAR "python version" layout; subclasses name their ``layout``."""

    layout: cifar.CifarLayout

    def __init__(self, root: str = "data/cifar", download: bool = True, num_classes: int | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        # a setting only so that the model's num_classes can follow the data set's
        total = self.layout.num_classes
        require("num_classes", num_classes, num_classes in (None, total),
                f"must be {total}: {self.layout.title} has {total} classes (data.classes keeps fewer)")
        self.set_classes(total)
        self.mean, self.std = self.layout.mean, self.layout.std
        self.root = root
        self.download = download

    def prepare_data(self) -> None:
        cifar.ensure_downloaded(self.layout, self.root, self.download)

    def load(self):
        folder = cifar.ensure_downloaded(self.layout, self.root, self.download)
        return (*cifar.read_split(self.layout, folder, "train"), *cifar.read_split(self.layout, folder, "test"))

    def class_names(self) -> list[str]:
        names = cifar.read_class_names(self.layout, cifar.ensure_downloaded(self.layout, self.root, self.download))
        return keep_class_names(names, self.classes)


class CIFAR100DataModule(CifarDataModule):
    layout = cifar.CIFAR100


class CIFAR100CoarseDataModule(CifarDataModule):
    """CIFAR-100's images labelled by their 20 superclasses."""

    layout = cifar.CIFAR100_COARSE


class CIFAR10DataModule(CifarDataModule):
    layout = cifar.CIFAR10
