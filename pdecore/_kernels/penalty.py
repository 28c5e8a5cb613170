"""Penalty Newton time-march for one- and two-sided obstacle problems (the shared engine of the
American and Dynkin/Merton solvers).

Problem
-------
In time-to-go ``τ`` (``τ = 0`` is the terminal date) the solvers march

.. math::

    v_τ = 𝓛 v + s + f(v), \\qquad v(0) = v_0,

with ``𝓛`` a tridiagonal generator (:func:`pdecore._kernels.operator.build_generator`), ``s`` an
optional source and ``f`` the obstacle term for a lower obstacle ``ℓ`` and an optional upper obstacle
``u`` (``ℓ ≤ u``). Three modes (module constants):

* ``MODE_HARD`` — the variational inequality ``min{max{v_τ − 𝓛v − s, ℓ − v}, u − v}``-type problem
  ``ℓ ≤ v ≤ u`` enforced by the Forsyth–Vetzal penalty with ``Large = 1/tol`` (the ``penalty``
  argument is ignored). The obstacle term is fully implicit in every step (it is a constraint, not a
  reaction): step ``n → n+1`` solves

  .. math::

      [I − wΔτ𝓛 + P_ℓ + P_u] v = [I + (1−w)Δτ𝓛] v^n + Δτ s^{n+w} + P_ℓ ℓ^{n+1} + P_u u^{n+1},

  ``(P_ℓ)_{ii} = Large`` where ``v_i < ℓ_i``, ``(P_u)_{ii} = Large`` where ``v_i > u_i``, iterated until
  the penalty sets stop changing or the relative change ``max_i |Δv_i| / max(1, |v_i|) ≤ tol``
  (Forsyth & Vetzal 2002, SIAM J. Sci. Comput. 23(6), Algorithm "Penalty American constraint
  iteration", eq. (3.4)). Each step starts from the previous step's final sets. A penalized node
  stays penalized while its penalty force ``Large(ℓ − v)`` keeps its sign, the force being computed
  as the residual of the unpenalized row, free of the round-off in ``v − ℓ = O(1/Large)`` that
  otherwise makes the sets cycle (see :func:`_update_hard_sets`).
* ``MODE_FINITE`` — the penalized PDE with finite factor κ (``penalty``):
  ``f(v) = κ(ℓ − v)^+ − κ(v − u)^+`` (stopping paper eq. 2.5; SPEC sections 1 and 4). ``f`` is part
  of the equation, so it is θ-weighted: the step solves
  ``[I − wΔτ𝓛] v − w_pΔτ f(v) = [I + (1−w)Δτ𝓛] v^n + (1−w_p)Δτ f^n(v^n) + Δτ s^{n+w}`` with
  ``w_p = w`` while ``(1 − w)Δτκ ≤ 1`` and ``w_p = 1`` otherwise. Crank–Nicolson on the stiff
  reaction ``κ(ℓ − v)^+`` has the amplification ``(1 − κΔτ/2)/(1 + κΔτ/2) → −1``: beyond that bound it
  oscillates and breaks the discrete comparison principle (``V^κ ≤ V^VI``, monotonicity in κ), so the
  term is then fully implicit, as in Forsyth & Vetzal's scheme (SPEC section 1); below it the
  weighting keeps second order in time (needed for the 2e-4 accuracy of SPEC's table). ``f`` is
  piecewise linear, so Newton (= policy iteration on the two penalty sets) terminates finitely when
  the sets stop changing.
* ``MODE_SOFTPLUS`` — the exploratory (entropy-regularized) HJB with temperature λ:
  ``f(v) = λ log(1 + e^{κ(ℓ − v)/λ}) − λ log(1 + e^{κ(v − u)/λ})`` (SPEC sections 1 and 4), θ-weighted
  like the finite mode. Newton derivative ``f'(v) = −κ σ(κ(ℓ−v)/λ) − κ σ(κ(v−u)/λ)`` with σ the
  logistic sigmoid (smooth: quadratic convergence); stops when the relative change ≤ ``tol``.
  Both softplus and sigmoid are evaluated in overflow-free forms.

Sign convention: ``𝓛`` is the generator itself (non-positive diagonal for ``c ≤ 0``), so
``I − wΔτ𝓛`` is an M-matrix; the Black–Scholes operator is ``𝓛V = ½σ²S²V_SS + (r−q)SV_S − rV``.

Time levels and time-dependent data
-----------------------------------
The march takes ``m`` sub-steps of sizes ``dtau[k]`` with implicit weights ``weights[k]``
(:meth:`pdecore.schemes.ThetaScheme.time_steps`, Rannacher half-steps already split). Time-dependent
arrays (obstacles, source) are given **per sub-step time point**: shape ``(m + 1, n)`` where row ``k`` is
the value at ``τ_k = dtau[0] + … + dtau[k−1]`` (row 0 at ``τ = 0``, row ``m`` at the horizon). A
time-independent array is passed with shape ``(1, n)`` and is used for every ``τ``. Solutions are
stored only at the requested levels: ``levels[j]`` is the sub-step index after which level ``j`` is
reached (``-1`` = the initial data), as returned by ``ThetaScheme.time_steps``.
"""

