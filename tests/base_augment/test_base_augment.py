"""Base augmentation: each batched op against torchvision's per-image op, the policies' draws against their
tables, random erasing against torchvision's parameter draw, and the pipeline's place in the stage."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode, RandomErasing
from torchvision.transforms.autoaugment import _apply_op

from infomatch.base_augment import (
    OPS,
    POLICIES,
    AugMix,
    AutoAugment,
    BaseAugment,
    RandAugment,
    TrivialAugment,
    apply_ops,
    crop_flip,
    random_erasing,
)
from infomatch.base_augment.policies import CIFAR10_POLICY
from infomatch.tasks.train import train
from infomatch.utils.checks import SettingError

# torchvision's op names (the oracle, torchvision.transforms.autoaugment._apply_op, takes these)
TORCHVISION_NAMES = {"shear_x": "ShearX", "shear_y": "ShearY", "translate_x": "TranslateX",
                     "translate_y": "TranslateY", "rotate": "Rotate", "identity": "Identity",
                     "brightness": "Brightness", "color": "Color", "contrast": "Contrast", "sharpness": "Sharpness",
                     "posterize": "Posterize", "solarize": "Solarize", "autocontrast": "AutoContrast",
                     "equalize": "Equalize", "invert": "Invert"}
# magnitude ranges wide enough to cover every policy's bins
RANGES = {"shear_x": (-0.99, 0.99), "shear_y": (-0.99, 0.99), "translate_x": (-32, 32), "translate_y": (-32, 32),
          "rotate": (-135, 135), "brightness": (-0.99, 0.99), "color": (-0.99, 0.99), "contrast": (-0.99, 0.99),
          "sharpness": (-0.99, 0.99), "posterize": (0, 8), "solarize": (0, 255)}
# Ops whose result goes through float kernels (grid_sample, a mean, a convolution) may round differently on
# another CPU: at most this share of values may differ from torchvision's. Measured on an AVX2 AMD EPYC: none.
FLOAT_OP_TOLERANCE = 1e-3


def sample_images(count: int = 48, seed: int = 0) -> torch.Tensor:
    """Noise, smooth images, and a few flat or two-valued ones (the edge cases of autocontrast and equalize)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (count, 3, 32, 32), generator=generator, dtype=torch.uint8)
    third = count // 3
    x[third:2 * third] = F.avg_pool2d(x[third:2 * third].float(), 7, 1, 3).to(torch.uint8)
    x[2 * third] = 77  # constant
    x[2 * third + 1] = torch.where(torch.rand(3, 32, 32, generator=generator) < 0.999, 10, 200).to(torch.uint8)
    x[2 * third + 2, 0] = 0  # one constant channel
    return x


def torchvision_op(images: torch.Tensor, ops, magnitudes, interpolation: str = "nearest") -> torch.Tensor:
    mode = InterpolationMode(interpolation)
    return torch.stack([_apply_op(image, TORCHVISION_NAMES[OPS[int(op)]], float(magnitude), mode, None)
                        for image, op, magnitude in zip(images, ops, magnitudes)])


