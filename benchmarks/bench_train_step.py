"""Training-step throughput with the degrade + NMI + targets stage on and off (issue: stage <= 5% of a step).

    python benchmarks/bench_train_step.py                      # widths 16 and 64, batch 128, CPU or GPU
    python benchmarks/bench_train_step.py --widths 64 --batch 512 --steps 50

Both variants run the same bare training step (uint8 -> [0,1] -> crop/flip -> [stage] -> forward (bf16 on GPU,
fp32 on CPU), soft-target loss, backward, AdamW); "off" skips only the stage. Rounds of on/off alternate so that
machine noise hits both equally.
"""

from __future__ import annotations

import argparse

import torch
from common import (
    Stopwatch,
    add_malloc_flag,
    autocast,
    build_module,
    build_stage,
    default_precision,
    device_name,
    random_batches,
    set_up_malloc,
)

from infomatch.augment import SAMPLINGS
from infomatch.data.stage import to_unit_range
from infomatch.labels.strategies import one_hot
from infomatch.training.loss import soft_cross_entropy


def make_step(module, stage, optimizer, device, precision: str, with_stage: bool):
    def step(images_u8, labels):
        images_u8 = images_u8.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if with_stage:
            batch = stage(images_u8, labels)
            images, (targets, _) = batch.degraded, module.label_strategy(batch, module.num_classes)
        else:
            images, targets = to_unit_range(images_u8), one_hot(labels, module.num_classes)
        with autocast(device, precision):
            logits = module(images)
        loss = soft_cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def stage_only(module, stage, device, batches) -> float:
    """Seconds for the data stage and the targets alone over ``batches``."""
    with Stopwatch(device) as watch:
        for images_u8, labels in batches:
            module.label_strategy(stage(images_u8.to(device), labels.to(device)), module.num_classes)
    return watch.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default=None, help="default: what trainer.precision=auto picks")
    parser.add_argument("--channels-last", choices=("on", "off"), default="on", help="on: as training")
    parser.add_argument("--sampling", choices=SAMPLINGS, default="stratified", help="degradation types per batch")
    parser.add_argument("--compile", default="false", help="trainer.compile: false, true or a torch.compile mode")
    add_malloc_flag(parser)
    args = parser.parse_args()
    malloc = set_up_malloc(args)
    device = torch.device(args.device)
    precision = args.precision or default_precision(device)
    batches = random_batches(args.steps, args.batch)
    print(f"device={device} ({device_name(device)}) precision={precision} channels_last={args.channels_last} "
          f"sampling={args.sampling} compile={args.compile} {malloc} threads={torch.get_num_threads()} "
          f"batch={args.batch} steps/round={args.steps} rounds={args.rounds}")
    print(f"{'width':>5} | {'stage off img/s':>15} | {'stage on img/s':>14} | {'stage cost':>10} | "
          f"{'stage alone img/s':>17}")
    for width in args.widths:
        module = build_module(width, compile={"false": False, "true": True}.get(args.compile, args.compile))
        module = module.to(device).train()
        module.channels_last = args.channels_last == "on"
        module.on_fit_start()  # memory format as in training
        stage = build_stage(sampling=args.sampling)
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
        steps = {with_stage: make_step(module, stage, optimizer, device, precision, with_stage)
                 for with_stage in (False, True)}
        seconds = {False: 0.0, True: 0.0}
        for images_u8, labels in random_batches(2, args.batch):  # warm-up (allocator, cudnn autotune)
            steps[False](images_u8, labels), steps[True](images_u8, labels)
        for _ in range(args.rounds):
            for with_stage in (False, True):
                with Stopwatch(device) as watch:
                    for images_u8, labels in batches:
                        steps[with_stage](images_u8, labels)
                seconds[with_stage] += watch.seconds
        images = args.batch * args.steps * args.rounds
        off, on = images / seconds[False], images / seconds[True]
        alone = args.batch * args.steps / stage_only(module, stage, device, batches)
        print(f"{width:>5} | {off:>15.0f} | {on:>14.0f} | {100 * (1 - on / off):>9.1f}% | {alone:>17.0f}")


if __name__ == "__main__":
    main()
