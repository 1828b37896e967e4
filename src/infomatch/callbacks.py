"""Training callbacks of our own (the others come straight from Lightning)."""

from __future__ import annotations

import time

import lightning as L


class EpochTimer(L.Callback):
    """Logs ``time/epoch_s``: wall-clock seconds of each epoch, its validation included (what a run's length is made of)."""

    def __init__(self) -> None:
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is not None:
            pl_module.log("time/epoch_s", time.perf_counter() - self._start)
