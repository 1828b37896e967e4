"""Batched loading from in-memory uint8 tensors: one index tensor per batch, no per-image collation."""

from __future__ import annotations

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
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        yield from order.split(self.batch_size)


def batch_loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0,
                 pin_memory: bool = False) -> DataLoader:
    sampler = IndexBatches(len(labels), batch_size, shuffle, seed)
    return DataLoader(TensorBatches(images, labels), sampler=sampler, batch_size=None, pin_memory=pin_memory)
