"""The AutoAugment family as batched policies: each image draws its own ops and magnitudes.

Op sets, magnitude bins and draws follow torchvision 0.29's ``transforms.autoaugment`` (itself following the
papers): TrivialAugmentWide (Müller & Hutter, ICCV 2021), RandAugment (Cubuk et al., CVPR-W 2020), AutoAugment's
CIFAR-10 policy (Cubuk et al., CVPR 2019) and AugMix (Hendrycks et al., ICLR 2020). ``sample`` returns the
draws, ``apply`` runs them, so tests can replay a draw image by image through torchvision.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from infomatch.base_augment.ops import IDENTITY, INTERPOLATIONS, OPS, apply_ops
from infomatch.utils.checks import check_choice, check_integer, check_number, require

Step = tuple[Tensor, Tensor]  # (op index into OPS, magnitude), each (B,)


@dataclass(frozen=True)
class OpSpace:
    """A policy's ops with their magnitude bins: ``magnitudes`` (ops, bins), zero for ops without one;
    ``op_indices`` each op's index into OPS. ``on(device)`` is the same space on ``device``."""

    names: tuple[str, ...]
    magnitudes: Tensor
    signed: Tensor
    op_indices: Tensor

    @classmethod
    def build(cls, space: dict[str, tuple[Tensor | None, bool]], bins: int) -> OpSpace:
        rows = [values.float() if values is not None else torch.zeros(bins) for values, _ in space.values()]
        return cls(tuple(space), torch.stack(rows), torch.tensor([signed for _, signed in space.values()]),
                   torch.tensor([OPS.index(name) for name in space]))

    def on(self, device: torch.device) -> OpSpace:
        return OpSpace(self.names, self.magnitudes.to(device), self.signed.to(device), self.op_indices.to(device))

    def step(self, slot: Tensor, bin_index: Tensor, generator: torch.Generator | None) -> Step:
        """(OPS index, magnitude) of op ``slot`` of this space at ``bin_index``, negated at random when signed;
        the space must be on ``slot``'s device."""
        magnitude = self.magnitudes[slot, bin_index]
        negate = self.signed[slot] & (torch.randint(2, slot.shape, generator=generator, device=slot.device) == 1)
        return self.op_indices[slot], torch.where(negate, -magnitude, magnitude)


def _geometric_and_colour(bins: int, shear: float, translate_x: float, translate_y: float, rotate: float,
                          enhance: float, posterize_bits: int) -> dict[str, tuple[Tensor | None, bool]]:
    """torchvision's shared op table: linear bins from 0 to each maximum; posterize from 8 bits down."""
    return {
        "shear_x": (torch.linspace(0.0, shear, bins), True),
        "shear_y": (torch.linspace(0.0, shear, bins), True),
        "translate_x": (torch.linspace(0.0, translate_x, bins), True),
        "translate_y": (torch.linspace(0.0, translate_y, bins), True),
        "rotate": (torch.linspace(0.0, rotate, bins), True),
        "brightness": (torch.linspace(0.0, enhance, bins), True),
        "color": (torch.linspace(0.0, enhance, bins), True),
        "contrast": (torch.linspace(0.0, enhance, bins), True),
        "sharpness": (torch.linspace(0.0, enhance, bins), True),
        "posterize": (8 - (torch.arange(bins) / ((bins - 1) / posterize_bits)).round().int(), False),
        "solarize": (torch.linspace(255.0, 0.0, bins), False),
        "autocontrast": (None, False),
        "equalize": (None, False),
    }


class Policy:
    """A policy draws ``steps`` per image and applies them in order; uint8 (B, C, H, W) in and out."""

    interpolation = "nearest"

    def space(self, height: int, width: int) -> OpSpace:
        raise NotImplementedError

    def space_on(self, height: int, width: int, device: torch.device) -> OpSpace:
        """``space(height, width)`` on ``device``, built once per (height, width, device): on a GPU each small
        tensor built or copied per batch costs a launch or a transfer."""
        cache = self.__dict__.setdefault("_spaces", {})
        key = (height, width, torch.device(device))
        if key not in cache:
            cache[key] = self.space(height, width).on(device)
        return cache[key]

    def sample(self, batch_size: int, height: int, width: int, generator: torch.Generator | None,
               device: torch.device) -> list[Step]:
        raise NotImplementedError

    def apply(self, images: Tensor, steps: list[Step]) -> Tensor:
        for op, magnitude in steps:
            images = apply_ops(images, op, magnitude, self.interpolation)
        return images

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        batch, _, height, width = images.shape
        return self.apply(images, self.sample(batch, height, width, generator, images.device))