from __future__ import annotations

import math

import numpy as np

from pdecore._kernels.functions import sigmoid, softplus
from pdecore._kernels.tridiagonal import thomas_solve
from pdecore._numba import STATUS_MAX_ITER, STATUS_NOT_FINITE, STATUS_OK, njit_kernel

MODE_HARD = 0
"""Variational inequality, penalty ``Large = 1/tol`` (``penalty`` ignored)."""
MODE_FINITE = 1
"""Penalized PDE with finite factor κ = ``penalty``: exact piecewise-linear term."""
MODE_SOFTPLUS = 2
"""Exploratory softplus HJB with factor κ = ``penalty`` and temperature λ = ``temperature`` > 0."""

MODE_NAMES = {MODE_HARD: "hard", MODE_FINITE: "finite", MODE_SOFTPLUS: "softplus"}


@njit_kernel
def obstacle_term(v, lower_obs, upper_obs, has_upper, mode, penalty, temperature, out_f, out_slope):
    """Evaluate the obstacle term ``f(v)`` and ``−f'(v) ≥ 0`` (the diagonal Newton weight) pointwise.

    For ``MODE_HARD`` this returns ``out_f = 0`` and ``out_slope`` = the indicator of the violated set
    (``1`` where ``v < ℓ`` or ``v > u``), which the caller scales by ``Large``. For ``MODE_FINITE``:
    ``f = κ(ℓ−v)^+ − κ(v−u)^+``, slope ``κ·1{v<ℓ} + κ·1{v>u}``. For ``MODE_SOFTPLUS``:
    ``f = λ sp(κ(ℓ−v)/λ) − λ sp(κ(v−u)/λ)``, slope ``κ σ(κ(ℓ−v)/λ) + κ σ(κ(v−u)/λ)``.

    Returns the number of nodes in the (hard/finite) active sets, or the number of nodes with a
    stopping probability ≥ ½ (softplus).
    """
    n = v.shape[0]
    n_active = 0
    for i in range(n):
        f = 0.0
        slope = 0.0
        gap_low = lower_obs[i] - v[i]
        if mode == MODE_SOFTPLUS:
            z = penalty * gap_low / temperature
            f += temperature * softplus(z)
            slope += penalty * sigmoid(z)
            if z >= 0.0:
                n_active += 1
            if has_upper:
                z = penalty * (v[i] - upper_obs[i]) / temperature
                f -= temperature * softplus(z)
                slope += penalty * sigmoid(z)
                if z >= 0.0:
                    n_active += 1
        else:
            scale = 1.0 if mode == MODE_HARD else penalty
            if gap_low > 0.0:
                if mode == MODE_FINITE:
                    f += penalty * gap_low
                slope += scale
                n_active += 1
            if has_upper:
                gap_up = v[i] - upper_obs[i]
                if gap_up > 0.0:
                    if mode == MODE_FINITE:
                        f -= penalty * gap_up
                    slope += scale
                    n_active += 1
        out_f[i] = f
        out_slope[i] = slope
    return n_active


