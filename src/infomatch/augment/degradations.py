"""The batched degradation functions of the `augment` group: diffusion noise, blur, patch dropout, mosaic.

Every function takes a (B, C, H, W) float batch in [0, 1] and a (B,) level in [0, 1] and treats the
whole batch at once, with no Python loop over images; per image it computes exactly what the
reference computes image by image.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from infomatch.utils.precision import wide_float


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
    t = _diffusion_step(level, timesteps)
    signal, noise_scale = _diffusion_schedule(timesteps, beta_start, beta_end, x.device, x.dtype)
    return _variance_preserving(x, signal[t], noise_scale[t], t == 0, generator)


def _diffusion_step(level: Tensor, timesteps: int) -> Tensor:
    return (wide_float(level) * (timesteps - 1)).long().clamp(0, timesteps - 1)


def diffusion_noise_share(level: Tensor, timesteps: int = 1000, beta_start: float = 1e-4,
                          beta_end: float = 0.02) -> Tensor:
    """1 / (1 + SNR) = 1 - abar_t at the step ``diffusion`` takes for ``level``, in the device's widest float."""
    level = wide_float(level)
    signal, _ = _diffusion_schedule(timesteps, beta_start, beta_end, level.device, level.dtype)
    return 1 - signal[_diffusion_step(level, timesteps)].pow(2)


def _variance_preserving(x: Tensor, signal: Tensor, noise_scale: Tensor, unchanged: Tensor,
                         generator: torch.Generator | None) -> Tensor:
    """(signal * (2x - 1) + noise_scale * noise + 1) / 2 clamped to [0, 1], per image; ``unchanged`` images kept."""
    noisy = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    # in place on the noise buffer
    noisy.mul_(noise_scale.view(-1, 1, 1, 1)).add_(signal.view(-1, 1, 1, 1) * (2 * x - 1)).add_(1).div_(2).clamp_(0, 1)
    return torch.where(unchanged.view(-1, 1, 1, 1), x, noisy)


def noise(x: Tensor, level: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mollification's noise (Heinonen et al., AISTATS 2025): cosine schedule, signal cos(pi d / 2), noise
    sin(pi d / 2), on the image scaled to [-1, 1] (theirs: the normalized image) and clamped back to [0, 1]."""
    angle = wide_float(level) * (math.pi / 2)
    return _variance_preserving(x, angle.cos().to(x.dtype), angle.sin().to(x.dtype), level == 0, generator)


def noise_share(level: Tensor) -> Tensor:
    """1 / (1 + SNR) = sin^2(pi d / 2) of ``noise`` at ``level``, in the device's widest float."""
    return torch.sin(wide_float(level) * (math.pi / 2)).pow(2)


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


@lru_cache(maxsize=32)
def _dct_matrix(size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(size, size) orthonormal DCT-II matrix C[k, n], so that C @ v is the DCT of v and C.T inverts it."""
    k = torch.arange(size, dtype=torch.float64)[:, None]
    n = torch.arange(size, dtype=torch.float64)[None, :]
    matrix = torch.cos(math.pi * (2 * n + 1) * k / (2 * size)) * math.sqrt(2 / size)
    matrix[0] /= math.sqrt(2)
    return matrix.to(dtype).to(device)


def _heat_operator(dissipation_time: Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """(B, size, size) operators C.T diag(exp(-f_k^2 tau)) C, f_k = pi k / size: heat flow along one axis."""
    dct = _dct_matrix(size, dissipation_time.device, dtype)
    frequencies = (math.pi * torch.arange(size, device=dissipation_time.device, dtype=dtype) / size).pow(2)
    decay = torch.exp(-frequencies[None, :] * dissipation_time[:, None].to(dtype))  # (B, size)
    return dct.T @ (decay[:, :, None] * dct)


def heat(x: Tensor, level: Tensor, scale_min: float = 0.3, scale_max: float = 32.0) -> Tensor:
    """Mollification's blur: heat dissipation (Rissanen et al. 2023), each DCT coefficient (k, l) damped by
    exp(-(f_k^2 + f_l^2) tau), tau = s^2 / 2, s = exp((1 - d) log scale_min + d log scale_max).

    The damping is separable, so per image it is one operator per axis (_separable); the DCT's mirrored
    boundary is that of the reference's DCT layer.
    """
    _, _, height, width = x.shape
    level = wide_float(level)
    scale = torch.exp((1 - level) * math.log(scale_min) + level * math.log(scale_max))
    dissipation_time = scale.pow(2) / 2
    along_width = _heat_operator(dissipation_time, width, x.dtype)
    along_height = along_width if height == width else _heat_operator(dissipation_time, height, x.dtype)
    return _separable(x, along_height, along_width)
