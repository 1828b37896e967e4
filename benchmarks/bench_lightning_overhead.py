"""The Lightning training loop against a bare PyTorch loop doing the same work (goal: >= 0.9 of its throughput).

    python benchmarks/bench_lightning_overhead.py               # width 16, batch 128, CPU or GPU
    python benchmarks/bench_lightning_overhead.py --width 64 --batch 512

Both train the same InfoMatchModule on the same in-memory uint8 batches with every degradation and
IM targets on; Lightning runs with the progress bar and logging interval that train.py takes from
configs/ (no validation or checkpoints, so that only the loop itself is compared).
--lightning-defaults uses Lightning's own defaults instead (a rich progress bar redrawn every step).
The first batches are warm-up and not timed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightning as L
import torch
from common import (
    RandomDataModule,
    add_malloc_flag,
    autocast,
    build_module,
    build_stage,
    default_precision,
    device_name,
    set_up_malloc,
    synchronize,
)
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from infomatch.data.batching import DeviceBatches, batch_loader
from infomatch.training.loss import soft_cross_entropy


class TimeAfterWarmup(L.Callback):
    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup = warmup
        self.device = device

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            synchronize(self.device)
            self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def training_loop_settings(lightning_defaults: bool) -> tuple[list[L.Callback], dict]:
    """The progress bar and logging interval of train.py's trainer, read from configs/."""
    if lightning_defaults:
        return [], {}
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train")
    return [instantiate(cfg.callbacks.progress_bar)], {"log_every_n_steps": cfg.trainer.log_every_n_steps}


def lightning_seconds(width, count, batch, warmup, device, precision, lightning_defaults: bool, on_device: bool,
                      compile: bool | str) -> float:
    module = build_module(width, compile=compile)
    data = RandomDataModule(count, batch, stage=build_stage(), on_device=on_device, shuffle_seed=0)
    timer = TimeAfterWarmup(warmup, device)
    callbacks, settings = training_loop_settings(lightning_defaults)
    trainer = L.Trainer(accelerator=device.type, devices=1, max_epochs=1, precision=precision,
                        limit_val_batches=0, enable_checkpointing=False,
                        logger=L.pytorch.loggers.CSVLogger("/tmp/bench_logs"),
                        callbacks=[timer, *callbacks], enable_model_summary=False, **settings)
    trainer.fit(module, datamodule=data)
    return timer.seconds


def bare_seconds(width, count, batch, warmup, device, precision, on_device: bool, compile: bool | str) -> float:
    """The same work in a plain loop: the same batches, stage, strategy, forward, loss and AdamW."""
    module = build_module(width, compile=compile).to(device).train()
    module.on_fit_start()  # memory format (and compilation) as in training
    optimizer = module.configure_optimizers()
    stage = build_stage()
    images, labels = RandomDataModule(count, batch).load()[:2]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    images, labels = images[order], labels[order]
    batches = (random_batches_from(images, labels, batch, device) if on_device
               else batch_loader(images, labels, batch, shuffle=False, pin_memory=device.type == "cuda"))
    for index, (images_u8, labels_batch) in enumerate(batches):
        if index == warmup:
            synchronize(device)
            start = time.perf_counter()
        record = stage(images_u8.to(device, non_blocking=True), labels_batch.to(device, non_blocking=True))
        targets, _ = module.label_strategy(record, module.num_classes)
        with autocast(device, precision):
            logits = module(record.degraded)
        loss = soft_cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return time.perf_counter() - start


def random_batches_from(images, labels, batch, device):
    return DeviceBatches(images, labels, batch, shuffle=False, seed=0, device=device, epoch=lambda: 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default=None, help="default: bf16-mixed on GPU, 32-true on CPU")
    parser.add_argument("--lightning-defaults", action="store_true",
                        help="Lightning's default progress bar and logging instead of train.py's")
    parser.add_argument("--data", choices=("loader", "device"), default="loader",
                        help="batches from a DataLoader (data.on_device=false) or gathered on the device")
    parser.add_argument("--compile", default="false", help="trainer.compile: false, true or a torch.compile mode")
    add_malloc_flag(parser)
    args = parser.parse_args()
    malloc = set_up_malloc(args)
    device = torch.device(args.device)
    precision = args.precision or default_precision(device)
    compile = {"false": False, "true": True}.get(args.compile, args.compile)
    on_device = args.data == "device"
    count = args.warmup + args.steps
    seconds = {"bare": 0.0, "lightning": 0.0}
    for _ in range(args.rounds):  # alternate so that machine noise hits both loops alike
        L.seed_everything(0, verbose=False)
        seconds["bare"] += bare_seconds(args.width, count, args.batch, args.warmup, device, precision, on_device,
                                        compile)
        L.seed_everything(0, verbose=False)
        seconds["lightning"] += lightning_seconds(args.width, count, args.batch, args.warmup, device, precision,
                                                  args.lightning_defaults, on_device, compile)
    images = args.batch * args.steps * args.rounds
    bare, lightning = images / seconds["bare"], images / seconds["lightning"]
    loop = "lightning-defaults" if args.lightning_defaults else "train.py-progress-bar-and-logging"
    print(f"device={device} ({device_name(device)}) precision={precision} {malloc} {loop} data={args.data} "
          f"compile={args.compile} width={args.width} batch={args.batch} timed steps={args.steps}x{args.rounds}")
    print(f"{'loop':>9} | {'img/s':>7}")
    print(f"{'bare':>9} | {bare:>7.0f}")
    print(f"{'lightning':>9} | {lightning:>7.0f}")
    print(f"lightning / bare = {lightning / bare:.3f}")


if __name__ == "__main__":
    main()
