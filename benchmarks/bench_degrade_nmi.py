"""Throughput of the degrade + NMI + IM-targets stage: batched library vs a per-image implementation.

The per-image version does what the reference scripts do in their Dataset, one image at a time:
draw a type and a level, degrade (torchvision gaussian_blur, Python loops over dropout patches and
mosaic blocks), NMI from per-channel bincount histograms, build the smoothed target. Both run on
random 32x32 batches with all four degradations mixed; the two are timed in alternating rounds and
the best round of each is reported, which keeps a busy machine from favouring either side.

    PYTHONPATH=src python benchmarks/bench_degrade_nmi.py --batch 256 --batches 10 --threads 2
    PYTHONPATH=src python benchmarks/bench_degrade_nmi.py --device cuda --batches 200   # batched side on the GPU

The per-image side always runs on the CPU, as the reference's DataLoader workers do.

On CPU the batched stage allocates a few large temporaries per batch; by default glibc hands such
blocks back to the OS and re-faults them, which can dominate in VMs. Like train.py, the benchmark keeps
freed memory (infomatch.utils.memory); --default-malloc measures glibc's default behaviour.
"""

from __future__ import annotations

import argparse
import math
import random

import torch
import torchvision.transforms.functional as TF
from common import Stopwatch, add_malloc_flag, set_up_malloc

from infomatch.augment import DEGRADATIONS, Degrader
from infomatch.labels.strategies import InformationMatching

NUM_CLASSES = 100
BINS = 64
EPS_MAX = 0.9


# ---- per-image implementation, structured like the reference scripts' Dataset.__getitem__ --------
ALPHA_BAR = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), dim=0)


def degrade_one(image: torch.Tensor, kind: str, d: float) -> torch.Tensor:
    _, height, width = image.shape
    if kind == "diffusion":
        t = min(max(int(d * 999), 0), 999)
        if t == 0:
            return image
        noisy = ALPHA_BAR[t].sqrt() * (2 * image - 1) + (1 - ALPHA_BAR[t]).sqrt() * torch.randn_like(image)
        return ((noisy + 1) / 2).clamp(0, 1)
    if kind == "blur":
        sigma = d * 50.0 + 0.01
        k = min(2 * int(4 * sigma + 0.5) + 1, 51)
        k -= k % 2 == 0
        return TF.gaussian_blur(image, [k, k], [sigma, sigma])
    if kind == "dropout":
        patch = 8
        cols = math.ceil(width / patch)
        n = math.ceil(height / patch) * cols
        out = torch.zeros_like(image)
        for tile in torch.randperm(n)[:int(n * (1 - d))].tolist():
            top, left = tile // cols * patch, tile % cols * patch
            out[:, top:top + patch, left:left + patch] = image[:, top:top + patch, left:left + patch]
        return out
    block = max(1, int(32 * (d + 0.001) ** 2))
    out = torch.zeros_like(image)
    for top in range(0, height, block):
        for left in range(0, width, block):
            region = image[:, top:top + block, left:left + block]
            out[:, top:top + block, left:left + block] = region.mean(dim=(1, 2), keepdim=True)
    return out


def nmi_one(a: torch.Tensor, b: torch.Tensor, bins: int = BINS) -> float:
    total = 0.0
    for channel in range(a.shape[0]):
        qa = (a[channel].flatten() * (bins - 1)).long().clamp(0, bins - 1)
        qb = (b[channel].flatten() * (bins - 1)).long().clamp(0, bins - 1)
        joint = torch.bincount(qa * bins + qb, minlength=bins * bins).double().view(bins, bins)
        p = joint / joint.sum()
        p1, p2 = p.sum(1), p.sum(0)
        nz = p > 0
        mi = max((p[nz] * (p[nz] / torch.outer(p1, p2)[nz]).log()).sum().item(), 0.0)
        h1 = -(p1[p1 > 0] * p1[p1 > 0].log()).sum().item()
        h2 = -(p2[p2 > 0] * p2[p2 > 0].log()).sum().item()
        total += 1.0 if h1 + h2 == 0 else 2 * mi / (h1 + h2)
    return total / a.shape[0]