def assert_matches_torchvision(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.dtype == torch.uint8 and got.shape == expected.shape
    differing = (got != expected).float().mean().item()
    assert differing <= FLOAT_OP_TOLERANCE, f"{differing:.2%} of values differ from torchvision"


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("name", OPS)
def test_each_batched_op_equals_torchvision_per_image(name, interpolation):
    x = sample_images()
    low, high = RANGES.get(name, (0.0, 0.0))
    magnitude = low + (high - low) * torch.rand(len(x), generator=torch.Generator().manual_seed(1))
    if name == "posterize":
        magnitude = magnitude.round()
    op = torch.full((len(x),), OPS.index(name))
    got = apply_ops(x, op, magnitude, interpolation)
    expected = torchvision_op(x, op, magnitude, interpolation)
    if name in ("posterize", "solarize", "autocontrast", "equalize", "invert", "identity", "translate_x",
                "translate_y"):
        assert torch.equal(got, expected)  # integer arithmetic or whole-pixel moves: exact everywhere
    else:
        assert_matches_torchvision(got, expected)
    if name != "identity":
        assert not torch.equal(got, x)  # the op did something


def test_a_batch_mixing_every_op_equals_torchvision_and_keeps_the_batch_order():
    x = sample_images(90)
    generator = torch.Generator().manual_seed(2)
    op = torch.randint(len(OPS), (90,), generator=generator)
    magnitude = torch.rand(90, generator=generator) * 0.6
    assert_matches_torchvision(apply_ops(x, op, magnitude), torchvision_op(x, op, magnitude))


def test_equalize_leaves_a_channel_unchanged_when_torchvision_does():
    x = torch.full((2, 3, 8, 8), 40, dtype=torch.uint8)
    x[1, :, 0, 0] = 41  # 63 pixels at 40 and one at 41: step = 63 // 255 = 0
    op = torch.full((2,), OPS.index("equalize"))
    got = apply_ops(x, op, torch.zeros(2))
    assert torch.equal(got, x)
    assert torch.equal(got, torchvision_op(x, op, torch.zeros(2)))


def replay(images: torch.Tensor, steps, interpolation: str = "nearest") -> torch.Tensor:
    for op, magnitude in steps:
        images = torchvision_op(images, op, magnitude, interpolation)
    return images


@pytest.mark.parametrize("policy", [TrivialAugment(), RandAugment(), AutoAugment()], ids=type)
def test_each_policy_applies_its_draws_as_torchvision_would_image_by_image(policy):
    x = sample_images()
    steps = policy.sample(len(x), 32, 32, torch.Generator().manual_seed(3), x.device)
    assert_matches_torchvision(policy.apply(x, steps), replay(x, steps))


def test_policies_repeat_with_a_seed_and_differ_across_seeds():
    x = sample_images()
    for policy in (TrivialAugment(), RandAugment(), AutoAugment(), AugMix()):
        first = policy(x, torch.Generator().manual_seed(0))
        assert torch.equal(first, policy(x, torch.Generator().manual_seed(0)))
        assert not torch.equal(first, policy(x, torch.Generator().manual_seed(1)))


def within(count: int, total: int, probability: float, sigmas: float = 5.0) -> bool:
    return abs(count - total * probability) <= sigmas * math.sqrt(total * probability * (1 - probability)) + 1


def test_trivialaugment_draws_ops_bins_and_signs_uniformly():
    policy = TrivialAugment()
    draws = 60_000
    [(op, magnitude)] = policy.sample(draws, 32, 32, torch.Generator().manual_seed(0), torch.device("cpu"))
    names = policy.space(32, 32).names
    assert len(names) == 14 and "invert" not in names
    for name in names:
        assert within(int((op == OPS.index(name)).sum()), draws, 1 / 14), name
    rotations = magnitude[op == OPS.index("rotate")]
    bins = torch.linspace(0, 135, 31)
    index = (rotations.abs()[:, None] - bins).abs().argmin(1)
    assert torch.allclose(rotations.abs(), bins[index])  # every magnitude is a bin of torchvision's table
    for value in range(31):
        assert within(int((index == value).sum()), len(rotations), 1 / 31), value
    assert within(int((rotations < 0).sum()), int((rotations != 0).sum()), 0.5)
    assert (magnitude[op == OPS.index("solarize")] >= 0).all()  # unsigned


def test_randaugment_uses_one_magnitude_bin_for_every_op():
    steps = RandAugment(num_ops=2, magnitude=9).sample(20_000, 32, 32, torch.Generator().manual_seed(0),
                                                       torch.device("cpu"))
    assert len(steps) == 2
    op, magnitude = steps[0]
    rotate = magnitude[op == OPS.index("rotate")].abs()
    assert torch.allclose(rotate, torch.full_like(rotate, 30.0 * 9 / 30))
    posterize = magnitude[op == OPS.index("posterize")]
    assert (posterize == 8 - round(9 / 7.5)).all()


def test_autoaugment_draws_subpolicies_uniformly_and_applies_each_op_with_its_probability():
    draws = 50_000
    steps = AutoAugment().sample(draws, 32, 32, torch.Generator().manual_seed(0), torch.device("cpu"))
    op, _ = steps[0]
    # sub-policy 14 ("solarize", 0.5) is the only first op that is solarize; 15 is ("equalize", 0.2) among others
    solarize_first = int((op == OPS.index("solarize")).sum())
    share = sum(prob for (name, prob, _), _ in CIFAR10_POLICY if name == "solarize") / len(CIFAR10_POLICY)
    assert within(solarize_first, draws, share)
    second_op, second_magnitude = steps[1]
    translate_y = second_magnitude[second_op == OPS.index("translate_y")].abs()
    assert torch.allclose(translate_y, torch.full_like(translate_y, 150 / 331 * 32))  # only bin 9 of 10 occurs


def test_augmix_equals_the_weighted_sum_of_torchvision_chains():
    x = sample_images(24)
    policy = AugMix()
    chains, weights = policy.sample_mix(len(x), 32, 32, torch.Generator().manual_seed(4), x.device)
    assert torch.allclose(weights.sum(1), torch.ones(len(x)))
    expected = weights[:, 0].view(-1, 1, 1, 1) * x
    for index, steps in enumerate(chains, start=1):
        expected = expected + weights[:, index].view(-1, 1, 1, 1) * replay(x, steps, "bilinear")
    assert_matches_torchvision(policy.mix(x, chains, weights), expected.to(torch.uint8))
    depths = sum((op != OPS.index("identity")).long() for op, _ in chains[0])
    assert set(depths.tolist()) <= {0, 1, 2, 3} and depths.max() == 3  # 1-3 ops (an op may draw identity-like)


def test_random_erasing_draws_rectangles_as_torchvision_does():
    count = 4000
    x = torch.full((count, 3, 32, 32), 255, dtype=torch.uint8)
    out = random_erasing(x, 1.0, torch.Generator().manual_seed(0))
    erased = out[:, 0] == 0
    assert torch.equal(erased[:, None].expand_as(out), out == 0)  # every channel, nothing else changed
    rows, cols = erased.any(2).sum(1), erased.any(1).sum(1)
    assert torch.equal(erased.sum((1, 2)), rows * cols)  # one rectangle
    torch.manual_seed(0)
    reference = [RandomErasing.get_params(x[0], scale=(0.02, 0.33), ratio=(0.3, 3.3), value=[0])[2:4]
                 for _ in range(count)]
    reference_rows = torch.tensor([h for h, _ in reference]).float()
    reference_cols = torch.tensor([w for _, w in reference]).float()
    for ours, theirs in ((rows.float(), reference_rows), (cols.float(), reference_cols)):
        assert abs(ours.mean() - theirs.mean()) < 5 * theirs.std() / math.sqrt(count)
    assert rows.max() < 32 and cols.max() < 32 and rows.min() >= 1


def test_random_erasing_probability_and_its_off_switch():
    x = torch.full((4000, 3, 16, 16), 255, dtype=torch.uint8)
    out = random_erasing(x, 0.25, torch.Generator().manual_seed(1))
    assert within(int((out == 0).flatten(1).any(1).sum()), 4000, 0.25)
    assert torch.equal(random_erasing(x, 0.0, torch.Generator().manual_seed(1)), x)


def test_base_augment_makes_no_draw_for_a_step_that_is_off():
    x = sample_images(8)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert torch.equal(BaseAugment(crop_flip=False)(x, generator)[0], x)
    assert torch.equal(generator.get_state(), state)
    # crop + flip alone draws exactly what crop_flip draws: runs from before this group keep their images
    assert torch.equal(BaseAugment()(x, torch.Generator().manual_seed(5))[0],
                       crop_flip(x, 4, generator=torch.Generator().manual_seed(5))[0])


def test_base_augment_chains_crop_flip_then_policy_then_erasing():
    x = sample_images(8)
    got, _ = BaseAugment(policy=TrivialAugment(), random_erasing=0.5)(x, torch.Generator().manual_seed(2))
    generator = torch.Generator().manual_seed(2)
    expected = random_erasing(TrivialAugment()(crop_flip(x, 4, generator=generator)[0], generator), 0.5, generator)
    assert torch.equal(got, expected)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: TrivialAugment(bins=1), "bins=1"),
    (lambda: RandAugment(magnitude=31), "magnitude=31"),
    (lambda: AutoAugment(policy="imagenet"), "policy=imagenet"),
    (lambda: AugMix(severity=11), "severity=11"),
    (lambda: AugMix(depth=0), "depth=0"),
    (lambda: AugMix(alpha=0), "alpha=0"),
    (lambda: BaseAugment(random_erasing=1.5), "random_erasing=1.5"),
    (lambda: BaseAugment(padding=-1), "padding=-1"),
])
def test_settings_are_checked_with_a_message_naming_them(make, message):
    with pytest.raises(SettingError, match=message):
        make()


