"""Where the corrupted test images come from: the official CIFAR-100-C files, or regenerated on the device.

Both sources yield, for one (corruption, severity), the corrupted copies of the first N test images as
uint8 (B, 3, 32, 32) batches on the evaluation device, in test-set order, with their labels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from infomatch.evaluation.cifar100c.functions import ALL, BENCHMARK, CORRUPTIONS, NOT_REGENERATED
from infomatch.utils.errors import EvaluationError
from infomatch.utils.seeding import mix_seed

log = logging.getLogger(__name__)

SEVERITIES = (1, 2, 3, 4, 5)
IMAGE_SHAPE = (32, 32, 3)


def resolve_names(names: str | Sequence[str]) -> list[str]:
    """'benchmark' (the 15), 'all' (the 19) or a list of corruption names, in the benchmark's order."""
    if names in ("benchmark", "all"):
        return list(BENCHMARK if names == "benchmark" else ALL)
    requested = [names] if isinstance(names, str) else list(names)
    unknown = [name for name in requested if name not in ALL]
    if unknown or not requested:
        raise EvaluationError(f"corruptions.names={requested}: unknown {unknown or 'empty list'}; use benchmark "
                              f"(the 15), all (the 19) or a list of: {', '.join(ALL)}")
    return [name for name in ALL if name in requested]


def resolve_severities(severities: int | Sequence[int]) -> list[int]:
    chosen = [severities] if isinstance(severities, int) else list(severities)
    if not chosen or any(not isinstance(level, int) or level not in SEVERITIES for level in chosen):
        raise EvaluationError(f"corruptions.severities={chosen} must be a non-empty list of severities among 1..5")
    return sorted(set(chosen))


def resolve_num_images(num_images: int | None) -> int | None:
    """None: every evaluated test image; N: the first N of them in each corrupted set (the clean metrics keep all)."""
    if num_images is not None and (not isinstance(num_images, int) or num_images < 1):
        raise EvaluationError(f"corruptions.num_images={num_images} must be a positive number of test images or "
                              "null (all evaluated test images)")
    return num_images