@njit_kernel
def penalty_march(lower, diag, upper, initial, dtau, weights, levels, lower_obstacle, upper_obstacle,
                  has_upper, source, has_source, mode, penalty, temperature, tol, max_iter,
                  values_out, iterations_out, changes_out):
    """March ``v_τ = 𝓛v + s + f(v)`` through all sub-steps with a penalty Newton solve per step.

    See the module docstring for the equation, the modes and the time-level conventions.

    Parameters
    ----------
    lower, diag, upper : float64[n]
        Bands of the generator 𝓛 (``lower[i]`` multiplies ``v[i−1]``), time-independent.
    initial : float64[n]
        ``v`` at ``τ = 0``.
    dtau, weights : float64[m]
        Sub-step sizes and implicit weights ``w ∈ [½, 1]``.
    levels : int64[L]
        Sub-step index after which stored level ``j`` is reached; ``-1`` stores ``initial``.
        Must be non-decreasing.
    lower_obstacle : float64[m + 1, n] or float64[1, n]
        ``ℓ`` per sub-step time point (or constant).
    upper_obstacle : float64[m + 1, n] or float64[1, n]
        ``u`` (ignored unless ``has_upper``; pass any ``(1, n)`` array then).
    has_upper : bool
        Whether the upper obstacle is active (Dynkin games).
    source : float64[m + 1, n] or float64[1, n]
        Source ``s`` (ignored unless ``has_source``), θ-weighted like 𝓛.
    has_source : bool
    mode : int
        ``MODE_HARD``, ``MODE_FINITE`` or ``MODE_SOFTPLUS``.
    penalty : float
        κ > 0 (finite and softplus modes).
    temperature : float
        λ > 0 (softplus mode).
    tol : float
        Relative-change tolerance; in hard mode also ``Large = 1/tol``.
    max_iter : int
        Newton iterations allowed per sub-step.
    values_out : float64[L, n]
        Receives the solution at each stored level.
    iterations_out : int64[m]
        Receives the Newton iterations (linear solves) of each sub-step.
    changes_out : float64[m]
        Receives the last relative change of each sub-step (a convergence diagnostic).

    Returns
    -------
    status : int
        ``STATUS_OK``, ``STATUS_MAX_ITER``, ``STATUS_SINGULAR`` or ``STATUS_NOT_FINITE``.
    failing_step : int
        Sub-step index where the failure happened, ``-1`` on success.
    """
    n = initial.shape[0]
    m = dtau.shape[0]
    n_levels = levels.shape[0]
    large = 1.0 / tol  # Forsyth-Vetzal: penalty error O(1/Large) matches the iteration tolerance
    # scratch, allocated once (never inside the time loop)
    v = initial.copy()
    v_new = np.empty(n)
    rhs = np.empty(n)
    rhs_it = np.empty(n)
    f_val = np.empty(n)
    slope = np.empty(n)
    slope_prev = np.empty(n)
    sys_lower = np.empty(n)
    sys_diag = np.empty(n)
    sys_upper = np.empty(n)
    work = np.empty(n)
    act_low = np.zeros(n)
    act_up = np.zeros(n)
    const_low = lower_obstacle.shape[0] == 1
    const_up = upper_obstacle.shape[0] == 1
    const_src = source.shape[0] == 1

    level = 0
    while level < n_levels and levels[level] < 0:
        values_out[level, :] = v
        level += 1

    for k in range(m):
        h = dtau[k]
        w = weights[k]
        row_old_l = 0 if const_low else k
        row_new_l = 0 if const_low else k + 1
        row_old_u = 0 if const_up else k
        row_new_u = 0 if const_up else k + 1
        obs_l_new = lower_obstacle[row_new_l]
        obs_u_new = upper_obstacle[row_new_u]

        # weight of the obstacle term: θ-weighted like 𝓛 while the explicit part stays monotone
        # ((1 − w) h κ ≤ 1), fully implicit otherwise (and always in hard mode)
        wp = w
        if mode == MODE_HARD or (1.0 - w) * h * penalty > 1.0:
            wp = 1.0

        # === explicit part: rhs = [I + (1-w)h𝓛] v^n + (1-wp)h f^n(v^n) + h s^{n+w} === #
        ew = (1.0 - w) * h
        for i in range(n):
            acc = v[i] + ew * diag[i] * v[i]
            if i > 0:
                acc += ew * lower[i] * v[i - 1]
            if i < n - 1:
                acc += ew * upper[i] * v[i + 1]
            rhs[i] = acc
        if wp < 1.0:
            obstacle_term(v, lower_obstacle[row_old_l], upper_obstacle[row_old_u], has_upper, mode,
                          penalty, temperature, f_val, slope)
            for i in range(n):
                rhs[i] += (1.0 - wp) * h * f_val[i]
        if has_source:
            r_old = 0 if const_src else k
            r_new = 0 if const_src else k + 1
            for i in range(n):
                rhs[i] += h * ((1.0 - w) * source[r_old, i] + w * source[r_new, i])

        # implicit operator bands (penalty added on the diagonal per iteration)
        ih = w * h
        for i in range(n):
            sys_lower[i] = -ih * lower[i]
            sys_upper[i] = -ih * upper[i]

        # === Newton / penalty iteration, initial guess v^n === #
        if mode == MODE_HARD:
            if k == 0:
                for i in range(n):
                    act_low[i] = 1.0 if v[i] < obs_l_new[i] else 0.0
                    act_up[i] = 1.0 if (has_upper and act_low[i] == 0.0 and v[i] > obs_u_new[i]) else 0.0
            # k > 0: the previous step's final penalty sets are the initial guess
        else:
            obstacle_term(v, obs_l_new, obs_u_new, has_upper, mode, penalty, temperature, f_val, slope)
        converged = False
        change = np.inf
        it = 0
        while it < max_iter:
            it += 1
            # finite/softplus, linearized:  (M + whD) v_new = rhs + wh (f(v) + D v),  D = −f'(v) ≥ 0;
            # hard:  (M + Large (P_l + P_u)) v_new = rhs + Large (P_l ℓ + P_u u)
            for i in range(n):
                if mode == MODE_HARD:
                    sys_diag[i] = 1.0 - ih * diag[i] + large * (act_low[i] + act_up[i])
                    rhs_it[i] = rhs[i] + large * (act_low[i] * obs_l_new[i] + act_up[i] * obs_u_new[i])
                else:
                    d = wp * h * slope[i]
                    sys_diag[i] = 1.0 - ih * diag[i] + d
                    rhs_it[i] = rhs[i] + wp * h * f_val[i] + d * v[i]
            status = thomas_solve(sys_lower, sys_diag, sys_upper, rhs_it, v_new, work)
            if status != STATUS_OK:
                iterations_out[k] = it
                changes_out[k] = change
                return status, k
            change = 0.0
            for i in range(n):
                if not math.isfinite(v_new[i]):
                    iterations_out[k] = it
                    changes_out[k] = change
                    return STATUS_NOT_FINITE, k
                rel = abs(v_new[i] - v[i]) / max(1.0, abs(v_new[i]))
                if rel > change:
                    change = rel
            for i in range(n):
                v[i] = v_new[i]
            same = True
            if mode == MODE_HARD:
                same = _update_hard_sets(v, rhs, diag, sys_lower, sys_upper, ih, obs_l_new, obs_u_new,
                                         has_upper, act_low, act_up)
            else:
                for i in range(n):
                    slope_prev[i] = slope[i]
                obstacle_term(v, obs_l_new, obs_u_new, has_upper, mode, penalty, temperature, f_val, slope)
                if mode == MODE_FINITE:
                    for i in range(n):
                        if slope[i] != slope_prev[i]:
                            same = False
                            break
                else:
                    same = False  # smooth: only the change criterion applies
            # piecewise-linear penalty: identical sets ⇒ v solves the step exactly
            if change <= tol or same:
                converged = True
                break
        iterations_out[k] = it
        changes_out[k] = change
        if not converged:
            return STATUS_MAX_ITER, k
        while level < n_levels and levels[level] <= k:
            values_out[level, :] = v
            level += 1
    return STATUS_OK, -1