@pytest.mark.slow
@pytest.mark.parametrize("labels", ["hard", "im", "schedule"])
@pytest.mark.parametrize("option", ["none", "trivialaugment", "randaugment", "autoaugment", "augmix"])
def test_every_base_augmentation_trains_with_each_kind_of_label_strategy(make_config, option, labels):
    # hard: no images read; im: measures each pair; schedule: estimated before training on base-augmented images.
    # train() raises on a non-finite loss, so finishing means finite ones.
    metrics = train(make_config("debug=fast_dev_run", f"labels={labels}", f"base_augment={option}", "augment=all"))
    assert metrics["epochs"] == 1 and math.isfinite(metrics["val"]["val/nll"])


@pytest.mark.slow
def test_random_erasing_and_mixing_train_on_top_of_a_policy(make_config):
    metrics = train(make_config("debug=fast_dev_run", "labels=im", "base_augment=trivialaugment",
                                "base_augment.random_erasing=0.5", "mix=cutmix"))
    assert math.isfinite(metrics["val"]["val/nll"])


# ---- crop_flip ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_crop_flip_outputs_are_crops_of_the_padded_input(dtype):
    # no zeros inside, so the padding is recognisable
    x = (torch.rand(12, 3, 8, 6, generator=torch.Generator().manual_seed(0)) * 255).to(dtype) + 1
    out, _ = crop_flip(x, padding=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == dtype
    padded = F.pad(x, (2, 2, 2, 2))
    seen_flip = set()
    for image, got in zip(padded, out):
        crops = [image[:, top:top + 8, left:left + 6] for top in range(5) for left in range(5)]
        flips = [flip for crop in crops for flip in (False, True)
                 if torch.equal(got, crop.flip(-1) if flip else crop)]
        assert flips, "output is not a (flipped) crop of the padded input"
        seen_flip.update(flips)
    assert seen_flip == {False, True}


def test_crop_flip_offsets_cover_the_range_and_repeat_with_a_seed():
    x = torch.zeros(500, 1, 3, 3)
    x[:, :, 1, 1] = 1  # a single marker pixel: its position gives the offset
    out, _ = crop_flip(x, padding=1, generator=torch.Generator().manual_seed(0))
    positions = out[:, 0].flatten(1).argmax(1)
    assert set(positions.tolist()) == set(range(9))
    assert torch.equal(out, crop_flip(x, padding=1, generator=torch.Generator().manual_seed(0))[0])


@pytest.mark.parametrize("name", ["trivialaugment", "randaugment", "autoaugment", "augmix"])
def test_policies_build_their_op_tables_once_per_shape_and_device(name):
    policy = POLICIES[name]()
    space = policy.space_on(32, 32, "cpu")
    assert policy.space_on(32, 32, torch.device("cpu")) is space
    assert torch.equal(space.magnitudes, policy.space(32, 32).magnitudes)
    if name in ("randaugment", "autoaugment", "augmix"):  # their translations scale with the image size
        assert not torch.equal(policy.space_on(64, 64, "cpu").magnitudes, space.magnitudes)
