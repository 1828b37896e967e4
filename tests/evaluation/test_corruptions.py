"""CIFAR-100-C: each regenerated corruption against a per-image numpy / scipy / PIL reference written from the
published procedure (make_cifar_c.py) with its own copy of the CIFAR constants; the official-files reader
on a tiny folder in the official layout; evaluate.py end to end in both modes."""

from __future__ import annotations

import colorsys
import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image
from scipy import ndimage

from infomatch.data import cifar
from infomatch.evaluation.cifar100c import functions
from infomatch.evaluation.cifar100c.scoring import check_baseline
from infomatch.evaluation.cifar100c.sources import OfficialCorruptions, RegeneratedCorruptions
from infomatch.models import ResNet18
from infomatch.tasks.evaluate import evaluate
from infomatch.utils.errors import EvaluationError
from infomatch.utils.seeding import mix_seed

SEVERITIES = (2, 5)


def images(count: int = 4, seed: int = 0) -> torch.Tensor:
    """Natural-looking test images: smooth colour fields with sharp edges and some texture."""
    generator = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.interpolate(torch.rand(count, 3, 6, 6, generator=generator), size=32,
                                             mode="bicubic", align_corners=False)
    edges = ((torch.rand(count, 3, 4, 4, generator=generator) > 0.5).float()
             .repeat_interleave(8, 2).repeat_interleave(8, 3))
    texture = torch.rand(count, 3, 32, 32, generator=generator)
    mixed = 0.6 * smooth + 0.3 * edges + 0.1 * texture
    return (mixed.clamp(0, 1) * 255).round().to(torch.uint8)


def hwc(batch: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) uint8 tensor -> (B, H, W, 3) float64 in [0, 1], as the procedure's np.array(x) / 255."""
    return batch.permute(0, 2, 3, 1).numpy().astype(np.float64) / 255


def stored(result: np.ndarray) -> np.ndarray:
    """np.uint8(np.clip(result, 0, 1) * 255), as the generation script stores it."""
    return np.uint8(np.clip(result, 0, 1) * 255)


def assert_close(ours: torch.Tensor, reference: np.ndarray, rounding: str = "floor") -> None:
    """Ours (B, 3, H, W) uint8 against the reference's float result (B, H, W, 3), stored by truncation
    ('floor', as np.uint8) or by an 8-bit codec ('round'). Exact, except where the reference lies within
    1e-3 levels of a storage boundary (an exact integer for truncation), where float rounding order decides."""
    levels = np.clip(reference, 0, 1) * 255 + (0.5 if rounding == "round" else 0.0)
    expected = np.floor(levels)
    difference = np.abs(ours.permute(0, 2, 3, 1).numpy().astype(np.float64) - expected)
    near_boundary = np.abs(levels - np.round(levels)) < 1e-3
    assert difference.max() <= 1, difference.max()
    assert near_boundary[difference > 0].all(), f"{(difference > 0).sum()} pixels differ away from a boundary"


def assert_levels(ours: torch.Tensor, reference: np.ndarray, max_levels: int = 0, mean_levels: float = 0.0) -> None:
    """Ours against a uint8 reference (B, H, W, 3) of a procedure that itself stores 8-bit values midway."""
    difference = np.abs(ours.permute(0, 2, 3, 1).numpy().astype(int) - reference.astype(int))
    assert difference.max() <= max_levels, difference.max()
    assert difference.mean() <= mean_levels, difference.mean()


def run(name: str, batch: torch.Tensor, severity: int, seed: int = 0) -> torch.Tensor:
    return functions.CORRUPTIONS[name](batch, severity, torch.Generator().manual_seed(seed))


def replay(seed: int = 0) -> torch.Generator:
    """The generator a corruption drew from, from the start: the reference replays its documented draws."""
    return torch.Generator().manual_seed(seed)


def channels_last(draws: torch.Tensor) -> np.ndarray:
    return draws.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("severity", SEVERITIES)
