"""A test-only callback that records which images each DDP rank trained, validated and tested on.

tests/test_ddp.py injects it through the callbacks group (``+callbacks.probe._target_=ddp_probe.RecordSamples``)
with this folder on PYTHONPATH, so production code carries no recording hooks. Images are identified by their
content: the run must use ``augment=none base_augment.crop_flip=false`` so that a training batch's clean images
are the stored ones, scaled to [0, 1].
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import lightning as L
import torch


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
