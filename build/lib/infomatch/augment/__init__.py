"""Degradative augmentations: the `augment` config group (``python train.py augment=all``).

``degradations`` holds the batched functions, ``registry`` their settings and type order, ``sampler``
the per-image draw of (type, level) that training applies; the base crop + flip is ``data.base_augment``.
"""

from infomatch.augment.degradations import blur, diffusion, dropout, mosaic
from infomatch.augment.registry import (
                                        DEFAULT_SETTINGS,
                                        DEGRADATIONS,
                                        REGISTRY,
                                        SETTINGS,
                                        Degradation,
                                        Setting,
                                        apply_degradations,
                                        degradation_settings,
                                        describe,
)
from infomatch.augment.sampler import SAMPLINGS, Degrader

__all__ = ["DEFAULT_SETTINGS", "DEGRADATIONS", "REGISTRY", "SAMPLINGS", "SETTINGS", "Degradation", "Degrader",
           "Setting", "apply_degradations", "blur", "degradation_settings", "describe", "diffusion", "dropout",
           "mosaic"]
