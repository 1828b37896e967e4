"""Evaluation of trained models: clean metrics, robustness grid, confidence analysis, seed aggregation, plots."""

from infomatch.evaluation.loading import CheckpointError, EvaluationError, load_models

__all__ = ["CheckpointError", "EvaluationError", "load_models"]
