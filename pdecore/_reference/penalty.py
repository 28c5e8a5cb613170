"""NumPy/SciPy twin of :func:`pdecore._kernels.penalty.penalty_march`.

Same equation, same modes, same iteration and stopping rules, written with whole-array expressions,
``scipy.sparse`` assembly and ``spsolve`` so that it can be read against the module docstring of
:mod:`pdecore._kernels.penalty`. Used only by the tests.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from pdecore._kernels.penalty import MODE_FINITE, MODE_HARD, MODE_SOFTPLUS
from pdecore._numba import STATUS_MAX_ITER, STATUS_NOT_FINITE, STATUS_OK


def _softplus(z):
    """``log(1 + e^z)`` as ``max(z, 0) + log1p(e^{−|z|})``: no overflow for any finite ``z``."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(z):
    """Logistic ``1/(1 + e^{−z})`` from ``e^{−|z|}`` only, so that no exponential overflows."""
    # exp of a non-positive argument only: no overflow
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def obstacle_term_reference(v, lower_obs, upper_obs, has_upper, mode, penalty, temperature):
    """The obstacle term and its Newton weight, as whole arrays.

    Parameters
    ----------
    v, lower_obs, upper_obs : float64[n]
        Iterate and obstacles ``ℓ``, ``u`` at the new time level.
    has_upper : bool
    mode : int
        ``MODE_HARD``, ``MODE_FINITE`` or ``MODE_SOFTPLUS``.
    penalty, temperature : float
        κ and λ.

    Returns
    -------
    f : float64[n]
        ``κ(ℓ − v)^+ − κ(v − u)^+`` (finite), ``λ sp(κ(ℓ − v)/λ) − λ sp(κ(v − u)/λ)`` (softplus),
        0 (hard).
    slope : float64[n]
        ``−f'(v) ≥ 0``; in hard mode the indicator of the violated sets (scaled by ``Large`` by the
        caller).
    """
    if mode == MODE_SOFTPLUS:
        z = penalty * (lower_obs - v) / temperature
        f = temperature * _softplus(z)
        slope = penalty * _sigmoid(z)
        if has_upper:
            z = penalty * (v - upper_obs) / temperature
            f = f - temperature * _softplus(z)
            slope = slope + penalty * _sigmoid(z)
        return f, slope
    scale = 1.0 if mode == MODE_HARD else penalty
    below = lower_obs - v > 0
    f = np.where(below, penalty * (lower_obs - v), 0.0) if mode == MODE_FINITE else np.zeros_like(v)
    slope = scale * below.astype(float)
    if has_upper:
        above = v - upper_obs > 0
        if mode == MODE_FINITE:
            f = f - np.where(above, penalty * (v - upper_obs), 0.0)
        slope = slope + scale * above.astype(float)
    return f, slope


