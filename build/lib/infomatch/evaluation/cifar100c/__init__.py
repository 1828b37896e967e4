"""CIFAR-100-C corruption robustness: the official files, or the corruptions regenerated on the device."""

from infomatch.evaluation.cifar100c.functions import (
           ALL,
           BENCHMARK,
           CORRUPTIONS,
           EXTRA,
           NOT_REGENERATED,
           RESEMBLE_TRAINING,
)
from infomatch.evaluation.cifar100c.sources import OfficialCorruptions, RegeneratedCorruptions

__all__ = ["ALL", "BENCHMARK", "CORRUPTIONS", "EXTRA", "NOT_REGENERATED", "RESEMBLE_TRAINING", "OfficialCorruptions",
           "RegeneratedCorruptions"]
