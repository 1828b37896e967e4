"""Information Matching in a plain PyTorch training loop: no Lightning, no Hydra.

Each step takes a uint8 batch, crops, flips and degrades it on the device (infomatch's TrainingStage), softens
each label by the NMI between the clean and the degraded image (InformationMatching) and trains any classifier
on the soft targets with soft_cross_entropy:

    python examples/plain_pytorch.py --synthetic --steps 20            # generated data, seconds
    python examples/plain_pytorch.py --root data/cifar100 --steps 500  # CIFAR-100 (cifar-100-python/ inside)
    python examples/plain_pytorch.py --synthetic --model torchvision   # torchvision's resnet18 instead
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor, nn

from infomatch.augment import Degrader
from infomatch.base_augment import BaseAugment
from infomatch.data import CIFAR100DataModule, SyntheticDataModule
from infomatch.data.stage import TrainingStage
from infomatch.labels import InformationMatching
from infomatch.models import NormalizedClassifier, ResNet18
from infomatch.training.loss import soft_cross_entropy


def training_data(synthetic: bool, root: str) -> tuple[Tensor, Tensor, int, tuple, tuple]:
    """uint8 training images (N, 3, 32, 32), labels (N,), class count, per-channel mean and std."""
    data = (SyntheticDataModule(train_size=1024, val_size=128) if synthetic
            else CIFAR100DataModule(root=root, download=False))
    data.setup("fit")
    images, labels = data.train_set
    return images, labels, data.num_classes, data.mean, data.std


def network(kind: str, num_classes: int, width: int) -> nn.Module:
    if kind == "torchvision":
        import torchvision

        return torchvision.models.resnet18(num_classes=num_classes)
    return ResNet18(num_classes=num_classes, width=width)


def soft_targets(stage: TrainingStage, strategy: InformationMatching, images: Tensor, labels: Tensor,
                 num_classes: int, epoch: int) -> tuple[Tensor, Tensor, Tensor]:
    """(network input in [0, 1], soft targets (B, K), epsilon (B,)) of one uint8 batch."""
    batch = stage(images, labels, epoch=epoch)
    targets, epsilon = strategy(batch, num_classes)
    return batch.degraded, targets, epsilon


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", action="store_true", help="generated images instead of CIFAR-100")
    parser.add_argument("--root", default="data/cifar100", help="folder holding cifar-100-python/")
    parser.add_argument("--model", choices=("infomatch", "torchvision"), default="infomatch")
    parser.add_argument("--width", type=int, default=16, help="infomatch ResNet-18 width")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    images, labels, num_classes, mean, std = training_data(args.synthetic, args.root)
    images, labels = images.to(device), labels.to(device)  # uint8 on the device: no loader, no workers
    model = NormalizedClassifier(network(args.model, num_classes, args.width), mean, std).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    # the fair default: crop + flip, then one of the four degradations at a level d ~ U(0, 1) per image
    stage = TrainingStage(Degrader(types=["diffusion", "blur", "dropout", "mosaic"]), BaseAugment(), seed=args.seed)
    strategy = InformationMatching()
    order = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = max(1, len(labels) // args.batch_size)
    losses = []
    for step in range(args.steps):
        epoch = step // steps_per_epoch
        if step % steps_per_epoch == 0:
            permutation = torch.randperm(len(labels), generator=order).to(device)
        chosen = permutation[(step % steps_per_epoch) * args.batch_size:][:args.batch_size]
        inputs, targets, epsilon = soft_targets(stage, strategy, images[chosen], labels[chosen], num_classes, epoch)
        loss = soft_cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.4f}, mean epsilon {epsilon.mean().item():.3f}")
    return losses


if __name__ == "__main__":
    main()
