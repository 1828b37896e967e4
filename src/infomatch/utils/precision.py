"""What a device computes well: the widest float it has (for integer decisions and sums that must match float64
references), and the CPU features that decide precision and memory layout."""

from __future__ import annotations

import platform
from pathlib import Path

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


def read_cpuinfo() -> str:
    """/proc/cpuinfo, or "" off Linux."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (``cpuinfo`` stands in for it in tests); empty off Linux."""
    return set((read_cpuinfo() if cpuinfo is None else cpuinfo).split())


def cpu_model_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name from /proc/cpuinfo (``cpuinfo`` stands in for it in tests), else the platform's."""
    for line in (read_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX-512 BF16); elsewhere torch emulates it, 8-20x slower.

    Read from the CPU flags in /proc/cpuinfo (``cpuinfo`` stands in for it in tests).
    """
    flags = cpu_flags(cpuinfo)  # none off Linux: assume emulation
    return "amx_bf16" in flags or "avx512_bf16" in flags


def channels_last_is_safe(device: torch.device, flags: set[str] | None = None) -> bool:
    """channels_last convolutions: faster on GPUs and on AVX-512 CPUs (docs/benchmarks.md, section 6). On CPUs
    with only AVX2, oneDNN's channels_last kernels hung or crashed ("double free or corruption") at width 4 on an
    AMD EPYC (2026-12-02), so those keep the contiguous layout."""
    if device.type != "cpu":
        return True
    return "avx512f" in (cpu_flags() if flags is None else flags)
