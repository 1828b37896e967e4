"""Selective classification and the calibration measures beyond ECE, per model from its test and validation logits."""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error

from infomatch.metrics.calibration import classwise_ece, max_calibration_error, smooth_ece
from infomatch.metrics.per_sample import nll
from infomatch.metrics.scalers import SCALERS, fit_scaler_selected
from infomatch.metrics.scores import SCORES, confidence_scores, normalized_logits
from infomatch.metrics.selective import augrc, aurc, coverage_at_risk, risk_at_coverage, risk_coverage
from infomatch.metrics.temperature import fit_temperature

CURVE_POINTS = 100  # risk-coverage curves are stored at coverages 0.01, 0.02, ..., 1
CURVE_SCORES = ("msp", "msp_normalized")
# (uncertainty_scalars key, heading, scale): the per-model numbers the tables show and the comparisons pair
UNCERTAINTY_COLUMNS = (
    ("aurc", "AURC", 1), ("augrc", "AUGRC", 1), ("aurc (norm)", "AURC (norm)", 1),
    ("augrc (norm)", "AUGRC (norm)", 1), ("risk@coverage", "risk@cov", 1), ("coverage@risk", "cov@risk", 1),
    ("classwise ece", "cw-ECE", 1), ("mce", "MCE", 1), ("smooth ece", "smECE", 1),
    ("classwise ece (ts)", "cw-ECE (ts)", 1), ("smooth ece (ts)", "smECE (ts)", 1),
)


def calibration_measures(logits: Tensor, labels: Tensor, ece_bins: int) -> dict[str, float]:
    probs = logits.double().softmax(dim=1)
    return {"classwise_ece": classwise_ece(probs, labels, ece_bins),
            "max_calibration_error": max_calibration_error(probs, labels, ece_bins),
            "smooth_ece": smooth_ece(probs, labels)}


def _curve(confidence: Tensor, correct: Tensor) -> dict[str, list[float]]:
    coverage, risk = risk_coverage(confidence, correct)
    points = [max(1, math.ceil(len(risk) * (k + 1) / CURVE_POINTS - 1e-9)) - 1 for k in range(CURVE_POINTS)]
    return {"coverage": coverage[points].tolist(), "risk": risk[points].tolist()}


def uncertainty_metrics(logits: Tensor, labels: Tensor, val_logits: Tensor, val_labels: Tensor, temperature: float,
                        settings: dict[str, float], ece_bins: int) -> dict[str, Any]:
    """Selective classification with every confidence score (the normalised-logit temperature fitted on the
    validation split), and classwise ECE, MCE and smooth ECE before and after temperature scaling."""
    norm_p = settings["norm_p"]
    normalized_temperature = fit_temperature(normalized_logits(val_logits.double(), norm_p), val_labels)
    scores = confidence_scores(logits, norm_p, normalized_temperature)
    correct = (logits.argmax(dim=1) == labels).double()
    selective = {name: {"aurc": aurc(scores[name], correct), "augrc": augrc(scores[name], correct),
                        "risk_at_coverage": risk_at_coverage(scores[name], correct, settings["coverage"]),
                        "coverage_at_risk": coverage_at_risk(scores[name], correct, settings["risk"])}
                 for name in SCORES}
    calibration = calibration_measures(logits, labels, ece_bins)
    calibration_ts = calibration_measures(logits.double() / temperature, labels, ece_bins)
    return {"selective": selective, "normalized_temperature": normalized_temperature,
            "risk_coverage": {name: _curve(scores[name], correct) for name in CURVE_SCORES},
            "calibration": calibration, "calibration_ts": calibration_ts}


def uncertainty_scalars(model: dict[str, Any]) -> dict[str, float]:
    """The numbers of ``UNCERTAINTY_COLUMNS`` from a model's results; {} for an evaluation made before them."""
    if "uncertainty" not in model:
        return {}
    found = model["uncertainty"]
    msp, normalized = found["selective"]["msp"], found["selective"]["msp_normalized"]
    return {"aurc": msp["aurc"], "augrc": msp["augrc"], "aurc (norm)": normalized["aurc"],
            "augrc (norm)": normalized["augrc"], "risk@coverage": msp["risk_at_coverage"],
            "coverage@risk": msp["coverage_at_risk"], "classwise ece": found["calibration"]["classwise_ece"],
            "mce": found["calibration"]["max_calibration_error"], "smooth ece": found["calibration"]["smooth_ece"],
            "classwise ece (ts)": found["calibration_ts"]["classwise_ece"],
            "smooth ece (ts)": found["calibration_ts"]["smooth_ece"]}


OOD_SCORES = ("msp", "max_logit", "energy")  # the scores the tables show; metrics.json has every score
HISTOGRAM_BINS = 20


def msp_histograms(score_in: Tensor, score_out: Tensor) -> dict[str, list[float]]:
    """Share of in- and out-of-distribution inputs per max-softmax bin of [0, 1] (for the score histograms)."""
    def shares(values: Tensor) -> list[float]:
        return (values.double().histc(HISTOGRAM_BINS, 0, 1) / len(values)).tolist()

    return {"edges": [k / HISTOGRAM_BINS for k in range(HISTOGRAM_BINS + 1)], "in": shares(score_in),
            "out": shares(score_out)}


def ood_scalars(model: dict[str, Any]) -> dict[str, float]:
    """AUROC and FPR95 per OOD set with the scores of ``OOD_SCORES``, keys ``ood <set> <measure> <score>``."""
    return {f"ood {name} {measure} {score}": values[score][measure]
            for name, values in model.get("ood", {}).items() for measure in ("auroc", "fpr95") for score in OOD_SCORES}


POST_HOC = ("temperature", *SCALERS)  # what calibrate= may name (all: every one)


def post_hoc_measures(logits: Tensor, labels: Tensor, ece_bins: int) -> dict[str, float]:
    """What a post-hoc scaler is judged by: NLL, ECE, classwise ECE and AURC with the max softmax probability."""
    logits = logits.double()
    probs = logits.softmax(dim=1)
    confidence, prediction = probs.max(dim=1)
    return {"nll": float(nll(logits, labels).mean()),
            "ece": float(multiclass_calibration_error(probs, labels, probs.shape[1], n_bins=ece_bins, norm="l1")),
            "classwise_ece": classwise_ece(probs, labels, ece_bins),
            "aurc": aurc(confidence, (prediction == labels).double())}


def post_hoc_scaling(logits: Tensor, labels: Tensor, val_logits: Tensor, val_labels: Tensor, temperature: float,
                     scalers: list[str], ece_bins: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Before and after each scaler of ``scalers`` (fitted on the validation logits, scored on the test logits):
    the measures, and the fitted parameters (summary in the first dict, every weight in the second)."""
    results: dict[str, Any] = {"before": post_hoc_measures(logits, labels, ece_bins)}
    parameters: dict[str, Any] = {}
    if "temperature" in scalers:
        results["temperature"] = {"after": post_hoc_measures(logits.double() / temperature, labels, ece_bins),
                                  "parameters": {"temperature": temperature}}
    for kind in (kind for kind in SCALERS if kind in scalers):
        scaler, strength = fit_scaler_selected(kind, val_logits, val_labels)
        results[kind] = {"after": post_hoc_measures(scaler(logits), labels, ece_bins),
                         "parameters": {"odir_strength": strength, **scaler.summary()}}
        parameters[kind] = {"weight": scaler.weight.tolist(), "bias": scaler.bias.tolist(), "odir_strength": strength}
    return results, parameters
