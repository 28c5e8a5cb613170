"""Learning-rate schedules shared by the learners of :mod:`rl`.

One implementation per schedule, so that the stopping and the Dynkin learners (and their resume tests,
which compare weights bit for bit) evaluate the same floating-point expression.
"""

from __future__ import annotations

import math

__all__ = ["cosine_learning_rate"]


def cosine_learning_rate(update: int, *, learning_rate: float, decay_updates: int, final_fraction: float) -> float:
    r"""Step size of update number ``update`` (0-based) under cosine decay without restarts.

    .. math::

        η_k = η\,\Bigl[f + (1 − f)\,\tfrac12\bigl(1 + \cos(π \min(k/K, 1))\bigr)\Bigr],

    from ``η`` at ``k = 0`` to ``f η`` at ``k = K`` and constant afterwards (Loshchilov & Hutter 2017,
    "SGDR", without restarts); constant ``η`` when ``K = 0`` (no decay). Why cosine: it keeps the step
    near ``η`` for the early updates, where the martingale losses move fast, and anneals it smoothly so
    that the t = 0 boundaries read at the end are not dominated by the last minibatches' noise.

    Parameters
    ----------
    update : int
        ``k`` (updates already taken).
    learning_rate : float
        ``η``.
    decay_updates : int
        ``K``; 0 or None disables the decay.
    final_fraction : float
        ``f``, the fraction of ``η`` reached at ``K``.
    """
    if not decay_updates:
        return learning_rate
    progress = min(update / decay_updates, 1.0)
    fraction = final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return learning_rate * fraction
