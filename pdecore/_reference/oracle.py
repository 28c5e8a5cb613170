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
            root = brentq(residual, 0.0, upper, args=(di,), xtol=1e-15, rtol=4 * np.finfo(float).eps,
                          maxiter=500)
        v.flat[i] = root
        pi.flat[i] = expit(penalty * (di - root) / temperature)
    return v, pi


def discounted_correlate_reference(values, weights):
    """``out[i] = Σ_k weights[k] values[i + k]`` (NumPy's ``correlate``, valid part)."""
    return np.correlate(np.asarray(values, dtype=float), np.asarray(weights, dtype=float), mode="valid")


def _bisect_penalty_step(d, penalty, temperature, dt, n_iter=200):
    """Vectorized bisection for ``v`` on the original equation (same bracket as the Brent twin)."""
    if temperature == 0.0:
        return np.where(d >= 0.0, min(penalty * dt, 1.0) * d, 0.0)
    low = np.zeros_like(d)
    high = dt * (penalty * np.abs(d) + temperature * np.log(2.0)) * (1.0 + 1e-12) + 1e-300
    for _ in range(n_iter):
        middle = 0.5 * (low + high)
        p = expit(penalty * (d - middle) / temperature)
        residual = middle - dt * (penalty * p * d - temperature * neg_entropy(p))
        negative = residual < 0.0
        low = np.where(negative, middle, low)
        high = np.where(negative, high, middle)
        if np.all(high - low <= 1e-15 * (1.0 + np.abs(d))):
            break
    return 0.5 * (low + high)


def stopping_oracle_reference(model, option, *, n_steps, penalty, temperature, spot, nodes_per_std=256,
                              n_std=7.0):
    """Brute-force twin of :func:`pdecore.oracle.stopping_oracle`: ``(V_0, P_stopping, P_control)``.

    Plain trapezoidal rule on a very fine uniform log grid (FFT convolution), no special treatment of
    the payoff kink or of the exercise boundary (so its error is ``O(h)``), the scalar equation by
    bisection in its original variable, and nodes outside the grid frozen at the edge values (the
    grid is wide enough for that not to matter). Slow and memory-hungry; for tests with few dates.
    """
    from scipy.signal import fftconvolve

    maturity, strike = option.maturity, option.strike
    dt = maturity / n_steps
    kdt = min(penalty * dt, 1.0)
    scale = model.volatility * np.sqrt(dt)
    drift = (model.rate - model.dividend - 0.5 * model.volatility**2) * dt
    h = scale / nodes_per_std
    reach = n_std * model.volatility * np.sqrt(maturity) + abs(drift) * n_steps
    lo = min(np.log(spot), np.log(strike)) - reach
    hi = max(np.log(spot), np.log(strike)) + reach
    y = np.arange(lo, hi + h, h)
    x = np.exp(y)
    g = option.payoff(x)
    n_kernel = int(np.ceil((abs(drift) + 9.0 * scale) / h))
    k = np.arange(-n_kernel, n_kernel + 1) * h
    density = np.exp(-0.5 * ((k - drift) / scale) ** 2) / (scale * np.sqrt(2 * np.pi))
    kernel = np.exp(-model.rate * dt) * h * density

    def expect(values):
        padded = np.concatenate([np.full(n_kernel, values[0]), values, np.full(n_kernel, values[-1])])
        return fftconvolve(padded, kernel[::-1], mode="valid")

    v_values, u_values, w_values = g.copy(), g.copy(), g.copy()
    for _ in range(n_steps):
        c = expect(v_values)
        cu = expect(u_values)
        cw = expect(w_values)
        v_values = c + _bisect_penalty_step(g - c, penalty, temperature, dt)
        exercise = (v_values <= g) & (g > 0.0)
        u_values = np.where(exercise, g, cu)
        w_values = np.where(exercise, kdt * g + (1.0 - kdt) * cw, cw)
    log_spot = np.log(spot)
    return tuple(float(np.interp(log_spot, y, values)) for values in (v_values, u_values, w_values))