def per_image_stage(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    degraded, targets = [], []
    for image, label in zip(images, labels.tolist()):
        out = degrade_one(image, random.choice(DEGRADATIONS), random.random())
        eps = min(max(1 - nmi_one(image, out), 0.0), EPS_MAX)
        target = torch.full((NUM_CLASSES,), eps / NUM_CLASSES)
        target[label] += 1 - eps
        degraded.append(out)
        targets.append(target)
    return torch.stack(degraded), torch.stack(targets)


# ---- batched library ------------------------------------------------------------------------------
def batched_stage(images, labels, degrader, strategy, generator):
    degraded, _, _ = degrader(images, generator=generator)
    targets, epsilon = strategy(images, degraded, labels, NUM_CLASSES)
    return degraded, targets, epsilon


def throughput(stage, batches, device: torch.device) -> float:
    with Stopwatch(device) as watch:
        for batch in batches:
            stage(*batch)
    return len(batches) * batches[0][0].shape[0] / watch.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=10, help="batches per round, batched pipeline")
    parser.add_argument("--reference-batches", type=int, default=1, help="batches per round, per-image one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="where the batched pipeline runs (cpu or cuda)")
    parser.add_argument("--profile", action="store_true",
                        help="also print the batched stage's most expensive operators (torch.profiler)")
    add_malloc_flag(parser)
    args = parser.parse_args()
    malloc = set_up_malloc(args)
    device = torch.device(args.device)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)

    def make_batch():
        return torch.rand(args.batch, 3, 32, 32), torch.randint(NUM_CLASSES, (args.batch,))

    degrader, strategy = Degrader(), InformationMatching(EPS_MAX, BINS)
    generator = torch.Generator(device=device).manual_seed(args.seed)

    def batched(images, labels):
        return batched_stage(images, labels, degrader, strategy, generator)

    batches = [make_batch() for _ in range(max(args.batches, args.reference_batches))]
    # the batched pipeline gets its input where training has it: already on the device
    device_batches = [(images.to(device), labels.to(device)) for images, labels in batches]
    batched(*device_batches[0])  # warm-up
    rates = {"batched": 0.0, "per-image": 0.0}
    for _ in range(args.rounds):
        rates["batched"] = max(rates["batched"], throughput(batched, device_batches[:args.batches], device))
        rates["per-image"] = max(rates["per-image"],
                                 throughput(per_image_stage, batches[:args.reference_batches], torch.device("cpu")))

    # same method: the per-image NMI on the batched pipeline's own degraded images gives the same epsilon
    images, labels = batches[0]
    degraded, _, epsilon = (t.cpu() for t in batched(*device_batches[0]))
    reference_eps = torch.tensor([min(max(1 - nmi_one(a, b), 0.0), EPS_MAX) for a, b in zip(images, degraded)])
    disagreement = (epsilon - reference_eps).abs().max().item()

    print(f"degrade + NMI + IM targets, {args.batch} x 3 x 32 x 32, all four degradations, batched on {device}, "
          f"{torch.get_num_threads()} CPU thread(s), {malloc}, torch {torch.__version__}, best of {args.rounds} rounds")
    print("| pipeline  | images/s | ms/batch |")
    print("|-----------|---------:|---------:|")
    for name, rate in rates.items():
        print(f"| {name:<9} | {rate:8.0f} | {1000 * args.batch / rate:8.1f} |")
    print(f"speed-up: {rates['batched'] / rates['per-image']:.0f}x; "
          f"max |eps batched - eps per-image NMI| = {disagreement:.1e}")
    if args.profile:
        print_profile(batched, device_batches[:args.batches])


def print_profile(stage, batches) -> None:
    """Self time per operator, per batch: which kernels a faster stage would have to fuse or drop."""
    with torch.profiler.profile() as profiler:
        for batch in batches:
            stage(*batch)
    averages = sorted(profiler.key_averages(),
                      key=lambda event: event.self_device_time_total + event.self_cpu_time_total, reverse=True)
    print(f"\nmost expensive operators of the batched stage (self time per batch of {batches[0][0].shape[0]}):")
    print("| operator | ms/batch | calls/batch |")
    print("|---|---:|---:|")
    for event in averages[:12]:
        milliseconds = (event.self_device_time_total + event.self_cpu_time_total) / 1000 / len(batches)
        print(f"| {event.key} | {milliseconds:.2f} | {event.count / len(batches):.0f} |")


if __name__ == "__main__":
    main()
