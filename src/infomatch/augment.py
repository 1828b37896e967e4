"""Batched image degradations, their registry, the per-image sampler of (type, level), and the base crop + flip.

Every degradation takes a (B, C, H, W) float batch in [0, 1] and a (B,) level in [0, 1] and treats the
whole batch at once, with no Python loop over images; per image it computes exactly what the
reference computes image by image. ``REGISTRY`` lists them with their settings and plot titles: a new
degradation is one function registered there plus its ``configs/augment`` YAML.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from infomatch.checks import SettingError, check_choice, check_number
from infomatch.precision import wide_float


@lru_cache(maxsize=16)
def _diffusion_schedule(
    timesteps: int, beta_start: float, beta_end: float, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """(sqrt(abar_t), sqrt(1 - abar_t)) for all t, computed in float64 once per device and dtype."""
    alpha_bar = torch.cumprod(1.0 - torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64), dim=0)
    # cast on the CPU first: MPS has no float64
    return alpha_bar.sqrt().to(dtype).to(device), (1 - alpha_bar).sqrt().to(dtype).to(device)


def diffusion(
    x: Tensor,
    level: Tensor,
    generator: torch.Generator | None = None,
    timesteps: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> Tensor:
    """DDPM forward noise at t = int(level * (T - 1)); t = 0 leaves the image untouched."""
    t = (wide_float(level) * (timesteps - 1)).long().clamp(0, timesteps - 1)
    signal, noise_scale = _diffusion_schedule(timesteps, beta_start, beta_end, x.device, x.dtype)
    signal, noise_scale = signal[t].view(-1, 1, 1, 1), noise_scale[t].view(-1, 1, 1, 1)
    noisy = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    # ((signal * (2x - 1) + noise_scale * noise) + 1) / 2, in place on the noise buffer
    noisy.mul_(noise_scale).add_(signal * (2 * x - 1)).add_(1).div_(2).clamp_(0, 1)
    return torch.where((t == 0).view(-1, 1, 1, 1), x, noisy)


def _reflect(index: Tensor, size: int) -> Tensor:
    """Map indices outside [0, size) back inside by mirror reflection (edge pixel not repeated).

    Equals torch's reflect padding where that is defined (pad < size) and keeps bouncing beyond it,
    like reflect-padding repeatedly, so kernels wider than the image still work.
    """
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    folded = index.remainder(period)
    return torch.where(folded < size, folded, period - folded)


def _separable(x: Tensor, along_height: Tensor, along_width: Tensor) -> Tensor:
    """Per image b and channel: along_height[b]^T @ x[b, c] @ along_width[b], as two batched matmuls.

    A separable per-image linear filter (blur, block mean) whose (B, n, n) operators hold M[b, src, dst],
    the weight of input pixel src in output pixel dst along one axis.
    """
    if x.is_cuda and x.dtype != torch.float64:
        # GPUs may run float32 matmuls in TF32 (set_float32_matmul_precision("high")), whose rounding
        # would move pixels across NMI bins; float64 keeps the filter exact at negligible cost
        return _separable(x.double(), along_height.double(), along_width.double()).to(x.dtype)
    batch, _, _, width = x.shape
    filtered_rows = torch.bmm(x.reshape(batch, -1, width), along_width).view(x.shape)
    return torch.matmul(along_height.transpose(1, 2)[:, None], filtered_rows)


# Index tensors that depend only on shapes are built once per shape and device: on a GPU every small
# op costs a kernel launch, and the stage's host time is what limits a training step there.
@lru_cache(maxsize=32)
def _tap_positions(radius: int, size: int, device: torch.device) -> Tensor:
    """(1, (2R + 1) * size) flat positions src * size + dst in a (size, size) operator of the tap at
    each offset -R..R for each output pixel dst, with src reflected into the image."""
    dst = torch.arange(size, device=device)
    offsets = torch.arange(-radius, radius + 1, device=device)
    src = _reflect(dst[None, :] + offsets[:, None], size)  # (2R + 1, size)
    return (src * size + dst).reshape(1, -1)


def _blur_operator(taps: Tensor, size: int) -> Tensor:
    """(B, size, size) blur operators for _separable.

    ``taps`` (B, 2R + 1) holds each image's 1D kernel at offsets -R..R (zero outside its own kernel);
    the reflect padding is folded into M, so one matmul per axis is the padded 1D convolution.
    """
    batch, width = taps.shape
    positions = _tap_positions(width // 2, size, taps.device).expand(batch, -1)
    weights = taps[:, :, None].expand(batch, width, size).reshape(batch, -1)
    return taps.new_zeros(batch, size * size).scatter_add_(1, positions, weights).view(batch, size, size)


def _blur_kernel_size(sigma: Tensor, kernel_max: int) -> Tensor:
    """torchvision-style size 2 * int(4 sigma + 0.5) + 1, capped at kernel_max and kept odd."""
    size = (2 * (4 * sigma + 0.5).long() + 1).clamp(max=kernel_max)
    return size - (size % 2 == 0).long()


@lru_cache(maxsize=32)
def _blur_offsets(sigma_max: float, kernel_max: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Offsets -R..R of the widest kernel any level in [0, 1] can produce: a static shape, so no device sync."""
    max_radius = int(_blur_kernel_size(torch.tensor(sigma_max + 0.01, dtype=torch.float64), kernel_max)) // 2
    return torch.arange(-max_radius, max_radius + 1, device=device, dtype=dtype)


