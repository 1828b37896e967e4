"""Metrics on logits, probabilities and confidence scores: functions (tensors in, floats out) and torchmetrics
classes that accumulate them over batches. A higher confidence or OOD score means "more confident / more
in-distribution"."""

from infomatch.metrics.calibration import (
    ClasswiseCalibrationError,
    MaxCalibrationError,
    SmoothCalibrationError,
    classwise_ece,
    max_calibration_error,
    smooth_ece,
)
from infomatch.metrics.ood import OODDetection, ood_detection
from infomatch.metrics.scalers import Scaler, fit_scaler, fit_scaler_selected
from infomatch.metrics.scores import confidence_scores, normalized_logits
from infomatch.metrics.selective import (
    AUGRC,
    AURC,
    CoverageAtRisk,
    RiskAtCoverage,
    augrc,
    aurc,
    coverage_at_risk,
    risk_at_coverage,
    risk_coverage,
)
from infomatch.metrics.temperature import fit_temperature

__all__ = [
    "AUGRC", "AURC", "ClasswiseCalibrationError", "CoverageAtRisk", "MaxCalibrationError", "OODDetection",
    "RiskAtCoverage", "Scaler", "SmoothCalibrationError", "fit_scaler", "fit_scaler_selected", "fit_temperature",
    "augrc", "aurc", "classwise_ece", "confidence_scores", "coverage_at_risk", "max_calibration_error",
    "normalized_logits", "ood_detection", "risk_at_coverage", "risk_coverage", "smooth_ece",
]
