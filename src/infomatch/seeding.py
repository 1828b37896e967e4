"""Seeds derived from the run seed, so no random draw depends on global RNG state shared across workers or ranks."""

from __future__ import annotations


def mix_seed(*parts: int) -> int:
    """Deterministic seed from (run seed, epoch, rank, ...)."""
    seed = 0x9E3779B97F4A7C15
    for part in parts:
        seed = (seed * 6364136223846793005 + int(part) + 1442695040888963407) % (1 << 63)
    return seed
