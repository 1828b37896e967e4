"""Dotted config keys: those a command line names (Hydra's override strings), and a nested config's settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def override_keys(overrides: Iterable[str]) -> list[str]:
    """``data.root=x``, ``+data.extra=1``, ``~data.on_device``, ``data=synthetic`` -> ``data.root``, ``data.extra``,
    ``data.on_device``, ``data``."""
    return [str(override).split("=", 1)[0].lstrip("+~") for override in overrides]


def flatten_config(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as {"data.root": ..., "optimizer.lr": ...}: one entry per leaf (an empty mapping has none)."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten_config(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
