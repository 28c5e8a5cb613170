"""Kernels of the discrete-time stopping oracle (SPEC section 2, :mod:`pdecore.oracle`).

Two kernels, each with a NumPy/SciPy twin in :mod:`pdecore._reference.oracle`:

``solve_penalty_step``
    The scalar equation of one RL date at every node. With ``d = g − C`` (exercise value minus
    continuation value) and ``v = V − C`` the equation

    .. math::

        v = Δt\\,[κ π d − λ ℋ(π)], \\qquad π = \\operatorname{sigmoid}(κ (d − v)/λ)

    is solved for ``v``. Writing ``z = d − v = g − V`` (so ``π = sigmoid(κ z/λ)``) and using
    ``κ π z − λℋ(π) = −λ log(1 − π)`` (substitute ``z = (λ/κ) logit π``), the equation becomes

    .. math::

        F(z) = z + \\frac{λ Δt\\, \\operatorname{softplus}(κ z/λ)}{1 − κΔt\\,π(z)} − d = 0,

    whose second term is ``v ≥ 0`` and increasing in ``z``; hence ``F' ≥ 1`` when ``κΔt ≤ 1`` and the
    root is unique and bracketed by ``[d − v(d), d]``. A Newton step that leaves the bracket is
    replaced by bisection (safeguarded Newton), which converges where the plain fixed point
    ``V ← C + Δt[κπ(V)(g − C) − λℋ(π(V))]`` diverges (its slope is ``≈ κΔt·κ|d|π(1−π)/λ``).
    ``λ = 0`` is the bang-bang limit ``v = κΔt d^+``, ``π = 1{d ≥ 0}``.

``discounted_correlate``
    ``out[i] = Σ_k w[k] u[i + k]``: the trapezoidal rule for ``e^{−rΔt} E[U(Y_{l+1}) | Y_l = y_i]``
    on a uniform log-spot grid, ``w[k] = e^{−rΔt} h φ_s(kh − μ)`` (a fixed Toeplitz operator because the
    log-spot transition is translation invariant).
"""

from __future__ import annotations

import math

from pdecore._kernels.functions import sigmoid, softplus
from pdecore._numba import STATUS_MAX_ITER, STATUS_NOT_FINITE, STATUS_OK, njit_kernel


@njit_kernel
def _residual(z, d, penalty, temperature, dt, kdt):
    """``F(z)`` and ``F'(z)`` of the module docstring (``kdt = min(κΔt, 1)``)."""
    u = penalty * z / temperature
    pi = sigmoid(u)
    pi_c = sigmoid(-u)  # 1 − π, accurate when π → 1
    denominator = (1.0 - kdt) + kdt * pi_c  # 1 − κΔtπ without cancellation
    softplus_u = softplus(u)
    squared = denominator * denominator
    if squared == 0.0:
        # κΔt = 1 and 1 − π below ~1e-154: v overflows. Report +inf explicitly (identical with and
        # without the JIT, where NumPy scalars would raise on the division) so the caller bisects.
        return math.inf, math.inf
    value = z + temperature * dt * softplus_u / denominator - d
    slope = 1.0 + kdt * pi * (denominator + kdt * softplus_u * pi_c) / squared
    return value, slope


