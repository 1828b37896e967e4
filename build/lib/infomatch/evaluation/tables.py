"""Markdown tables and number cells, one format for summary.md, the CIFAR-100-C report and the README tables.

Percentages (scale 100) get 2 decimals, other metrics 4; names are left-aligned and numbers right-aligned.
"""

from __future__ import annotations

from typing import Any


def number_text(value: float, scale: float = 1, signed: bool = False, decimals: int | None = None) -> str:
    """``value * scale``; ``signed`` writes the sign of a difference."""
    decimals = (2 if scale == 100 else 4) if decimals is None else decimals
    return f"{value * scale:{'+' if signed else ''}.{decimals}f}"


def mean_text(mean: float, spread: float | None, scale: float = 1, decimals: int | None = None) -> str:
    """``mean ± spread`` (a std or an interval's half-width), or the mean alone when there is no spread."""
    text = number_text(mean, scale, decimals=decimals)
    return text if spread is None else f"{text} ± {number_text(spread, scale, decimals=decimals)}"


def stats_text(stats: Any, scale: float = 1, decimals: int | None = None) -> str:
    """A number, or ``{"mean", "std"}`` as mean ± std."""
    if isinstance(stats, dict):
        return mean_text(stats["mean"], stats["std"], scale, decimals)
    return number_text(stats, scale, decimals=decimals)


def interval_text(low: float, high: float, scale: float = 1) -> str:
    """A confidence interval of a difference, e.g. ``[-0.12, +0.40]``."""
    return f"[{number_text(low, scale, signed=True)}, {number_text(high, scale, signed=True)}]"


def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """The lines of a markdown table followed by a blank line: the first column left-aligned, the others right."""
    def line(cells: list[Any]) -> str:
        return "| " + " | ".join(str(cell) for cell in cells) + " |"

    return [line(header), "|---|" + "---:|" * (len(header) - 1), *map(line, rows), ""]