def blur(x: Tensor, level: Tensor, sigma_max: float = 50.0, kernel_max: int = 51) -> Tensor:
    """Gaussian blur with sigma = level * sigma_max + 0.01, as torchvision's gaussian_blur per image.

    Each image's normalized 1D kernel is zero-padded to the widest possible kernel; with reflect padding
    folded in, the separable blur becomes two batched matmuls (much faster than a grouped convolution
    with wide kernels on CPU, and exact: taps outside an image's own kernel are zero).
    """
    batch, _, height, width = x.shape
    sigma = wide_float(level) * sigma_max + 0.01
    radius = _blur_kernel_size(sigma, kernel_max) // 2
    offsets = _blur_offsets(sigma_max, kernel_max, x.device, x.dtype)
    pdf = torch.exp(-0.5 * (offsets / sigma.to(x.dtype)[:, None]).pow(2))
    pdf = torch.where(offsets.abs() <= radius[:, None], pdf, 0)
    taps = pdf / pdf.sum(dim=1, keepdim=True)
    along_width = _blur_operator(taps, width)
    along_height = along_width if height == width else _blur_operator(taps, height)
    return _separable(x, along_height, along_width)


def dropout(x: Tensor, level: Tensor, patch: int = 8, generator: torch.Generator | None = None) -> Tensor:
    """Keep floor(n_patches * (1 - level)) random patch x patch tiles per image and zero the rest."""
    batch, _, height, width = x.shape
    grid_rows, grid_cols = math.ceil(height / patch), math.ceil(width / patch)
    n_patches = grid_rows * grid_cols
    keep = (n_patches * (1 - wide_float(level))).floor().long()
    # a uniformly random subset of `keep` tiles: the tiles whose random key ranks below `keep`
    keys = torch.rand(batch, n_patches, generator=generator, device=x.device)
    rank = keys.argsort(dim=1).argsort(dim=1)
    kept = rank < keep[:, None]
    return torch.where(kept[:, _tile_of_pixel(height, width, patch, x.device)][:, None], x, 0)


@lru_cache(maxsize=32)
def _tile_of_pixel(height: int, width: int, patch: int, device: torch.device) -> Tensor:
    """(height, width) index of the patch x patch tile (row-major) that holds each pixel."""
    rows = torch.arange(height, device=device) // patch
    cols = torch.arange(width, device=device) // patch
    return rows[:, None] * math.ceil(width / patch) + cols[None, :]


