"""The per-image sampler of (degradation type, level): ``Degrader``, the `augment` group's class."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

from infomatch.augment.registry import (
    DEGRADATIONS,
    REFERENCE_DEGRADATIONS,
    apply_degradations,
    degradation_settings,
)
from infomatch.utils.checks import SettingError, check_choice, check_number
from infomatch.utils.distributions import sample_beta

SAMPLINGS = ("stratified", "iid")
LEVEL_DISTRIBUTIONS = ("uniform", "beta")


@lru_cache(maxsize=64)
def _slot_types(sizes: tuple[int, ...], device: torch.device) -> Tensor:
    """Type index (-1 = unchanged) of each slot of a stratified batch: sizes[0] slots of -1, then sizes[1] of 0, ..."""
    return torch.repeat_interleave(torch.arange(-1, len(sizes) - 1), torch.tensor(sizes)).to(device)


class Degrader:
    """Draws a degradation type (uniform over ``types``) and a level d per image and applies it.

    ``level_distribution``: ``uniform`` d ~ U(0, 1) (the reference), or ``beta`` d ~ Beta(level_a, level_b), which
    Mollification (Heinonen et al., AISTATS 2025) draws with a = 1, b = 2: mild levels more often.

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

    def __init__(self, types: Sequence[str] = REFERENCE_DEGRADATIONS, probability: float = 1.0,
                 sampling: str = "stratified", level_distribution: str = "uniform", level_a: float = 1.0,
                 level_b: float = 2.0, **settings: float) -> None:
        if isinstance(types, str):  # a single name, e.g. from the command line augment.types=blur
            types = [types]
        types = tuple(dict.fromkeys(list(types)))  # list() also accepts OmegaConf's ListConfig
        unknown = [name for name in types if name not in DEGRADATIONS]
        if unknown:
            raise SettingError("types", list(types), f"may only list: {', '.join(DEGRADATIONS)}")
        check_number("probability", probability, 0, 1)
        check_choice("sampling", sampling, SAMPLINGS)
        check_choice("level_distribution", level_distribution, LEVEL_DISTRIBUTIONS)
        check_number("level_a", level_a, 0, low_open=True)
        check_number("level_b", level_b, 0, low_open=True)
        self.types = types
        self.probability = probability
        self.sampling = sampling
        self.level_distribution, self.level_a, self.level_b = level_distribution, level_a, level_b
        self.settings = degradation_settings(**settings)
        self.enabled = bool(types) and probability > 0
        self._type_indices = torch.tensor([DEGRADATIONS.index(name) for name in types], dtype=torch.long)

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value}" for name, value in self.settings.items())
        levels = ("" if self.level_distribution == "uniform"
                  else f"level_distribution='beta', level_a={self.level_a}, level_b={self.level_b}, ")
        return (f"Degrader(types={list(self.types)}, probability={self.probability}, sampling={self.sampling!r}, "
                f"{levels}{settings})")

    def sample_levels(self, batch_size: int, device: torch.device, generator: torch.Generator | None = None,
                      host_generator: torch.Generator | None = None) -> Tensor:
        """(B,) levels in [0, 1] under ``level_distribution``; Beta draws come from ``host_generator`` when given
        (their rejection loop would sync a GPU at every round)."""
        if self.level_distribution == "uniform":
            return torch.rand(batch_size, generator=generator, device=device)
        source = host_generator if host_generator is not None else generator
        source_device = source.device if source is not None else device
        levels = sample_beta(self.level_a, batch_size, source, source_device, beta=self.level_b)
        return levels.to(device=device, dtype=torch.get_default_dtype())

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
        if host_generator is None and generator is not None and generator.device.type == "cpu":
            host_generator = generator
        level = self.sample_levels(batch_size, device, generator, host_generator)
        if self.sampling == "stratified":
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
