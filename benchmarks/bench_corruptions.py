"""How long the regenerated CIFAR-100-C suite takes for one model: every corruption at every severity, as
evaluate.py runs it (corruptions=regenerated), split into making the corrupted images and the whole
suite (making them + the model's forward pass + top-1 / NLL / ECE).

    PYTHONPATH=src python benchmarks/bench_corruptions.py --images 2000 --width 64 --threads 2      # CPU
    PYTHONPATH=src python benchmarks/bench_corruptions.py --device cuda --images 10000 --width 64   # the full suite

Random uint8 images stand in for the test set (the cost does not depend on content); the model is an
untrained ResNet-18 of the given width with 100 classes.
"""

from __future__ import annotations

import argparse

import torch
from common import Stopwatch

from infomatch.evaluation.cifar100c import BENCHMARK, RegeneratedCorruptions
from infomatch.evaluation.cifar100c.scoring import corruption_scores
from infomatch.models import ResNet18
from infomatch.models.classifier import NormalizedClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--names", default="benchmark", help="benchmark, all, or comma-separated corruption names")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = args.names if args.names in ("benchmark", "all") else args.names.split(",")
    source = RegeneratedCorruptions(names)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=generator).to(device)
    labels = torch.randint(0, 100, (args.images,), generator=generator).to(device)
    net = ResNet18(num_classes=100, width=args.width)
    classifier = NormalizedClassifier(net, [0.5] * 3, [0.25] * 3).to(device).eval()

    # warm-up: caches of operators and kernels, CUDA context
    warm = RegeneratedCorruptions(source.names, [1])
    corruption_scores([classifier], ["model"], warm, images[: args.batch], labels[: args.batch], 0, args.batch, 100, 15)

    print(f"{args.images} images, severities {source.severities}, batch {args.batch}, device {device}, "
          f"threads {torch.get_num_threads()}; not regenerated: {', '.join(source.missing) or 'none'}")
    total = 0.0
    for name in source.names:
        with Stopwatch(device) as watch:
            for severity in source.severities:
                for _ in source.batches(name, severity, images, labels, 0, args.batch):
                    pass
        total += watch.seconds
        print(f"  {name:18s} making the images: {watch.seconds:7.2f} s")
    with Stopwatch(device) as suite:
        corruption_scores([classifier], ["model"], source, images, labels, 0, args.batch, 100, 15)
    sets = len(source.names) * len(source.severities)
    print(f"making all {sets} sets: {total:.1f} s; whole suite for one width-{args.width} model "
          f"(images + forward + metrics): {suite.seconds:.1f} s = {suite.seconds / sets:.2f} s per set of "
          f"{args.images} images")
    regenerated = [name for name in BENCHMARK if name in source.names]
    print(f"({len(regenerated)} of the 15 benchmark corruptions among them)")

if __name__ == "__main__":
    main()
