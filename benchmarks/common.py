"""Shared set-up for the training benchmarks: a module built like train.py builds it, and random uint8 batches."""

from __future__ import annotations

import time

import torch

from infomatch.augment import Degrader
from infomatch.data.loading import batch_loader
from infomatch.memory import keep_freed_memory
from infomatch.models import ResNet18
from infomatch.module import InfoMatchModule
from infomatch.targets import InformationMatching


def build_module(width: int, degrade: bool, num_classes: int = 100) -> InfoMatchModule:
    return InfoMatchModule(
        net=ResNet18(num_classes=num_classes, width=width),
        labels=InformationMatching(),
        degrader=Degrader(types=("diffusion", "blur", "dropout", "mosaic") if degrade else ()),
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4),
    )


def random_batches(count: int, batch: int, num_classes: int = 100, seed: int = 0):
    """A DataLoader of ``count`` uint8 batches, built like the training loader."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count * batch, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, num_classes, (count * batch,), generator=generator)
    return batch_loader(images, labels, batch, shuffle=False, pin_memory=torch.cuda.is_available())


def autocast(device: torch.device, precision: str):
    """bf16 autocast for "bf16-mixed" (what training uses on GPUs); plain fp32 otherwise (CPUs: bf16 is emulated)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


def default_precision(device: torch.device) -> str:
    return "bf16-mixed" if device.type == "cuda" else "32-true"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self):
        synchronize(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


def add_malloc_flag(parser) -> None:
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds alone (train.py and evaluate.py raise them)")


def set_up_malloc(args) -> str:
    """Apply the malloc setting training uses unless --default-malloc; returns a label for the printed header."""
    kept = not args.default_malloc and keep_freed_memory()
    return "malloc=keep-freed" if kept else "malloc=glibc-default"