class TrivialAugment(Policy):
    """TrivialAugmentWide: one op of 14 and one of ``bins`` magnitudes, both uniform, per image."""

    def __init__(self, bins: int = 31) -> None:
        check_integer("bins", bins, 2)
        self.bins = bins
        space = {"identity": (None, False),
                 **_geometric_and_colour(bins, 0.99, 32.0, 32.0, 135.0, 0.99, posterize_bits=6)}
        self._space = OpSpace.build(space, bins)

    def sample(self, batch_size, height, width, generator, device):
        space = self.space_on(height, width, device)
        slot = torch.randint(len(space.names), (batch_size,), generator=generator, device=device)
        bin_index = torch.randint(self.bins, (batch_size,), generator=generator, device=device)
        return [space.step(slot, bin_index, generator)]

    def space(self, height: int, width: int) -> OpSpace:
        return self._space  # TrivialAugmentWide's translations are 32 px whatever the image size, as torchvision


class RandAugment(Policy):
    """``num_ops`` ops in a row, each uniform over 14, all at magnitude bin ``magnitude`` of ``bins``."""

    def __init__(self, num_ops: int = 2, magnitude: int = 9, bins: int = 31) -> None:
        check_integer("num_ops", num_ops, 1)
        check_integer("bins", bins, 2)
        check_integer("magnitude", magnitude, 0, bins - 1)
        self.num_ops, self.magnitude, self.bins = num_ops, magnitude, bins

    def space(self, height: int, width: int) -> OpSpace:
        space = {"identity": (None, False), **_geometric_and_colour(
            self.bins, 0.3, 150.0 / 331.0 * width, 150.0 / 331.0 * height, 30.0, 0.9, posterize_bits=4)}
        return OpSpace.build(space, self.bins)

    def sample(self, batch_size, height, width, generator, device):
        space = self.space_on(height, width, device)
        steps = []
        for _ in range(self.num_ops):
            slot = torch.randint(len(space.names), (batch_size,), generator=generator, device=device)
            steps.append(space.step(slot, torch.full_like(slot, self.magnitude), generator))
        return steps


# AutoAugment's CIFAR-10 policy: 25 sub-policies of two (op, probability, magnitude bin of 10) each
CIFAR10_POLICY = (
    (("invert", 0.1, None), ("contrast", 0.2, 6)), (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)), (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.5, None), ("equalize", 0.9, None)), (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)), (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, None), ("equalize", 0.5, None)), (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translate_x", 0.5, 8)), (("equalize", 0.3, None), ("autocontrast", 0.4, None)),
    (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)), (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, None)), (("equalize", 0.2, None), ("autocontrast", 0.6, None)),
    (("equalize", 0.2, None), ("equalize", 0.6, None)), (("color", 0.9, 9), ("equalize", 0.6, None)),
    (("autocontrast", 0.8, None), ("solarize", 0.2, 8)), (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("autocontrast", 0.9, None)), (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    (("autocontrast", 0.9, None), ("solarize", 0.8, 3)), (("equalize", 0.8, None), ("invert", 0.1, None)),
    (("translate_y", 0.7, 9), ("autocontrast", 0.9, None)),
)


