"""Class subsets (``data.classes``): keep some classes of a data set in every split, relabelled 0..k-1.

A count k keeps the first k classes; a list keeps those labels, its order giving the new labels. The held-out
classes are what the near-OOD protocol scores as unknown inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from omegaconf import OmegaConf

from infomatch.utils.checks import is_integer
from infomatch.utils.errors import ConfigError


def kept_labels(classes: int | Sequence[int] | None, num_classes: int) -> list[int]:
    """The original labels kept, in their new order; ConfigError naming ``data.classes`` for anything invalid."""
    if classes is None:
        return list(range(num_classes))
    if is_integer(classes):
        if not 1 <= classes <= num_classes:
            raise ConfigError(f"data.classes={classes} must be a count in [1, {num_classes}] (the data set has "
                              f"{num_classes} classes) or a list of labels")
        return list(range(classes))
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise ConfigError(f"data.classes={classes!r} must be a count k (the first k classes) or a list of labels")
    labels = list(classes)
    invalid = [label for label in labels if not is_integer(label) or not 0 <= label < num_classes]
    if not labels or invalid:
        raise ConfigError(f"data.classes={labels} must list labels in [0, {num_classes})"
                          + (f"; {invalid[0]!r} is not one" if invalid else ", at least one"))
    if len(set(labels)) != len(labels):
        raise ConfigError(f"data.classes={labels} lists a label twice")
    return labels


def kept_class_count(num_classes: int, classes: int | Sequence[int] | None = None) -> int:
    """How many classes a model trained with ``data.classes`` predicts (the config resolver behind
    ``model.num_classes``)."""
    return len(kept_labels(classes, num_classes))


def keep_classes(images: torch.Tensor, labels: torch.Tensor, classes: int | Sequence[int],
                 num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The images whose label is kept, in their order, with labels 0..k-1 by position in the kept list."""
    kept = kept_labels(classes, num_classes)
    new_label = torch.full((num_classes,), -1, dtype=torch.int64)
    new_label[torch.tensor(kept)] = torch.arange(len(kept))
    mapped = new_label[labels]
    chosen = mapped >= 0
    return images[chosen], mapped[chosen]


def keep_class_names(names: list[str], classes: int | Sequence[int] | None) -> list[str]:
    return [names[label] for label in kept_labels(classes, len(names))]


# model.num_classes follows the data: ${infomatch.kept_classes:${data.num_classes},${data.classes}}; registered on
# import, as every user of the configs imports the data package before instantiating a model
OmegaConf.register_new_resolver("infomatch.kept_classes", kept_class_count, replace=True)