def _block_mean_operator(block: Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """(B, size, size) operators for _separable: output pixel dst averages the pixels of its block."""
    index = torch.arange(size, device=block.device)
    block_index = index // block[:, None]  # (B, size)
    block_start = block_index * block[:, None]
    block_length = torch.minimum(block[:, None], size - block_start)  # edge blocks are shorter
    same_block = block_index[:, :, None] == block_index[:, None, :]
    return same_block.to(dtype) / block_length[:, None, :].to(dtype)


def mosaic(x: Tensor, level: Tensor, max_block: int = 32) -> Tensor:
    """Replace b x b blocks (b = max(1, int(max_block * (level + 0.001)^2)), tiled from the top-left,
    edge blocks smaller) by their per-channel mean.

    A block mean is separable (mean over the block's rows of the means over its columns), so it runs
    as two batched matmuls like the blur.
    """
    _, _, height, width = x.shape
    block = (max_block * (wide_float(level) + 0.001).pow(2)).long().clamp(min=1)
    along_width = _block_mean_operator(block, width, x.dtype)
    along_height = along_width if height == width else _block_mean_operator(block, height, x.dtype)
    return _separable(x, along_height, along_width)


@dataclass(frozen=True)
class Setting:
    """A numeric setting of a degradation: its function's keyword, the training default, the least valid value."""

    keyword: str
    default: float
    minimum: float


@dataclass(frozen=True)
class Degradation:
    """A registered degradation: the batched function, its settings by config name, and a plot title that
    may quote them (``{blur_sigma_max:g}``). The function is called as function(x, level, **settings),
    plus ``generator`` when it takes one."""

    function: Callable[..., Tensor]
    title: str
    settings: dict[str, Setting] = field(default_factory=dict)
    random: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "random", "generator" in inspect.signature(self.function).parameters)

    def __call__(self, x: Tensor, level: Tensor, generator: torch.Generator | None, settings: dict) -> Tensor:
        keywords = {setting.keyword: settings[name] for name, setting in self.settings.items()}
        if self.random:
            keywords["generator"] = generator
        return self.function(x, level, **keywords)


# the degradations in type-index order; the defaults are the training parameters
REGISTRY: dict[str, Degradation] = {
    "diffusion": Degradation(diffusion, "Diffusion noise (DDPM, t = 999·d)"),
    "blur": Degradation(blur, "Gaussian blur (σ = {blur_sigma_max:g}·d, kernel ≤ {blur_kernel_max})",
                        {"blur_sigma_max": Setting("sigma_max", 50.0, 0),
                         "blur_kernel_max": Setting("kernel_max", 51, 1)}),
    "dropout": Degradation(dropout, "Patch dropout ({dropout_patch}×{dropout_patch} patches, fraction d zeroed)",
                           {"dropout_patch": Setting("patch", 8, 1)}),
    "mosaic": Degradation(mosaic, "Mosaic (block side ⌊32·(d + 0.001)²⌋ px)"),
}
DEGRADATIONS = tuple(REGISTRY)
SETTINGS = {name: setting for degradation in REGISTRY.values() for name, setting in degradation.settings.items()}
DEFAULT_SETTINGS = {name: setting.default for name, setting in SETTINGS.items()}


def degradation_settings(**given: float) -> dict[str, float]:
    """Every registered setting: ``given`` over the training defaults, range-checked."""
    for name, value in given.items():
        if name not in SETTINGS:
            raise SettingError(name, value, f"is not a degradation setting; known: {', '.join(SETTINGS)}")
        check_number(name, value, SETTINGS[name].minimum)
    return {**DEFAULT_SETTINGS, **given}


def describe(name: str, settings: dict) -> str:
    """Title of a degradation and what its level d means, with ``settings`` quoted."""
    return REGISTRY[name].title.format(**settings)


