"""Mean and standard deviation over the seeds of each labels strategy."""

from __future__ import annotations

from typing import Any

import torch

AGGREGATED = ("clean", "calibrated", "temperature", "robustness", "robustness_calibration", "confidence",
              "uncertainty")


def mean_std(values: list[Any]) -> Any:
    """Element-wise over same-shaped nested dicts of floats or lists: {"mean", "std"} at every leaf.

    std is the sample standard deviation (n - 1), None for a single model.
    """
    if isinstance(values[0], dict):
        return {key: mean_std([value[key] for value in values]) for key in values[0]}
    stacked = torch.tensor(values, dtype=torch.float64)
    return {"mean": stacked.mean(dim=0).tolist(), "std": stacked.std(dim=0).tolist() if len(values) > 1 else None}


def by_strategy(models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{strategy: {"models": [names], "n": count, "clean"/"robustness"/"confidence": mean_std tree}}."""
    groups: dict[str, list[str]] = {}
    for name, result in models.items():
        groups.setdefault(result["strategy"], []).append(name)
    return {strategy: {"models": names, "n": len(names),
                       **{part: mean_std([models[name][part] for name in names]) for part in AGGREGATED
                          if part in models[names[0]]}}
            for strategy, names in groups.items()}