@njit_kernel
def _update_hard_sets(v, rhs, diag, sys_lower, sys_upper, implicit_dt, obs_low, obs_up, has_upper,
                      act_low, act_up):
    """Update the hard-mode penalty sets in place; return whether they are unchanged.

    A free node joins the lower (upper) set when ``v < ℓ`` (``v > u``). For a penalized node the test
    ``v < ℓ`` is ill-conditioned: ``v − ℓ = O(1/Large)`` is at the level of round-off, and testing it
    makes the iteration cycle (a node whose free value lies ``Δτ·rℓ`` below ``ℓ`` rounds to ``v = ℓ``
    when penalized, leaves, falls below, re-enters, ...). In exact arithmetic the same test is the sign
    of the penalty force ``Large·(ℓ − v) = ((I − wΔτ𝓛) v − rhs)_i``, which is computed without that
    cancellation; penalized nodes use it instead (lower: force > 0; upper: force < 0).
    """
    n = v.shape[0]
    same = True
    for i in range(n):
        force = (1.0 - implicit_dt * diag[i]) * v[i] - rhs[i]
        if i > 0:
            force += sys_lower[i] * v[i - 1]
        if i < n - 1:
            force += sys_upper[i] * v[i + 1]
        if act_low[i] > 0.0:
            new_low = 1.0 if force > 0.0 else 0.0
            new_up = 0.0
        elif act_up[i] > 0.0:
            new_low = 0.0
            new_up = 1.0 if force < 0.0 else 0.0
        else:
            new_low = 1.0 if v[i] < obs_low[i] else 0.0
            new_up = 1.0 if (has_upper and new_low == 0.0 and v[i] > obs_up[i]) else 0.0
        if new_low != act_low[i] or new_up != act_up[i]:
            same = False
        act_low[i] = new_low
        act_up[i] = new_up
    return same
