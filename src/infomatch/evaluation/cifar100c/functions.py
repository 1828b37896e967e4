"""CIFAR-10/100-C corruptions recomputed on the device, whole batches at once (no Python loop over images).

Each function follows the published generation procedure (Hendrycks & Dietterich 2019, ``make_cifar_c.py``
in github.com/hendrycks/robustness) with its CIFAR severity constants, which differ from ImageNet-C's.
It maps a uint8 batch (B, 3, H, W) to the uint8 batch the official files would hold: the float result
clipped to [0, 1], times 255, truncated (``np.uint8``), or rounded where the procedure goes through an 8-bit
codec (ImageMagick, PIL). Random draws come from ``generator`` in the order each docstring states, so a
seed fixes the images. Arithmetic is float64 (as the procedure's numpy), so truncation rarely differs.

Where the procedure calls other libraries, their algorithms are reproduced from their sources: ImageMagick's
MotionBlurImage (motion blur, snow; ImageMagick itself is not available to the tests), OpenCV's 3-tap
Gaussian and reflect-101 borders (defocus), PIL's fixed-point BOX resampling (pixelate, checked against PIL).
The elastic warp samples exactly where OpenCV rounds coordinates to 1/32 pixel.

Frost and spatter are not regenerated: frost needs the benchmark's frost photographs, and spatter
depends on OpenCV internals (Canny edges, distance transform, histogram equalization).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.io import decode_jpeg, encode_jpeg

from infomatch.data.stage import to_unit_range
from infomatch.utils.precision import wide_dtype

# severity 1..5 constants of make_cifar_c.py
GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)  # sigma
SHOT_NOISE = (500, 250, 100, 75, 50)  # photons per unit intensity
IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)  # salt-and-pepper fraction
SPECKLE_NOISE = (0.06, 0.10, 0.12, 0.16, 0.20)  # sigma of the multiplicative noise
GAUSSIAN_BLUR = (0.4, 0.6, 0.7, 0.8, 1.0)  # sigma
GLASS_BLUR = ((0.05, 1), (0.25, 1), (0.4, 1), (0.25, 2), (0.4, 2))  # (sigma, iterations); max_delta 1
DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))  # (disk radius, alias blur)
MOTION_BLUR: tuple[tuple[float, float], ...] = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))  # ImageMagick radius, sigma
ZOOM_BLUR = (7, 12, 16, 21, 26)  # zoom factors 1.00, 1.01, ... (np.arange(1, 1.06 / 1.11 / 1.16 / 1.21 / 1.26, 0.01))
FOG = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))  # (strength, plasma wibble decay)
BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to HSV value
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # factor around the per-channel mean
SATURATE = ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2))  # HSV saturation * a + b
JPEG_QUALITY = (80, 65, 58, 50, 40)
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # box-downscale factor
# (layer mean, layer std, layer zoom, threshold, blur radius, blur sigma, image weight)
SNOW = ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8))
GREY_WEIGHTS = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)  # OpenCV's RGB2GRAY
# (alpha, sigma, affine jitter) as fractions of the image size 32
ELASTIC = ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))
ELASTIC_SCALE = 32


def _unit(x: Tensor) -> Tensor:
    return to_unit_range(x, wide_dtype(x.device))


def _truncate(y: Tensor) -> Tensor:
    """np.uint8(np.clip(y, 0, 1) * 255): how the generation script stores float results."""
    return (y.clamp(0, 1) * 255).floor().to(torch.uint8)


def _round(y: Tensor) -> Tensor:
    """8-bit codecs (ImageMagick, PIL) round to the nearest level instead."""
    return (y.clamp(0, 1) * 255 + 0.5).floor().to(torch.uint8)


def _uniform(shape: tuple, generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def _fold(index: Tensor, size: int, mode: str) -> Tensor:
    """Indices outside [0, size) mapped inside: 'nearest' repeats the edge, 'reflect' mirrors with the edge
    repeated (scipy's 'reflect': d c b a | a b c d), 'mirror' without (scipy 'mirror', OpenCV REFLECT_101)."""
    if mode == "nearest":
        return index.clamp(0, size - 1)
    period = 2 * size if mode == "reflect" else 2 * (size - 1)
    folded = index.remainder(period)
    return torch.where(folded < size, folded, period - folded - (1 if mode == "reflect" else 0))


def _gaussian_taps(sigma: float, truncate: float) -> Tensor:
    """scipy.ndimage's Gaussian kernel: radius int(truncate * sigma + 0.5), normalized; sigma 0 is the identity."""
    if sigma == 0:
        return torch.ones(1, dtype=torch.float64)
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * offsets**2 / sigma**2)
    return taps / taps.sum()


