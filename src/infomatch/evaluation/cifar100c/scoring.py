"""Corruption robustness (CIFAR-100-C): top-1, NLL and ECE per model, corruption and severity, and summaries.

Summaries per model: mean top-1 over the benchmark corruptions evaluated and over all evaluated; the same
split into corruptions that resemble the training degradations (noise, blur, pixelate) and the others;
calibration under shift (ECE and NLL averaged over all corrupted sets); and, against a baseline, the
corruption error CE_c = sum_s E_{s,c} / sum_s E^base_{s,c} and the relative one
(sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean)), averaged over the benchmark
corruptions (mCE, relative mCE; Hendrycks & Dietterich 2019), in %.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from infomatch.evaluation import aggregate
from infomatch.evaluation.cifar100c import BENCHMARK, RESEMBLE_TRAINING
from infomatch.metrics.classification import EvaluationMetrics
from infomatch.utils.console import progress
from infomatch.utils.errors import EvaluationError

METRICS = ("top1", "nll", "ece")


@torch.inference_mode()
def corruption_scores(classifiers: list[nn.Module], names: list[str], source, images: torch.Tensor,
                      labels: torch.Tensor, seed: int, batch_size: int, num_classes: int,
                      ece_bins: int) -> dict[str, dict[str, dict[str, list[float]]]]:
    """{model: {corruption: {metric: [value per severity]}}}; each corrupted batch is made once and scored by
    every model."""
    scores: dict[str, dict[str, dict[str, list[float]]]] = {
        name: {corruption: {metric: [] for metric in METRICS} for corruption in source.names} for name in names}
    sets = [(corruption, severity) for corruption in source.names for severity in source.severities]
    for corruption, severity in progress(sets, desc=f"corruptions ({source.label})", unit="set"):
        metrics = [EvaluationMetrics(num_classes, ece_bins).to(images.device) for _ in classifiers]
        for chunk, chunk_labels in source.batches(corruption, severity, images, labels, seed, batch_size):
            chunk = chunk.float().div_(255)
            for metric, classifier in zip(metrics, classifiers):
                metric.update(classifier(chunk), chunk_labels)
        for name, metric in zip(names, metrics):
            values = metric.compute()
            for key in METRICS:
                scores[name][corruption][key].append(values[key])
    return scores


def _mean(sets: dict[str, dict[str, list[float]]], corruptions: list[str], metric: str = "top1") -> float | None:
    return float(np.mean([sets[name][metric] for name in corruptions])) if corruptions else None


def _errors(sets: dict[str, dict[str, list[float]]], clean_top1: float) -> dict[str, Any]:
    return {"clean": 1 - clean_top1, "sets": {name: 1 - np.array(values["top1"]) for name, values in sets.items()}}


def check_baseline(compare_to: str | None, names: list[str], strategies: list[str]) -> None:
    """compare_to must name an evaluated model or strategy (the default, hard, may be absent); checked before
    scoring."""
    if compare_to not in (None, "hard") and compare_to not in names and compare_to not in strategies:
        raise EvaluationError(f"compare_to={compare_to} is neither an evaluated model ({', '.join(names)}) nor a "
                              f"labels strategy among them ({', '.join(sorted(set(strategies)))})")


def _baseline(compare_to: str | None, scores: dict, clean: dict[str, dict], strategies: dict[str, str]):
    """(label, errors) of the baseline: a model by name, or a strategy's models averaged; (None, None) when
    compare_to is unset and no model or strategy is called hard."""
    chosen = compare_to or "hard"
    if chosen in scores:
        return chosen, _errors(scores[chosen], clean[chosen]["top1"])
    members = [name for name, strategy in strategies.items() if strategy == chosen]
    if not members:
        return None, None
    each = [_errors(scores[name], clean[name]["top1"]) for name in members]
    return chosen, {"clean": float(np.mean([errors["clean"] for errors in each])),
                    "sets": {corruption: np.mean([errors["sets"][corruption] for errors in each], axis=0)
                             for corruption in each[0]["sets"]}}


def summarize(sets: dict[str, dict[str, list[float]]], clean_top1: float, baseline: dict | None) -> dict[str, float]:
    """One model's summary numbers (fractions, except mCE and relative mCE in %); keys absent when undefined."""
    evaluated = list(sets)
    benchmark = [name for name in evaluated if name in BENCHMARK]
    resemble = [name for name in evaluated if name in RESEMBLE_TRAINING]
    other = [name for name in evaluated if name not in RESEMBLE_TRAINING]
    summary = {"mean_top1_benchmark": _mean(sets, benchmark), "mean_top1_all": _mean(sets, evaluated),
               "mean_top1_resemble_training": _mean(sets, resemble), "mean_top1_other": _mean(sets, other),
               "mean_ece": _mean(sets, evaluated, "ece"), "mean_nll": _mean(sets, evaluated, "nll")}
    if baseline is not None and benchmark:
        errors = _errors(sets, clean_top1)
        summary["mce"] = 100 * float(np.mean([errors["sets"][name].sum() / baseline["sets"][name].sum()
                                              for name in benchmark]))
        gaps = {name: (baseline["sets"][name] - baseline["clean"]).sum() for name in benchmark}
        # undefined when the baseline loses no accuracy under some corruption
        if all(gap > 0 for gap in gaps.values()):
            summary["relative_mce"] = 100 * float(np.mean([(errors["sets"][name] - errors["clean"]).sum() / gaps[name]
                                                           for name in benchmark]))
    return {key: value for key, value in summary.items() if value is not None}


def corruption_results(scores: dict, source, models: dict[str, dict[str, Any]], compare_to: str | None,
                       num_images: int) -> dict[str, Any]:
    """The ``corruptions`` part of metrics.json: settings, per-model sets and summaries, per-strategy mean ± std."""
    clean = {name: models[name]["clean"] for name in scores}
    strategies = {name: models[name]["strategy"] for name in scores}
    baseline_label, baseline = _baseline(compare_to, scores, clean, strategies)
    per_model = {name: {"sets": sets, "summary": summarize(sets, clean[name]["top1"], baseline)}
                 for name, sets in scores.items()}
    groups: dict[str, list[str]] = {}
    for name, strategy in strategies.items():
        groups.setdefault(strategy, []).append(name)
    return {
        "source": source.kind, "label": source.label, "root": str(getattr(source, "root", "")) or None,
        "names": source.names, "missing": source.missing, "severities": source.severities,
        "benchmark": [name for name in source.names if name in BENCHMARK],
        "resemble_training": [name for name in source.names if name in RESEMBLE_TRAINING],
        "num_images": num_images, "compare_to": baseline_label,
        "models": per_model,
        "aggregate": {strategy: {"models": members, "n": len(members),
                                 **{part: aggregate.mean_std([per_model[name][part] for name in members])
                                    for part in ("sets", "summary")}}
                      for strategy, members in groups.items()},
    }
