"""Evaluation of trained models: clean metrics, robustness grid, confidence analysis, seed aggregation, plots."""

from infomatch.evaluation.checkpoints import load_models

__all__ = ["load_models"]