@njit_kernel
def solve_penalty_step(d, penalty, temperature, dt, tol, max_iter, v_out, pi_out):
    """Solve the scalar equation of one RL date at every node (see module docstring).

    Parameters
    ----------
    d : float64[n]
        ``g − C`` at each node.
    penalty, temperature, dt : float
        κ > 0, λ ≥ 0 and Δt > 0 with ``κΔt ≤ 1``.
    tol : float
        Tolerance on ``z`` relative to ``1 + max(|d|, |lower bracket end|)``.
    max_iter : int
        Newton/bisection iterations allowed per node.
    v_out, pi_out : float64[n]
        Receive ``v = V − C`` and the stopping probability ``π``.

    Returns
    -------
    (int, int)
        Status (``STATUS_OK``, ``STATUS_MAX_ITER`` or ``STATUS_NOT_FINITE``) and the largest number
        of iterations used at any node.
    """
    n = d.shape[0]
    worst = 0
    # kappa*dt = 1 up to rounding is the admissible (Bermudan) edge: never let 1 − κΔt go negative.
    kdt = min(penalty * dt, 1.0)
    v_half = temperature * dt * math.log(2.0) / (1.0 - 0.5 * kdt)
    if temperature == 0.0:
        for i in range(n):
            if d[i] >= 0.0:
                v_out[i] = kdt * d[i]
                pi_out[i] = 1.0
            else:
                v_out[i] = 0.0
                pi_out[i] = 0.0
        return STATUS_OK, worst
    for i in range(n):
        di = d[i]
        if not math.isfinite(di):
            return STATUS_NOT_FINITE, worst
        # === Bracket: F(d) = v(d) >= 0 (possibly +inf when κΔt = 1), and for z <= 0 we have π <= ½ so
        # v(z) <= v_half = λΔt log 2/(1 − κΔt/2); hence F(min(0, d − v_half)) <= 0 === #
        high = di
        low = min(0.0, di - v_half)
        z = high
        # Safeguarded Newton (Numerical Recipes' rtsafe rule): take the Newton step only if it stays
        # inside the bracket and is less than half the step before last; otherwise bisect. This
        # keeps the quadratic rate near the root and guarantees the bisection rate far from it
        # (at κΔt ≈ 1, F grows like e^{κz/λ} and plain Newton would crawl by λ/κ per step).
        # The tolerance is relative to the size of the bracket, not only of d: for a large λΔt the root
        # z ≈ d − v sits near −v_half ≫ |d|, where the spacing of doubles (≈ 2.2e-16·|z|) exceeds
        # tol·(1 + |d|) and bisection could never close the bracket (κ = 0.1, λ = 10, κΔt = 1, d ≈ 0).
        scale = tol * (1.0 + max(abs(di), abs(low)))
        previous_step = high - low
        converged = False
        for it in range(max_iter):
            f, slope = _residual(z, di, penalty, temperature, dt, kdt)
            if f == 0.0:
                converged = True
                worst = max(worst, it + 1)
                break
            if f < 0.0:
                low = z
            else:  # positive, +inf (v overflowed) or NaN: the root lies below
                high = z
            newton_ok = math.isfinite(f) and math.isfinite(slope) and slope > 0.0
            if newton_ok and abs(f / slope) <= scale:
                # Converged: the last Newton step is below the tolerance (accepted even if rounding
                # puts it on a bracket end).
                z = min(max(z - f / slope, low), high)
                converged = True
                worst = max(worst, it + 1)
                break
            if newton_ok:
                candidate = z - f / slope
                newton_ok = low < candidate < high and abs(2.0 * f) <= abs(previous_step * slope)
            if newton_ok:
                previous_step = abs(candidate - z)
                z = candidate
                if previous_step <= scale:
                    converged = True
                    worst = max(worst, it + 1)
                    break
            else:
                previous_step = high - low
                z = 0.5 * (low + high)
                if high - low <= scale:
                    converged = True
                    worst = max(worst, it + 1)
                    break
        if not converged:
            return STATUS_MAX_ITER, max_iter
        v_out[i] = di - z
        pi_out[i] = sigmoid(penalty * z / temperature)
    return STATUS_OK, worst


@njit_kernel
def discounted_correlate(values, weights, out):
    """``out[i] = Σ_k weights[k] values[i + k]`` for ``i < len(values) − len(weights) + 1``.

    Parameters
    ----------
    values : float64[m]
        Function values on the padded uniform grid.
    weights : float64[2p+1]
        Discounted trapezoidal weights of the Gaussian transition density.
    out : float64[m − 2p]
        Receives the discounted conditional expectation at the interior nodes.

    Returns
    -------
    int
        ``STATUS_OK``.
    """
    n_weights = weights.shape[0]
    for i in range(out.shape[0]):
        total = 0.0
        for k in range(n_weights):
            total += weights[k] * values[i + k]
        out[i] = total
    return STATUS_OK
