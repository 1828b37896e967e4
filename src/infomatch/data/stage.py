"""The device-side data stage of training: uint8 batch -> base augmentation -> [0, 1] -> degradation -> TrainingBatch.

With a ``Mixer`` (the `mix` group) it also draws the batch's mixup / cutmix plan, after the degradation; the
training step applies it (``infomatch.augment.mix``).

It runs batched on the training device (the data module calls it in ``on_after_batch_transfer``), for
training batches only; validation and test batches are only scaled to [0, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor

from infomatch.augment import Degrader, Mixer
from infomatch.base_augment import BaseAugment
from infomatch.data.batch import TrainingBatch
from infomatch.utils.seeding import mix_seed


def to_unit_range(images: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 [0, 255] -> [0, 1] in ``dtype``: the one conversion every stage uses."""
    return images.to(dtype, copy=True).div_(255)  # one new tensor, never the caller's


class TrainingStage:
    """Base-augment and degrade a batch; random streams reseeded per (seed, epoch, rank).

    Reseeding at every epoch start makes a run resumed at an epoch boundary see exactly the images the
    uninterrupted run saw.
    """

    def __init__(self, degrader: Degrader | None = None, base_augment: BaseAugment | None = None,
                 seed: int = 0, mixer: Mixer | None = None) -> None:
        self.degrader = degrader if degrader is not None else Degrader(types=())
        self.base_augment = base_augment if base_augment is not None else BaseAugment()
        self.seed = seed
        self.mixer = mixer
        self._stream_key: tuple | None = None
        self.generator: torch.Generator | None = None
        self.host_generator: torch.Generator | None = None

    def start_epoch(self, epoch: int, rank: int, device: torch.device) -> None:
        seed = mix_seed(self.seed, epoch, rank)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        # the host-side draws of stratified type counts: no device round trip
        self.host_generator = torch.Generator().manual_seed(seed)
        self._stream_key = (epoch, rank, device)

    def clean_images(self, images: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """(uint8 images base-augmented, in [0, 1]: what the degradation starts from; (B,) visible fraction)."""
        augmented, visible = self.base_augment(images, generator)
        return to_unit_range(augmented), visible

    def __call__(self, images: Tensor, labels: Tensor, epoch: int = 0, rank: int = 0) -> TrainingBatch:
        """``images`` uint8 (B, C, H, W) on the training device."""
        if self._stream_key != (epoch, rank, images.device):
            self.start_epoch(epoch, rank, images.device)
        clean, visible = self.clean_images(images, self.generator)
        degraded, degradation, level = self.degrader(clean, self.generator, self.host_generator)
        # drawn last, and not at all without mixing: the crop/flip and degradation draws stay those of runs without it
        mix = (self.mixer.draw(len(labels), images.shape[-2], images.shape[-1], self.generator, self.host_generator)
               if self.mixer is not None else None)
        return TrainingBatch(clean=clean, degraded=degraded, classes=labels, degradation=degradation, level=level,
                             visible=visible, mix=mix)
