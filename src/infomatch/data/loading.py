"""Batched loading from in-memory uint8 tensors: one index tensor per batch, no per-image collation."""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorBatches(Dataset):
    """Indexed with a whole tensor of indices, returns a whole (images, labels) batch."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


class IndexBatches(Sampler[torch.Tensor]):
    """Yields index batches. The shuffle order depends only on (seed, epoch), so a resumed run replays it."""

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at every epoch start
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self):
        yield from epoch_order(self.size, self.shuffle, self.seed, self.epoch).split(self.batch_size)


def epoch_order(size: int, shuffle: bool, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch: a permutation fixed by (seed, epoch), or 0..size-1."""
    if not shuffle:
        return torch.arange(size)
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


class DeviceBatches:
    """(images, labels) batches gathered from sets that live on the training device, in IndexBatches' order.

    Replaces a DataLoader when the whole set fits on the device: one small index copy per epoch instead
    of a host-to-device copy per step. ``epoch`` returns the current epoch when an epoch starts.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int,
                 device: torch.device, epoch: Callable[[], int]) -> None:
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        order = epoch_order(len(self.labels), self.shuffle, self.seed, self.epoch()).to(self.images.device)
        for index in order.split(self.batch_size):
            yield self.images.index_select(0, index), self.labels.index_select(0, index)


def batch_loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0,
                 pin_memory: bool = False) -> DataLoader:
    sampler = IndexBatches(len(labels), batch_size, shuffle, seed)
    return DataLoader(TensorBatches(images, labels), sampler=sampler, batch_size=None, pin_memory=pin_memory)