def penalty_march_reference(lower, diag, upper, initial, dtau, weights, levels, lower_obstacle,
                            upper_obstacle, has_upper, source, has_source, mode, penalty, temperature,
                            tol, max_iter):
    """The penalty Newton march written with ``scipy.sparse`` and ``spsolve``.

    Every argument has the meaning, shape and convention documented in
    :func:`pdecore._kernels.penalty.penalty_march`: generator bands, initial data, sub-step sizes and
    implicit weights, stored levels, obstacles and source per sub-step time point (or ``(1, n)``
    constants), mode, κ, λ, ``tol`` and ``max_iter``. The iteration is the same one, step for step:

    * hard mode: penalty sets carried from step to step; ``(A + Large(P_ℓ + P_u)) v = b + Large(P_ℓ ℓ +
      P_u u)``; penalized nodes keep their set while the sign of the force ``A v − b`` says so;
    * finite and softplus modes: ``(A + w_pΔτD) v_new = b + w_pΔτ(f(v) + D v)`` with ``D = −f'(v)``,
      and the obstacle term θ-weighted only while ``(1 − w)Δτκ ≤ 1``;
    * stop when the relative change is at most ``tol`` or (piecewise-linear modes) the sets repeat.

    Returns
    -------
    status : int
        As the kernel's status codes.
    failing_step : int
        ``-1`` on success.
    values : float64[L, n]
        Solutions at the stored levels.
    iterations : int64[m]
        Linear solves per sub-step.
    changes : float64[m]
        Last relative change per sub-step.
    """
    n = len(initial)
    m = len(dtau)
    gen = sparse.diags([lower[1:], diag, upper[:-1]], [-1, 0, 1], shape=(n, n), format="csr")
    eye = sparse.identity(n, format="csr")
    large = 1.0 / tol
    row = lambda arr, k: arr[0] if arr.shape[0] == 1 else arr[k]  # noqa: E731
    values = np.zeros((len(levels), n))
    iterations = np.zeros(m, dtype=np.int64)
    changes = np.zeros(m)
    v = np.array(initial, dtype=float)
    stored = 0
    while stored < len(levels) and levels[stored] < 0:
        values[stored] = v
        stored += 1
    for k in range(m):
        h, w = dtau[k], weights[k]
        rhs = v + (1 - w) * h * (gen @ v)
        # obstacle term θ-weighted only while the explicit part is monotone (see the kernel)
        wp = 1.0 if (mode == MODE_HARD or (1 - w) * h * penalty > 1.0) else w
        if wp < 1.0:
            f_old, _ = obstacle_term_reference(v, row(lower_obstacle, k), row(upper_obstacle, k), has_upper,
                                               mode, penalty, temperature)
            rhs = rhs + (1 - wp) * h * f_old
        if has_source:
            rhs = rhs + h * ((1 - w) * row(source, k) + w * row(source, k + 1))
        obs_l, obs_u = row(lower_obstacle, k + 1), row(upper_obstacle, k + 1)
        system = (eye - w * h * gen).tocsr()
        if mode == MODE_HARD:
            if k == 0:  # later steps start from the previous step's sets
                act_low = (v < obs_l).astype(float)
                act_up = ((v > obs_u) & (act_low == 0)).astype(float) if has_upper else np.zeros(n)
        else:
            f, slope = obstacle_term_reference(v, obs_l, obs_u, has_upper, mode, penalty, temperature)
        converged, change, it = False, np.inf, 0
        while it < max_iter:
            it += 1
            if mode == MODE_HARD:
                matrix = system + sparse.diags(large * (act_low + act_up))
                v_new = spsolve(matrix.tocsc(), rhs + large * (act_low * obs_l + act_up * obs_u))
            else:
                d = wp * h * slope
                matrix = system + sparse.diags(d)
                v_new = spsolve(matrix.tocsc(), rhs + wp * h * f + d * v)
            if not np.all(np.isfinite(v_new)):
                iterations[k], changes[k] = it, change
                return STATUS_NOT_FINITE, k, values, iterations, changes
            change = float(np.max(np.abs(v_new - v) / np.maximum(1.0, np.abs(v_new))))
            v = v_new
            if mode == MODE_HARD:
                # penalized nodes: sign of the penalty force (I - w h L) v - rhs (see the kernel)
                force = system @ v - rhs
                free = (act_low == 0) & (act_up == 0)
                new_low = np.where(act_low > 0, force > 0, free & (v < obs_l)).astype(float)
                new_up = np.where(act_up > 0, force < 0, free & (new_low == 0) & has_upper & (v > obs_u))
                new_up = new_up.astype(float)
                same = np.array_equal(new_low, act_low) and np.array_equal(new_up, act_up)
                act_low, act_up = new_low, new_up
            else:
                slope_prev = slope
                f, slope = obstacle_term_reference(v, obs_l, obs_u, has_upper, mode, penalty, temperature)
                same = mode == MODE_FINITE and np.array_equal(slope, slope_prev)
            if change <= tol or same:
                converged = True
                break
        iterations[k], changes[k] = it, change
        if not converged:
            return STATUS_MAX_ITER, k, values, iterations, changes
        while stored < len(levels) and levels[stored] <= k:
            values[stored] = v
            stored += 1
    return STATUS_OK, -1, values, iterations, changes
