"""Throughput of each base augmentation beside the degradation stage, on the same uint8 batches.

Each option runs the way the training stage runs it (batched, on --device, one draw per image); the degradation
column is Degrader with all four types on the [0, 1] batch, the stage's other half. Options are timed in
alternating rounds and the best round of each is reported, so a busy machine does not favour one.

    PYTHONPATH=src python benchmarks/bench_base_augment.py --batch 128 --batches 10 --rounds 3 --threads 2
"""

from __future__ import annotations

import argparse

import torch
from common import Stopwatch, device_name, random_set

from infomatch.augment import Degrader
from infomatch.base_augment import POLICIES, BaseAugment
from infomatch.data.stage import to_unit_range

OPTIONS = {"crop_flip": lambda: BaseAugment(),
           **{name: (lambda policy=policy: BaseAugment(policy=policy())) for name, policy in POLICIES.items()},
           "crop_flip + random_erasing 0.5": lambda: BaseAugment(random_erasing=0.5),
           "soft_crop (flip + N(0, 12^2) shift)": lambda: BaseAugment(crop_flip=False, soft_crop=True)}
# the degradation stages compared: the fair default's four types, and Mollification's (noise, heat; Beta(1, 2))
DEGRADERS = {"degradation (augment=all)": lambda: Degrader(),
             "degradation (augment=mollify)": lambda: Degrader(types=["noise", "heat"], probability=2 / 3,
                                                               level_distribution="beta", level_a=1.0, level_b=2.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=10, help="batches per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images, _ = random_set(args.batches, args.batch)
    batches = images.to(device).split(args.batch)
    steps = {name: make() for name, make in OPTIONS.items()}
    for name, make in DEGRADERS.items():
        degrader = make()
        steps[name] = lambda x, generator, degrader=degrader: degrader(to_unit_range(x), generator)[0]
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(args.rounds):
        for name, step in steps.items():
            generator = torch.Generator(device=device).manual_seed(0)
            with Stopwatch(device) as watch:
                for batch in batches:
                    step(batch, generator)
            best[name] = min(best[name], watch.seconds)
    print(f"{device_name(device)}, {args.threads} threads, batch {args.batch}, best of {args.rounds} rounds "
          f"of {args.batches} batches")
    reference = best["degradation (augment=all)"]
    print(f"{'step':36s} {'img/s':>9s} {'time / degradation (augment=all)':>33s}")
    for name, seconds in best.items():
        print(f"{name:36s} {args.batches * args.batch / seconds:9.0f} {seconds / reference:32.2f}x")


if __name__ == "__main__":
    main()
