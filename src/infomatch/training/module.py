"""The LightningModule: targets from the label strategy -> normalize -> ResNet -> loss and metrics.

The data module hands it training batches already cropped, flipped and degraded on the device
(``TrainingBatch``); validation and test batches are (images in [0, 1], labels). A batch with a mixing plan
(``batch.mix``, the `mix` group) gets its targets from the label strategy on the unmixed images, then the network
input and the targets are mixed with that one plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from infomatch.augment.mix import mix_images, mix_targets
from infomatch.data import cifar
from infomatch.data.batch import TrainingBatch
from infomatch.metrics.classification import EvaluationMetrics
from infomatch.models import Normalize
from infomatch.training.loss import soft_cross_entropy
from infomatch.utils.checks import require
from infomatch.utils.precision import channels_last_is_safe

COMPILE_MODES = (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class InfoMatchModule(L.LightningModule):
    def __init__(
        self,
        net: nn.Module,
        label_strategy: Callable[[TrainingBatch, int], tuple[Tensor, Tensor]],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        mean: tuple[float, ...] = cifar.CIFAR100.mean,
        std: tuple[float, ...] = cifar.CIFAR100.std,
        ece_bins: int = 15,
        channels_last: bool | str = "auto",
        compile: bool | str = False,
        non_finite_check_every: int = 50,
        run_config: dict | None = None,
    ) -> None:
        super().__init__()
        require("speed.compile", compile, compile in COMPILE_MODES, f"must be one of {COMPILE_MODES}")
        self.net = net
        self.label_strategy = label_strategy
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.normalize = Normalize(mean, std)
        self.channels_last = channels_last
        self.compile_mode = compile
        self.non_finite_check_every = non_finite_check_every
        # plain resolved config, stored in every checkpoint so evaluation can rebuild the exact model
        self.run_config = run_config
        # what the label strategy estimated before training (matched's epsilon, schedule's table): plain data
        self.label_estimates: dict[str, Any] = {}
        self.num_classes = cast(int, net.num_classes)  # every network here keeps its class count (ResNet18)
        self.val_metrics = EvaluationMetrics(self.num_classes, ece_bins)
        self.test_metrics = EvaluationMetrics(self.num_classes, ece_bins)
        # per-sample running means, logged once per epoch: a self.log call per step and value costs about
        # a millisecond of host time, which GPU steps cannot hide; no NaN check, which would sync the GPU
        self.train_top1 = MeanMetric(nan_strategy="disable")
        self.train_epsilon = MeanMetric(nan_strategy="disable")
        # (global step, epoch) of the next step and of the first non-finite loss (-1: none yet), and that loss;
        # kept on the device and read every non_finite_check_every steps instead of syncing at every step
        self._clock: Tensor | None = None
        self._first_non_finite: Tensor | None = None
        self._non_finite_loss: Tensor | None = None

    def on_fit_start(self) -> None:
        if self.channels_last == "auto":
            self.channels_last = channels_last_is_safe(self.device)
        if self.channels_last is True:
            self.net.to(memory_format=torch.channels_last)
        if self.compile_mode is not False:
            # in place: parameter names, hence checkpoints, stay those of the plain network
            self.net.compile(mode=None if self.compile_mode in (True, "default") else self.compile_mode)

    def on_train_epoch_start(self) -> None:
        self._start_clock()

    def _start_clock(self) -> None:
        self._clock = torch.tensor([self.global_step, self.current_epoch], device=self.device)
        if self._first_non_finite is None or self._first_non_finite.device != self.device:
            self._first_non_finite = torch.full((2,), -1, dtype=torch.long, device=self.device)
            self._non_finite_loss = torch.zeros((), device=self.device)

    def forward(self, images: Tensor) -> Tensor:
        images = self.normalize(images)
        if self.channels_last is True:  # faster convolutions where channels_last_is_safe says so
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images)

    # ---- steps -----------------------------------------------------------------------------------
    def training_step(self, batch: TrainingBatch, batch_idx: int) -> Tensor:
        # the strategy sees each original clean/degraded pair; mixing then combines the per-image targets, so it
        # works with every strategy (epsilon stays the per-image smoothing the strategy gave)
        targets, epsilon = self.label_strategy(batch, self.num_classes)
        images = batch.degraded
        if batch.mix is not None:
            images, targets = mix_images(images, batch.mix), mix_targets(targets, batch.mix)
        logits = self(images)
        loss = soft_cross_entropy(logits, targets)
        self._watch_non_finite(loss)
        # under DDP this is rank 0's loss: sync_dist would add an all-reduce to every step
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch))
        # against each image's own class, mixed or not: with mixing, the share of images whose own class wins
        self.train_top1.update((logits.argmax(dim=1) == batch.classes).float())
        self.train_epsilon.update(epsilon)
        return loss

    # ---- non-finite losses, found without a GPU sync per step -------------------------------------------
    def _watch_non_finite(self, loss: Tensor) -> None:
        if self._clock is None or self._clock.device != loss.device:  # a step outside trainer.fit (benchmarks)
            self._start_clock()
        # all three set by now: _start_clock sets the clock, and the other two together when they are not
        clock = cast(Tensor, self._clock)
        first_non_finite = cast(Tensor, self._first_non_finite)
        first = (first_non_finite[0] < 0) & ~torch.isfinite(loss.detach())
        self._first_non_finite = torch.where(first, clock, first_non_finite)
        self._non_finite_loss = torch.where(first, loss.detach().float(), cast(Tensor, self._non_finite_loss))
        clock[0] += 1

    def check_non_finite(self) -> None:
        """Raise FloatingPointError naming the first step whose loss was not finite, if there was one."""
        if self._first_non_finite is None:
            return
        step, epoch = self._first_non_finite.tolist()
        if step >= 0:
            loss = cast(Tensor, self._non_finite_loss)  # set together with _first_non_finite
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at epoch {epoch}, global step {step}; "
                "stopping. Try a lower optimizer.lr.")

    def check_finite_weights(self) -> None:
        """Raise FloatingPointError naming the parameters and buffers holding inf or nan.

        A diverging step can leave the loss finite while a BatchNorm running variance overflows (training
        normalises with the batch's statistics, evaluation with the running ones).
        """
        tensors = [(name, tensor) for name, tensor in (*self.named_parameters(), *self.named_buffers())
                   if tensor.is_floating_point()]
        finite = torch.stack([torch.isfinite(tensor).all() for _, tensor in tensors]).tolist()  # one device sync
        broken = [name for (name, _), ok in zip(tensors, finite) if not ok]
        if broken:
            shown = ", ".join(broken[:5]) + (f" and {len(broken) - 5} more" if len(broken) > 5 else "")
            raise FloatingPointError(
                f"non-finite parameters or buffers (inf or nan in {shown}) at epoch {self.current_epoch}, global step "
                f"{self.global_step}; stopping without writing them to a checkpoint. Try a lower optimizer.lr.")

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if (batch_idx + 1) % self.non_finite_check_every == 0:
            self.check_non_finite()

    def on_validation_start(self) -> None:
        self.check_non_finite()  # before validating, and checkpointing, weights a non-finite step produced

    def on_train_epoch_end(self) -> None:
        self.check_non_finite()
        for name, metric in (("train/top1", self.train_top1), ("train/epsilon", self.train_epsilon)):
            if metric.update_called:  # an epoch without training batches has nothing to report
                self.log(name, metric.compute(), sync_dist=True)  # see _log_metrics
            metric.reset()

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        self.val_metrics.update(self(images), labels)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        self.test_metrics.update(self(images), labels)

    def _log_metrics(self, stage: str, metrics: EvaluationMetrics) -> None:
        values = metrics.compute()
        metrics.reset()
        # torchmetrics already synchronised across ranks in compute(), so every rank holds the global values;
        # sync_dist averages these equal values once per epoch and tells Lightning they are global
        self.log_dict({f"{stage}/{name}": value for name, value in values.items()}, prog_bar=stage == "val",
                      sync_dist=True)

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
        self.check_non_finite()  # never write weights that a non-finite step produced
        self.check_finite_weights()
        checkpoint["infomatch_config"] = self.run_config
        checkpoint["infomatch_label_estimates"] = self.label_estimates
        checkpoint["infomatch_normalization"] = self.normalize.statistics()
