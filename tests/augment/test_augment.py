"""Batched degradations against straightforward per-image oracles."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from omegaconf import OmegaConf

from infomatch.augment import (
    DEGRADATIONS,
    REFERENCE_DEGRADATIONS,
    SAMPLINGS,
    Degrader,
    apply_degradations,
    blur,
    diffusion,
    dropout,
    heat,
    mosaic,
    noise,
)
from infomatch.labels.nmi import nmi
from infomatch.labels.strategies import im_epsilon


def images(batch, height=32, width=32, seed=0):
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def levels(batch, seed=1):
    """Random levels with the end points 0 and 1 included."""
    level = torch.rand(batch, generator=torch.Generator().manual_seed(seed))
    level[0], level[-1] = 0.0, 1.0
    return level


def blur_params(d, sigma_max, kernel_max):
    sigma = d * sigma_max + 0.01
    k = min(2 * int(4 * sigma + 0.5) + 1, kernel_max)
    return (k if k % 2 else k - 1), sigma


# ---- blur -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "size, sigma_max, kernel_max",
    [((32, 32), 50.0, 51), ((32, 32), 10.0, 11), ((40, 28), 50.0, 51), ((40, 24), 10.0, 11), ((32, 32), 50.0, 50)],
)
def test_blur_matches_torchvision_per_image(size, sigma_max, kernel_max):
    x = images(12, *size)
    level = torch.cat([levels(8), torch.tensor([0.001, 0.01, 0.05, 0.1])])
    out = blur(x, level, sigma_max, kernel_max)
    for image, d, got in zip(x, level.tolist(), out):
        k, sigma = blur_params(d, sigma_max, kernel_max)
        expected = TF.gaussian_blur(image, [k, k], [sigma, sigma])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_blur_level_zero_is_identity():
    x = images(4)
    torch.testing.assert_close(blur(x, torch.zeros(4)), x, atol=1e-6, rtol=0)


def test_blur_kernel_wider_than_image_reflects_repeatedly():
    # torchvision refuses a reflect pad >= the image size; we keep reflecting (repeated reflect padding)
    x = images(3, 7, 5)
    level = torch.tensor([1.0, 0.2, 0.05])
    out = blur(x, level, 50.0, 51)
    for image, d, got in zip(x, level.tolist(), out):
        k, sigma = blur_params(d, 50.0, 51)
        padded, remaining = image[None], [k // 2] * 2  # rows, cols still to pad
        while max(remaining) > 0:
            step = [min(r, s - 1) for r, s in zip(remaining, padded.shape[-2:])]
            padded = F.pad(padded, (step[1], step[1], step[0], step[0]), mode="reflect")
            remaining = [r - s for r, s in zip(remaining, step)]
        t = torch.arange(k, dtype=torch.float32) - k // 2
        g = torch.exp(-0.5 * (t / sigma) ** 2)
        g = g / g.sum()
        kernel = (g[:, None] * g[None, :]).expand(3, 1, k, k)
        expected = F.conv2d(padded, kernel, groups=3)[0]
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


# ---- mosaic ------------------------------------------------------------------------------------------
def mosaic_loop(image, d, max_block=32):
    block = max(1, int(max_block * (d + 0.001) ** 2))
    out = image.clone()
    _, height, width = image.shape
    for top in range(0, height, block):
        for left in range(0, width, block):
            region = image[:, top:top + block, left:left + block]
            out[:, top:top + block, left:left + block] = region.mean(dim=(1, 2), keepdim=True)
    return out


@pytest.mark.parametrize("size", [(32, 32), (30, 20), (17, 45)])
def test_mosaic_matches_block_loop(size):
    x = images(24, *size)
    level = torch.cat([levels(20), torch.tensor([0.1, 0.2, 0.3, 0.75])])
    out = mosaic(x, level)
    for image, d, got in zip(x, level.tolist(), out):
        torch.testing.assert_close(got, mosaic_loop(image, d), atol=1e-6, rtol=0)


# ---- dropout ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, patch", [((32, 32), 8), ((32, 32), 4), ((36, 20), 8)])
def test_dropout_keeps_floor_n_times_one_minus_d_patches(size, patch):
    x = images(32, *size) + 0.01  # strictly positive: a zero tile can only be a dropped one
    level = levels(32)
    out = dropout(x, level, patch, generator=torch.Generator().manual_seed(0))
    height, width = size
    tiles = [(r, c) for r in range(0, height, patch) for c in range(0, width, patch)]
    if size == (32, 32):
        assert len(tiles) == (32 // patch) ** 2
    for image, d, got in zip(x, level.tolist(), out):
        kept = 0
        for r, c in tiles:
            tile, original = got[:, r:r + patch, c:c + patch], image[:, r:r + patch, c:c + patch]
            if torch.equal(tile, original):
                kept += 1
            else:
                assert torch.all(tile == 0)
        assert kept == math.floor(len(tiles) * (1 - d))


def test_dropout_chooses_tiles_uniformly():
    x = torch.ones(4000, 1, 32, 32)
    out = dropout(x, torch.full((4000,), 0.5), 8, generator=torch.Generator().manual_seed(0))
    kept_per_tile = out[:, 0, ::8, ::8].reshape(4000, 16)
    assert torch.all(kept_per_tile.sum(1) == 8)
    torch.testing.assert_close(kept_per_tile.mean(0), torch.full((16,), 0.5), atol=0.03, rtol=0)


# ---- diffusion ---------------------------------------------------------------------------------------
def alpha_bar_numpy(t):
    return np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))[t]


def test_diffusion_timestep_zero_is_exact_identity():
    x = images(3)
    level = torch.tensor([0.0, 0.0005, 1 / 999 - 1e-6])  # all give t = int(d * 999) = 0
    assert torch.equal(diffusion(x, level, torch.Generator().manual_seed(0)), x)


def test_diffusion_replays_the_generator_noise_exactly():
    x, level = images(16), levels(16)
    out = diffusion(x, level, torch.Generator().manual_seed(7))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    for image, d, n, got in zip(x, level.tolist(), noise, out):
        t = min(max(int(d * 999), 0), 999)
        if t == 0:
            assert torch.equal(got, image)
            continue
        abar = alpha_bar_numpy(t)
        expected = ((math.sqrt(abar) * (2 * image - 1) + math.sqrt(1 - abar) * n) + 1) / 2
        torch.testing.assert_close(got, expected.clamp(0, 1), atol=1e-6, rtol=0)


def test_diffusion_statistics_of_a_constant_image():
    # mid-gray and a small t: clamping never happens, so the pixels are N(0.5, (1 - abar_t) / 4)
    t = 50
    x = torch.full((64, 3, 32, 32), 0.5)
    out = diffusion(x, torch.full((64,), (t + 0.5) / 999), torch.Generator().manual_seed(0))
    assert 0 < out.min() and out.max() < 1
    expected_std = math.sqrt(1 - alpha_bar_numpy(t)) / 2
    assert abs(out.mean().item() - 0.5) < 0.002
    assert abs(out.std().item() / expected_std - 1) < 0.01


# ---- apply_degradations and Degrader ------------------------------------------------------------------
def test_apply_degradations_equals_each_function_on_its_subset():
    x, level = images(42), levels(42)
    types = torch.arange(42) % (len(DEGRADATIONS) + 1) - 1  # -1, 0, 1, ..., -1, ...
    out = apply_degradations(x, types, level, torch.Generator().manual_seed(3),
                             blur_sigma_max=10.0, blur_kernel_max=11, dropout_patch=4)
    # random draws happen in DEGRADATIONS order, each on its own subset
    generator = torch.Generator().manual_seed(3)
    expected = x.clone()
    for index, name in enumerate(DEGRADATIONS):
        subset = types == index
        xs, ls = x[subset], level[subset]
        if name == "diffusion":
            expected[subset] = diffusion(xs, ls, generator)
        elif name == "blur":
            expected[subset] = blur(xs, ls, 10.0, 11)
        elif name == "dropout":
            expected[subset] = dropout(xs, ls, 4, generator)
        elif name == "noise":
            expected[subset] = noise(xs, ls, generator)
        elif name == "heat":
            expected[subset] = heat(xs, ls)
        else:
            expected[subset] = mosaic(xs, ls)
    assert torch.equal(out, expected)
    assert torch.equal(out[types == -1], x[types == -1])


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_degrader_samples_only_enabled_types_uniformly(sampling):
    degrader = Degrader(types=["blur", "mosaic"], sampling=sampling)
    types, level = degrader.sample(4000, "cpu", torch.Generator().manual_seed(0))
    assert set(types.tolist()) == {DEGRADATIONS.index("blur"), DEGRADATIONS.index("mosaic")}
    assert abs((types == DEGRADATIONS.index("blur")).float().mean().item() - 0.5) < 0.03
    assert level.dtype == torch.float32 and 0 <= level.min() and level.max() < 1
    assert abs(level.mean().item() - 0.5) < 0.02


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_degrader_probability_spares_images(sampling):
    types, level = Degrader(probability=0.25, sampling=sampling).sample(4000, "cpu", torch.Generator().manual_seed(0))
    spared = types == -1
    assert abs(spared.float().mean().item() - 0.75) < 0.03
    assert torch.all(level[spared] == 0)
    assert set(types[~spared].tolist()) == {DEGRADATIONS.index(name) for name in REFERENCE_DEGRADATIONS}


def test_stratified_batches_hold_fixed_counts_at_random_positions():
    degrader = Degrader(types=["diffusion", "dropout", "mosaic"], probability=0.5, sampling="stratified")
    generator = torch.Generator().manual_seed(0)
    totals = torch.zeros(len(DEGRADATIONS) + 1)
    first_positions = set()
    for _ in range(300):
        types, level, (order, sizes) = degrader.sample_grouped(14, "cpu", generator)
        counts = torch.bincount(types + 1, minlength=len(DEGRADATIONS) + 1)
        assert counts.tolist() == sizes and counts[0] == 7  # round(14 * 0.5) degraded
        assert sorted(counts[[1, 3, 4]].tolist()) == [2, 2, 3] and counts[2] == 0  # 7 over 3 types, blur off
        # the grouping says which images form each group: order[:7] unchanged, then the types in order
        assert types[order].tolist() == sorted(types.tolist())
        totals += counts
        first_positions.add(int(order[0]))
    assert (totals[[1, 3, 4]] / totals[[1, 3, 4]].sum() - 1 / 3).abs().max() < 0.02  # left-over slot spread evenly
    assert len(first_positions) == 14  # positions are random, not blocks


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_degrader_call_degrades_with_the_sampled_types(sampling):
    x = images(32)
    degrader = Degrader(blur_sigma_max=10.0, blur_kernel_max=11, dropout_patch=4, sampling=sampling)
    out, types, level = degrader(x, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)
    expected_types, expected_level, grouping = degrader.sample_grouped(32, "cpu", generator)
    assert torch.equal(types, expected_types) and torch.equal(level, expected_level)
    expected = apply_degradations(x, types, level, generator, blur_sigma_max=10.0, blur_kernel_max=11,
                                  dropout_patch=4, grouping=grouping)
    assert torch.equal(out, expected)
    deterministic = (types == DEGRADATIONS.index("blur")) | (types == DEGRADATIONS.index("mosaic"))
    sorted_by_type = apply_degradations(x, types, level, torch.Generator().manual_seed(9), blur_sigma_max=10.0,
                                        blur_kernel_max=11, dropout_patch=4)
    assert torch.equal(out[deterministic], sorted_by_type[deterministic])  # grouping changes only the random draws


def test_stratified_and_iid_sampling_give_the_same_epsilon_distribution():
    clean = images(2048, seed=3)
    epsilons = {}
    for sampling in SAMPLINGS:
        degrader, generator = Degrader(sampling=sampling), torch.Generator().manual_seed(0)
        parts = []
        for chunk in clean.split(64):
            degraded, _, _ = degrader(chunk, generator)
            parts.append(im_epsilon(nmi(chunk, degraded)))
        epsilons[sampling] = torch.cat(parts)
    quantiles = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9])
    iid, stratified = (epsilons[name] for name in ("iid", "stratified"))
    assert abs(iid.mean() - stratified.mean()) < 0.02
    assert (iid.quantile(quantiles) - stratified.quantile(quantiles)).abs().max() < 0.05


@pytest.mark.parametrize("types", [[], (), OmegaConf.create({"t": []}).t])
def test_degrader_without_types_is_identity(types):
    degrader = Degrader(types=types)
    assert not degrader.enabled
    x = images(5)
    out, kinds, level = degrader(x)
    assert torch.equal(out, x) and torch.all(kinds == -1) and torch.all(level == 0)


def test_degrader_accepts_listconfig_and_rejects_unknown_types():
    assert Degrader(types=OmegaConf.create({"t": ["dropout", "blur"]}).t).types == ("dropout", "blur")
    assert Degrader(types="mosaic").types == ("mosaic",)
    with pytest.raises(ValueError, match="diffusion, blur, dropout, mosaic"):
        Degrader(types=["blur", "jpeg"])
    with pytest.raises(ValueError, match="probability"):
        Degrader(probability=1.5)
