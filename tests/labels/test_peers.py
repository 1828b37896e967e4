"""The peers' rules and what they need: Mollification (labels=mollify, augment=mollify: cosine noise, heat blur,
Beta levels) and Soft Augmentation (labels=visibility, base_augment=soft_crop, the visible fraction)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import ROOT, compose_config
from scipy.fft import dctn, idctn

from infomatch.augment import DEGRADATIONS, Degrader, apply_degradations, blur, heat, mosaic, noise
from infomatch.augment.degradations import diffusion_noise_share
from infomatch.base_augment import BaseAugment, crop_flip
from infomatch.base_augment.crop_flip import soft_crop
from infomatch.data.batch import TrainingBatch
from infomatch.data.stage import TrainingStage
from infomatch.labels import ConfidenceSmoothing, MollifiedSmoothing, VisibilitySmoothing
from infomatch.runs.validation import check_resume, inline_table_file
from infomatch.tasks import confidence_table
from infomatch.tasks.evaluate import evaluate
from infomatch.tasks.train import train
from infomatch.utils.checks import SettingError
from infomatch.utils.errors import ConfigError

# a width-4 model trained on synthetic 10-class data: the reference model of labels=confidence
FIXTURE = ROOT / "tests" / "fixtures" / "checkpoint_2026-12-02" / "im_width4.ckpt"


def float_images(count: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def batch_of(types: list[str | None], levels: list[float], visible: list[float] | None = None) -> TrainingBatch:
    count = len(types)
    images = torch.zeros(count, 3, 4, 4)
    degradation = torch.tensor([-1 if name is None else DEGRADATIONS.index(name) for name in types])
    return TrainingBatch(clean=images, degraded=images, classes=torch.arange(count) % 10, degradation=degradation,
                         level=torch.tensor(levels), visible=None if visible is None else torch.tensor(visible))


# ---- level distribution ---------------------------------------------------------------------------------
def test_uniform_levels_are_the_draws_of_before_the_setting():
    degrader = Degrader(types=["blur"], level_distribution="uniform")
    _, level = degrader.sample(64, "cpu", torch.Generator().manual_seed(3))
    torch.testing.assert_close(level, torch.rand(64, generator=torch.Generator().manual_seed(3)), rtol=0, atol=0)


def test_beta_levels_have_the_beta_moments_and_repeat_with_a_seed():
    degrader = Degrader(types=["noise"], level_distribution="beta", level_a=1.0, level_b=2.0)
    _, level = degrader.sample(40_000, "cpu", torch.Generator().manual_seed(0))
    # Beta(1, 2): mean 1/3, variance 1/18; 5 standard errors
    assert abs(level.double().mean().item() - 1 / 3) < 5 * math.sqrt(1 / 18 / 40_000)
    assert abs(level.double().var().item() - 1 / 18) < 0.002
    assert 0 <= level.min() and level.max() <= 1
    again = degrader.sample(40_000, "cpu", torch.Generator().manual_seed(0))[1]
    assert torch.equal(level, again)


def test_level_distribution_settings_are_checked():
    with pytest.raises(SettingError, match="level_distribution=gamma"):
        Degrader(level_distribution="gamma")
    with pytest.raises(SettingError, match="level_b=0"):
        Degrader(level_distribution="beta", level_b=0)


# ---- Mollification's degradations ---------------------------------------------------------------------
def test_cosine_noise_is_the_hand_computed_mix_image_by_image():
    x, level = float_images(6), torch.tensor([0.0, 0.1, 0.3, 0.5, 0.8, 1.0], dtype=torch.float64)
    got = noise(x, level, torch.Generator().manual_seed(1))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for i, d in enumerate(level.tolist()):
        expected = x[i] if d == 0 else (
            (math.cos(math.pi * d / 2) * (2 * x[i] - 1) + math.sin(math.pi * d / 2) * eps[i] + 1) / 2).clamp(0, 1)
        torch.testing.assert_close(got[i], expected)


@pytest.mark.parametrize("size", [(16, 16), (12, 20)])
def test_heat_blur_equals_scipy_dct_damping_image_by_image(size):
    height, width = size
    x = torch.rand(5, 3, height, width, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    level = torch.tensor([0.0, 0.2, 0.5, 0.7, 1.0], dtype=torch.float64)
    got = heat(x, level, scale_min=0.3, scale_max=32.0)
    rows = (np.pi * np.arange(height) / height) ** 2
    cols = (np.pi * np.arange(width) / width) ** 2
    for i, d in enumerate(level.tolist()):
        scale = math.exp((1 - d) * math.log(0.3) + d * math.log(32.0))
        damping = np.exp(-(rows[:, None] + cols[None, :]) * scale ** 2 / 2)
        for c in range(3):
            expected = idctn(damping * dctn(x[i, c].numpy(), type=2, norm="ortho"), type=2, norm="ortho")
            np.testing.assert_allclose(got[i, c].numpy(), expected, atol=1e-10)
    # the image's mean (the DC coefficient) survives any level; the strongest level leaves almost only it
    torch.testing.assert_close(got.mean(dim=(2, 3)), x.mean(dim=(2, 3)))
    assert got[-1].std(dim=(1, 2)).max() < 0.02


def test_mollify_degradations_run_through_the_grouped_apply():
    x = float_images(8).float()
    types = torch.tensor([DEGRADATIONS.index("noise"), DEGRADATIONS.index("heat")] * 4)
    level = torch.linspace(0.05, 0.95, 8)
    out = apply_degradations(x, types, level, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[1::2], heat(x[1::2], level[1::2]))
    assert 0 <= out.min() and out.max() <= 1


# ---- labels=mollify -----------------------------------------------------------------------------------
def test_mollify_epsilon_is_the_noise_share_or_the_blur_level():
    batch = batch_of(["noise", "noise", "heat", "blur", "diffusion", None], [0.5, 1.0, 0.3, 0.6, 0.4, 0.0])
    targets, epsilon = MollifiedSmoothing()(batch, 10)
    expected = torch.tensor([math.sin(math.pi / 4) ** 2, 1.0, 0.3, 0.6, float(diffusion_noise_share(torch.tensor(0.4))),
                             0.0])
    torch.testing.assert_close(epsilon, expected)
    # diffusion's share by hand: 1 - prod(1 - beta_s) up to the step t = int(0.4 * 999)
    betas = np.linspace(1e-4, 0.02, 1000)
    assert abs(expected[4].item() - (1 - np.prod(1 - betas[:int(0.4 * 999) + 1]))) < 1e-6
    # the reference's label smoothing: (1 - gamma) onehot + gamma / K
    onehot = torch.nn.functional.one_hot(batch.classes, 10).float()
    torch.testing.assert_close(targets, (1 - expected[:, None]) * onehot + expected[:, None] / 10)


def test_mollify_powers_apply_per_kind():
    batch = batch_of(["noise", "heat"], [0.5, 0.5])
    _, epsilon = MollifiedSmoothing(noise_power=2.0, blur_power=0.5)(batch, 10)
    torch.testing.assert_close(epsilon, torch.tensor([0.5 ** 2, 0.5 ** 0.5]))


def test_mollify_refuses_degradations_it_has_no_rule_for():
    clean = float_images(4).float()
    with pytest.raises(SettingError, match="dropout, mosaic, for which labels=mollify has no rule"):
        MollifiedSmoothing().fit(clean, Degrader(), torch.Generator())
    assert MollifiedSmoothing().fit(clean, Degrader(types=["noise", "heat"]), torch.Generator()) == {}


# ---- visible fraction and the soft crop -----------------------------------------------------------------
def test_crop_flip_records_the_visible_fraction_of_its_crop():
    x = torch.ones(400, 1, 8, 8)
    out, visible = crop_flip(x, padding=3, generator=torch.Generator().manual_seed(0))
    # the ones that survive the crop are the visible share of the original
    torch.testing.assert_close(visible, out.flatten(1).mean(dim=1))
    assert visible.min() == (8 - 3) ** 2 / 64 and visible.max() == 1.0


def soft_crop_by_hand(image: torch.Tensor, rows: int, cols: int, flip: bool, fill: torch.Tensor) -> torch.Tensor:
    """The reference's recipe for one image: flip, put it in the middle of a 3x canvas of the fill colour, cut the
    frame shifted by (rows, cols)."""
    channels, height, width = image.shape
    canvas = fill.view(-1, 1, 1).expand(channels, 3 * height, 3 * width).clone()
    canvas[:, height:2 * height, width:2 * width] = image.flip(-1) if flip else image
    return canvas[:, height + rows:2 * height + rows, width + cols:2 * width + cols]


def test_soft_crop_equals_the_reference_recipe_image_by_image():
    x = torch.randint(1, 256, (64, 3, 10, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fill = torch.tensor([129, 124, 112], dtype=torch.uint8)
    out, visible = soft_crop(x, sigma=4.0, fill=fill, generator=torch.Generator().manual_seed(1))
    flips = 0
    for image, got, share in zip(x, out, visible):
        matches = [(rows, cols, flip) for rows in range(-10, 11) for cols in range(-10, 11) for flip in (False, True)
                   if torch.equal(got, soft_crop_by_hand(image, rows, cols, flip, fill))]
        assert matches, "output is not a shifted (flipped) frame of the image on the fill colour"
        rows, cols, flip = matches[0]
        assert share.item() == pytest.approx((10 - abs(rows)) * (10 - abs(cols)) / 100)
        flips += flip
    assert 16 < flips < 48


def test_soft_crop_shifts_are_truncated_normal_within_the_image():
    x = torch.zeros(20_000, 1, 32, 32, dtype=torch.uint8)
    _, visible = soft_crop(x, sigma=12.0, generator=torch.Generator().manual_seed(0))
    # E[(32 - |s|) / 32] per axis for s = int(N(0, 12^2)) kept within +-32, computed from the distribution
    draws = np.random.default_rng(0).normal(0, 12, 2_000_000)
    draws = np.trunc(draws[np.abs(draws) <= 32])
    per_axis = ((32 - np.abs(draws)) / 32).mean()
    assert abs(visible.double().mean().item() - per_axis ** 2) < 0.005
    assert visible.min() >= 0


def test_base_augment_soft_crop_reports_visibility_to_the_batch():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    stage = TrainingStage(Degrader(types=()), BaseAugment(crop_flip=False, soft_crop=True), seed=0)
    batch = stage(images, torch.zeros(16, dtype=torch.long))
    assert batch.visible.shape == (16,) and batch.visible.max() <= 1 and batch.visible.min() < 1
    with pytest.raises(SettingError, match="soft_crop=True and crop_flip cannot both be on"):
        BaseAugment(crop_flip=True, soft_crop=True)
    with pytest.raises(SettingError, match="fill"):
        BaseAugment(crop_flip=False, soft_crop=True, fill=[300, 0, 0])


# ---- labels=visibility --------------------------------------------------------------------------------
def test_visibility_confidence_is_the_reference_power_law():
    visible = [1.0, 0.75, 0.5, 0.1, 0.0]
    batch = batch_of([None] * 5, [0.0] * 5, visible)
    targets, epsilon = VisibilitySmoothing(power=2.0, reweight=False)(batch, 10)
    # p = 1 - (1 - 1/K) (1 - v)^2; p = 1/K at v = 0
    expected = torch.tensor([1.0, 1 - 0.9 * 0.0625, 1 - 0.9 * 0.25, 1 - 0.9 * 0.81, 0.1])
    torch.testing.assert_close(1 - epsilon, expected)
    own = targets.gather(1, batch.classes[:, None]).squeeze(1)
    torch.testing.assert_close(own, expected)
    # the rest spread evenly over the K - 1 other classes
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(5))
    torch.testing.assert_close((targets.sum(dim=1) - own) / 9, (1 - expected) / 9)


def test_visibility_threshold_and_reweighting():
    batch = batch_of([None] * 3, [0.0] * 3, [0.9, 0.4, 0.2])
    strategy = VisibilitySmoothing(power=1.0, threshold=0.5, max_confidence=0.8)
    targets, epsilon = strategy(batch, 10)
    # at or above the threshold: max_confidence; below it: linear down to 1/K at v = 0
    expected = torch.tensor([0.8, 0.8 - 0.7 * 0.2, 0.8 - 0.7 * 0.6])
    torch.testing.assert_close(1 - epsilon, expected)
    # reweighted: the targets sum to p, so the cross-entropy is p times the plain one
    torch.testing.assert_close(targets.sum(dim=1), expected)


def test_visibility_needs_the_visible_fraction():
    with pytest.raises(SettingError, match="batch.visible=None must hold each image.s visible fraction"):
        VisibilitySmoothing()(batch_of([None], [0.0]), 10)


# ---- labels=confidence --------------------------------------------------------------------------------
def test_confidence_interpolates_the_accuracy_table_with_a_chance_floor():
    table = {"blur": [0.9, 0.5, 0.0], "mosaic": [1.0, 0.8, 0.6]}
    batch = batch_of(["blur", "blur", "blur", "mosaic", None], [0.0, 0.25, 1.0, 0.75, 0.0])
    targets, epsilon = ConfidenceSmoothing(levels=3, table=table)(batch, 10)
    # blur at 0.25: halfway between 0.9 and 0.5; at 1.0: 0, floored at chance; undegraded: hard
    expected = torch.tensor([0.9, 0.7, 0.1, 0.7, 1.0])
    torch.testing.assert_close(1 - epsilon, expected)
    torch.testing.assert_close(targets.gather(1, batch.classes[:, None]).squeeze(1), expected)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(5))
    # relative: divided by the type's level-0 accuracy
    _, relative = ConfidenceSmoothing(levels=3, table=table, relative=True)(batch, 10)
    torch.testing.assert_close(1 - relative, torch.tensor([1.0, 0.7 / 0.9, 0.1, 0.7, 1.0]))


class MeanBrightness(torch.nn.Module):
    """A fixed classifier for the oracle: class = how many of 9 thresholds the red channel's centre exceeds."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        centre = images[:, 0, 6:10, 6:10].mean(dim=(1, 2))
        return -(centre[:, None] * 10 - torch.arange(10) - 0.5).abs()


