"""Range checks for constructor arguments, written once: the constructors call them, and the config
validation turns their ``SettingError`` into the config error naming ``<group>.<setting>``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeGuard


class SettingError(ValueError):
    """An argument out of range: its name, its value and what is allowed."""

    def __init__(self, name: str, value: Any, requirement: str) -> None:
        super().__init__(f"{name}={value} {requirement}")
        self.name = name
        self.value = value
        self.requirement = requirement


class CallOrderError(RuntimeError):
    """A method called before the one it depends on (a strategy's ``fit()``, a logger's ``continue_from``)."""

    def __init__(self, needed: str, before: str) -> None:
        super().__init__(f"call {needed} before {before}")
        self.needed = needed
        self.before = before


def is_integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_integer(value) or isinstance(value, float)) and math.isfinite(value)


def require(name: str, value: Any, valid: bool, requirement: str) -> None:
    if not valid:
        raise SettingError(name, value, requirement)


def check_number(name: str, value: Any, low: float, high: float = math.inf, high_open: bool = False,
                 low_open: bool = False) -> None:
    """``value`` is a finite number in [low, high] (``high_open``: below high; ``low_open``: above low)."""
    below_high = is_number(value) and (value < high if high_open else value <= high)
    above_low = is_number(value) and (value > low if low_open else value >= low)
    requirement = (f"must be a number {'>' if low_open else '>='} {low:g}" if high == math.inf
                   else f"must be a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")
    require(name, value, below_high and above_low, requirement)


def check_integer(name: str, value: Any, low: int, high: int | None = None) -> None:
    """``value`` is an integer in [low, high] (no upper bound when ``high`` is None)."""
    valid = is_integer(value) and low <= value and (high is None or value <= high)
    require(name, value, valid,
            f"must be an integer >= {low}" if high is None else f"must be an integer in [{low}, {high}]")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    require(name, value, value in choices, f"must be one of: {', '.join(choices)}")
