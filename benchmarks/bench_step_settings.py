"""Training-step throughput under each precision x memory-format (x compile) setting, side by side in one run.

    python benchmarks/bench_step_settings.py                              # widths 16 and 64, CPU or GPU
    python benchmarks/bench_step_settings.py --widths 16 --compile        # also torch.compile'd variants
    python benchmarks/bench_step_settings.py --widths 16 --compile --precisions 32-true --memory-formats contiguous
                                                                          # a CPU without AVX-512 or native bf16

Every variant runs the full training step (uint8 batch -> data stage -> IM targets -> forward -> loss ->
backward -> AdamW) on the same batches; rounds cycle through the variants so that machine noise hits
all of them alike. The ratio column is against the first variant: fp32, contiguous, eager by default, which
is what ``trainer.precision=auto`` picked on every CPU before native bf16 was detected.
"""

from __future__ import annotations

import argparse
import itertools

import torch
from bench_train_step import make_step
from common import Stopwatch, add_malloc_flag, build_module, build_stage, device_name, random_batches, set_up_malloc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round and variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="add torch.compile'd variants (slow to build on CPU)")
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"],
                        help="bf16-mixed is emulated (8-20x slower) on CPUs without native bf16: leave it out there")
    parser.add_argument("--memory-formats", nargs="+", choices=("contiguous", "channels_last"),
                        default=["contiguous", "channels_last"],
                        help="channels_last can hang or crash in oneDNN on AVX2-only CPUs: leave it out there")
    add_malloc_flag(parser)
    args = parser.parse_args()
    malloc = set_up_malloc(args)
    device = torch.device(args.device)
    batches = random_batches(args.steps, args.batch)
    print(f"device={device} ({device_name(device)}) {malloc} threads={torch.get_num_threads()} batch={args.batch} "
          f"steps/round={args.steps} rounds={args.rounds}")
    print(f"{'width':>5} | {'precision':>10} | {'memory format':>13} | {'compile':>7} | {'img/s':>7} | {'vs first':>8}")
    compiles = (False, True) if args.compile else (False,)
    channels_lasts = [memory_format == "channels_last" for memory_format in args.memory_formats]
    for width in args.widths:
        variants = {}
        for precision, channels_last, compile in itertools.product(args.precisions, channels_lasts, compiles):
            torch.manual_seed(0)
            module = build_module(width, compile=compile).to(device).train()
            module.channels_last = channels_last
            module.on_fit_start()
            optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
            step = make_step(module, build_stage(), optimizer, device, precision, with_stage=True)
            for images_u8, labels in random_batches(2, args.batch):  # warm-up (allocator, compilation)
                step(images_u8, labels)
            variants[(precision, channels_last, compile)] = step
        seconds = dict.fromkeys(variants, 0.0)
        for _ in range(args.rounds):
            for key, step in variants.items():
                with Stopwatch(device) as watch:
                    for images_u8, labels in batches:
                        step(images_u8, labels)
                seconds[key] += watch.seconds
        images = args.batch * args.steps * args.rounds
        baseline = images / seconds[next(iter(seconds))]
        for (precision, channels_last, compile), spent in seconds.items():
            rate = images / spent
            print(f"{width:>5} | {precision:>10} | {'channels_last' if channels_last else 'contiguous':>13} | "
                  f"{str(compile):>7} | {rate:>7.0f} | {rate / baseline:>7.2f}x")


if __name__ == "__main__":
    main()
