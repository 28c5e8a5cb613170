"""Seed derivation shared by the learners of :mod:`rl`."""

from __future__ import annotations

import numpy as np

__all__ = ["derive_seeds"]


def derive_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent 63-bit seeds derived from one ``seed`` (NumPy's ``SeedSequence``).

    One user-facing seed feeds several generators (training paths, network initialisation, ...); drawing
    their seeds from a ``SeedSequence`` rather than ``seed + i`` keeps the streams statistically
    independent (NumPy's guidance on parallel streams) and identical across runs, so "same seed, same
    weights" and bit-exact resume hold. Masked to 63 bits because ``torch.Generator.manual_seed`` takes a
    signed 64-bit integer.
    """
    state = np.random.SeedSequence(seed).generate_state(count, dtype=np.uint64)
    return [int(s) & (2**63 - 1) for s in state]
