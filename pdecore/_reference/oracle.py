"""NumPy/SciPy twins of :mod:`pdecore._kernels.oracle`, used by the tests.

They solve the same problems by different routes, so that agreement is evidence rather than a
tautology:

* :func:`solve_penalty_step_reference` solves the scalar equation of SPEC section 2 in its original
  variable ``v = V − C``, ``v = Δt[κπd − λℋ(π)]`` with ``π = sigmoid(κ(d − v)/λ)``, by Brent's method
  (``scipy.optimize.brentq``) on the bracket ``[0, Δt(κ|d| + λ log 2)]``: at ``v = 0`` the residual is
  ``−Δt·(−λ log(1 − π)) ≤ 0`` and at the upper end it is ``≥ 0`` because ``κπd − λℋ(π) ≤ κ|d| + λ log 2``.
  No change of variables and no closed form of the kernel are used.
* :func:`discounted_correlate_reference` is :func:`numpy.correlate` in ``"valid"`` mode.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, xlogy


def neg_entropy(pi):
    """``ℋ(π) = π log π + (1 − π) log(1 − π)`` (SPEC notation), 0 at ``π ∈ {0, 1}``."""
    pi = np.asarray(pi, dtype=float)
    return xlogy(pi, pi) + xlogy(1.0 - pi, 1.0 - pi)


def solve_penalty_step_reference(d, penalty, temperature, dt):
    """``(v, π)`` at every entry of ``d`` by Brent's method on the original equation."""
    d = np.asarray(d, dtype=float)
    v = np.empty_like(d)
    pi = np.empty_like(d)
    if temperature == 0.0:
        exercise = d >= 0.0
        return np.where(exercise, penalty * dt * d, 0.0), exercise.astype(float)

    def residual(value, di):
        p = expit(penalty * (di - value) / temperature)
        return value - dt * (penalty * p * di - temperature * neg_entropy(p))

    for i, di in enumerate(d.ravel()):
        upper = dt * (penalty * abs(di) + temperature * np.log(2.0)) * (1.0 + 1e-12) + 1e-300
        if residual(0.0, di) >= 0.0:
            root = 0.0
        else:
            root = brentq(residual, 0.0, upper, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
        v.flat[i] = root
        pi.flat[i] = expit(penalty * (di - root) / temperature)
    return v, pi


def discounted_correlate_reference(values, weights):
    """``out[i] = Σ_k weights[k] values[i + k]`` (NumPy's ``correlate``, valid part)."""
    return np.correlate(np.asarray(values, dtype=float), np.asarray(weights, dtype=float), mode="valid")
