"""How much each measure smooths each degradation: epsilon = clamp(1 - similarity, 0, eps_max) against the level d.

    python -m infomatch.tasks.epsilon_curve --data-root data/cifar100 --images 1000

Writes one figure (a panel per degradation, a curve per measure: nmi, nmi_adjusted, ssim; mean and 10-90%
band) and a CSV under --out. It shows where a measure saturates: with 64 bins and 1,024 pixels, two
unrelated images already score NMI ~0.26, so strong noise or blur all get nearly the same NMI epsilon.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def load_images(data_root: str | None, count: int, seed: int) -> Tensor:
    """``count`` training images in [0, 1]: synthetic ones, or a fixed random sample of CIFAR-100 at ``data_root``."""
    import torch

    from infomatch.data.stage import to_unit_range

    if data_root is None:
        from infomatch.data.synthetic import synthetic_images

        return to_unit_range(synthetic_images(count, 100, 32, seed)[0])
    from infomatch.data import cifar

    folder = cifar.ensure_downloaded(cifar.CIFAR100, data_root, download=False)
    images, _ = cifar.read_split(cifar.CIFAR100, folder, "train")
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count]
    return to_unit_range(images[chosen])


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infomatch.tasks.epsilon_curve", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-root", default=None,
                        help="folder containing cifar-100-python/; without it, synthetic images")
    parser.add_argument("--images", type=int, default=1000, help="training images measured at every level")
    parser.add_argument("--levels", type=int, default=21, help="degradation levels, evenly spaced over [0, 1]")
    parser.add_argument("--bins", type=int, default=64, help="NMI histogram bins per channel (labels.bins)")
    parser.add_argument("--eps-max", type=float, default=0.9, help="the cap of epsilon (labels.eps_max)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the image sample and the degradations")
    parser.add_argument("--out", default="outputs/epsilon_curve", help="folder for epsilon_curve.png and .csv")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = command_line().parse_args(argv)
    # torch and the measures load only now, so that --help answers at once
    import torch

    from infomatch.labels.epsilon_curve import epsilon_curves, plot_epsilon_curves
    from infomatch.labels.nmi import chance_nmi

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = load_images(args.data_root, args.images, args.seed)
    levels = torch.linspace(0, 1, args.levels)
    floor_nmi = float(chance_nmi(images, args.bins).mean())
    curves = epsilon_curves(images, levels, args.bins, args.eps_max, args.seed, floor=floor_nmi)
    with open(out / "epsilon_curve.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["measure", "degradation", "level", "epsilon_mean", "epsilon_std"])
        for measure, by_type in curves.items():
            for name, epsilon in by_type.items():
                for level, mean, std in zip(levels.tolist(), epsilon.mean(1).tolist(), epsilon.std(1).tolist()):
                    writer.writerow([measure, name, f"{level:.3f}", f"{mean:.4f}", f"{std:.4f}"])
    plot_epsilon_curves(levels, curves, floor_nmi, args.eps_max, out / "epsilon_curve.png")
    print(f"unrelated-pair NMI floor (E0 of nmi_adjusted): {floor_nmi:.3f}; "
          f"wrote {out / 'epsilon_curve.png'} and {out / 'epsilon_curve.csv'}")


if __name__ == "__main__":
    main()