def apply_degradations(
    x: Tensor, types: Tensor, level: Tensor, generator: torch.Generator | None = None,
    grouping: tuple[Tensor, list[int]] | None = None, **settings: float
) -> Tensor:
    """Degrade image i by DEGRADATIONS[types[i]] at level[i]; type -1 leaves it unchanged.

    ``settings`` override DEFAULT_SETTINGS. Random draws happen type by type in DEGRADATIONS order, each
    on that type's subset. ``grouping`` (order, sizes), when the caller knows it, says which images form
    each type's group: order[:sizes[0]] stay unchanged, the next sizes[1] get DEGRADATIONS[0], and so on.
    Without it the batch is sorted by type (a stable sort keeps each group in batch order), which costs
    one host sync to learn the group sizes.
    """
    unknown = settings.keys() - DEFAULT_SETTINGS.keys()
    if unknown:
        raise TypeError(f"apply_degradations() got unknown settings {sorted(unknown)}")
    settings = {**DEFAULT_SETTINGS, **settings}
    if grouping is None:
        order = types.argsort(stable=True)
        type_ids = torch.arange(-1, len(DEGRADATIONS), device=types.device)
        sizes = (types[:, None] == type_ids).sum(dim=0).tolist()
    else:
        order, sizes = grouping
    image_groups = x.index_select(0, order).split(sizes)
    level_groups = level.index_select(0, order).split(sizes)
    pieces = [image_groups[0]]  # type -1: unchanged
    for degradation, images, levels in zip(REGISTRY.values(), image_groups[1:], level_groups[1:]):
        pieces.append(degradation(images, levels, generator, settings) if images.shape[0] else images)
    return torch.empty_like(x).index_copy_(0, order, torch.cat(pieces))


SAMPLINGS = ("stratified", "iid")


@lru_cache(maxsize=64)
def _slot_types(sizes: tuple[int, ...], device: torch.device) -> Tensor:
    """Type index (-1 = unchanged) of each slot of a stratified batch: sizes[0] slots of -1, then sizes[1] of 0, ..."""
    return torch.repeat_interleave(torch.arange(-1, len(sizes) - 1), torch.tensor(sizes)).to(device)


