"""Evaluation of trained models: clean metrics, robustness grid, confidence analysis, seed aggregation, plots."""