class AutoAugment(Policy):
    """AutoAugment with the CIFAR-10 policy: a sub-policy drawn per image, each of its two ops applied with
    its probability."""

    POLICIES = {"cifar10": CIFAR10_POLICY}

    def __init__(self, policy: str = "cifar10") -> None:
        check_choice("policy", policy, tuple(self.POLICIES))
        self.policy = policy

    def space(self, height: int, width: int) -> OpSpace:
        space = {**_geometric_and_colour(10, 0.3, 150.0 / 331.0 * width, 150.0 / 331.0 * height, 30.0, 0.9,
                                         posterize_bits=4), "invert": (None, False)}
        return OpSpace.build(space, 10)

    def _sub_policies(self, space: OpSpace, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """(2, sub-policies) op slots, probabilities and magnitude bins of the table, once per device."""
        cache = self.__dict__.setdefault("_tables", {})
        device = torch.device(device)
        if device not in cache:
            table = self.POLICIES[self.policy]
            cache[device] = tuple(torch.tensor([[column(sub[position]) for sub in table] for position in range(2)],
                                               device=device)
                                  for column in (lambda op: space.names.index(op[0]), lambda op: op[1],
                                                 lambda op: op[2] or 0))
        return cache[device]

    def sample(self, batch_size, height, width, generator, device):
        space = self.space_on(height, width, device)
        table = self.POLICIES[self.policy]
        chosen = torch.randint(len(table), (batch_size,), generator=generator, device=device)
        applied = torch.rand(batch_size, 2, generator=generator, device=device)
        slots, probabilities, bins = self._sub_policies(space, device)
        steps = []
        for position in range(2):
            slot, probability = slots[position][chosen], probabilities[position][chosen]
            bin_index = bins[position][chosen]
            op, magnitude = space.step(slot, bin_index, generator)
            skipped = applied[:, position] > probability
            steps.append((op.masked_fill(skipped, IDENTITY), magnitude.masked_fill(skipped, 0.0)))
        return steps


class AugMix(Policy):
    """AugMix: ``width`` chains of 1-3 ops (``depth`` -1) or ``depth`` ops, mixed with Dirichlet(alpha) weights,
    then mixed with the original image with a Beta(alpha, alpha) weight.

    Each op's magnitude is one of its first ``severity`` bins of 10, uniformly (as torchvision does); bilinear
    resampling as torchvision's default for AugMix.
    """

    interpolation = "bilinear"

    def __init__(self, severity: int = 3, width: int = 3, depth: int = -1, alpha: float = 1.0,
                 all_ops: bool = True, interpolation: str = "bilinear") -> None:
        check_integer("severity", severity, 1, 10)
        check_integer("width", width, 1)
        check_integer("depth", depth, -1)
        require("depth", depth, depth != 0, "must be -1 (1 to 3 ops, drawn per chain) or a number of ops >= 1")
        check_number("alpha", alpha, 0, low_open=True)
        check_choice("interpolation", interpolation, INTERPOLATIONS)
        self.severity, self.width, self.depth, self.alpha = severity, width, depth, alpha
        self.all_ops, self.interpolation = all_ops, interpolation

    def space(self, height: int, width: int) -> OpSpace:
        space = _geometric_and_colour(10, 0.3, width / 3.0, height / 3.0, 30.0, 0.9, posterize_bits=4)
        space["posterize"] = (4 - (torch.arange(10) / (9 / 4)).round().int(), False)
        if not self.all_ops:
            space = {name: value for name, value in space.items()
                     if name not in ("brightness", "color", "contrast", "sharpness")}
        return OpSpace.build(space, 10)

    def sample_mix(self, batch_size, height, width, generator, device) -> tuple[list[list[Step]], Tensor]:
        """(chains: ``width`` lists of steps, weights (B, 1 + width): the original's, then each chain's)."""
        space = self.space_on(height, width, device)
        original = torch._sample_dirichlet(torch.full((batch_size, 2), float(self.alpha), device=device),
                                           generator=generator)
        chain_weights = torch._sample_dirichlet(torch.full((batch_size, self.width), float(self.alpha),
                                                           device=device), generator=generator)
        weights = torch.cat([original[:, :1], chain_weights * original[:, 1:]], dim=1)
        chains = []
        for _ in range(self.width):
            if self.depth > 0:
                depth = torch.full((batch_size,), self.depth, device=device)
            else:
                depth = torch.randint(1, 4, (batch_size,), generator=generator, device=device)
            steps = []
            for position in range(int(self.depth) if self.depth > 0 else 3):
                slot = torch.randint(len(space.names), (batch_size,), generator=generator, device=device)
                bin_index = torch.randint(self.severity, (batch_size,), generator=generator, device=device)
                op, magnitude = space.step(slot, bin_index, generator)
                beyond = position >= depth  # this chain is shorter: identity
                steps.append((op.masked_fill(beyond, IDENTITY), magnitude.masked_fill(beyond, 0.0)))
            chains.append(steps)
        return chains, weights

    def mix(self, images: Tensor, chains: list[list[Step]], weights: Tensor) -> Tensor:
        mixed = weights[:, 0].view(-1, 1, 1, 1) * images
        for index, steps in enumerate(chains, start=1):
            mixed += weights[:, index].view(-1, 1, 1, 1) * self.apply(images, steps)
        return mixed.to(torch.uint8)  # truncated, as torchvision does

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        batch, _, height, width = images.shape
        return self.mix(images, *self.sample_mix(batch, height, width, generator, images.device))


POLICIES = {"trivialaugment": TrivialAugment, "randaugment": RandAugment, "autoaugment": AutoAugment,
            "augmix": AugMix}
