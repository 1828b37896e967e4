"""examples/plain_pytorch.py: IM in a plain PyTorch loop trains, and builds the framework's own targets."""

from __future__ import annotations

import importlib.util
import math

import torch
from conftest import ROOT
from hydra.utils import instantiate

from infomatch.augment import Degrader
from infomatch.base_augment import BaseAugment
from infomatch.data.stage import TrainingStage
from infomatch.labels import InformationMatching
from infomatch.tasks.train import build_datamodule


def load_example():
    spec = importlib.util.spec_from_file_location("plain_pytorch", ROOT / "examples" / "plain_pytorch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_trains_a_few_steps_on_synthetic_data():
    losses = load_example().main(["--synthetic", "--steps", "3", "--batch-size", "16", "--width", "8"])
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)


def test_the_example_builds_the_targets_the_framework_trains_on(make_config):
    example = load_example()
    # the framework's fair default IM run, as train.py composes it
    cfg = make_config("labels=im", "augment=all", "base_augment=crop_flip", "seed=3")
    framework_stage, framework_strategy = build_datamodule(cfg).stage, instantiate(cfg.labels)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (24, 3, 32, 32), generator=generator, dtype=torch.uint8)
    labels = torch.randint(100, (24,), generator=generator)
    stage = TrainingStage(Degrader(types=["diffusion", "blur", "dropout", "mosaic"]), BaseAugment(), seed=3)
    for epoch in (0, 1):
        inputs, targets, epsilon = example.soft_targets(stage, InformationMatching(), images, labels, 100, epoch)
        batch = framework_stage(images, labels, epoch=epoch)
        expected_targets, expected_epsilon = framework_strategy(batch, 100)
        assert torch.equal(inputs, batch.degraded)
        assert torch.equal(targets, expected_targets) and torch.equal(epsilon, expected_epsilon)
