"""evaluate(cfg): load checkpoints, score them on the clean and degraded test set, write metrics, tables and plots."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from infomatch.evaluation import aggregate, compare, report
from infomatch.evaluation.checkpoints import LoadedModel, load_models
from infomatch.evaluation.cifar100c.scoring import check_baseline, corruption_results, corruption_scores
from infomatch.evaluation.clean import CALIBRATION_METRICS, clean_metrics, predict, reliability_bins
from infomatch.evaluation.data import evaluation_data_config, named_data_settings
from infomatch.evaluation.degraded import ROBUSTNESS_SCORES, curves_by_model, degradation_curves, robustness_scores
from infomatch.evaluation.uncertainty import POST_HOC, msp_histograms, post_hoc_scaling, uncertainty_metrics
from infomatch.metrics.ood import ood_detection
from infomatch.metrics.per_sample import true_class_probability
from infomatch.metrics.scores import SCORES, confidence_scores
from infomatch.metrics.temperature import at_bound, fit_temperature
from infomatch.runs.portable import shown_path
from infomatch.runs.trusted import build
from infomatch.runs.validation import build_group, validate_evaluate_config
from infomatch.utils.console import progress
from infomatch.utils.errors import CheckpointError, EvaluationError
from infomatch.utils.memory import keep_freed_memory
from infomatch.utils.precision import cpu_has_native_bf16, cpu_model_name

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


def trained_on_validation_images(models: list[LoadedModel], data: dict[str, Any]) -> list[str]:
    """Models whose training set held images of this evaluation's validation split (temperature fitted on them).

    A run trained with ``validate_on_test`` (the reference protocol) used all training images; one with another
    ``val_size`` or ``split_seed`` held out other images. Reference state dicts say nothing: not listed.
    """
    return [model.name for model in models if model.data is not None and (
        model.data.get("validate_on_test") or model.data.get("val_size") != data["val_size"]
        or model.data.get("split_seed") != data["split_seed"])]


def _levels(count: int) -> list[float]:
    return torch.linspace(0, 1, count, dtype=torch.float64).tolist()


@dataclass
class Evaluation:
    """What every phase of an evaluation works on: the models and the data, on the evaluation device."""

    models: list[LoadedModel]
    classifiers: list[nn.Module]
    data: dict[str, Any]  # the data settings evaluated with (from the checkpoints, see evaluation.data)
    datamodule: Any
    device: torch.device
    images: Tensor  # the test images evaluated (the first cfg.subset), uint8
    labels: Tensor
    batch_size: int
    types: list[str]  # the degradation grid's types and settings
    settings: dict[str, float]

    @property
    def names(self) -> list[str]:
        return [model.name for model in self.models]


def _command_line_data_settings() -> set[str] | None:
    return named_data_settings(list(HydraConfig.get().overrides.task)) if HydraConfig.initialized() else None


def prepare(cfg: DictConfig) -> Evaluation:
    """Load the checkpoints and the data they were trained on; every setting is checked before any scoring."""
    paths = _as_list(cfg.ckpt)
    if not paths:
        raise CheckpointError("no checkpoint given: python evaluate.py ckpt=path/to/checkpoint.ckpt "
                              "(a .ckpt file, a run folder or a sweep folder; ckpt=[a,b] for several)")
    validate_evaluate_config(cfg)
    keep_freed_memory()
    models = load_models(paths, _as_list(cfg.names))
    data = evaluation_data_config(cfg.data, models, _command_line_data_settings())
    datamodule = build(data, "data", "the evaluation's data settings")  # settings from files: own classes only
    datamodule.setup("test")
    _check_classes(models, datamodule.num_classes, data["_target_"])
    class_index = cfg.confidence.class_index
    if not 0 <= class_index < datamodule.num_classes:
        raise EvaluationError(f"confidence.class_index must be in [0, {datamodule.num_classes}), got {class_index}")
    if len(datamodule.val_set[1]) == 0:
        raise EvaluationError("temperature scaling is fitted on the validation split, but data.val_size=0; evaluate "
                              "with the validation split the models were trained with (e.g. data.val_size=5000)")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    images, labels = (tensor.to(device)[:cfg.subset] for tensor in datamodule.test_set)
    grid = instantiate(cfg.degradation)
    return Evaluation(models, [model.classifier.to(device) for model in models], data, datamodule, device, images,
                      labels, datamodule.eval_batch_size, list(grid.types), grid.settings)


def calibrate_list(value: Any) -> list[str]:
    """``calibrate=`` as the list of post-hoc methods (``all``: every one)."""
    names = _as_list(value)
    return list(POST_HOC) if names == ["all"] else names


def clean_phase(run: Evaluation, ece_bins: int, selective: dict[str, float],
                calibrate: list[str] | None = None) -> dict[str, Any]:
    """Per model: clean metrics, reliability bins, temperature scaling (T fitted on the validation split),
    selective classification and the calibration measures beyond ECE."""
    seen = trained_on_validation_images(run.models, run.data)
    if seen:
        log.warning("%s trained on images of the validation split that temperature scaling is fitted on (trained "
                    "with data.validate_on_test=true or another data.val_size/split_seed): their T is fitted on "
                    "training images, so their temperature-scaled numbers are optimistic", ", ".join(seen))
    val_images, val_labels = (tensor.to(run.device) for tensor in run.datamodule.val_set)
    models: dict[str, dict[str, Any]] = {}
    fitted: dict[str, dict[str, Any]] = {}  # every scaler weight, written to scalers.json
    for model, classifier in progress(list(zip(run.models, run.classifiers)), desc="clean", unit="model"):
        logits = predict(classifier, run.images, run.batch_size)
        val_logits = predict(classifier, val_images, run.batch_size)
        # one temperature per model, fitted on the validation split, never on the test set
        temperature = fit_temperature(val_logits, val_labels)
        calibrated = clean_metrics(logits / temperature, run.labels, ece_bins)
        models[model.name] = {
            "checkpoint": shown_path(model.path), "strategy": model.strategy, "seed": model.seed,
            "weights_finite": model.weights_finite,
            "clean": clean_metrics(logits, run.labels, ece_bins),
            "reliability": reliability_bins(logits, run.labels, ece_bins),
            "reliability_calibrated": reliability_bins(logits / temperature, run.labels, ece_bins),
            "temperature": temperature,
            "calibrated": {key: calibrated[key] for key in CALIBRATION_METRICS},
            "uncertainty": uncertainty_metrics(logits, run.labels, val_logits, val_labels, temperature, selective,
                                               ece_bins),
            "temperature_at_bound": at_bound(temperature),
        }
        if calibrate and calibrate != ["temperature"]:
            models[model.name]["post_hoc"], fitted[model.name] = post_hoc_scaling(
                logits, run.labels, val_logits, val_labels, temperature, calibrate, ece_bins)
    return {"models": models, "temperature_scaling": {"fitted_on": "validation split", "num_images": len(val_labels),
                                                      "fitted_on_training_images": seen},
            "selective": {**selective, "scores": list(SCORES), "fitted_on": "validation split (normalised logits' T)"},
            "scalers": fitted}


def degradation_phase(run: Evaluation, cfg: DictConfig, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (and calibration) over the degradation grid, and the true-class confidence of one class's images;
    the per-model curves go into ``models``."""
    robustness_levels, confidence_levels = _levels(cfg.robustness.levels), _levels(cfg.confidence.levels)
    scores = [partial(robustness_scores, temperature=models[name]["temperature"]) for name in run.names]
    robustness_grid = degradation_curves(run.classifiers, run.images, run.labels, run.types, robustness_levels,
                                         scores, cfg.seed, run.batch_size, run.settings, "robustness")
    class_index = cfg.confidence.class_index
    all_images, all_labels = run.datamodule.test_set
    class_images = all_images[all_labels == class_index].to(run.device)
    class_labels = torch.full((len(class_images),), class_index, device=run.device)
    confidence = degradation_curves(run.classifiers, class_images, class_labels, run.types, confidence_levels,
                                    true_class_probability, cfg.seed, run.batch_size, run.settings, "confidence")
    for part, values in (("robustness", robustness_grid[..., 0]), ("confidence", confidence)):
        for name, curves in curves_by_model(values, run.names, run.types).items():
            models[name][part] = curves
    for index, score in enumerate(ROBUSTNESS_SCORES[1:], start=1):
        for name, curves in curves_by_model(robustness_grid[..., index], run.names, run.types).items():
            models[name].setdefault("robustness_calibration", {})[score] = curves
    return {"robustness": {"levels": robustness_levels, "metric": "top1"},
            "confidence": {"levels": confidence_levels, "metric": "mean softmax probability of the true class",
                           "class_index": class_index, "class_name": run.datamodule.class_names()[class_index],
                           "num_images": len(class_images), "heatmap_type": cfg.confidence.heatmap_type}}