def test_confidence_table_is_the_reference_accuracy_image_by_image():
    images = float_images(40).float()
    labels = MeanBrightness()(images).argmax(dim=1)  # right on every clean image
    strategy = ConfidenceSmoothing(reference="unused", levels=3)
    degrader = Degrader(types=["blur", "mosaic"], blur_sigma_max=4.0, blur_kernel_max=9)
    estimates = strategy.fit_reference(MeanBrightness(), images, labels, degrader, torch.Generator().manual_seed(0),
                                       batch_size=7)
    for name, row in estimates["table"].items():
        for level, accuracy in zip([0.0, 0.5, 1.0], row):
            hits = 0
            for image, label in zip(images, labels):
                single, d = image[None], torch.tensor([level])
                degraded = blur(single, d, 4.0, 9) if name == "blur" else mosaic(single, d)
                hits += int(MeanBrightness()(degraded).argmax(dim=1).item() == label)
            assert accuracy == pytest.approx(hits / len(images)), (name, level)
    assert estimates["table"]["blur"][0] == 1.0 and estimates["table"]["mosaic"][2] < 1.0


def test_confidence_needs_a_reference_or_a_table(make_config):
    with pytest.raises(SettingError, match="labels.reference=<path>"):
        ConfidenceSmoothing()
    with pytest.raises(Exception, match="no such checkpoint file"):
        train(make_config("debug=fast_dev_run", "labels=confidence", "labels.reference=/nonexistent.ckpt"))