def test_noises_match_the_procedure(severity):
    batch = images()
    x = hwc(batch)
    shape = batch.shape
    sigma = [0.04, 0.06, .08, .09, .10][severity - 1]
    noise = channels_last(torch.randn(shape, generator=replay(), dtype=torch.float64))
    assert_close(run("gaussian_noise", batch, severity), x + noise * sigma)

    scale = [.06, .1, .12, .16, .2][severity - 1]
    noise = channels_last(torch.randn(shape, generator=replay(), dtype=torch.float64))
    assert_close(run("speckle_noise", batch, severity), x + x * noise * scale)

    photons = [500, 250, 100, 75, 50][severity - 1]
    rates = torch.from_numpy(x * photons).permute(0, 3, 1, 2).contiguous()
    counts = channels_last(torch.poisson(rates, generator=replay()))
    assert_close(run("shot_noise", batch, severity), counts / photons)

    amount = [.01, .02, .03, .05, .07][severity - 1]
    generator = replay()
    flipped = channels_last(torch.rand(shape, generator=generator, dtype=torch.float64)) <= amount
    salted = channels_last(torch.rand(shape, generator=generator, dtype=torch.float64)) < 0.5
    reference = x.copy()
    reference[flipped & salted] = 1
    reference[flipped & ~salted] = 0
    assert_close(run("impulse_noise", batch, severity), reference)


def skimage_gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """skimage.filters.gaussian(image, sigma, multichannel=True): scipy's filter, mode 'nearest', 4 sigma."""
    return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_and_glass_blur_match_the_procedure(severity):
    batch = images()
    sigma = [.4, .6, 0.7, .8, 1][severity - 1]
    assert_close(run("gaussian_blur", batch, severity), np.stack([skimage_gaussian(x, sigma) for x in hwc(batch)]))

    sigma, max_delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    generator = replay()
    draws = [torch.randint(-1, 1, (len(batch), 2, 30, 30), generator=generator).numpy() for _ in range(iterations)]
    references = []
    for index, clean in enumerate(hwc(batch)):
        x = np.uint8(skimage_gaussian(clean, sigma) * 255)
        for iteration in range(iterations):
            for h in range(32 - max_delta, max_delta, -1):
                for w in range(32 - max_delta, max_delta, -1):
                    dx, dy = draws[iteration][index, :, h - 2, w - 2]
                    h_prime, w_prime = h + dy, w + dx
                    # the published statement, numpy views and all
                    x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
        references.append(stored(skimage_gaussian(x / 255., sigma)))
    # the midway uint8 truncation can flip a level either way, and the second blur spreads it
    assert_levels(run("glass_blur", batch, severity), np.stack(references), max_levels=1, mean_levels=0.02)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_defocus_blur_matches_the_procedure(severity):
    batch = images()
    radius, alias_blur = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    grid = np.arange(-8, 8 + 1)
    X, Y = np.meshgrid(grid, grid)
    disk = np.array((X ** 2 + Y ** 2) <= radius ** 2, dtype=np.float64)
    disk /= disk.sum()
    taps = np.exp(-np.array([-1.0, 0.0, 1.0]) ** 2 / (2 * alias_blur ** 2))  # OpenCV's 3-tap Gaussian
    taps /= taps.sum()
    kernel = ndimage.correlate(disk, np.outer(taps, taps), mode="mirror")
    reference = np.stack([np.stack([ndimage.correlate(x[:, :, d], kernel, mode="mirror") for d in range(3)], axis=2)
                          for x in hwc(batch)])
    assert_close(run("defocus_blur", batch, severity), reference)