@lru_cache(maxsize=64)
def _filter_matrix(sigma: float, truncate: float, size: int, mode: str, device: torch.device) -> Tensor:
    """(size, size) matrix M with M @ signal = the 1D Gaussian filter of the signal, boundary folded in."""
    taps = _gaussian_taps(sigma, truncate)
    radius = (len(taps) - 1) // 2
    out = torch.arange(size)[:, None].expand(size, len(taps))
    src = _fold(out + torch.arange(-radius, radius + 1)[None, :], size, mode)
    matrix = torch.zeros(size, size, dtype=torch.float64).index_put_((out, src), taps.expand(size, -1), accumulate=True)
    return matrix.to(device=device, dtype=wide_dtype(device))


def _gaussian_filter(x: Tensor, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> Tensor:
    """scipy.ndimage.gaussian_filter over the last two axes (skimage.filters.gaussian defaults: nearest, 4 sigma)."""
    rows = _filter_matrix(sigma, truncate, x.shape[-2], mode, x.device)
    columns = _filter_matrix(sigma, truncate, x.shape[-1], mode, x.device)
    return rows @ x @ columns.T


def _bilinear(image: Tensor, rows: Tensor, columns: Tensor, mode: str) -> Tensor:
    """image (B, C, H, W) sampled at per-image coordinates rows, columns (B, H, W), bilinearly,
    with the four neighbours' indices folded by ``mode``."""
    batch, channels, height, width = image.shape
    top, left = rows.floor(), columns.floor()
    down, right = rows - top, columns - left
    top, left = top.long(), left.long()
    flat = image.flatten(2)
    result = torch.zeros_like(image)
    for row_offset, row_weight in ((0, 1 - down), (1, down)):
        for column_offset, column_weight in ((0, 1 - right), (1, right)):
            index = _fold(top + row_offset, height, mode) * width + _fold(left + column_offset, width, mode)
            values = flat.gather(2, index.flatten(1)[:, None].expand(-1, channels, -1)).view_as(image)
            result += (row_weight * column_weight)[:, None] * values
    return result


def gaussian_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """x + N(0, sigma^2) per element; draws: one standard normal per element."""
    x = _unit(x)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return _truncate(x + GAUSSIAN_NOISE[severity - 1] * noise)


def shot_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Poisson(x * c) / c per element; draws: one Poisson variate per element."""
    c = SHOT_NOISE[severity - 1]
    return _truncate(torch.poisson(_unit(x) * c, generator=generator) / c)


def impulse_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """skimage's salt-and-pepper: each element flipped with probability c, to 1 or 0 with equal odds;
    draws: a uniform per element for the flip, then one for salt (< 0.5) or pepper."""
    x = _unit(x)
    flipped = _uniform(x.shape, generator, x) <= IMPULSE_NOISE[severity - 1]
    salted = _uniform(x.shape, generator, x) < 0.5
    return _truncate(torch.where(flipped, salted.to(x.dtype), x))


def speckle_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """x + x * N(0, c^2) per element; draws: one standard normal per element."""
    x = _unit(x)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return _truncate(x + x * SPECKLE_NOISE[severity - 1] * noise)


def gaussian_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """skimage Gaussian filter (edge repeated, 4 sigma) per channel; no draws."""
    return _truncate(_gaussian_filter(_unit(x), GAUSSIAN_BLUR[severity - 1]))


def glass_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Blur, store as uint8, locally shuffle, blur again.

    The published shuffle visits rows h and columns w from 31 down to 2 and 'swaps' pixel (h, w) with
    (h + dy, w + dx), dx, dy = randint(-1, 1) in {-1, 0}. On numpy pixel views that tuple swap is a copy:
    (h, w) takes the value of (h + dy, w + dx), which is still unvisited in that pass, so a pass is one gather
    of the values at its start. Draws per pass: randint(-1, 1) of shape (B, 2, H - 2, W - 2), (dx, dy) at
    (h - 2, w - 2).
    """
    sigma, iterations = GLASS_BLUR[severity - 1]
    levels = (_gaussian_filter(_unit(x), sigma) * 255).floor()
    batch, channels, height, width = x.shape
    rows = torch.arange(2, height, device=x.device)[:, None]
    columns = torch.arange(2, width, device=x.device)[None, :]
    inside = (rows * width + columns).flatten()
    for _ in range(iterations):
        dx, dy = torch.randint(-1, 1, (batch, 2, height - 2, width - 2), generator=generator, device=x.device).unbind(1)
        source = torch.arange(height * width, device=x.device).repeat(batch, 1)
        source[:, inside] = ((rows + dy) * width + columns + dx).flatten(1)
        levels = levels.flatten(2).gather(2, source[:, None].expand(-1, channels, -1)).view_as(levels)
    return _truncate(_gaussian_filter(levels / 255, sigma))


@lru_cache(maxsize=8)
def _defocus_kernel(radius: float, alias_blur: float) -> Tensor:
    """The published disk: pixels within ``radius`` on a 17 x 17 grid, normalized, smoothed by OpenCV's 3 x 3
    Gaussian (sigma ``alias_blur``), cropped to its nonzero support (the rest is exactly zero)."""
    grid = torch.arange(-8, 9, dtype=torch.float64)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius**2).double()
    disk /= disk.sum()
    taps = torch.exp(-torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64) / (2 * alias_blur**2))
    taps /= taps.sum()
    kernel = F.conv2d(disk[None, None], (taps[:, None] * taps[None, :])[None, None], padding=1)[0, 0]
    reach = int((kernel != 0).nonzero().sub(8).abs().max())
    return kernel[8 - reach:9 + reach, 8 - reach:9 + reach]


