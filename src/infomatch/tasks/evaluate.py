"""evaluate(cfg): load checkpoints, score them on the clean and degraded test set, write metrics, tables and plots."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm.auto import tqdm

from infomatch.evaluation import aggregate, compare, report
from infomatch.evaluation.checkpoints import LoadedModel, load_models
from infomatch.evaluation.cifar100c.scoring import check_baseline, corruption_results, corruption_scores
from infomatch.evaluation.clean import CALIBRATION_METRICS, clean_metrics, predict, reliability_bins
from infomatch.evaluation.degraded import ROBUSTNESS_SCORES, curves_by_model, degradation_curves, robustness_scores
from infomatch.metrics.per_sample import true_class_probability
from infomatch.metrics.temperature import fit_temperature
from infomatch.runs.validation import build_group, validate_evaluate_config
from infomatch.utils.errors import CheckpointError, EvaluationError
from infomatch.utils.memory import keep_freed_memory

log = logging.getLogger(__name__)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _check_classes(models: list[LoadedModel], num_classes: int, data_target: str) -> None:
    for model in models:
        if model.num_classes != num_classes:
            raise CheckpointError(f"{model.path}: model {model.name} predicts {model.num_classes} classes but the "
                                  f"evaluation data ({data_target}) has {num_classes}; evaluate with the data it was "
                                  f"trained on (e.g. data=synthetic data.num_classes={model.num_classes})")


def trained_on_validation_images(models: list[LoadedModel], data_cfg: DictConfig) -> list[str]:
    """Models whose training set held images of this evaluation's validation split (temperature fitted on them).

    A run trained with ``validate_on_test`` (the reference protocol) used all training images; one with another
    ``val_size`` or ``split_seed`` held out other images. Reference state dicts say nothing: not listed.
    """
    return [model.name for model in models if model.data is not None and (
        model.data.get("validate_on_test") or model.data.get("val_size") != data_cfg.val_size
        or model.data.get("split_seed") != data_cfg.split_seed)]


def _levels(count: int) -> list[float]:
    return torch.linspace(0, 1, count, dtype=torch.float64).tolist()


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate every checkpoint named by ``cfg.ckpt``; returns the results written to ``metrics.json``."""
    paths = _as_list(cfg.ckpt)
    if not paths:
        raise CheckpointError("no checkpoint given: python evaluate.py ckpt=path/to/checkpoint.ckpt "
                              "(a .ckpt file, a run folder or a sweep folder; ckpt=[a,b] for several)")
    validate_evaluate_config(cfg)
    keep_freed_memory()
    models = load_models(paths, _as_list(cfg.names))
    datamodule = instantiate(cfg.data)
    datamodule.setup("test")
    _check_classes(models, datamodule.num_classes, cfg.data._target_)
    class_index = cfg.confidence.class_index
    if not 0 <= class_index < datamodule.num_classes:
        raise EvaluationError(f"confidence.class_index must be in [0, {datamodule.num_classes}), got {class_index}")

    if len(datamodule.val_set[1]) == 0:
        raise EvaluationError("temperature scaling is fitted on the validation split, but data.val_size=0; evaluate "
                              "with the validation split the models were trained with (e.g. data.val_size=5000)")

    seen = trained_on_validation_images(models, cfg.data)
    if seen:
        log.warning("%s trained on images of the validation split that temperature scaling is fitted on (trained "
                    "with data.validate_on_test=true or another data.val_size/split_seed): their T is fitted on "
                    "training images, so their temperature-scaled numbers are optimistic", ", ".join(seen))
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    val_images, val_labels = (tensor.to(device) for tensor in datamodule.val_set)
    all_images, all_labels = (tensor.to(device) for tensor in datamodule.test_set)
    images, labels = all_images[:cfg.subset], all_labels[:cfg.subset]
    class_images = all_images[all_labels == class_index]
    classifiers = [model.classifier.to(device) for model in models]
    batch_size = datamodule.eval_batch_size
    grid = instantiate(cfg.degradation)
    types, settings = list(grid.types), grid.settings
    # built and checked before any scoring, so a wrong folder or file fails in seconds
    corruptions = build_group(cfg, "corruptions") if cfg.get("corruptions") else None
    baselines = _as_list(cfg.get("compare_to"))
    mce_baseline = baselines[0] if baselines else None  # the corruption errors (mCE) take the first
    if corruptions is not None:
        corruptions.check(images, labels)
        check_baseline(mce_baseline, [model.name for model in models], [model.strategy for model in models])
    log.info("evaluating %d model(s) on %d test images on %s", len(models), len(labels), device)

    results_by_model: dict[str, dict[str, Any]] = {}
    for model, classifier in tqdm(list(zip(models, classifiers)), desc="clean", unit="model"):
        logits = predict(classifier, images, batch_size)
        # one temperature per model, fitted on the validation split, never on the test set
        temperature = fit_temperature(predict(classifier, val_images, batch_size), val_labels)
        calibrated = clean_metrics(logits / temperature, labels, cfg.ece_bins)
        results_by_model[model.name] = {
            "checkpoint": str(model.path), "strategy": model.strategy, "seed": model.seed,
            "weights_finite": model.weights_finite,
            "clean": clean_metrics(logits, labels, cfg.ece_bins),
            "reliability": reliability_bins(logits, labels, cfg.ece_bins),
            "temperature": temperature,
            "calibrated": {key: calibrated[key] for key in CALIBRATION_METRICS},
        }

    names = [model.name for model in models]
    robustness_levels, confidence_levels = _levels(cfg.robustness.levels), _levels(cfg.confidence.levels)
    scores = [partial(robustness_scores, temperature=results_by_model[name]["temperature"]) for name in names]
    robustness_grid = degradation_curves(classifiers, images, labels, types, robustness_levels, scores, cfg.seed,
                                         batch_size, settings, "robustness")
    robustness = robustness_grid[..., 0]
    class_labels = torch.full((len(class_images),), class_index, device=device)
    confidence = degradation_curves(classifiers, class_images, class_labels, types, confidence_levels,
                                    true_class_probability, cfg.seed, batch_size, settings, "confidence")
    for part, values in (("robustness", robustness), ("confidence", confidence)):
        for name, curves in curves_by_model(values, names, types).items():
            results_by_model[name][part] = curves
    for index, score in enumerate(ROBUSTNESS_SCORES[1:], start=1):
        for name, curves in curves_by_model(robustness_grid[..., index], names, types).items():
            results_by_model[name].setdefault("robustness_calibration", {})[score] = curves

    results = {
        "evaluation": {"data": cfg.data._target_, "subset": cfg.subset, "num_images": len(labels),
                       "ece_bins": cfg.ece_bins, "seed": cfg.seed, "device": str(device),
                       "degradation": {"types": types, **settings}},
        "models": results_by_model,
        "robustness": {"levels": robustness_levels, "metric": "top1"},
        "confidence": {"levels": confidence_levels, "metric": "mean softmax probability of the true class",
                       "class_index": class_index, "class_name": datamodule.class_names()[class_index],
                       "num_images": len(class_images), "heatmap_type": cfg.confidence.heatmap_type},
        "aggregate": aggregate.by_strategy(results_by_model),
        "temperature_scaling": {"fitted_on": "validation split", "num_images": len(val_labels),
                                "fitted_on_training_images": seen},
    }
    if corruptions is not None:
        scores = corruption_scores(classifiers, names, corruptions, images, labels, cfg.seed, batch_size,
                                   datamodule.num_classes, cfg.ece_bins)
        results["corruptions"] = corruption_results(scores, corruptions, results_by_model, mce_baseline,
                                                    len(labels))
    strategies = {model["strategy"] for model in results_by_model.values()}
    present = [baseline for baseline in baselines if baseline in strategies]
    if len(strategies) > 1 and present != baselines:
        log.info("compare_to: %s not among the evaluated strategies (%s): no paired comparisons to it",
                 ", ".join(baseline for baseline in baselines if baseline not in present),
                 ", ".join(sorted(strategies)))
    if present and len(strategies) > 1:
        results["comparisons"] = {"baselines": present, "level": compare.LEVEL,
                                  "rows": compare.compare_each(results_by_model, present)}
    aggregated = (cfg.aggregate is True or cfg.aggregate == "auto"
                  and any(group["n"] > 1 for group in results["aggregate"].values()))
    output_dir = Path(cfg.paths.output_dir)
    report.write_all(results, output_dir, aggregated, cfg.plots)
    for name, model in results_by_model.items():
        log.info("%s: %s", name, ", ".join(f"{key} {value:.4f}" for key, value in model["clean"].items()))
    log.info("results in %s (summary.md, metrics.json, metrics.csv%s)", output_dir, ", plots/" if cfg.plots else "")
    return results
