"""Out-of-distribution sets for ``evaluate.py ood=...``: each gives uint8 images shaped like the test images.

``held_out_classes`` is the near-OOD protocol that needs no download: a model trained with ``data.classes=k``
meets the test images of the classes it never saw. The noise sets are far-OOD checks; ``data_set`` takes the test
images of another data module (e.g. CIFAR-10 for CIFAR-100 models).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from infomatch.data.classes import kept_labels
from infomatch.runs.trusted import build
from infomatch.utils.errors import EvaluationError


def _first(images: Tensor, num_images: int | None) -> Tensor:
    return images if num_images is None else images[:num_images]


class HeldOutClasses:
    """The test images of the classes that the models' ``data.classes`` left out."""

    label = "held-out classes of the same data set"

    def __init__(self, num_images: int | None = None) -> None:
        self.num_images = num_images

    def check(self, datamodule: Any) -> list[int]:
        """The held-out labels; an EvaluationError when the models trained on every class."""
        kept = kept_labels(datamodule.classes, datamodule.all_classes)
        held_out = [label for label in range(datamodule.all_classes) if label not in kept]
        if not held_out:
            raise EvaluationError(
                f"ood=held_out_classes scores the classes the models did not train on, but they trained on all "
                f"{datamodule.all_classes}; train with a subset (e.g. data.classes=50) or choose another OOD set "
                "(ood=uniform_noise, ood=gaussian_noise, ood=cifar10)")
        return held_out

    def images(self, data: dict[str, Any], datamodule: Any, like: Tensor) -> Tensor:
        # the models' own data settings with the other classes: their test images, nothing else read
        held_out = build({**data, "classes": self.check(datamodule)}, "data", "the evaluation's data settings")
        held_out.setup("test")
        return _first(held_out.test_set[0], self.num_images).to(like.device)


class _Noise:
    def __init__(self, num_images: int = 2000, seed: int = 0) -> None:
        self.num_images, self.seed = num_images, seed

    def check(self, datamodule: Any) -> None:
        """Nothing to check: noise fits any model."""

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)


class UniformNoise(_Noise):
    """Images of independent uniform pixels in 0..255."""

    label = "uniform noise"

    def images(self, data: dict[str, Any], datamodule: Any, like: Tensor) -> Tensor:
        shape = (self.num_images, *like.shape[1:])
        return torch.randint(0, 256, shape, generator=self._generator(), dtype=torch.uint8).to(like.device)


class GaussianNoise(_Noise):
    """Images of independent Gaussian pixels around mid-grey (``std`` in pixel units), clipped to 0..255."""

    label = "Gaussian noise"

    def __init__(self, num_images: int = 2000, seed: int = 0, std: float = 64.0) -> None:
        super().__init__(num_images, seed)
        self.std = std

    def images(self, data: dict[str, Any], datamodule: Any, like: Tensor) -> Tensor:
        noise = torch.randn((self.num_images, *like.shape[1:]), generator=self._generator())
        return (127.5 + self.std * noise).round().clamp(0, 255).to(torch.uint8).to(like.device)


class DataSetImages:
    """The test images of another data module (its classes are irrelevant: every image counts as unknown)."""

    def __init__(self, data: Any, label: str, num_images: int | None = None) -> None:
        self.data, self.label, self.num_images = data, label, num_images

    def check(self, datamodule: Any) -> None:
        """Loaded once images are asked for: the data module's own errors name its files."""

    def images(self, data: dict[str, Any], datamodule: Any, like: Tensor) -> Tensor:
        self.data.prepare_data()
        self.data.setup("test")
        images = _first(self.data.test_set[0], self.num_images)
        if images.shape[1:] != like.shape[1:]:
            raise EvaluationError(f"ood={self.label}: its images are {tuple(images.shape[1:])}, the models' "
                                  f"{tuple(like.shape[1:])}; an OOD set must have the models' input size")
        return images.to(like.device)
