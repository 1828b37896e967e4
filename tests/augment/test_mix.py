"""Mixing (the `mix` group): mixup / cutmix plans, their application to images and targets, and training with them."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import CONFIGS, ROOT
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from infomatch.augment import Degrader, Mixer, MixPlan, mix_images, mix_targets
from infomatch.data.stage import TrainingStage
from infomatch.labels import LabelSmoothing
from infomatch.models import ResNet18
from infomatch.runs.folders import register_resolvers, run_label
from infomatch.runs.validation import check_resume, validate_train_config
from infomatch.tasks.train import train
from infomatch.training.loss import soft_cross_entropy
from infomatch.training.module import InfoMatchModule
from infomatch.utils.checks import SettingError
from infomatch.utils.distributions import sample_beta
from infomatch.utils.errors import ConfigError


def uint8_images(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_mixed_targets_are_the_hand_computed_blend_and_sum_to_one():
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.1, 0.8, 0.1], [0.0, 0.25, 0.75]])
    plan = MixPlan(partner=torch.tensor([2, 0, 1]), weight=torch.full((3,), 0.7))
    expected = torch.tensor([[0.7 * 1.0 + 0.3 * 0.0, 0.7 * 0.0 + 0.3 * 0.25, 0.7 * 0.0 + 0.3 * 0.75],
                             [0.7 * 0.1 + 0.3 * 1.0, 0.7 * 0.8 + 0.3 * 0.0, 0.7 * 0.1 + 0.3 * 0.0],
                             [0.7 * 0.0 + 0.3 * 0.1, 0.7 * 0.25 + 0.3 * 0.8, 0.7 * 0.75 + 0.3 * 0.1]])
    mixed = mix_targets(targets, plan)
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(mixed.sum(dim=1), torch.ones(3))


def test_mixup_images_are_the_per_image_blend_with_the_partner():
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    plan = Mixer("mixup", alpha=1.0).draw(6, 8, 8, torch.Generator().manual_seed(2))
    assert plan.box is None and sorted(plan.partner.tolist()) == list(range(6))  # a permutation
    assert 0 < float(plan.weight[0]) < 1 and torch.all(plan.weight == plan.weight[0])  # one lambda per batch
    mixed = mix_images(images, plan)
    for i in range(6):
        lam, j = float(plan.weight[i]), int(plan.partner[i])
        torch.testing.assert_close(mixed[i], lam * images[i] + (1 - lam) * images[j])


@pytest.mark.parametrize("seed", range(8))
def test_cutmix_pastes_the_partner_inside_the_box_and_lambda_is_the_own_pixel_share(seed):
    height, width = 16, 12
    # image i is constant i + 1: every pixel tells which image it came from
    images = torch.arange(1, 9, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 3, height, width).clone()
    plan = Mixer("cutmix", alpha=1.0).draw(8, height, width, torch.Generator().manual_seed(seed))
    mixed = mix_images(images, plan)
    box = plan.box[:, 0]
    for i in range(8):
        j = int(plan.partner[i])
        assert torch.all(mixed[i][:, box[i]] == j + 1) and torch.all(mixed[i][:, ~box[i]] == i + 1)
        rows, cols = box[i].nonzero(as_tuple=True)
        if rows.numel():  # a rectangle: every pixel between its extreme rows and columns is pasted
            assert box[i, rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
        assert float(plan.weight[i]) == pytest.approx(1 - box[i].sum().item() / (height * width))
        if j != i:  # counted from the pixels themselves, not the mask
            pasted = (mixed[i, 0] != i + 1).sum().item()
            assert float(plan.weight[i]) == pytest.approx(1 - pasted / (height * width))


def test_cutmix_lambda_follows_the_clipped_box_area():
    # lambda drawn ~ U(0, 1) (alpha 1); clipping at the border only shrinks boxes, so the own share is larger
    generator = torch.Generator().manual_seed(0)
    weights = torch.stack([Mixer("cutmix").draw(2, 32, 32, generator).weight[0] for _ in range(2000)])
    assert weights.min() >= 0 and weights.max() <= 1
    assert 0.55 < float(weights.mean()) < 0.8


@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_beta_draws_have_the_beta_mean_and_variance(alpha):
    draws = sample_beta(alpha, 20_000, torch.Generator().manual_seed(0))
    variance = 1 / (4 * (2 * alpha + 1))  # of Beta(alpha, alpha): 0.1786 for 0.2, 1/12 for 1
    # standard errors over 20k draws: about 0.003 for the mean and 0.0012 for the variance; 4-5 of them allowed
    assert float(draws.mean()) == pytest.approx(0.5, abs=0.015)
    assert float(draws.var()) == pytest.approx(variance, abs=0.006)
    assert draws.min() >= 0 and draws.max() <= 1


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_beta_draws_follow_scipys_beta_distribution(alpha):
    stats = pytest.importorskip("scipy.stats")
    draws = sample_beta(alpha, 20_000, torch.Generator().manual_seed(1)).numpy()
    assert stats.kstest(draws, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_mixup_lambda_is_beta_distributed_across_batches():
    generator = torch.Generator().manual_seed(3)
    weights = torch.stack([Mixer("mixup", alpha=0.2).draw(4, 8, 8, generator).weight[0] for _ in range(3000)])
    assert float(weights.mean()) == pytest.approx(0.5, abs=0.03)
    assert float(weights.var()) == pytest.approx(1 / (4 * 1.4), abs=0.015)  # U-shaped: far from U(0, 1)'s 1/12


def test_no_mixing_draws_nothing_and_leaves_the_batch_unmixed():
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    assert Mixer("none").draw(8, 32, 32, generator, generator) is None
    assert torch.equal(generator.get_state(), state)

    images, labels = uint8_images(8), torch.arange(8)
    plain = TrainingStage(Degrader(types=["blur"]), seed=4)(images, labels)
    none = TrainingStage(Degrader(types=["blur"]), seed=4, mixer=Mixer("none"))(images, labels)
    assert plain.mix is None and none.mix is None
    assert torch.equal(plain.degraded, none.degraded) and torch.equal(plain.clean, none.clean)
    # drawn after the degradation: mixing leaves the stage's other draws, and the unmixed pair, as they were
    mixed = TrainingStage(Degrader(types=["blur"]), seed=4, mixer=Mixer("cutmix"))(images, labels)
    assert mixed.mix is not None and torch.equal(plain.degraded, mixed.degraded)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_the_same_seed_gives_the_same_plan(kind):
    images, labels = uint8_images(16), torch.arange(16)
    plans = [TrainingStage(Degrader(), seed=7, mixer=Mixer(kind))(images, labels, epoch=1).mix for _ in range(2)]
    assert torch.equal(plans[0].partner, plans[1].partner) and torch.equal(plans[0].weight, plans[1].weight)
    other = TrainingStage(Degrader(), seed=8, mixer=Mixer(kind))(images, labels, epoch=1).mix
    assert not (torch.equal(plans[0].partner, other.partner) and torch.equal(plans[0].weight, other.weight))
    if kind == "cutmix":
        assert torch.equal(plans[0].box, plans[1].box)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"kind": "mixmatch"}, "kind=mixmatch must be one of: none, mixup, cutmix"),
    ({"kind": "mixup", "alpha": 0}, "alpha=0 must be a number > 0"),
    ({"kind": "mixup", "alpha": -1.0}, "alpha=-1.0 must be a number > 0"),
    ({"kind": "cutmix", "alpha": math.nan}, "alpha=nan must be a number > 0"),
])
def test_mixer_refuses_bad_settings(arguments, message):
    with pytest.raises(SettingError, match=message):
        Mixer(**arguments)


def test_a_bad_mix_setting_is_a_config_error_naming_it(make_config):
    with pytest.raises(ConfigError, match="mix.alpha=0 must be a number > 0"):
        validate_train_config(make_config("mix=mixup", "mix.alpha=0"))


@pytest.mark.parametrize("option", ["none", "mixup", "cutmix"])
def test_each_mix_option_builds_the_mixer_it_names(make_config, option):
    mixer = instantiate(make_config(f"mix={option}").mix)
    assert isinstance(mixer, Mixer) and mixer.kind == option and mixer.alpha == 1.0


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # a step outside a Trainer
def test_the_training_step_mixes_the_network_input_and_the_strategys_targets():
    torch.manual_seed(0)
    module = InfoMatchModule(ResNet18(num_classes=10, width=4), LabelSmoothing(epsilon=0.2),
                             optimizer=lambda params: torch.optim.SGD(params, lr=0.1), channels_last=False)
    batch = TrainingStage(Degrader(types=["blur"]), seed=0, mixer=Mixer("mixup"))(uint8_images(8), torch.arange(8))
    seen = []
    forward = module.forward
    module.forward = lambda images: seen.append(images) or forward(images)
    loss = module.training_step(batch, 0)
    torch.testing.assert_close(seen[0], mix_images(batch.degraded, batch.mix))
    assert not torch.equal(seen[0], batch.degraded)
    targets, _ = LabelSmoothing(epsilon=0.2)(batch, 10)  # the strategy's targets of the unmixed images
    with torch.no_grad():
        expected = soft_cross_entropy(forward(seen[0]), mix_targets(targets, batch.mix))
    torch.testing.assert_close(loss.detach(), expected)


def test_run_names_show_a_mix_other_than_none(tmp_path, monkeypatch):
    assert run_label("im", "all", 0, mix="none") == "im_all_seed0"
    assert run_label("im", "all", 0, None, "synthetic", None, ["v2"], "mixup") == "synthetic_im_all_mixup_seed0_v2"
    monkeypatch.chdir(tmp_path)
    register_resolvers()
    folders = []
    for mix in ("none", "cutmix"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose("train", overrides=[f"mix={mix}", "labels=ls"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        folders.append(OmegaConf.select(cfg, "hydra.run.dir"))
    GlobalHydra.instance().clear()
    assert folders[0].endswith("_ls_all_seed0") and "none" not in folders[0]
    assert folders[1].endswith("_ls_all_cutmix_seed0")


def test_a_run_stored_before_mix_and_base_augment_existed_resumes_with_the_settings_then_in_effect(make_config,
                                                                                                   tmp_path):
    # written before both groups: its stored config has no mix and a base_augment of crop_flip and padding only
    checkpoint = ROOT / "tests" / "fixtures" / "checkpoint_2026-12-02" / "im_width4.ckpt"
    run = ["debug=fast", "labels=im", "augment=all", "model.width=4", "data.train_size=256", "data.val_size=64",
           "data.test_size=128", "seed=0", f"resume={checkpoint}"]
    assert check_resume(make_config(*run), tmp_path) == checkpoint
    with pytest.raises(ConfigError, match=r"mix.kind: none in the checkpoint, mixup now"):
        check_resume(make_config(*run, "mix=mixup"), tmp_path)
    policy_added = (r"base_augment.policy._target_: \(absent\) in the checkpoint, "
                    "infomatch.base_augment.TrivialAugment now")
    with pytest.raises(ConfigError, match=policy_added):
        check_resume(make_config(*run, "base_augment=trivialaugment"), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
@pytest.mark.parametrize("labels", ["hard", "ls", "im"])
def test_a_training_step_with_mixing_works_with_each_label_strategy(make_config, labels, mix):
    # train() raises FloatingPointError on a non-finite training loss, so finishing means a finite one
    metrics = train(make_config("debug=fast_dev_run", f"labels={labels}", f"mix={mix}", "augment=all"))
    assert metrics["epochs"] == 1 and math.isfinite(metrics["val"]["val/nll"])
