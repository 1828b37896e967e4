"""The device-side training stage: what the label strategy and the network receive."""

from __future__ import annotations

import torch

from infomatch.augment import Degrader
from infomatch.base_augment import BaseAugment, crop_flip
from infomatch.data.stage import TrainingStage
from infomatch.labels.nmi import nmi
from infomatch.labels.strategies import InformationMatching, im_epsilon
from infomatch.utils.seeding import mix_seed


def uint8_images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_targets_are_computed_against_the_cropped_clean_image_not_the_original():
    images, labels = uint8_images(16), torch.arange(16)
    stage = TrainingStage(Degrader(types=["blur"]), BaseAugment(crop_flip=True, padding=4), seed=3)
    batch = stage(images, labels, epoch=2, rank=0)

    # the same draws by hand: crop/flip first, then the degrader, from the (seed, epoch, rank) stream
    generator = torch.Generator().manual_seed(mix_seed(3, 2, 0))
    cropped, visible = crop_flip(images.float() / 255, 4, generator=generator)
    degraded, degradation, level = Degrader(types=["blur"])(cropped, generator,
                                                            torch.Generator().manual_seed(mix_seed(3, 2, 0)))
    torch.testing.assert_close(batch.clean, cropped)
    assert torch.equal(batch.visible, visible)
    torch.testing.assert_close(batch.degraded, degraded)
    assert torch.equal(batch.degradation, degradation) and torch.equal(batch.level, level)
    assert torch.equal(batch.classes, labels)

    _, epsilon = InformationMatching()(batch, 100)
    torch.testing.assert_close(epsilon, im_epsilon(nmi(cropped, degraded)))
    against_original = im_epsilon(nmi(images.float() / 255, degraded))
    assert (epsilon - against_original).abs().max() > 0.05  # the uncropped image would give other epsilons


def test_stage_reseeds_per_epoch_and_rank():
    images, labels = uint8_images(8), torch.zeros(8, dtype=torch.long)
    stage = TrainingStage(Degrader(), seed=0)
    first = stage(images, labels, epoch=0).degraded
    assert not torch.equal(first, stage(images, labels, epoch=0).degraded)  # the stream advances within an epoch
    assert torch.equal(first, TrainingStage(Degrader(), seed=0)(images, labels, epoch=0).degraded)
    assert not torch.equal(first, TrainingStage(Degrader(), seed=0)(images, labels, epoch=1).degraded)
    assert not torch.equal(first, TrainingStage(Degrader(), seed=0)(images, labels, epoch=0, rank=1).degraded)


def test_stage_without_degradations_hands_over_the_clean_image():
    images = uint8_images(4)
    batch = TrainingStage(None, BaseAugment(crop_flip=False))(images, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(batch.clean, images.float() / 255)
    assert batch.degraded is batch.clean and torch.all(batch.degradation == -1) and torch.all(batch.level == 0)
