"""Checkpoint files: saved crash-safe, loaded plain.

Every local checkpoint save goes through :func:`infomatch.utils.files.atomic_write`: a kill or a full disk never
leaves a truncated last.ckpt, and a link planted in the folder is never written through.

Loading is plain too: every checkpoint load goes through :func:`load_plain` (``weights_only=True``), so no
file can run code when it is read; infomatch's checkpoints hold only tensors and plain containers.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from infomatch.utils.errors import UnsafeCheckpointError
from infomatch.utils.files import atomic_write


def load_plain(path: str | Path, map_location: Any = "cpu", **options: Any) -> Any:
    """``torch.load`` restricted to tensors and plain containers; UnsafeCheckpointError for a file that holds more."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True, **options)
    except pickle.UnpicklingError as error:
        # torch names the first global (a class or function to call) the plain loader refused
        found = re.search(r"(?i)unsupported global:? (?:GLOBAL )?([\w.]+)", str(error))
        if found is None:  # garbage or a truncated file, not a smuggled object
            raise
        raise UnsafeCheckpointError(
            f"{path}: this checkpoint holds objects that would run code when loaded (e.g. {found.group(1)}), "
            "so it is not loaded. Only load checkpoints you trust; infomatch writes plain ones (tensors, numbers, "
            "strings, lists, dicts)."
        ) from None


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local saves go through :func:`atomic_write` (remote paths keep Lightning's)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write(path, lambda handle: torch.save(checkpoint, handle))

    def load_checkpoint(self, path: _PATH, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        """Lightning's own loads (resume, test of the best checkpoint) are plain whatever its caller asks."""
        if not _is_local_file_protocol(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        return load_plain(path, map_location=map_location)
