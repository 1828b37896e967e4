"""The LightningModule: uint8 batch -> [0,1] -> crop/flip -> degrade -> targets -> normalize -> ResNet -> loss.

Everything after the host-to-device copy runs batched on the device in ``on_after_batch_transfer``;
degradations and soft targets are applied only while the trainer is training.
"""

from __future__ import annotations

from typing import Any, Callable

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from infomatch.augment import Degrader, crop_flip
from infomatch.data import cifar100
from infomatch.losses import soft_cross_entropy
from infomatch.metrics import EvaluationMetrics
from infomatch.models import Normalize
from infomatch.seeding import mix_seed


class InfoMatchModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        labels: Callable,
        degrader: Degrader,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        mean: tuple[float, ...] = cifar100.MEAN,
        std: tuple[float, ...] = cifar100.STD,
        crop_flip: bool = True,
        crop_padding: int = 4,
        ece_bins: int = 15,
        seed: int = 0,
        channels_last: bool = True,
        run_config: dict | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.labels = labels
        self.degrader = degrader
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.normalize = Normalize(mean, std)
        self.use_crop_flip = crop_flip
        self.crop_padding = crop_padding
        self.seed = seed
        self.channels_last = channels_last
        # plain resolved config, stored in every checkpoint so evaluation can rebuild the exact model
        self.run_config = run_config
        self.num_classes = net.num_classes
        self.val_metrics = EvaluationMetrics(self.num_classes, ece_bins)
        self.test_metrics = EvaluationMetrics(self.num_classes, ece_bins)
        # per-sample running means, logged once per epoch: a self.log call per step and value costs about
        # a millisecond of host time, which GPU steps cannot hide; no NaN check, which would sync the GPU
        self.train_top1 = MeanMetric(nan_strategy="disable")
        self.train_epsilon = MeanMetric(nan_strategy="disable")
        self.generator: torch.Generator | None = None

    def on_fit_start(self) -> None:
        # channels_last speeds up GPU convolutions; on CPU it was slower here and hung torch 2.14 at tiny widths
        if self.channels_last and self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)

    # ---- data path -------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        # reseeded per (seed, epoch, rank) so a run resumed at an epoch boundary sees the same degradations
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(mix_seed(self.seed, self.current_epoch, self.global_rank))

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> dict[str, Tensor]:
        images, labels = batch
        images = images.float().div_(255)
        if self.trainer.training:
            return self.training_batch(images, labels)
        return {"x": images, "y": labels}

    def training_batch(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """[0, 1] images -> crop/flip -> degraded images and their soft targets, all batched on the device."""
        if self.generator is None or self.generator.device != images.device:
            self.generator = torch.Generator(device=images.device).manual_seed(mix_seed(self.seed))
        if self.use_crop_flip:
            images = crop_flip(images, self.crop_padding, generator=self.generator)
        degraded, kinds, levels = self.degrader(images, generator=self.generator)
        targets, epsilon = self.labels(images, degraded, labels, self.num_classes)
        return {"x": degraded, "y": labels, "targets": targets, "epsilon": epsilon, "level": levels, "kind": kinds}

    def forward(self, images: Tensor) -> Tensor:
        images = self.normalize(images)
        if self.channels_last and images.is_cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    # ---- steps -----------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch["x"])
        loss = soft_cross_entropy(logits, batch["targets"])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at epoch {self.current_epoch}, global step "
                f"{self.global_step}; stopping. Try a lower optimizer.lr.")
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["y"]))
        self.train_top1.update((logits.argmax(dim=1) == batch["y"]).float())
        self.train_epsilon.update(batch["epsilon"])
        return loss

    def on_train_epoch_end(self) -> None:
        for name, metric in (("train/top1", self.train_top1), ("train/epsilon", self.train_epsilon)):
            if metric.update_called:  # an epoch without training batches has nothing to report
                self.log(name, metric.compute())
            metric.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.val_metrics.update(self(batch["x"]), batch["y"])

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.test_metrics.update(self(batch["x"]), batch["y"])

    def _log_metrics(self, stage: str, metrics: EvaluationMetrics) -> None:
        values = metrics.compute()
        metrics.reset()
        # torchmetrics already synchronised across ranks in compute()
        self.log_dict({f"{stage}/{name}": value for name, value in values.items()}, prog_bar=stage == "val")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    # ---- optimisation and checkpoints --------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer),
                                                          "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["infomatch_config"] = self.run_config
        checkpoint["infomatch_normalization"] = self.normalize.statistics()
