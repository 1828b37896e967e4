"""Keep freed memory in the process instead of returning it to the OS after every batch (glibc only).

The degrade + NMI stage allocates temporaries of a few MB per batch. glibc hands blocks that large
back to the OS when they are freed, so every batch page-faults them in again; in the VMs we measured
that doubled the stage's time on CPU (docs/benchmarks.md, section 1). Raising glibc's mmap and trim
thresholds keeps the blocks in the heap for reuse. The price: the process keeps its peak memory.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 512 * 2**20
TRIM_THRESHOLD_BYTES = 2**30


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a libc without mallopt, e.g. musl
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return (bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
            and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)))
