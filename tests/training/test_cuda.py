"""The batched stage and a training run on a CUDA device; skipped where there is none.

The GPU must compute the same function as the CPU path that the other tests check against oracles.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from infomatch.augment import DEGRADATIONS, apply_degradations, blur, diffusion, dropout, mosaic
from infomatch.base_augment import crop_flip
from infomatch.data.batch import TrainingBatch
from infomatch.labels.nmi import nmi
from infomatch.labels.strategies import InformationMatching
from infomatch.tasks.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def batch(size=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(size, 3, 32, 32, generator=generator), torch.rand(size, generator=generator)


@pytest.fixture
def tf32_matmuls():
    """Training sets this; the deterministic filters must stay exact under it."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    yield
    torch.set_float32_matmul_precision(previous)


@pytest.mark.parametrize("degrade", [blur, mosaic])
def test_deterministic_degradations_match_cpu(degrade, tf32_matmuls):
    x, level = batch()
    torch.testing.assert_close(degrade(x.cuda(), level.cuda()).cpu(), degrade(x, level), atol=1e-6, rtol=0)


def test_nmi_matches_cpu():
    x, level = batch()
    degraded = blur(x, level)
    # identical histograms; only the last bits of the float32 logs of counts may differ between devices
    torch.testing.assert_close(nmi(x.cuda(), degraded.cuda()).cpu(), nmi(x, degraded), atol=1e-6, rtol=0)


def test_random_degradations_follow_their_definition_on_cuda():
    x, level = batch()
    x, level = x.cuda(), level.cuda()
    kept = dropout(x, level, 8, torch.Generator(device="cuda").manual_seed(0))
    kept_tiles = (kept != 0).any(dim=1).view(64, 4, 8, 4, 8).any(dim=(2, 4)).sum(dim=(1, 2))
    assert torch.equal(kept_tiles.cpu(), (16 * (1 - level.double())).floor().long().cpu())
    t = (level.double() * 999).long()
    noisy = diffusion(x, level, torch.Generator(device="cuda").manual_seed(0))
    assert torch.equal(noisy[t == 0], x[t == 0]) and noisy.min() >= 0 and noisy.max() <= 1


def test_mixed_stage_and_targets_on_cuda(tf32_matmuls):
    x, level = batch(256)
    types = torch.arange(256) % 5 - 1
    generator = torch.Generator(device="cuda").manual_seed(0)
    out = apply_degradations(x.cuda(), types.cuda(), level.cuda(), generator)
    deterministic = (types == DEGRADATIONS.index("blur")) | (types == DEGRADATIONS.index("mosaic")) | (types == -1)
    expected = apply_degradations(x, types, level, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.cpu()[deterministic], expected[deterministic], atol=1e-6, rtol=0)
    labels = torch.randint(100, (256,))
    on_gpu = TrainingBatch(x.cuda(), out, labels.cuda(), types.cuda(), level.cuda())
    targets, epsilon = InformationMatching()(on_gpu, 100)
    assert torch.allclose(targets.sum(dim=1), torch.ones(256, device="cuda"))
    on_cpu = TrainingBatch(x, out.cpu(), labels, types, level)
    torch.testing.assert_close(epsilon.cpu(), InformationMatching()(on_cpu, 100)[1], atol=1e-6, rtol=0)


def test_crop_flip_on_uint8_cuda():
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, device="cuda")
    out, _ = crop_flip(x, 4, torch.Generator(device="cuda").manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == x.shape and out.is_cuda


class RecordLogits(L.Callback):
    """Records (device type, dtype) of the network's logits in every training step."""

    seen: list[tuple[str, torch.dtype]] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        def record(module, inputs, logits) -> None:
            if trainer.training:
                RecordLogits.seen.append((logits.device.type, logits.dtype))

        pl_module.net.register_forward_hook(record)


@pytest.mark.parametrize("labels", ["hard", "ls", "im"])
def test_training_on_gpu_in_bf16(make_config, labels):
    RecordLogits.seen.clear()
    metrics = train(make_config("debug=fast", f"labels={labels}", "trainer=gpu", "trainer.accelerator=gpu",
                                "trainer.precision=auto", "model.width=16", "trainer.max_epochs=2",
                                "+callbacks.record_logits._target_=test_cuda.RecordLogits"))
    assert metrics["epochs"] == 2 and 0 <= metrics["test"]["test/top1"] <= 1
    # precision=auto means bf16 mixed precision on a GPU: the training forward passes run in bfloat16 there
    assert RecordLogits.seen and set(RecordLogits.seen) == {("cuda", torch.bfloat16)}


def test_sets_on_the_gpu_train_like_the_data_loader(make_config, tmp_path):
    # same sample order and stage either way; cuDNN may pick other kernels between runs, hence a tolerance
    results = {}
    for on_device in ("false", "auto"):
        cfg = make_config("debug=fast", "labels=im", "trainer=gpu", "trainer.precision=32-true",
                          "trainer.deterministic=true", "trainer.benchmark=false", f"data.on_device={on_device}")
        cfg.paths.output_dir = str(tmp_path / on_device)
        results[on_device] = train(cfg)["val"]["val/nll"]
    assert results["auto"] == pytest.approx(results["false"], rel=1e-3)


def test_compiled_network_with_cuda_graphs_trains(make_config, tmp_path):
    losses = {}
    for compile in ("false", "reduce-overhead"):
        cfg = make_config("debug=fast", "labels=ls", "trainer=gpu", "trainer.precision=32-true", "model.width=8",
                          "trainer.max_epochs=2", f"speed.compile={compile}", "test=false")
        cfg.paths.output_dir = str(tmp_path / compile)
        losses[compile] = train(cfg)["val"]["val/nll"]
    assert losses["reduce-overhead"] == pytest.approx(losses["false"], rel=1e-2)