def defocus_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """OpenCV filter2D with the antialiased disk, reflect-101 borders; no draws."""
    x = _unit(x)
    kernel = _defocus_kernel(*DEFOCUS_BLUR[severity - 1]).to(device=x.device, dtype=x.dtype)
    reach = kernel.shape[0] // 2
    padded = F.pad(x, (reach,) * 4, mode="reflect")
    channels = x.shape[1]
    return _truncate(F.conv2d(padded, kernel.expand(channels, 1, -1, -1), groups=channels))


def _motion_blur(image: Tensor, radius: float, sigma: float, angle: Tensor) -> Tensor:
    """ImageMagick's MotionBlurImage(radius, sigma, angle) of (B, C, H, W) floats, angle (B, 1) in degrees.

    Width 2 * ceil(radius) + 1 taps with weights exp(-i^2 / (2 sigma^2)), i = 0.., normalized, read at
    offsets (ceil(i cos a - 0.5), ceil(i sin a - 0.5)) in (column, row), edge pixels repeated outside.
    """
    batch, channels, height, width = image.shape
    taps = 2 * math.ceil(radius) + 1
    steps = torch.arange(taps, device=image.device, dtype=image.dtype)
    weights = torch.exp(-steps**2 / (2 * sigma**2))
    weights /= weights.sum()
    # as ImageMagick computes them: i * (width * cos) / hypot(width * sin, width * cos)
    along_x, along_y = taps * torch.sin(torch.deg2rad(angle)), taps * torch.cos(torch.deg2rad(angle))
    length = torch.hypot(along_x, along_y)
    dx = torch.ceil(steps * along_y / length - 0.5).long()  # (B, taps)
    dy = torch.ceil(steps * along_x / length - 0.5).long()
    rows = torch.arange(height, device=image.device)[None, None, :, None]
    columns = torch.arange(width, device=image.device)[None, None, None, :]
    index = ((rows + dy[:, :, None, None]).clamp(0, height - 1) * width
             + (columns + dx[:, :, None, None]).clamp(0, width - 1))  # (B, taps, H, W)
    flat = image.flatten(2)
    blurred = torch.zeros_like(image)
    for tap in range(taps):
        gathered = flat.gather(2, index[:, tap].flatten(1)[:, None].expand(-1, channels, -1)).view_as(image)
        blurred += weights[tap] * gathered
    return blurred


def motion_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """ImageMagick motion blur at an angle ~ U(-45, 45) degrees per image; the PNG round trip rounds to
    8 bits. Draws: one uniform per image for the angle."""
    image = _unit(x)
    angle = _uniform((len(image), 1), generator, image) * 90 - 45
    return _round(_motion_blur(image, *MOTION_BLUR[severity - 1], angle))


