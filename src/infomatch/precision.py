"""The widest float a device has, for the integer decisions and sums that must match float64 references."""

from __future__ import annotations

import torch
from torch import Tensor


def wide_dtype(device: torch.device) -> torch.dtype:
    """float64, or float32 on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def wide_float(t: Tensor) -> Tensor:
    """``t`` in the widest float its device has.

    Integer decisions (timestep, kernel size, block size, kept patches) are taken in float64 so they
    agree with the reference, which computes them from Python floats.
    """
    return t.to(wide_dtype(t.device))