def corruption_phase(run: Evaluation, corruptions: Any, images: Tensor, labels: Tensor, cfg: DictConfig,
                     models: dict[str, dict[str, Any]], baseline: str | None) -> dict[str, Any]:
    """CIFAR-100-C (official files or regenerated) on ``images`` (the first corruptions.num_images test images):
    errors per corruption and severity, and mCE to ``baseline``."""
    scores = corruption_scores(run.classifiers, run.names, corruptions, images, labels, cfg.seed,
                               run.batch_size, run.datamodule.num_classes, cfg.ece_bins)
    return {"corruptions": corruption_results(scores, corruptions, models, baseline, len(labels))}


def build_ood_sets(cfg: DictConfig, run: Evaluation) -> dict[str, Any]:
    """The OOD sets that ``ood=`` names, each checked against the models' data before any scoring."""
    sets = {name: build_group(cfg.ood, name) for name in cfg.get("ood") or {}}
    for ood_set in sets.values():
        ood_set.check(run.datamodule)
    return sets


def ood_phase(run: Evaluation, sets: dict[str, Any], models: dict[str, dict[str, Any]], norm_p: float) -> dict:
    """Per model and OOD set: AUROC, AUPR-in/out and FPR95 with every confidence score (test images as
    in-distribution), and the max-softmax histograms of both."""
    images = {name: ood_set.images(run.data, run.datamodule, run.images) for name, ood_set in sets.items()}
    for model, classifier in zip(run.models, run.classifiers):
        entry = models[model.name]
        temperature = entry["uncertainty"]["normalized_temperature"]
        score_in = confidence_scores(predict(classifier, run.images, run.batch_size), norm_p, temperature)
        for name, ood_images in images.items():
            score_out = confidence_scores(predict(classifier, ood_images, run.batch_size), norm_p, temperature)
            entry.setdefault("ood", {})[name] = {score: ood_detection(score_in[score], score_out[score])
                                                 for score in SCORES}
            entry.setdefault("ood_histograms", {})[name] = msp_histograms(score_in["msp"], score_out["msp"])
    return {"ood": {name: {"label": sets[name].label, "num_images": len(images[name])} for name in sets}}