def imagemagick_motion_blur(x: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """MotionBlurImage as ImageMagick's effect.c computes it, on an (H, W, C) float image; unrounded."""
    width = int(2 * math.ceil(radius) + 1)
    weights = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    out = np.zeros_like(x)
    for i, weight in enumerate(weights):
        dx = math.ceil(i * math.cos(math.radians(angle)) - 0.5)
        dy = math.ceil(i * math.sin(math.radians(angle)) - 0.5)
        rows = np.clip(np.arange(x.shape[0]) + dy, 0, x.shape[0] - 1)  # 'edge' virtual pixels
        columns = np.clip(np.arange(x.shape[1]) + dx, 0, x.shape[1] - 1)
        out += weight * x[rows][:, columns]
    return out


@pytest.mark.parametrize("severity", SEVERITIES)
def test_motion_blur_matches_imagemagick(severity):
    batch = images()
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    angles = torch.rand(len(batch), 1, generator=replay(), dtype=torch.float64).numpy()[:, 0] * 90 - 45
    references = [imagemagick_motion_blur(x, radius, sigma, angle) for x, angle in zip(hwc(batch), angles)]
    assert_close(run("motion_blur", batch, severity), np.stack(references), rounding="round")


@pytest.mark.parametrize("severity", (3, 5))
def test_snow_matches_the_procedure(severity):
    batch = images()
    c = [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    generator = replay()
    normal = torch.randn(len(batch), 32, 32, generator=generator, dtype=torch.float64).numpy()
    angles = torch.rand(len(batch), 1, generator=generator, dtype=torch.float64).numpy()[:, 0] * 90 - 135
    references = []
    for x, z, angle in zip(hwc(batch), normal, angles):
        snow_layer = c[0] + c[1] * z
        snow_layer = clipped_zoom(snow_layer[..., np.newaxis], c[2])
        snow_layer[snow_layer < c[3]] = 0
        snow_layer = (np.clip(snow_layer, 0, 1) * 255).astype(np.uint8) / 255.  # the 8-bit grey PNG
        blurred = imagemagick_motion_blur(snow_layer, c[4], c[5], angle)
        snow_layer = np.floor(np.clip(blurred, 0, 1) * 255 + 0.5) / 255.
        grey = (x @ np.array([0.299, 0.587, 0.114]))[..., np.newaxis]  # cv2.COLOR_RGB2GRAY
        x = c[6] * x + (1 - c[6]) * np.maximum(x, grey * 1.5 + 0.5)
        references.append(x + snow_layer + np.rot90(snow_layer, k=2))
    assert_close(run("snow", batch, severity), np.stack(references))


def clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    h = img.shape[0]
    ch = int(np.ceil(h / zoom_factor))
    top = (h - ch) // 2
    img = ndimage.zoom(img[top:top + ch, top:top + ch], (zoom_factor, zoom_factor, 1), order=1)
    trim_top = (img.shape[0] - h) // 2
    return img[trim_top:trim_top + h, trim_top:trim_top + h]


@pytest.mark.parametrize("severity", SEVERITIES)
def test_zoom_blur_matches_the_procedure(severity):
    batch = images()
    factors = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
               np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][severity - 1]
    references = []
    for x in hwc(batch):
        x = x.astype(np.float32)
        out = np.zeros_like(x)
        for factor in factors:
            out += clipped_zoom(x, factor)
        references.append((x + out) / (len(factors) + 1))
    assert_close(run("zoom_blur", batch, severity), np.stack(references))


def plasma_fractal(draws: list[np.ndarray], wibbledecay: float, mapsize: int = 32) -> np.ndarray:
    """The published diamond-square, its np.random.uniform(-wibble, wibble) replaced by the replayed draws."""
    maparray = np.empty((mapsize, mapsize))
    maparray[0, 0] = 0
    stepsize, wibble = mapsize, 100
    draw = iter(draws)

    def wibbledmean(array):
        return array / 4 + wibble * (-wibble + 2 * wibble * next(draw))

    while stepsize >= 2:
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(squareaccum)
        drgrid = maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ltsum = drgrid + np.roll(drgrid, 1, axis=0) + ulgrid + np.roll(ulgrid, -1, axis=1)
        maparray[0:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(ltsum)
        ttsum = drgrid + np.roll(drgrid, 1, axis=1) + ulgrid + np.roll(ulgrid, -1, axis=0)
        maparray[stepsize // 2:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


@pytest.mark.parametrize("severity", SEVERITIES)
def test_fog_matches_the_procedure(severity):
    batch = images()
    strength, decay = [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    generator = replay()
    draws = [torch.rand(len(batch), 32 // step, 32 // step, generator=generator, dtype=torch.float64).numpy()
             for step in (32, 16, 8, 4, 2) for _ in range(3)]
    references = []
    for index, x in enumerate(hwc(batch)):
        max_val = x.max()
        x = x + strength * plasma_fractal([draw[index] for draw in draws], decay)[:32, :32][..., np.newaxis]
        references.append(x * max_val / (max_val + strength))
    assert_close(run("fog", batch, severity), np.stack(references))


def hsv_map(x: np.ndarray, change) -> np.ndarray:
    """Per pixel through colorsys's HSV (skimage's formulas), ``change`` applied to (h, s, v)."""
    out = np.empty_like(x)
    for index in np.ndindex(x.shape[:-1]):
        out[index] = colorsys.hsv_to_rgb(*change(*colorsys.rgb_to_hsv(*x[index])))
    return out


@pytest.mark.parametrize("severity", SEVERITIES)
def test_colour_corruptions_match_the_procedure(severity):
    batch = images(2)
    shift = [.05, .1, .15, .2, .3][severity - 1]
    reference = [hsv_map(x, lambda h, s, v: (h, s, min(max(v + shift, 0), 1))) for x in hwc(batch)]
    assert_close(run("brightness", batch, severity), np.stack(reference))

    a, b = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][severity - 1]
    reference = [hsv_map(x, lambda h, s, v: (h, min(max(s * a + b, 0), 1), v)) for x in hwc(batch)]
    assert_close(run("saturate", batch, severity), np.stack(reference))

    factor = [.75, .5, .4, .3, 0.15][severity - 1]
    x = hwc(batch)
    means = x.mean(axis=(1, 2), keepdims=True)
    assert_close(run("contrast", batch, severity), (x - means) * factor + means)


def pil_images(batch: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in batch]


@pytest.mark.parametrize("severity", SEVERITIES)
def test_jpeg_and_pixelate_match_pil(severity):
    batch = images()
    quality = [80, 65, 58, 50, 40][severity - 1]
    references = []
    for image in pil_images(batch):
        output = io.BytesIO()
        image.save(output, "JPEG", quality=quality)
        references.append(np.array(Image.open(output)))
    assert_levels(run("jpeg_compression", batch, severity), np.stack(references))

    factor = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    references = [np.array(image.resize((int(32 * factor), int(32 * factor)), Image.BOX).resize((32, 32), Image.BOX))
                  for image in pil_images(batch)]
    assert_levels(run("pixelate", batch, severity), np.stack(references))


@pytest.mark.parametrize("severity", SEVERITIES)
def test_elastic_transform_matches_the_procedure(severity):
    batch = images()
    size = 32
    alpha, sigma, jitter = [(size * 0, size * 0, size * 0.08), (size * 0.05, size * 0.2, size * 0.07),
                            (size * 0.08, size * 0.06, size * 0.06), (size * 0.1, size * 0.04, size * 0.05),
                            (size * 0.1, size * 0.03, size * 0.03)][severity - 1]
    generator = replay()
    uniform = [torch.rand(shape, generator=generator, dtype=torch.float64).numpy()
               for shape in ((len(batch), 3, 2), (len(batch), size, size), (len(batch), size, size))]
    pts1 = np.float32([[26, 26], [26, 6], [6, 6]])  # centre 16 +- square 10, as (x, y)
    references = []
    for index, image in enumerate(hwc(batch)):
        pts2 = pts1 + (-jitter + 2 * jitter * uniform[0][index]).astype(np.float32)
        # cv2.getAffineTransform(pts1, pts2): dst = A src + t; warpAffine reads src = A^-1 (dst - t)
        solution = np.linalg.solve(np.c_[pts1, np.ones(3)].astype(np.float64), pts2.astype(np.float64))
        forward, t = solution[:2].T, solution[2]
        inverse = np.linalg.inv(forward)
        # scipy works in (row, column) = (y, x): swap both axes of the matrix and the offset
        swap = np.array([[0, 1], [1, 0]])
        matrix, offset = swap @ inverse @ swap, -(swap @ inverse @ t)
        image = np.stack([ndimage.affine_transform(image[:, :, d], matrix, offset, order=1, mode="mirror")
                          for d in range(3)], axis=2).astype(np.float32)
        dx = (ndimage.gaussian_filter(-1 + 2 * uniform[1][index], sigma, mode="reflect", truncate=3) * alpha)
        dy = (ndimage.gaussian_filter(-1 + 2 * uniform[2][index], sigma, mode="reflect", truncate=3) * alpha)
        y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        warped = np.stack([ndimage.map_coordinates(image[:, :, d], (y + dy, x + dx), order=1, mode="reflect")
                           for d in range(3)], axis=2)
        references.append(warped)
    assert_close(run("elastic_transform", batch, severity), np.stack(references))


def test_same_seed_same_images_and_distance_grows_with_severity():
    batch = images(8)
    for name in functions.CORRUPTIONS:
        first, again, other = run(name, batch, 3, seed=1), run(name, batch, 3, seed=1), run(name, batch, 3, seed=2)
        assert torch.equal(first, again), name
        distance = [(run(name, batch, severity).float() - batch.float()).abs().mean().item()
                    for severity in range(1, 6)]
        assert distance[4] > distance[0] > 0 or name == "elastic_transform", (name, distance)
        if name in MONOTONE:
            assert all(later >= earlier - 0.05 for earlier, later in zip(distance, distance[1:])), (name, distance)
        if name in RANDOM:
            assert not torch.equal(first, other), name


# random corruptions: another seed gives other images
RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur", "snow",
          "fog", "elastic_transform")
# the published constants make these strictly stronger with severity; glass blur, pixelate and saturate change
# two parameters at once, and elastic trades the affine jitter (largest at severity 1) for the displacement
MONOTONE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur", "motion_blur",
            "zoom_blur", "fog", "brightness", "contrast", "jpeg_compression", "gaussian_blur")


# synthetic evaluation data of the tiny models below; 20 test images = 20 images per severity in the tiny files
DATA = ["data=synthetic", "data.num_classes=10", "data.train_size=64", "data.val_size=16", "data.test_size=20"]
QUICK = ["robustness.levels=2", "confidence.levels=2", "degradation.types=[mosaic]"]  # the least of the other analyses


def run_folder(root, strategy: str, seed: int):
    """A run folder as train.py leaves it, with an untrained width-8 model: what evaluation reads of it."""
    torch.manual_seed(seed + (10 if strategy == "im" else 0))
    net = ResNet18(num_classes=10, width=8)
    target = {"hard": "infomatch.labels.HardLabels", "im": "infomatch.labels.InformationMatching"}[strategy]
    folder = root / f"{seed}_{strategy}_all_seed{seed}"
    (folder / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {f"net.{key}": value for key, value in net.state_dict().items()},
                "infomatch_config": {"model": {"_target_": "infomatch.models.ResNet18", "num_classes": 10, "width": 8},
                                     "labels": {"_target_": target}, "seed": seed},
                "infomatch_normalization": {"mean": list(cifar.CIFAR100.mean), "std": list(cifar.CIFAR100.std)}},
               folder / "checkpoints" / "best_epoch000.ckpt")
    return folder, net


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    nets = {f"{strategy}_seed{seed}": run_folder(root, strategy, seed)[1]
            for strategy, seed in (("hard", 0), ("im", 0), ("im", 1))}
    return root, nets


def synthetic_test_set(make_config) -> tuple[torch.Tensor, torch.Tensor]:
    from hydra.utils import instantiate

    datamodule = instantiate(make_config(*DATA, config_name="evaluate").data)
    datamodule.setup("test")
    return datamodule.test_set


def accuracy(net, corrupted: torch.Tensor, labels: torch.Tensor) -> float:
    mean, std = torch.tensor(cifar.CIFAR100.mean).view(1, -1, 1, 1), torch.tensor(cifar.CIFAR100.std).view(1, -1, 1, 1)
    with torch.no_grad():
        logits = net.eval()((corrupted.float() / 255 - mean) / std)
    return (logits.argmax(1) == labels).float().mean().item()


def test_regenerated_suite_end_to_end(make_config, sweep, tmp_path):
    root, nets = sweep
    everything = RegeneratedCorruptions("all")
    assert everything.missing == ["frost", "spatter"] and len(everything.names) == 17
    cfg = make_config(*DATA, *QUICK, f"ckpt={root}", "corruptions=regenerated",
                      "corruptions.names=[saturate,fog,spatter,gaussian_noise,snow]", "corruptions.severities=[2,4]",
                      "subset=12", "seed=3", config_name="evaluate")
    results = evaluate(cfg)
    part = results["corruptions"]
    assert part["label"] == "regenerated, not the official files"
    assert part["names"] == ["gaussian_noise", "snow", "fog", "saturate"] and part["missing"] == ["spatter"]
    assert part["compare_to"] == "hard" and part["num_images"] == 12
    assert results["cost"]["seconds"] > 0 and results["cost"]["torch_threads"] >= 1  # a study adds these up

    # one set by hand: the first 12 test images corrupted with the documented seeding, scored by the network
    images, labels = synthetic_test_set(make_config)
    generator = torch.Generator().manual_seed(mix_seed(3, functions.ALL.index("fog"), 4))
    fog = functions.fog(images[:12], 4, generator)
    for name, net in nets.items():
        assert part["models"][name]["sets"]["fog"]["top1"][1] == pytest.approx(accuracy(net, fog, labels[:12]))

    hard = part["models"]["hard_seed0"]
    benchmark = [name for name in part["names"] if name in functions.BENCHMARK]
    assert len(benchmark) == 3 and part["benchmark"] == benchmark
    assert hard["summary"]["mean_top1_benchmark"] == pytest.approx(
        np.mean([hard["sets"][name]["top1"] for name in benchmark]))
    assert hard["summary"]["mean_ece"] == pytest.approx(np.mean([hard["sets"][name]["ece"] for name in part["names"]]))
    assert hard["summary"]["mce"] == pytest.approx(100)
    im = part["models"]["im_seed0"]
    assert im["summary"]["mce"] == pytest.approx(100 * np.mean(
        [np.sum(1 - np.array(im["sets"][name]["top1"])) / np.sum(1 - np.array(hard["sets"][name]["top1"]))
         for name in benchmark]))
    group = part["aggregate"]["im"]
    assert group["n"] == 2 and group["summary"]["mean_top1_all"]["std"] is not None

    output = Path(cfg.paths.output_dir)
    summary = (output / "summary.md").read_text()
    assert "Regenerated, not the official files" in summary and "Per strategy, mean ± std" in summary
    with open(output / "metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["analysis"] == "cifar100c_regenerated"]
    assert len(rows) == 3 * 4 * 2 * 3
    assert json.loads((output / "metrics.json").read_text())["corruptions"]["label"] == part["label"]
    assert ({"corruptions_severity.png", "corruptions_heatmap.png"}
            <= {path.name for path in (output / "plots").iterdir()})


def write_official(folder, images: torch.Tensor, labels: torch.Tensor, names=("fog", "contrast")):
    """The release's layout: severity s holds the images with (s * 10)-level offsets, so each severity differs."""
    folder.mkdir()
    hwc_images = images.permute(0, 2, 3, 1).numpy()
    stack = np.concatenate([np.clip(hwc_images.astype(int) + 10 * severity, 0, 255) for severity in range(1, 6)])
    for name in names:
        np.save(folder / f"{name}.npy", stack.astype(np.uint8))
    np.save(folder / "labels.npy", np.tile(labels.numpy(), 5).astype(np.uint8))
    return stack


def test_official_files_are_read_per_severity(make_config, sweep, tmp_path):
    root, nets = sweep
    images, labels = synthetic_test_set(make_config)
    stack = write_official(tmp_path / "c", images, labels)
    results = evaluate(make_config(*DATA, *QUICK, "plots=false", f"ckpt={root / '0_hard_all_seed0'}",
                                   "corruptions=cifar100c", f"corruptions.root={tmp_path / 'c'}",
                                   "corruptions.names=[contrast,fog]", "corruptions.severities=[2,5]", "subset=12",
                                   "corruptions.num_images=7", config_name="evaluate"))
    part = results["corruptions"]
    assert part["label"] == "official files" and part["names"] == ["fog", "contrast"]
    # the clean metrics keep the 12 images, each corrupted set scores its first 7
    assert results["evaluation"]["num_images"] == 12 and part["num_images"] == 7
    for index, severity in enumerate((2, 5)):
        expected = torch.from_numpy(stack[(severity - 1) * 20:(severity - 1) * 20 + 7]).permute(0, 3, 1, 2)
        assert part["models"]["hard_seed0"]["sets"]["fog"]["top1"][index] == pytest.approx(
            accuracy(nets["hard_seed0"], expected, labels[:7]))


def test_official_file_problems_name_the_file(make_config, tmp_path):
    images, labels = synthetic_test_set(make_config)
    write_official(tmp_path / "c", images, labels)
    folder = tmp_path / "c"
    with pytest.raises(EvaluationError, match="no such folder"):
        OfficialCorruptions(str(tmp_path / "nowhere"))
    with pytest.raises(EvaluationError, match="compare_to=ls is neither"):
        check_baseline("ls", ["hard_seed0", "im_seed0"], ["hard", "im"])
    with pytest.raises(EvaluationError, match="lacks gaussian_noise.npy, shot_noise.npy"):
        OfficialCorruptions(str(folder))
    with pytest.raises(EvaluationError, match="unknown"):
        OfficialCorruptions(str(folder), names=["fogg"])
    with pytest.raises(EvaluationError, match="severities"):
        OfficialCorruptions(str(folder), names=["fog"], severities=[0, 6])
    with pytest.raises(EvaluationError, match="num_images=0 must be a positive"):
        RegeneratedCorruptions(num_images=0)
    source = OfficialCorruptions(str(folder), names=["fog"])
    with pytest.raises(EvaluationError, match="20 images per severity"):
        source.check(images.repeat(2, 1, 1, 1), labels.repeat(2))
    with pytest.raises(EvaluationError, match="labels at severity 1 differ"):
        source.check(images, (labels + 1) % 10)

    full = (folder / "fog.npy").read_bytes()
    (folder / "fog.npy").write_bytes(full[: len(full) // 2])
    with pytest.raises(EvaluationError, match=f"{folder / 'fog.npy'}: cannot read"):
        OfficialCorruptions(str(folder), names=["fog"])
    np.save(folder / "fog.npy", np.zeros((60, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(EvaluationError, match=f"{folder / 'fog.npy'}: expected uint8 images of shape \\(100, 32"):
        OfficialCorruptions(str(folder), names=["contrast", "fog"])
    np.save(folder / "labels.npy", np.zeros(99, dtype=np.uint8))
    with pytest.raises(EvaluationError, match=f"{folder / 'labels.npy'}: expected one label"):
        OfficialCorruptions(str(folder), names=["fog"])


def run_entry_point(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "evaluate.py"), *DATA, *QUICK, "plots=false",
               f"paths.log_dir={tmp_path}/outputs", *overrides]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)


def test_entry_point_with_a_run_folder(sweep, tmp_path):
    root, _ = sweep
    result = run_entry_point(tmp_path, f"ckpt={root / '1_im_all_seed1'}", "corruptions=regenerated", "subset=8",
                             "corruptions.names=[gaussian_noise,jpeg_compression]")
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics,) = (tmp_path / "outputs" / "eval").glob("*/metrics.json")
    assert json.loads(metrics.read_text())["corruptions"]["models"]["im_seed1"]["sets"].keys() == {
        "gaussian_noise", "jpeg_compression"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_computes_the_cpu_corruptions():
    """Corruptions without draws give the CPU's images on the GPU (to a truncation flip); random ones the
    same distribution: their mean distance to the clean image agrees within 10%."""
    batch = images(64)
    for name, corruption in functions.CORRUPTIONS.items():
        on_cpu = corruption(batch, 4, torch.Generator().manual_seed(0))
        on_gpu = corruption(batch.cuda(), 4, torch.Generator(device="cuda").manual_seed(0)).cpu()
        if name in RANDOM:
            cpu_distance, gpu_distance = ((result.float() - batch.float()).abs().mean() for result in (on_cpu, on_gpu))
            assert abs(gpu_distance / cpu_distance - 1) < 0.1, name
        else:
            difference = (on_gpu.int() - on_cpu.int()).abs()
            assert difference.max() <= 1 and difference.float().mean() < 0.01, name
