"""Seeds derived from (run seed, epoch, rank, ...) so no random state is shared across workers or ranks."""

from __future__ import annotations


def mix_seed(*parts: int) -> int:
    """Deterministic 63-bit seed from integer parts; different parts give unrelated streams."""
    seed = 0x9E3779B97F4A7C15
    for part in parts:
        seed = (seed * 6364136223846793005 + int(part) + 1442695040888963407) % (1 << 63)
    return seed
