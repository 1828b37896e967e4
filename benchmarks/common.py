"""Shared set-up for the training benchmarks: a module built like train.py builds it, and random uint8 batches."""

from __future__ import annotations

import time

import torch

from infomatch.augment import REFERENCE_DEGRADATIONS, Degrader
from infomatch.data.batching import DeviceBatches, batch_loader
from infomatch.data.datamodule import InMemoryDataModule
from infomatch.data.stage import TrainingStage
from infomatch.labels.strategies import InformationMatching
from infomatch.models import ResNet18
from infomatch.training.module import InfoMatchModule
from infomatch.utils.memory import keep_freed_memory
from infomatch.utils.precision import cpu_has_native_bf16


def build_module(width: int, num_classes: int = 100, compile: bool | str = False) -> InfoMatchModule:
    return InfoMatchModule(
        net=ResNet18(num_classes=num_classes, width=width),
        label_strategy=InformationMatching(),
        optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4),
        compile=compile,
    )


def build_stage(degrade: bool = True, sampling: str = "stratified") -> TrainingStage:
    """The training data stage as train.py builds it: crop/flip, then every image degraded."""
    return TrainingStage(Degrader(types=REFERENCE_DEGRADATIONS if degrade else (), sampling=sampling))


def random_set(count: int, batch: int, num_classes: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` batches' worth of uint8 images and labels."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count * batch, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return images, torch.randint(0, num_classes, (count * batch,), generator=generator)


def random_batches(count: int, batch: int, num_classes: int = 100, seed: int = 0, device: torch.device | None = None):
    """``count`` uint8 batches: a DataLoader built like the training loader, or, with ``device``, batches
    gathered on that device as ``data.on_device`` does."""
    images, labels = random_set(count, batch, num_classes, seed)
    if device is not None:
        return DeviceBatches(images, labels, batch, shuffle=False, seed=seed, device=device, epoch=lambda: 0)
    return batch_loader(images, labels, batch, shuffle=False, pin_memory=torch.cuda.is_available())


class RandomDataModule(InMemoryDataModule):
    """Random uint8 images through the real data module (loader or on-device batches, device-side stage)."""

    num_classes = 100
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def __init__(self, count: int, batch: int, **kwargs) -> None:
        super().__init__(batch_size=batch, val_size=0, **kwargs)
        self.count = count

    def load(self):
        return (*random_set(self.count, self.batch_size), *random_set(1, self.batch_size, seed=1))


def autocast(device: torch.device, precision: str):
    """bf16 autocast for "bf16-mixed" (what training uses on GPUs); plain fp32 otherwise (CPUs: bf16 is emulated)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


def default_precision(device: torch.device) -> str:
    """What trainer.precision=auto picks on this device."""
    return "bf16-mixed" if device.type == "cuda" or cpu_has_native_bf16() else "32-true"


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model with whether it has native bf16: every figure says where it came from."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "CPU")
    return f"{model}, {'native' if cpu_has_native_bf16() else 'emulated'} bf16"


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
