"""The config keys a command line names, read from Hydra's override strings."""

from __future__ import annotations

from collections.abc import Iterable


def override_keys(overrides: Iterable[str]) -> list[str]:
    """``data.root=x``, ``+data.extra=1``, ``~data.on_device``, ``data=synthetic`` -> ``data.root``, ``data.extra``,
    ``data.on_device``, ``data``."""
    return [str(override).split("=", 1)[0].lstrip("+~") for override in overrides]