def test_confidence_reads_its_table_from_a_json_file(tmp_path):
    table = {"blur": [1.0, 0.5, 0.25], "mosaic": [1.0, 0.75, 0.5]}
    written = tmp_path / "table.json"
    written.write_text(json.dumps({"levels": 3, "table": table, "reference": "somewhere.ckpt"}))
    assert ConfidenceSmoothing(table=str(written), levels=3).table == table
    (tmp_path / "bare.json").write_text(json.dumps(table))
    assert ConfidenceSmoothing(table=str(tmp_path / "bare.json"), levels=3).table == table
    with pytest.raises(SettingError, match="holds 3 levels per type, the run 11"):
        ConfidenceSmoothing(table=str(written))
    with pytest.raises(SettingError, match="readable JSON file"):
        ConfidenceSmoothing(table=str(tmp_path / "missing.json"), levels=3)


@pytest.mark.slow
def test_a_table_file_trains_like_its_reference_model(make_config, tmp_path):
    """confidence_table writes what train.py estimates from labels.reference; a run given the file instead of the
    model trains with that same table."""
    settings = ["debug=fast_dev_run", "labels.levels=3", "estimation.images=32"]
    from_model = train(make_config(*settings, "labels=confidence", f"labels.reference={FIXTURE}"))
    out = tmp_path / "table.json"
    confidence_table.main([str(FIXTURE), str(out), *settings])
    written = json.loads(out.read_text())
    assert written["table"] == from_model["label_estimates"]["table"] and written["levels"] == 3
    assert written["overrides"] == settings and written["reference"] == str(FIXTURE)
    from_file = train(compose_config([*settings, "labels=confidence", f"labels.table={out}"], tmp_path / "run_2"))
    assert from_file["label_estimates"]["table"] == written["table"]
    assert from_file["val"] == from_model["val"]  # same run seed, same table: the same training


