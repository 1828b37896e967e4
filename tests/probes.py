"""Lightning callbacks that tests inject into runs with ``+callbacks.<name>._target_=probes.<Class>``.

Subprocesses started by the tests have this folder on PYTHONPATH (``conftest.subprocess_env``), so production
code carries no test hooks. ``RecordSamples`` identifies images by their content: its runs must use
``augment=none base_augment.crop_flip=false`` so that a training batch's clean images are the stored ones,
scaled to [0, 1].
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import defaultdict
from pathlib import Path

import lightning as L
import torch

from infomatch.training.callbacks import StopOnSignal


class PauseMidEpoch(L.Callback):
    """Used inside train.py: after the first batch of ``epoch``, create ``marker`` and wait to be killed."""

    def __init__(self, epoch: int, marker: str) -> None:
        self.epoch = epoch
        self.marker = Path(marker)

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.current_epoch == self.epoch:
            self.marker.touch()
            time.sleep(600)


class EarlyBest(L.Callback):
    """Logs ``val/early_best`` = -epoch: monitored by the best checkpoint, the first epoch is the best one."""

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        pl_module.log("val/early_best", -float(trainer.current_epoch))


class PlantInfInRunningVar(L.Callback):
    """After the first batch of ``epoch``, sets one BatchNorm running variance to inf (the loss stays finite)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == 0:
            norm = next(module for module in pl_module.modules() if isinstance(module, torch.nn.BatchNorm2d))
            norm.running_var[0] = float("inf")


class ScrambleGlobalRandomness(L.Callback):
    """Reseeds torch's global generator before every batch: results that do not change never drew from it."""

    def on_train_batch_start(self, trainer, *args) -> None:
        torch.manual_seed(trainer.global_step + 12345)


class WaitForSignal(L.Callback):
    """Used inside train.py: after the first batch of ``epoch``, create ``marker`` and wait for a stop signal."""

    def __init__(self, epoch: int, marker: str) -> None:
        self.epoch = epoch
        self.marker = Path(marker)

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.current_epoch != self.epoch:
            return
        self.marker.touch()
        deadline = time.monotonic() + 300
        stop = next(callback for callback in trainer.callbacks if isinstance(callback, StopOnSignal))
        while stop.received is None and not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.05)


class SignalSelf(L.Callback):
    """After the first batch of ``epoch``, sends this process ``signal_name`` (as a scheduler or Ctrl-C would)."""

    def __init__(self, epoch: int, signal_name: str) -> None:
        self.epoch = epoch
        self.signal = signal.Signals[signal_name]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == 0:
            os.kill(os.getpid(), self.signal)

def _keys(images: torch.Tensor) -> list[bytes]:
    return [image.numpy().tobytes() for image in images.cpu()]


class RecordSamples(L.Callback):
    """Writes ``<folder>/rank<r>.json``: {"train_epoch<e>": [[indices of step 0], ...], "val_epoch<e>": ...,
    "test": ...}."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.seen: dict[str, list[list[int]]] = defaultdict(list)
        self.index: dict[str, dict[bytes, int]] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule  # set up before the callbacks
        for split in ("train", "val", "test"):
            images = getattr(datamodule, f"{split}_set")[0]
            self.index[split] = dict(zip(_keys(images), range(len(images))))
            assert len(self.index[split]) == len(images), f"{split} images are not unique: cannot identify them"

    def _record(self, name: str, split: str, images: torch.Tensor) -> None:
        as_stored = (images * 255).round().to(torch.uint8)
        self.seen[name].append([self.index[split][key] for key in _keys(as_stored)])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._record(f"train_epoch{trainer.current_epoch}", "train", batch.clean)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self._record(f"val_epoch{trainer.current_epoch}", "val", batch[0])

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._record("test", "test", batch[0])

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))
