"""Batched loading from in-memory uint8 tensors: one index tensor per batch, no per-image collation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(eq=False)
class IndexBatches(Sampler[torch.Tensor]):
    """Yields this rank's index batches. The shuffle order depends only on (seed, epoch), so a resumed run replays it.

    ``batch_size`` is the global batch, all ranks together; see :func:`rank_batches` for each rank's share.
    """

    size: int
    batch_size: int
    shuffle: bool
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at every epoch start
        self.epoch = epoch

    def __len__(self) -> int:
        return count_batches(self.size, self.batch_size, self.world_size)

    def __iter__(self):
        order = epoch_order(self.size, self.shuffle, self.seed, self.epoch)
        yield from rank_batches(order, self.batch_size, self.rank, self.world_size)


def epoch_order(size: int, shuffle: bool, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch: a permutation fixed by (seed, epoch), or 0..size-1."""
    if not shuffle:
        return torch.arange(size)
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def rank_batches(order: torch.Tensor, batch_size: int, rank: int, world_size: int) -> list[torch.Tensor]:
    """Rank ``rank``'s share of each global batch of ``order``.

    ``order`` is cut into global batches of ``batch_size`` exactly as on one device, and each global batch is
    split over the ranks in shares differing by at most one image: every image goes to exactly one rank, none is
    repeated or dropped, and each optimizer step sees the same images whatever the number of ranks. A last
    batch with fewer images than ranks joins the one before it, so that no rank gets an empty batch (every
    rank must take every step, or DDP's gradient all-reduce waits forever).
    """
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < world_size:
        batches[-2:] = [torch.cat(batches[-2:])]
    return [batch.tensor_split(world_size)[rank] for batch in batches]


def count_batches(size: int, batch_size: int, world_size: int) -> int:
    """How many batches :func:`rank_batches` gives each rank for ``size`` images."""
    full, rest = divmod(size, batch_size)
    return full + int(rest >= world_size or (full == 0 and rest > 0))


class DeviceBatches:
    """(images, labels) batches gathered from sets that live on the training device, in IndexBatches' order.

    Replaces a DataLoader when the whole set fits on the device: one small index copy per epoch instead
    of a host-to-device copy per step. ``epoch`` returns the current epoch when an epoch starts. With several
    ranks each holds the whole set and gathers its own share.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int,
                 device: torch.device, epoch: Callable[[], int], rank: int = 0, world_size: int = 1) -> None:
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.order = IndexBatches(len(labels), batch_size, shuffle, seed, rank, world_size)
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        self.order.set_epoch(self.epoch())
        batches = list(self.order)
        for index in torch.cat(batches).to(self.images.device).split([len(batch) for batch in batches]):
            yield self.images.index_select(0, index), self.labels.index_select(0, index)


def batch_loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0,
                 pin_memory: bool = False, rank: int = 0, world_size: int = 1) -> DataLoader:
    sampler = IndexBatches(len(labels), batch_size, shuffle, seed, rank, world_size)
    return DataLoader(TensorBatches(images, labels), sampler=sampler, batch_size=None, pin_memory=pin_memory)