class OfficialCorruptions:
    """The released files: ``<name>.npy`` uint8 (5 n, 32, 32, 3) = the n test images at severity 1, then 2, ..., 5,
    and ``labels.npy`` (5 n,). Memory-mapped: only the batches being scored are read."""

    kind = "official"
    label = "official files"

    def __init__(self, root: str, names: str | Sequence[str] = "benchmark",
                 severities: Sequence[int] = SEVERITIES, num_images: int | None = None) -> None:
        self.root = Path(root)
        self.names = resolve_names(names)
        self.severities = resolve_severities(severities)
        self.num_images = resolve_num_images(num_images)
        self.missing: list[str] = []
        if not self.root.is_dir():
            raise EvaluationError(f"corruptions.root={root}: no such folder. Download CIFAR-100-C "
                                  "(https://zenodo.org/record/3555552), extract it and pass the folder holding "
                                  "labels.npy and <corruption>.npy, or use corruptions=regenerated.")
        labels_file = self.root / "labels.npy"
        self.labels = self._open(labels_file, None)
        if self.labels.ndim != 1 or len(self.labels) == 0 or len(self.labels) % len(SEVERITIES):
            raise EvaluationError(f"{labels_file}: expected one label per image of all 5 severities, shape (5 n,), "
                                  f"found {self.labels.shape}; the file is not CIFAR-100-C's labels.npy.")
        self.per_severity = len(self.labels) // len(SEVERITIES)
        absent = [name for name in self.names if not (self.root / f"{name}.npy").is_file()]
        if absent:
            raise EvaluationError(f"corruptions.root={root} lacks {', '.join(f'{name}.npy' for name in absent)}; "
                                  "extract the complete release there, or choose the corruptions present with "
                                  "corruptions.names=[...].")
        self.arrays = {name: self._open(self.root / f"{name}.npy", (len(self.labels), *IMAGE_SHAPE))
                       for name in self.names}

    @staticmethod
    def _open(path: Path, shape: tuple[int, ...] | None) -> np.ndarray:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            reason = " ".join(str(error).split())
            raise EvaluationError(f"{path}: cannot read this .npy file ({type(error).__name__}: {reason}); it is "
                                  "truncated or not a NumPy array. Download and extract it again.") from error
        if shape is not None and (array.shape != shape or array.dtype != np.uint8):
            raise EvaluationError(f"{path}: expected uint8 images of shape {shape} (the test images at severity "
                                  f"1, then 2, ..., 5, as labels.npy counts them), found {array.dtype} "
                                  f"{array.shape}; the file is truncated or not from CIFAR-100-C.")
        return array

    def check(self, images: Tensor, labels: Tensor) -> None:
        """The first N test labels must be the files' labels at every severity: else the files are another
        data set's (CIFAR-10-C) or the evaluation data is not the CIFAR-100 test set."""
        count = len(labels)
        if count > self.per_severity:
            raise EvaluationError(f"{self.root}: the files hold {self.per_severity} images per severity but "
                                  f"{count} test images are evaluated; set subset<={self.per_severity}.")
        expected = labels.cpu().numpy()
        for severity in self.severities:
            start = (severity - 1) * self.per_severity
            if not np.array_equal(self.labels[start:start + count], expected):
                raise EvaluationError(f"{self.root / 'labels.npy'}: labels at severity {severity} differ from the "
                                      "evaluation data's test labels; these files are not the corrupted copies of "
                                      "this test set (CIFAR-10-C? data=synthetic?). Evaluate with data=cifar100.")

    def batches(self, name: str, severity: int, images: Tensor, labels: Tensor, seed: int,
                batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        start = (severity - 1) * self.per_severity
        array = self.arrays[name]
        for offset, chunk_labels in zip(range(0, len(labels), batch_size), labels.split(batch_size)):
            # a writable copy of this batch only
            chunk = np.array(array[start + offset:start + offset + len(chunk_labels)])
            yield torch.from_numpy(chunk).permute(0, 3, 1, 2).to(images.device), chunk_labels


class RegeneratedCorruptions:
    """The corruptions recomputed from the test images on their device, seeded per (seed, corruption, severity)
    so every model, and every run with the same seed, batch size and device, sees identical images."""

    kind = "regenerated"
    label = "regenerated, not the official files"

    def __init__(self, names: str | Sequence[str] = "benchmark", severities: Sequence[int] = SEVERITIES,
                 num_images: int | None = None) -> None:
        requested = resolve_names(names)
        self.names = [name for name in requested if name in CORRUPTIONS]
        self.missing = [name for name in requested if name in NOT_REGENERATED]
        self.severities = resolve_severities(severities)
        self.num_images = resolve_num_images(num_images)
        if not self.names:
            raise EvaluationError(f"corruptions.names={requested}: none of these can be regenerated "
                                  f"({', '.join(NOT_REGENERATED)} need the official files: corruptions=cifar100c)")
        if self.missing:
            log.warning("not regenerated (listed as missing): %s", ", ".join(self.missing))

    def check(self, images: Tensor, labels: Tensor) -> None:
        if images.shape[1:] != (3, 32, 32):
            raise EvaluationError(f"the CIFAR-C corruptions are defined for 3 x 32 x 32 images, the evaluation data "
                                  f"has {tuple(images.shape[1:])}; use 32 x 32 data (data.image_size=32)")

    def batches(self, name: str, severity: int, images: Tensor, labels: Tensor, seed: int,
                batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator(device=images.device).manual_seed(mix_seed(seed, ALL.index(name), severity))
        for chunk, chunk_labels in zip(images.split(batch_size), labels.split(batch_size)):
            yield CORRUPTIONS[name](chunk, severity, generator), chunk_labels
