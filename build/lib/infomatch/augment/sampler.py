"""The per-image sampler of (degradation type, level): ``Degrader``, the `augment` group's class."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

from infomatch.augment.registry import DEGRADATIONS, apply_degradations, degradation_settings
from infomatch.utils.checks import SettingError, check_choice, check_number

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
