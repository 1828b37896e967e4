"""Generated class patterns with CIFAR-100's interface: for tests, CI and quick smoke runs."""

from __future__ import annotations

import torch

from infomatch.data.classes import keep_class_names
from infomatch.data.datamodule import InMemoryDataModule
from infomatch.utils.checks import check_integer, require


def synthetic_images(num_images: int, num_classes: int, image_size: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Learnable stand-in for CIFAR: each class is a fixed smooth colour pattern, each image a noisy copy at a random
    brightness."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, 3, 4, 4, generator=torch.Generator().manual_seed(1234))
    patterns = torch.nn.functional.interpolate(coarse, size=image_size, mode="bilinear", align_corners=False)
    labels = torch.randint(num_classes, (num_images,), generator=generator)
    brightness = 0.7 + 0.3 * torch.rand(num_images, 1, 1, 1, generator=generator)
    noise = 0.1 * torch.randn(num_images, 3, image_size, image_size, generator=generator)
    images = (patterns[labels] * brightness + noise).clamp(0, 1)
    return (images * 255).round().to(torch.uint8), labels


class SyntheticDataModule(InMemoryDataModule):
    """Same interface as CIFAR-100, generated in memory: for tests, CI and quick smoke runs."""

    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def __init__(self, num_classes: int = 100, train_size: int = 1024, test_size: int = 256, image_size: int = 32,
                 seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_integer("num_classes", num_classes, 2)
        check_integer("train_size", train_size, 1)
        check_integer("image_size", image_size, 1)
        if not self.validate_on_test:
            require("val_size", self.val_size, self.val_size < train_size,
                    f"must be smaller than train_size={train_size}")
        self.set_classes(num_classes)
        self.train_size = train_size
        self.test_size = test_size
        self.image_size = image_size
        self.seed = seed

    def load(self):
        train = synthetic_images(self.train_size, self.all_classes, self.image_size, self.seed)
        test = synthetic_images(self.test_size, self.all_classes, self.image_size, self.seed + 1)
        return (*train, *test)

    def class_names(self) -> list[str]:
        return keep_class_names([f"class_{index}" for index in range(self.all_classes)], self.classes)
