"""Paired comparisons over seeds: each strategy's difference to one or more baseline strategies, per metric, with
a 95% CI.

When both strategies have runs for two or more of the same seeds, the differences paired on those seeds get a
t-interval (the seed fixes the initialisation, data order and degradations both runs share; a run whose seed
the other strategy lacks is left out); otherwise Welch's interval on the two groups. An interval that contains
0 means the difference is not separated from seed noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from infomatch.evaluation.clean import CALIBRATION_METRICS, CLEAN_METRICS
from infomatch.evaluation.degraded import ROBUSTNESS_SCORES
from infomatch.evaluation.uncertainty import ood_scalars, uncertainty_scalars

LEVEL = 0.95


def scalar_metrics(model: dict[str, Any]) -> dict[str, float]:
    """Every per-model number compared: clean metrics, after temperature scaling (``ts``), T, and robustness means."""
    values = {metric.key: model["clean"][metric.key] for metric in CLEAN_METRICS}
    values.update({f"{key} (ts)": model["calibrated"][key] for key in CALIBRATION_METRICS})
    values["temperature"] = model["temperature"]
    values.update(uncertainty_scalars(model))
    values.update(ood_scalars(model))
    values["robust top1"] = float(np.mean(list(model["robustness"].values())))
    for score in ROBUSTNESS_SCORES[1:]:
        label = f"robust {score.removesuffix('_ts')}{' (ts)' if score.endswith('_ts') else ''}"
        values[label] = float(np.mean(list(model["robustness_calibration"][score].values())))
    return values


# the CIFAR-100-C summary numbers compared (mCE is left out: its baseline differs between evaluation calls)
CORRUPTION_SUMMARY = ("mean_top1_all", "mean_top1_resemble_training", "mean_top1_other", "mean_nll", "mean_ece")


def corruption_metrics(model: dict[str, Any]) -> dict[str, float]:
    """A model's CIFAR-100-C summary (``model["corruptions"]``, as the study files merge it), keys ``C <name>``."""
    return {f"C {key}": model["corruptions"][key] for key in CORRUPTION_SUMMARY}


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): Student t-interval of the mean (of seed-paired differences, or of one strategy's seeds)."""
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    half = float(stats.t.ppf((1 + LEVEL) / 2, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array)))
    return mean, mean - half, mean + half


def welch_interval(sample: list[float], baseline: list[float]) -> tuple[float, float, float]:
    """(difference of means, low, high): Welch's t-interval with the Welch-Satterthwaite degrees of freedom."""
    a, b = np.asarray(sample, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    difference = float(a.mean() - b.mean())
    if va + vb == 0:  # identical values in both groups: no spread to estimate, the interval is the point
        return difference, difference, difference
    freedom = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf((1 + LEVEL) / 2, freedom) * math.sqrt(va + vb))
    return difference, difference - half, difference + half


def compare(models: dict[str, dict[str, Any]], baseline: str,
            metrics: Callable[[dict[str, Any]], dict[str, float]] = scalar_metrics) -> list[dict[str, Any]]:
    """One row per (strategy other than ``baseline``, metric): difference, 95% CI, method, n, separated.

    ``metrics``: the numbers compared per model (:func:`scalar_metrics`, or :func:`corruption_metrics`)."""
    by_strategy: dict[str, dict[Any, dict[str, float]]] = {}
    for name, model in models.items():
        by_strategy.setdefault(model["strategy"], {})[model["seed"] if model["seed"] is not None else name] = \
            metrics(model)
    reference = by_strategy[baseline]
    rows = []
    for strategy, runs in by_strategy.items():
        if strategy == baseline:
            continue
        common = [key for key in runs if key in reference]  # a strategy with a seed more or less still pairs
        paired = len(common) > 1
        for metric in next(iter(runs.values())):
            sample = [runs[key][metric] for key in (common if paired else runs)]
            base = [reference[key][metric] for key in (common if paired else reference)]
            if paired:
                difference, low, high = mean_interval([a - b for a, b in zip(sample, base)])
                method = "paired t"
            elif len(sample) > 1 and len(base) > 1:
                difference, low, high = welch_interval(sample, base)
                method = "Welch"
            else:
                difference, low, high, method = float(np.mean(sample) - np.mean(base)), None, None, "none (one run)"
            rows.append({"baseline": baseline, "strategy": strategy, "metric": metric, "difference": difference,
                         "low": low, "high": high, "method": method, "n": len(sample), "n_baseline": len(base),
                         "separated": bool(low is not None and high is not None and (low > 0 or high < 0))})
    return rows


def compare_each(models: dict[str, dict[str, Any]], baselines: list[str]) -> list[dict[str, Any]]:
    """:func:`compare` against every baseline in turn (e.g. hard, matched, schedule), rows one after the other."""
    return [row for baseline in baselines for row in compare(models, baseline)]