def comparison_phase(models: dict[str, dict[str, Any]], baselines: list[str]) -> dict[str, Any]:
    """Paired differences over seeds to each baseline strategy that was evaluated."""
    strategies = {model["strategy"] for model in models.values()}
    present = [baseline for baseline in baselines if baseline in strategies]
    if len(strategies) > 1 and present != baselines:
        missing = ", ".join(baseline for baseline in baselines if baseline not in present)
        log.info("compare_to: %s not among the evaluated strategies (%s): no paired comparisons to it",
                 missing, ", ".join(sorted(strategies)))
    if not present or len(strategies) < 2:
        return {}
    return {"comparisons": {"baselines": present, "level": compare.LEVEL,
                            "rows": compare.compare_each(models, present)}}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate every checkpoint named by ``cfg.ckpt``; returns the results written to ``metrics.json``."""
    started = time.perf_counter()
    run = prepare(cfg)
    # built and checked before any scoring, so a wrong folder or file fails in seconds
    corruptions = build_group(cfg, "corruptions") if cfg.get("corruptions") else None
    baselines = _as_list(cfg.get("compare_to"))
    mce_baseline = baselines[0] if baselines else None  # the corruption errors (mCE) take the first
    ood_sets = build_ood_sets(cfg, run)
    if corruptions is not None:
        corrupted = run.images[:corruptions.num_images], run.labels[:corruptions.num_images]
        corruptions.check(*corrupted)
        check_baseline(mce_baseline, run.names, [model.strategy for model in run.models])
    log.info("evaluating %d model(s) on %d test images of %s on %s", len(run.models), len(run.labels),
             run.data["_target_"].rsplit(".", 1)[-1], run.device)

    clean = clean_phase(run, cfg.ece_bins, dict(cfg.selective), calibrate_list(cfg.calibrate))
    models = clean["models"]
    results = {
        "evaluation": {"data": run.data["_target_"], "subset": cfg.subset, "num_images": len(run.labels),
                       "ece_bins": cfg.ece_bins, "seed": cfg.seed, "device": str(run.device),
                       "degradation": {"types": run.types, **run.settings}},
        "models": models,
        **degradation_phase(run, cfg, models),
        "aggregate": aggregate.by_strategy(models),
        "temperature_scaling": clean["temperature_scaling"],
        "selective": clean["selective"],
    }
    if ood_sets:
        results.update(ood_phase(run, ood_sets, models, cfg.selective.norm_p))
    if corruptions is not None:
        results.update(corruption_phase(run, corruptions, *corrupted, cfg, models, mce_baseline))
    results.update(comparison_phase(models, baselines))
    aggregated = (cfg.aggregate is True or cfg.aggregate == "auto"
                  and any(group["n"] > 1 for group in results["aggregate"].values()))
    # what the evaluation cost and where: a study states its total CPU time from these
    results["cost"] = {"seconds": time.perf_counter() - started, "cpu": cpu_model_name(),
                       "cpu_native_bf16": cpu_has_native_bf16(), "torch_threads": torch.get_num_threads(),
                       "device": str(run.device)}
    output_dir = Path(cfg.paths.output_dir)
    report.write_all(results, output_dir, aggregated, cfg.plots)
    if clean["scalers"]:  # the fitted weights (K x K per matrix scaler) apart from metrics.json
        (output_dir / "scalers.json").write_text(json.dumps(clean["scalers"]))
    for name, model in models.items():
        log.info("%s: %s", name, ", ".join(f"{key} {value:.4f}" for key, value in model["clean"].items()))
    log.info("results in %s (summary.md, metrics.json, metrics.csv%s)", output_dir, ", plots/" if cfg.plots else "")
    log.info("next, the page of these results (tables, intervals, figures): infomatch-results report %s",
             shown_path(output_dir))
    return results