class Degrader:
    """Draws a degradation type (uniform over ``types``) and a level d ~ U(0, 1) per image and applies it.

    ``probability`` is the chance that an image is degraded at all; the others get type -1 and level 0.
    An empty ``types`` disables degradation. ``settings`` are the registered degradations' settings
    (blur_sigma_max, ...), defaulting to the training parameters.

    ``sampling`` says how types are assigned within a batch:
    - ``iid``: each image draws its type independently (the reference); the per-type group sizes are
      random, so the device must report them to the host once per batch (a GPU sync).
    - ``stratified`` (default): every batch holds fixed counts, round(B * probability) degraded images
      split as evenly as possible over the types (the few left over go to types drawn at random), placed
      at random positions. Each image's type is still uniform over ``types`` and its level is drawn as
      before, so the distribution of (type, level, epsilon) over an epoch is the same; only the batch-to-batch
      fluctuation of the per-type counts is gone. The counts are known on the host: no sync, fixed shapes.
    """

    def __init__(self, types: Sequence[str] = DEGRADATIONS, probability: float = 1.0, sampling: str = "stratified",
                 **settings: float) -> None:
        if isinstance(types, str):  # a single name, e.g. from the command line augment.types=blur
            types = [types]
        types = tuple(dict.fromkeys(list(types)))  # list() also accepts OmegaConf's ListConfig
        unknown = [name for name in types if name not in DEGRADATIONS]
        if unknown:
            raise SettingError("types", list(types), f"may only list: {', '.join(DEGRADATIONS)}")
        check_number("probability", probability, 0, 1)
        check_choice("sampling", sampling, SAMPLINGS)
        self.types = types
        self.probability = probability
        self.sampling = sampling
        self.settings = degradation_settings(**settings)
        self.enabled = bool(types) and probability > 0
        self._type_indices = torch.tensor([DEGRADATIONS.index(name) for name in types], dtype=torch.long)

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value}" for name, value in self.settings.items())
        return (f"Degrader(types={list(self.types)}, probability={self.probability}, sampling={self.sampling!r}, "
                f"{settings})")

    def _stratified_sizes(self, batch_size: int, host_generator: torch.Generator | None) -> list[int]:
        """Group sizes [unchanged, then one per DEGRADATIONS entry] of a stratified batch."""
        degraded = round(batch_size * self.probability)
        base, left_over = divmod(degraded, len(self.types))
        sizes = [batch_size - degraded] + [0] * len(DEGRADATIONS)
        for index in self._type_indices.tolist():
            sizes[1 + index] = base
        for slot in torch.randperm(len(self.types), generator=host_generator)[:left_over].tolist():
            sizes[1 + int(self._type_indices[slot])] += 1
        return sizes

    def sample_grouped(
        self, batch_size: int, device: torch.device | str, generator: torch.Generator | None = None,
        host_generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, tuple[Tensor, list[int]] | None]:
        """(types (B,) long, -1 = not degraded; level (B,) in [0, 1); the grouping for apply_degradations or None).

        ``host_generator`` (a CPU generator) draws the host-side part of stratified sampling; it defaults
        to ``generator`` when that is a CPU generator.
        """
        device = torch.device(device)
        if not self.enabled:
            return (torch.full((batch_size,), -1, dtype=torch.long, device=device),
                    torch.zeros(batch_size, device=device), None)
        level = torch.rand(batch_size, generator=generator, device=device)
        if self.sampling == "stratified":
            if host_generator is None and generator is not None and generator.device.type == "cpu":
                host_generator = generator
            sizes = self._stratified_sizes(batch_size, host_generator)
            order = torch.randperm(batch_size, generator=generator, device=device)
            types = torch.empty(batch_size, dtype=torch.long, device=device).index_copy_(
                0, order, _slot_types(tuple(sizes), device))
            return types, level.masked_fill(types < 0, 0.0), (order, sizes)
        choice = torch.randint(len(self.types), (batch_size,), generator=generator, device=device)
        types = self._type_indices.to(device)[choice]
        if self.probability < 1:
            spared = torch.rand(batch_size, generator=generator, device=device) >= self.probability
            types = types.masked_fill(spared, -1)
            level = level.masked_fill(spared, 0.0)
        return types, level, None

    def sample(
        self, batch_size: int, device: torch.device | str, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """(types (B,) long, -1 = not degraded; level (B,) float in [0, 1))."""
        types, level, _ = self.sample_grouped(batch_size, device, generator)
        return types, level

    def __call__(
        self, x: Tensor, generator: torch.Generator | None = None, host_generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(degraded x, types, level) for a (B, C, H, W) batch in [0, 1]."""
        types, level, grouping = self.sample_grouped(x.shape[0], x.device, generator, host_generator)
        if not self.enabled:
            return x, types, level
        degraded = apply_degradations(x, types, level, generator, grouping, **self.settings)
        return degraded, types, level


def crop_flip(x: Tensor, padding: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """Per image: random crop of the input's size from the zero-padded image, then horizontal flip with p = 0.5.

    Same distribution as torchvision's RandomCrop(size, padding) + RandomHorizontalFlip(); works for
    uint8 and float batches.
    """
    batch, channels, height, width = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, batch, 1), generator=generator, device=x.device)
    flip = torch.rand(batch, 1, generator=generator, device=x.device) < 0.5
    rows = offsets[0] + torch.arange(height, device=x.device)  # (B, H), in padded coordinates
    cols = offsets[1] + torch.arange(width, device=x.device)
    cols = torch.where(flip, cols.flip(1), cols)
    padded = F.pad(x, (padding, padding, padding, padding))
    # one gather of flat pixel indices: 3-6x faster than advanced indexing with four index tensors
    index = (rows[:, :, None] * (width + 2 * padding) + cols[:, None, :]).view(batch, 1, -1)
    return padded.flatten(2).gather(2, index.expand(-1, channels, -1)).view(batch, channels, height, width)
