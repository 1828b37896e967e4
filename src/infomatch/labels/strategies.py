"""Label strategies (the `labels` config group): hard one-hot labels, fixed label smoothing, Information Matching
(IM) and its controls.

Each strategy is called as ``strategy(batch, num_classes) -> (targets, epsilon)`` with the
``TrainingBatch`` of the data stage (clean and degraded images, labels, each sample's degradation
type and level); ``targets`` is (B, K) and ``epsilon`` (B,) the smoothing each sample received.

Strategies that need numbers measured on the training data before training (``matched``'s epsilon,
``schedule``'s table, the chance NMI of ``measure=nmi_adjusted``) have a ``fit(clean, degrader, generator)``
method; train.py calls it on a fixed sample of training images before the first step. It returns the
estimates as plain numbers and lists, which metrics.json and the checkpoints keep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from infomatch.augment import DEGRADATIONS, Degrader, apply_degradations
from infomatch.augment.degradations import diffusion_noise_share, noise_share
from infomatch.data.batch import TrainingBatch
from infomatch.labels.measures import MEASURES, adjusted_nmi, ssim
from infomatch.labels.nmi import chance_nmi, check_bins, nmi
from infomatch.utils.checks import CallOrderError, SettingError, check_choice, check_integer, check_number, require
from infomatch.utils.console import progress
from infomatch.utils.precision import wide_float

SPREADS = ("all", "others")


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    return F.one_hot(labels, num_classes).float()


def smooth(labels: Tensor, num_classes: int, epsilon: float | Tensor, spread: str = "all") -> Tensor:
    """Smoothed targets with a scalar or per-sample (B,) epsilon.

    all:    y = (1 - eps) * onehot + eps / K           (reference code)
    others: y_c = 1 - eps, y_k = eps / (K - 1), k != c  (reference paper)
    """
    check_choice("spread", spread, SPREADS)
    hot = one_hot(labels, num_classes)
    eps = torch.as_tensor(epsilon, dtype=hot.dtype, device=hot.device).reshape(-1, 1)
    if spread == "all":
        return (1 - eps) * hot + eps / num_classes
    return (1 - eps) * hot + eps / (num_classes - 1) * (1 - hot)


def im_epsilon(nmi_values: Tensor, eps_max: float = 0.9) -> Tensor:
    """IM smoothing: the information the degradation destroyed, clamp(1 - NMI, 0, eps_max)."""
    return (1 - nmi_values).clamp(0, eps_max)


@dataclass
class HardLabels:
    name: ClassVar[str] = "hard"

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        return one_hot(batch.classes, num_classes), torch.zeros(len(batch), device=batch.classes.device)


@dataclass
class LabelSmoothing:
    """The same epsilon for every sample."""

    epsilon: float = 0.1
    spread: str = "all"
    name: ClassVar[str] = "ls"

    def __post_init__(self) -> None:
        check_number("epsilon", self.epsilon, 0, 1, high_open=True)
        check_choice("spread", self.spread, SPREADS)

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        epsilon = torch.full((len(batch),), float(self.epsilon), device=batch.classes.device)
        return smooth(batch.classes, num_classes, epsilon, self.spread), epsilon


@dataclass
class LevelSmoothing:
    """epsilon = eps_max * d, the level the sampler drew, whatever the degradation type (0 when not degraded)."""

    eps_max: float = 0.9
    spread: str = "all"
    name: ClassVar[str] = "level"

    def __post_init__(self) -> None:
        check_number("eps_max", self.eps_max, 0, 1)
        check_choice("spread", self.spread, SPREADS)

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        epsilon = torch.where(batch.degradation >= 0, self.eps_max * batch.level.float(), 0.0)
        return smooth(batch.classes, num_classes, epsilon, self.spread), epsilon


@dataclass
class MeasuredSmoothing:
    """Settings and epsilon of the strategies built on a similarity measure (IM, matched, schedule).

    ``chance_nmi`` is E0 of ``measure=nmi_adjusted``; None: estimated by ``fit`` on the training sample.
    """

    eps_max: float = 0.9
    bins: int = 64
    measure: str = "nmi"
    chance_nmi: float | None = None
    spread: str = "all"

    def __post_init__(self) -> None:
        check_number("eps_max", self.eps_max, 0, 1)
        check_bins(self.bins)
        check_choice("measure", self.measure, MEASURES)
        if self.chance_nmi is not None:
            check_number("chance_nmi", self.chance_nmi, 0, 1, high_open=True)
        check_choice("spread", self.spread, SPREADS)

    def measured_epsilon(self, clean: Tensor, degraded: Tensor) -> Tensor:
        """(B,) clamp(1 - similarity(clean, degraded), 0, eps_max) under ``measure``."""
        if self.measure == "ssim":
            return im_epsilon(ssim(clean, degraded), self.eps_max)
        similarity = nmi(clean, degraded, self.bins)
        if self.measure == "nmi_adjusted":
            if self.chance_nmi is None:
                raise CallOrderError("fit() (measure=nmi_adjusted needs chance_nmi)", "training")
            similarity = adjusted_nmi(similarity, self.chance_nmi)
        return im_epsilon(similarity, self.eps_max)

    def fit(self, clean: Tensor, degrader: Degrader, generator: torch.Generator) -> dict[str, Any]:
        """Estimate what the measure needs from ``clean`` (a fixed sample of training images in [0, 1])."""
        if self.measure != "nmi_adjusted":
            return {}
        if self.chance_nmi is None:
            self.chance_nmi = float(chance_nmi(clean, self.bins).mean())
        return {"chance_nmi": self.chance_nmi}


@dataclass
class InformationMatching(MeasuredSmoothing):
    """Per-sample epsilon = clamp(1 - similarity(clean, degraded), 0, eps_max); the reference measure is NMI."""

    name: ClassVar[str] = "im"

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        epsilon = self.measured_epsilon(batch.clean, batch.degraded)
        return smooth(batch.classes, num_classes, epsilon, self.spread), epsilon


@dataclass
class MatchedSmoothing(MeasuredSmoothing):
    """Uniform smoothing with IM's mean epsilon under this run's degradations: as much smoothing as IM, no per-image
    signal.

    ``epsilon`` None: estimated by ``fit`` as the mean IM epsilon of the training sample, each image degraded
    by the run's own Degrader (same types, levels and settings); a number overrides the estimate.
    """

    epsilon: float | None = None
    name: ClassVar[str] = "matched"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epsilon is not None:
            check_number("epsilon", self.epsilon, 0, 1, high_open=True)

    def fit(self, clean: Tensor, degrader: Degrader, generator: torch.Generator) -> dict[str, Any]:
        estimates = super().fit(clean, degrader, generator)
        if self.epsilon is None:
            degraded, _, _ = degrader(clean, generator)
            self.epsilon = float(self.measured_epsilon(clean, degraded).mean())
        return {**estimates, "epsilon": self.epsilon}

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        if self.epsilon is None:
            raise CallOrderError("fit() or set labels.epsilon (labels=matched has no epsilon yet)", "training")
        epsilon = torch.full((len(batch),), self.epsilon, device=batch.classes.device)
        return smooth(batch.classes, num_classes, epsilon, self.spread), epsilon


def epsilon_by_level(clean: Tensor, types: tuple[str, ...], levels: list[float], epsilon_of,
                     generator: torch.Generator | None = None, description: str = "epsilon by level",
                     **settings: float) -> dict[str, Tensor]:
    """{type: (len(levels), N) epsilon_of(clean, degraded)}: every image degraded at every level of every type."""
    curves = {}
    for name in progress(types, desc=description, unit="type", leave=False):
        type_batch = torch.full((len(clean),), DEGRADATIONS.index(name), dtype=torch.long, device=clean.device)
        rows = []
        for level in levels:
            level_batch = torch.full((len(clean),), level, device=clean.device)
            degraded = apply_degradations(clean, type_batch, level_batch, generator, grouping=None, **settings)
            rows.append(epsilon_of(clean, degraded))
        curves[name] = torch.stack(rows)
    return curves


def checked_table(table: dict | str | None, levels: int) -> dict[str, list[float]] | None:
    """A {degradation type: one value per level} table as plain floats, or SettingError. A string is a JSON file
    holding the table, bare or as ``{"levels": ..., "table": ...}`` (python -m infomatch.tasks.confidence_table)."""
    if table is None:
        return None
    if isinstance(table, str):
        table = _table_file(table, levels)
    table = {str(name): [float(value) for value in row] for name, row in dict(table).items()}
    valid = all(name in DEGRADATIONS and len(row) == levels for name, row in table.items())
    require("table", table, valid, f"must map degradation types ({', '.join(DEGRADATIONS)}) to {levels} values each")
    return table


def _table_file(path: str, levels: int) -> dict:
    """The table a JSON file holds: plain data, read with json (nothing in it is imported or built)."""
    try:
        content = json.loads(Path(path).expanduser().read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SettingError("table", path, f"must be a readable JSON file of accuracies per level ({error})") from None
    if isinstance(content, dict) and "table" in content:
        require("table", path, content.get("levels") == levels,
                f"holds {content.get('levels')} levels per type, the run {levels} (labels.levels)")
        content = content["table"]
    require("table", path, isinstance(content, dict), "must hold {degradation type: [value per level]}")
    return content


def table_grid(table: dict[str, list[float]], levels: int, device: torch.device) -> Tensor:
    """(len(DEGRADATIONS), levels) tensor of ``table`` on ``device`` (rows it lacks: 0)."""
    return torch.tensor([table.get(name, [0.0] * levels) for name in DEGRADATIONS], device=device)


def look_up(grid: Tensor, degradation: Tensor, level: Tensor, undegraded: float) -> Tensor:
    """(B,) the grid's row of each sample's type, linearly interpolated at its level (evenly spaced levels over
    [0, 1]); ``undegraded`` for type -1."""
    levels = grid.shape[1]
    position = level.float().clamp(0, 1) * (levels - 1)
    low = position.floor().long().clamp(max=levels - 2)
    rows = grid[degradation.clamp(min=0)]
    below, above = rows.gather(1, low[:, None]), rows.gather(1, low[:, None] + 1)
    value = torch.lerp(below, above, (position - low)[:, None]).squeeze(1)
    return torch.where(degradation >= 0, value, undegraded)


@dataclass
class ScheduleSmoothing(MeasuredSmoothing):
    """epsilon = E[IM epsilon | type, d]: IM's mean epsilon per degradation type and level, without per-image
    information.

    ``table`` {type: epsilon at each of ``levels`` evenly spaced levels in [0, 1]} (or a JSON file of it), linearly
    interpolated between them; None: estimated by ``fit`` on the training sample with the run's degradation
    settings.
    """

    levels: int = 21
    table: dict[str, list[float]] | str | None = None
    name: ClassVar[str] = "schedule"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_integer("levels", self.levels, 2)
        self.table = checked_table(self.table, self.levels)
        self._grid: Tensor | None = None

    def fit(self, clean: Tensor, degrader: Degrader, generator: torch.Generator) -> dict[str, Any]:
        estimates = super().fit(clean, degrader, generator)
        if self.table is None:
            levels = torch.linspace(0, 1, self.levels, dtype=torch.float64).tolist()
            curves = epsilon_by_level(clean, degrader.types, levels, self.measured_epsilon, generator,
                                      "schedule table", **degrader.settings)
            self.table = {name: epsilon.mean(dim=1).tolist() for name, epsilon in curves.items()}
        missing = [name for name in degrader.types if name not in self.table]
        require("table", list(self.table), not missing, f"has no row for the degradation(s) {', '.join(missing)}")
        self._grid = None
        return {**estimates, "levels": self.levels, "table": self.table}

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        if self.table is None:
            raise CallOrderError("fit() (labels=schedule has no table yet)", "training")
        device = batch.classes.device
        if self._grid is None or self._grid.device != device:
            # a file named in the config was read by __post_init__ (checked_table): a dict by now
            self._grid = table_grid(cast(dict[str, list[float]], self.table), self.levels, device)
        epsilon = look_up(self._grid, batch.degradation, batch.level, undegraded=0.0)
        return smooth(batch.classes, num_classes, epsilon, self.spread), epsilon


@dataclass
class MollifiedSmoothing:
    """Mollification's label rule (Heinonen et al., AISTATS 2025, "Robust Classification by Coupling Data
    Mollification with Label Smoothing"; code: markusheinonen/supervised-mollification): epsilon = gamma, the
    share of noise or blur, y = (1 - gamma) onehot + gamma / K.

    Noise types: gamma = (1 / (1 + SNR))^noise_power, SNR the signal-to-noise ratio at the drawn level:
    sin^2(pi d / 2)^p for ``noise`` (cosine schedule), (1 - abar_t)^p for ``diffusion`` (DDPM). Blur types
    (``heat``, ``blur``): gamma = d^blur_power. The paper's defaults are both powers 1 with augment=mollify
    (d ~ Beta(1, 2)); other degradation types have no rule and are refused before training.
    """

    noise_power: float = 1.0
    blur_power: float = 1.0
    spread: str = "all"
    name: ClassVar[str] = "mollify"
    degradation: ClassVar[str] = "mollify"  # the augment option of its recipe: a model trained so is named mollify
    NOISE_TYPES: ClassVar[tuple[str, ...]] = ("noise", "diffusion")
    BLUR_TYPES: ClassVar[tuple[str, ...]] = ("heat", "blur")

    def __post_init__(self) -> None:
        check_number("noise_power", self.noise_power, 0, low_open=True)
        check_number("blur_power", self.blur_power, 0, low_open=True)
        check_choice("spread", self.spread, SPREADS)

    def fit(self, clean: Tensor, degrader: Degrader, generator: torch.Generator) -> dict[str, Any]:
        """Nothing to estimate: refuses degradation types the rule does not cover."""
        ruled = self.NOISE_TYPES + self.BLUR_TYPES
        unruled = [name for name in degrader.types if name not in ruled]
        require("augment.types", list(degrader.types), not unruled,
                f"has {', '.join(unruled)}, for which labels=mollify has no rule (it covers {', '.join(ruled)}); "
                "use augment=mollify")
        return {}

    def noise_share(self, degradation: Tensor, level: Tensor) -> Tensor:
        """(B,) gamma before the powers are applied: the noise share 1 / (1 + SNR), or the blur level."""
        level = wide_float(level)
        by_type = {"noise": noise_share(level), "diffusion": diffusion_noise_share(level), "heat": level, "blur": level}
        share = torch.zeros_like(level)
        for name, value in by_type.items():
            power = self.noise_power if name in self.NOISE_TYPES else self.blur_power
            share = torch.where(degradation == DEGRADATIONS.index(name), value.pow(power), share)
        return share

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        epsilon = self.noise_share(batch.degradation, batch.level).float()
        return smooth(batch.classes, num_classes, epsilon, self.spread), epsilon


@dataclass
class VisibilitySmoothing:
    """Soft Augmentation's label rule (Liu et al., CVPR 2023, "Soft Augmentation for Image Classification"; code:
    youngleox/soft_augmentation): the target class keeps confidence p(v) of the crop's visible fraction v,

        p = max_confidence - (max_confidence - 1/K) * ((threshold - v) / threshold)^power   for 0 < v < threshold,
        p = max_confidence for v >= threshold, p = 1/K for v = 0,

    the rest spread over the other K - 1 classes (epsilon = 1 - p). ``reweight``: each sample's loss also weighted
    by p, as the reference code does by default (applied by scaling the targets by p; the cross-entropy is linear
    in them). The reference CIFAR recipe pairs it with base_augment=soft_crop (sigma 12 px) and power 2.
    """

    power: float = 2.0
    threshold: float = 1.0
    max_confidence: float = 1.0
    reweight: bool = True
    spread: str = "others"
    name: ClassVar[str] = "visibility"

    def __post_init__(self) -> None:
        check_number("power", self.power, 0, low_open=True)
        check_number("threshold", self.threshold, 0, 1, low_open=True)
        check_number("max_confidence", self.max_confidence, 0, 1, low_open=True)
        require("reweight", self.reweight, isinstance(self.reweight, bool), "must be true or false")
        check_choice("spread", self.spread, SPREADS)

    def confidence(self, visible: Tensor, num_classes: int) -> Tensor:
        """(B,) p(v) for visible fractions v in [0, 1]."""
        top = max(self.max_confidence, 1 / num_classes)  # as the reference: never below chance
        hidden = ((self.threshold - visible) / self.threshold).clamp(min=0)
        confidence = top - (top - 1 / num_classes) * hidden.pow(self.power)
        return torch.where(visible > 0, confidence, 1 / num_classes)

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        if batch.visible is None:
            raise SettingError("batch.visible", None, "must hold each image's visible fraction for labels=visibility "
                                                      "(the training stage records it)")
        confidence = self.confidence(batch.visible.float(), num_classes)
        epsilon = 1 - confidence
        targets = smooth(batch.classes, num_classes, epsilon, self.spread)
        return (targets * confidence[:, None] if self.reweight else targets), epsilon


@dataclass
class ConfidenceSmoothing:
    """Model-accuracy confidence (Siedel et al. 2025, "Combined Image Data Augmentations diminish the benefits of
    Adaptive Label Smoothing"; code: Georgsiedel/soft_label_random_augmentation, its exact_model_accuracy mapping):
    a degraded image's true class keeps confidence c = the accuracy of a reference model on validation images
    degraded with the same type and level, the rest over the other K - 1 classes (epsilon = 1 - c).

    ``reference``: the reference model's checkpoint (a training checkpoint of this project or a reference state
    dict). ``table`` {type: accuracy at each of ``levels`` evenly spaced levels in [0, 1]} or a JSON file of it
    (python -m infomatch.tasks.confidence_table), linearly interpolated;
    None: estimated before training on validation images (train.py: ``estimation.images`` of them). Undegraded
    images keep hard labels; c never falls below chance, 1/K. ``relative``: c divided by the reference's accuracy
    at level 0 of the type (capped at 1), for a reference model far from perfect (not in the paper).
    """

    reference: str | None = None
    levels: int = 11
    table: dict[str, list[float]] | str | None = None
    relative: bool = False
    spread: str = "others"
    name: ClassVar[str] = "confidence"

    def __post_init__(self) -> None:
        check_integer("levels", self.levels, 2)
        self.table = checked_table(self.table, self.levels)
        require("reference", self.reference, self.table is not None or bool(self.reference),
                "must name the reference model's checkpoint (labels.reference=<path>), or labels.table give the "
                "accuracies")
        require("relative", self.relative, isinstance(self.relative, bool), "must be true or false")
        check_choice("spread", self.spread, SPREADS)
        self._grid: Tensor | None = None

    def fit_reference(self, classifier, images: Tensor, labels: Tensor, degrader: Degrader,
                      generator: torch.Generator, batch_size: int = 500) -> dict[str, Any]:
        """Estimate the table: ``classifier``'s accuracy on ``images`` (validation, [0, 1]) at every level of every
        type of ``degrader``."""
        if self.table is None:
            def correct(_: Tensor, degraded: Tensor) -> Tensor:
                with torch.inference_mode():
                    logits = torch.cat([classifier(chunk) for chunk in degraded.split(batch_size)])
                return (logits.argmax(dim=1) == labels).float()

            levels = torch.linspace(0, 1, self.levels, dtype=torch.float64).tolist()
            curves = epsilon_by_level(images, degrader.types, levels, correct, generator,
                                      "reference accuracy", **degrader.settings)
            self.table = {name: hits.mean(dim=1).tolist() for name, hits in curves.items()}
        missing = [name for name in degrader.types if name not in self.table]
        require("table", list(self.table), not missing, f"has no row for the degradation(s) {', '.join(missing)}")
        self._grid = None
        return {"levels": self.levels, "table": self.table}

    def __call__(self, batch: TrainingBatch, num_classes: int) -> tuple[Tensor, Tensor]:
        if self.table is None:
            raise CallOrderError("fit_reference() (labels=confidence has no table yet)", "training")
        device = batch.classes.device
        if self._grid is None or self._grid.device != device:  # the confidence grid, relative or not, made once
            # a file named in the config was read by __post_init__ (checked_table): a dict by now
            grid = table_grid(cast(dict[str, list[float]], self.table), self.levels, device)
            self._grid = (grid / grid[:, :1].clamp(min=1e-12)).clamp(max=1) if self.relative else grid
        confidence = look_up(self._grid, batch.degradation, batch.level, undegraded=1.0).clamp(min=1 / num_classes)
        epsilon = 1 - confidence
        return smooth(batch.classes, num_classes, epsilon, self.spread), epsilon