@pytest.mark.slow
def test_a_run_keeps_the_table_its_file_held(tmp_path):
    """The checkpoint stores the table, not the file's path: evaluation needs no file, and resuming compares the
    numbers (the same file passes; a file holding other numbers is refused)."""
    table_file = tmp_path / "table.json"
    types = ("diffusion", "blur", "dropout", "mosaic")  # augment=all's
    table = {name: [0.0, 0.1 * number, 0.2 * number] for number, name in enumerate(types, 1)}
    table_file.write_text(json.dumps({"levels": 3, "table": table}))
    command = ["debug=fast", "labels=schedule", "labels.levels=3", f"labels.table={table_file}"]
    train(compose_config(command, tmp_path / "run"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["infomatch_config"]["labels"]["table"] == table

    moved = tmp_path / "elsewhere.json"
    table_file.rename(moved)
    quick = ["robustness.levels=2", "confidence.levels=2", "plots=false"]
    evaluation = evaluate(compose_config([f"ckpt={last}", *quick], tmp_path / "eval", "evaluate"))
    assert [model["strategy"] for model in evaluation["models"].values()] == ["schedule"]

    moved.rename(table_file)
    resumed = compose_config([*command, f"resume={last}"], tmp_path / "run")
    inline_table_file(resumed)
    assert check_resume(resumed, last.parent) == last
    table_file.write_text(json.dumps({"levels": 3, "table": {**table, "blur": [0.0, 0.5, 0.9]}}))
    changed = compose_config([*command, f"resume={last}"], tmp_path / "run")
    inline_table_file(changed)
    refusal = r"labels\.table\.blur: \[0\.0, 0\.2, 0\.4\] in the checkpoint, \[0\.0, 0\.5, 0\.9\] now"
    with pytest.raises(ConfigError, match=refusal):
        check_resume(changed, last.parent)


# ---- they train, alone and with what they combine with ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ("labels=mollify", "augment=mollify"),
    ("labels=mollify", "augment=mollify", "mix=mixup"),
    ("labels=visibility", "base_augment=soft_crop", "augment=none"),
    ("labels=visibility", "base_augment=soft_crop", "augment=none", "mix=cutmix"),
    ("labels=visibility", "augment=all"),  # crop_flip's visible fraction
    ("labels=im", "augment=mollify"),
    ("labels=schedule", "augment=mollify"),
    ("labels=matched", "augment=all", "augment.level_distribution=beta"),
    ("labels=im", "base_augment=soft_crop"),
    ("labels=confidence", f"labels.reference={FIXTURE}"),
    ("labels=confidence", f"labels.reference={FIXTURE}", "base_augment=trivialaugment", "mix=mixup"),
])
def test_peer_options_train(make_config, overrides):
    metrics = train(make_config("debug=fast_dev_run", *overrides))
    assert metrics["epochs"] == 1 and math.isfinite(metrics["val"]["val/nll"])


def test_labels_mollify_with_the_default_degradations_stops_before_training(make_config):
    with pytest.raises(SettingError, match="use augment=mollify"):
        train(make_config("debug=fast_dev_run", "labels=mollify"))