def snow(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """A snow layer N(loc, scale) per pixel, zoomed (clipped_zoom), zeroed below a threshold, stored as an
    8-bit grey image, motion-blurred by ImageMagick at an angle ~ U(-135, -45) (8-bit result); the image is
    brightened towards max(x, 1.5 grey + 0.5) and the layer and its 180-degree rotation added.
    Draws: one standard normal per pixel (B, H, W), then one uniform per image for the angle."""
    loc, scale, zoom, threshold, radius, sigma, keep = SNOW[severity - 1]
    image = _unit(x)
    batch, _, height, width = image.shape
    layer = loc + scale * torch.randn((batch, 1, height, width), generator=generator, device=x.device,
                                      dtype=image.dtype)
    rows = _zoom_matrix(zoom, height).to(device=x.device, dtype=image.dtype)
    columns = _zoom_matrix(zoom, width).to(device=x.device, dtype=image.dtype)
    layer = rows @ layer @ columns.T
    layer = (torch.where(layer < threshold, 0, layer).clamp(0, 1) * 255).floor() / 255
    angle = _uniform((batch, 1), generator, image) * 90 - 135
    layer = (_motion_blur(layer, radius, sigma, angle).clamp(0, 1) * 255 + 0.5).floor() / 255
    grey = (GREY_WEIGHTS.to(device=x.device, dtype=image.dtype).view(1, 3, 1, 1) * image).sum(dim=1, keepdim=True)
    image = keep * image + (1 - keep) * torch.maximum(image, grey * 1.5 + 0.5)
    return _truncate(image + layer + layer.flip(-2, -1))


@lru_cache(maxsize=64)
def _zoom_matrix(factor: float, size: int) -> Tensor:
    """(size, size) matrix of the published clipped_zoom along one axis: crop the central ceil(size / factor)
    pixels, scipy.ndimage.zoom them (order 1, corner-aligned: output o reads input o * (n - 1) / (m - 1)),
    keep the central ``size``."""
    crop = math.ceil(size / factor)
    top = (size - crop) // 2
    zoomed = int(round(crop * factor))
    trim = (zoomed - size) // 2
    position = torch.arange(trim, trim + size, dtype=torch.float64) * (crop - 1) / (zoomed - 1)
    lower = position.floor().long().clamp(max=crop - 1)
    fraction = position - lower
    upper = (lower + 1).clamp(max=crop - 1)
    matrix = torch.zeros(size, size, dtype=torch.float64)
    rows = torch.arange(size)
    matrix.index_put_((rows, top + lower), 1 - fraction, accumulate=True)
    matrix.index_put_((rows, top + upper), fraction, accumulate=True)
    return matrix


@lru_cache(maxsize=16)
def _zoom_blur_operator(severity: int, height: int, width: int, device: torch.device) -> Tensor:
    """(H W, H W) matrix of the whole zoom blur on a flattened channel: one matmul per batch."""
    # np.arange(1, stop, 0.01) holds 1 + i * (1.01 - 1), not 1 + i * 0.01: at 1.25 this decides whether
    # a 26-pixel crop zooms to round(32.5) = 32 or 33 pixels
    factors = [1 + step * (1.01 - 1) for step in range(ZOOM_BLUR[severity - 1])]
    total = torch.eye(height * width, dtype=torch.float64)
    for factor in factors:
        total += torch.kron(_zoom_matrix(factor, height), _zoom_matrix(factor, width))
    return (total / (len(factors) + 1)).to(device=device, dtype=wide_dtype(device))


def zoom_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Mean of the image and its central zooms by 1.00, 1.01, ...; no draws."""
    x = _unit(x)
    operator = _zoom_blur_operator(severity, x.shape[2], x.shape[3], x.device)
    return _truncate((x.flatten(2) @ operator.T).view_as(x))


def _plasma(batch: int, decay: float, generator: torch.Generator, like: Tensor, size: int = 32) -> Tensor:
    """The published diamond-square plasma fractal, (B, size, size) in [0, 1]; size a power of two.

    Each step of side s fills the square centres, then the two diamond grids, with the mean of their four
    neighbours (wrapping around) / 4 + wibble * U(-wibble, wibble); wibble starts at 100 and is divided by
    ``decay`` per step. Draws per step: uniforms of shape (B, size / s, size / s) for centres, (row 0, column
    s / 2) diamonds, (row s / 2, column 0) diamonds.
    """
    field = torch.zeros(batch, size, size, device=like.device, dtype=like.dtype)
    step, wibble = size, 100.0
    while step >= 2:
        half, cells = step // 2, size // step

        def jitter(wibble: float = wibble, cells: int = cells) -> Tensor:
            return wibble * wibble * (2 * _uniform((batch, cells, cells), generator, like) - 1)

        corners = field[:, ::step, ::step]
        squares = corners + corners.roll(-1, 1)
        field[:, half::step, half::step] = (squares + squares.roll(-1, 2)) / 4 + jitter()
        centres, corners = field[:, half::step, half::step], field[:, ::step, ::step]
        field[:, ::step, half::step] = (centres + centres.roll(1, 1) + corners + corners.roll(-1, 2)) / 4 + jitter()
        field[:, half::step, ::step] = (centres + centres.roll(1, 2) + corners + corners.roll(-1, 1)) / 4 + jitter()
        step //= 2
        wibble /= decay
    field -= field.amin(dim=(1, 2), keepdim=True)
    return field / field.amax(dim=(1, 2), keepdim=True)


def fog(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """(x + s * plasma) * max / (max + s), max over the whole clean image; draws: the plasma's."""
    strength, decay = FOG[severity - 1]
    x = _unit(x)
    brightest = x.amax(dim=(1, 2, 3), keepdim=True)
    plasma = _plasma(len(x), decay, generator, x)[:, None]
    return _truncate((x + strength * plasma) * brightest / (brightest + strength))


def _rgb_to_hsv(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """skimage.color.rgb2hsv on (B, 3, H, W)."""
    red, green, blue = x.unbind(1)
    value = x.amax(dim=1)
    delta = value - x.amin(dim=1)
    flat = delta == 0
    safe = torch.where(flat, torch.ones_like(delta), delta)
    saturation = torch.where(flat, torch.zeros_like(delta), delta / torch.where(value == 0, 1, value))
    hue = torch.where(blue == value, 4 + (red - green) / safe,
                      torch.where(green == value, 2 + (blue - red) / safe, (green - blue) / safe))
    hue = torch.where(flat, torch.zeros_like(hue), (hue / 6).remainder(1))
    return hue, saturation, value


def _hsv_to_rgb(hue: Tensor, saturation: Tensor, value: Tensor) -> Tensor:
    """skimage.color.hsv2rgb, back to (B, 3, H, W)."""
    sector = (hue * 6).floor()
    fraction = hue * 6 - sector
    sector = sector.long().remainder(6)
    p = value * (1 - saturation)
    q = value * (1 - fraction * saturation)
    t = value * (1 - (1 - fraction) * saturation)
    # per sector, which of (v, q, p, t) each of red, green, blue takes
    table = torch.tensor([[0, 3, 2], [1, 0, 2], [2, 0, 3], [2, 1, 0], [3, 2, 0], [0, 2, 1]], device=hue.device)
    candidates = torch.stack([value, q, p, t], dim=1)  # (B, 4, H, W)
    return candidates.gather(1, table[sector].permute(0, 3, 1, 2))


def brightness(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """HSV value + c, clipped; no draws."""
    hue, saturation, value = _rgb_to_hsv(_unit(x))
    return _truncate(_hsv_to_rgb(hue, saturation, (value + BRIGHTNESS[severity - 1]).clamp(0, 1)))


def saturate(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """HSV saturation * a + b, clipped; no draws."""
    scale, shift = SATURATE[severity - 1]
    hue, saturation, value = _rgb_to_hsv(_unit(x))
    return _truncate(_hsv_to_rgb(hue, (saturation * scale + shift).clamp(0, 1), value))


def contrast(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """(x - m) * c + m with m the per-image, per-channel mean; no draws."""
    x = _unit(x)
    mean = x.mean(dim=(2, 3), keepdim=True)
    return _truncate((x - mean) * CONTRAST[severity - 1] + mean)


def jpeg_compression(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """JPEG at the CIFAR quality through libjpeg on the CPU (torchvision's batched encode/decode; the
    same bytes as PIL's default save), as the one step that leaves the device; no draws."""
    quality = JPEG_QUALITY[severity - 1]
    decoded = decode_jpeg(encode_jpeg(list(x.cpu()), quality=quality))
    return torch.stack(decoded).to(x.device)


@lru_cache(maxsize=16)
def _pil_box_matrix(in_size: int, out_size: int) -> Tensor:
    """PIL's BOX resampling along one axis as (out, in) fixed-point coefficients (22 fraction bits)."""
    scale = in_size / out_size
    support = 0.5 * max(scale, 1.0)
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), in_size)
        weights = torch.tensor([1.0 if -0.5 < (pixel - centre + 0.5) / max(scale, 1.0) <= 0.5 else 0.0
                                for pixel in range(first, last)], dtype=torch.float64)
        matrix[out, first:last] = torch.floor(0.5 + weights / weights.sum() * (1 << 22))
    return matrix


def _pil_box_resize(levels: Tensor, height: int, width: int) -> Tensor:
    """PIL Image.resize(BOX) of 8-bit levels: horizontal pass, then vertical, each rounded to 8 bits."""
    device, dtype = levels.device, wide_dtype(levels.device)
    horizontal = _pil_box_matrix(levels.shape[-1], width).to(device=device, dtype=dtype)
    levels = ((levels @ horizontal.T + (1 << 21)) / (1 << 22)).floor().clamp(0, 255)
    vertical = _pil_box_matrix(levels.shape[-2], height).to(device=device, dtype=dtype)
    return ((vertical @ levels + (1 << 21)) / (1 << 22)).floor().clamp(0, 255)


def pixelate(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """PIL BOX resize to int(32 c) pixels and back; no draws."""
    height, width = x.shape[-2:]
    small = int(height * PIXELATE[severity - 1]), int(width * PIXELATE[severity - 1])
    levels = _pil_box_resize(x.to(wide_dtype(x.device)), *small)
    return _pil_box_resize(levels, height, width).to(torch.uint8)


def elastic_transform(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """A random affine warp (OpenCV warpAffine, bilinear, reflect-101 borders) of three fixed points jittered
    by U(-affine, affine) pixels, then a smooth random displacement field (U(-1, 1) per pixel, Gaussian
    sigma, reflect, 3 sigma, times alpha) sampled bilinearly (scipy map_coordinates, mode 'reflect').

    Draws: uniforms (B, 3, 2) for the point jitter, then (B, H, W) for the column and (B, H, W) for the
    row displacement. OpenCV rounds the warp coordinates to 1/32 pixel; here they are exact.
    """
    alpha, sigma, affine = (value * ELASTIC_SCALE for value in ELASTIC[severity - 1])
    image = _unit(x)
    batch, _, height, width = image.shape
    centre, reach = height // 2, min(height, width) // 3
    # (x, y) = (column, row) points, as OpenCV takes them; the jitter is float32 in the procedure
    source = torch.tensor([[centre + reach, centre + reach], [centre + reach, centre - reach],
                           [centre - reach, centre - reach]], device=x.device, dtype=image.dtype)
    jitter = (affine * (2 * _uniform((batch, 3, 2), generator, image) - 1)).float().to(image.dtype)
    target = source + jitter
    # dst = A @ (x, y) + t maps the three points; each output pixel reads the source at A^-1 (p - t)
    homogeneous = torch.cat([source, torch.ones(3, 1, device=x.device, dtype=image.dtype)], dim=1)
    solution = torch.linalg.solve(homogeneous, target)  # (B, 3, 2): rows A^T and t
    linear, shift = solution[:, :2].transpose(1, 2), solution[:, 2]
    rows, columns = torch.meshgrid(torch.arange(height, device=x.device, dtype=image.dtype),
                                   torch.arange(width, device=x.device, dtype=image.dtype), indexing="ij")
    points = torch.stack([columns, rows], dim=-1)[None] - shift[:, None, None]  # (B, H, W, 2)
    read = torch.einsum("bij,bhwj->bhwi", torch.linalg.inv(linear), points)
    warped = _bilinear(image, read[..., 1], read[..., 0], "mirror")

    def displacement() -> Tensor:
        field = 2 * _uniform((batch, height, width), generator, image) - 1
        return _gaussian_filter(field, sigma, mode="reflect", truncate=3.0) * alpha

    dx = displacement()
    dy = displacement()
    return _truncate(_bilinear(warped, rows + dy, columns + dx, "reflect"))


Corruption = Callable[[Tensor, int, torch.Generator], Tensor]

# name -> function, in the benchmark's order; the 15 benchmark corruptions, then the 4 extra ones
BENCHMARK = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
             "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
             "jpeg_compression")
EXTRA = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL = BENCHMARK + EXTRA
CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur, "zoom_blur": zoom_blur,
    "snow": snow, "fog": fog, "brightness": brightness, "contrast": contrast, "elastic_transform": elastic_transform,
    "pixelate": pixelate, "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise, "gaussian_blur": gaussian_blur, "saturate": saturate,
}
NOT_REGENERATED = tuple(name for name in ALL if name not in CORRUPTIONS)
# corruptions of the same kind as the training degradations (diffusion noise, blur, mosaic)
RESEMBLE_TRAINING = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur",
                     "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur", "pixelate")
