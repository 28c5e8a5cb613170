"""Kernel of :meth:`pdecore.schemes.ThetaScheme.time_steps`: graded levels with Rannacher half-steps.

Levels ``τ_n = T (n/N)^p``, ``n = 0..N``; the first ``split`` steps are each taken as two implicit-Euler
half-steps (weight 1), the others with the scheme's weight. ``levels[n]`` is the sub-step after which
level ``n`` is reached (``-1`` for ``τ_0 = 0``). One kernel call instead of a dozen NumPy calls: every
American solve builds two time grids.
"""

from __future__ import annotations

from pdecore._numba import njit_kernel


@njit_kernel
def graded_theta_steps(horizon, n_steps, grading, split, implicit_weight, dtau_out, weights_out, levels_out):
    """Fill ``dtau_out, weights_out`` (``n_steps + split`` sub-steps) and ``levels_out`` (``n_steps + 1``)."""
    levels_out[0] = -1
    sub = 0
    previous = 0.0
    for n in range(n_steps):
        level = horizon * ((n + 1) / n_steps) ** grading
        h = level - previous
        previous = level
        if n < split:
            dtau_out[sub] = 0.5 * h
            dtau_out[sub + 1] = 0.5 * h
            weights_out[sub] = 1.0
            weights_out[sub + 1] = 1.0
            sub += 2
        else:
            dtau_out[sub] = h
            weights_out[sub] = implicit_weight
            sub += 1
        levels_out[n + 1] = sub - 1
