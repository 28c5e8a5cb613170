r"""An independent solver of the discrete double-obstacle problem: Howard's policy iteration.

Same discretization as :func:`pdecore.dynkin.solve_dynkin` (the M-matrix generator, the θ-scheme on
graded levels with Rannacher half-steps, the obstacle fully implicit), but a different method: instead
of a penalty, every time step solves the *exact* discrete complementarity problem

.. math::

    \max\{\min\{A v − f,\; v − ℓ\},\; v − u\} = 0, \qquad A = I − wΔτ𝓖,\quad f = [I + (1−w)Δτ𝓖] v^n,

(the discrete form of SPEC section 4's inequality) by policy iteration: at the current iterate every
node picks the branch that is active in the max/min (PDE row, ``v = ℓ`` or ``v = u``), the linear
system made of those rows is solved, and the loop stops when the policy repeats. With an M-matrix
``A`` and ``ℓ ≤ u`` this terminates in a few iterations (Bokanowski, Maroso & Zidani 2009, "Some
convergence results for Howard's algorithm", SIAM J. Numer. Anal. 47(4)). A projected SOR sweep,
:func:`psor_step`, is given as a second check for small grids.

Everything is whole-array NumPy / SciPy (``scipy.linalg.solve_banded``) and uses the NumPy twin of the
generator, :func:`pdecore._reference.operators.build_generator_reference`; nothing here calls Numba.
Used by the tests only.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_banded

from pdecore._kernels.operator import BOUNDARY_DIRICHLET
from pdecore._reference.operators import build_generator_reference

_POLICY_PDE, _POLICY_LOWER, _POLICY_UPPER = 0, 1, 2


def _banded(lower, diag, upper):
    ab = np.zeros((3, diag.size))
    ab[0, 1:] = upper[:-1]
    ab[1] = diag
    ab[2, :-1] = lower[1:]
    return ab


def _apply(lower, diag, upper, v):
    out = diag * v
    out[1:] += lower[1:] * v[:-1]
    out[:-1] += upper[:-1] * v[1:]
    return out


def howard_step(sys_lower, sys_diag, sys_upper, rhs, lower_obstacle, upper_obstacle, guess, *, free=None,
                max_iter: int = 200):
    """Solve ``max{min{Av − f, v − ℓ}, v − u} = 0`` for one tridiagonal ``A`` by policy iteration.

    Parameters
    ----------
    sys_lower, sys_diag, sys_upper : float64[n]
        Bands of ``A``.
    rhs : float64[n]
        ``f``.
    lower_obstacle, upper_obstacle : float64[n]
        ``ℓ ≤ u``.
    guess : float64[n]
        Starting iterate.
    free : bool[n], optional
        Nodes where the obstacles do not apply (Dirichlet rows).
    max_iter : int

    Returns
    -------
    v : float64[n]
    iterations : int
    """
    n = rhs.size
    free = np.zeros(n, dtype=bool) if free is None else free
    v = guess.copy()
    policy = None
    for iteration in range(1, max_iter + 1):
        residual = _apply(sys_lower, sys_diag, sys_upper, v) - rhs
        inner = np.minimum(residual, v - lower_obstacle)
        new_policy = np.where(v - lower_obstacle < residual, _POLICY_LOWER, _POLICY_PDE)
        new_policy = np.where(v - upper_obstacle > inner, _POLICY_UPPER, new_policy)
        new_policy[free] = _POLICY_PDE
        if policy is not None and np.array_equal(new_policy, policy):
            return v, iteration - 1
        policy = new_policy
        lo, di, up, b = sys_lower.copy(), sys_diag.copy(), sys_upper.copy(), rhs.copy()
        pinned = policy != _POLICY_PDE
        lo[pinned] = 0.0
        up[pinned] = 0.0
        di[pinned] = 1.0
        b[policy == _POLICY_LOWER] = lower_obstacle[policy == _POLICY_LOWER]
        b[policy == _POLICY_UPPER] = upper_obstacle[policy == _POLICY_UPPER]
        v = solve_banded((1, 1), _banded(lo, di, up), b)
    raise RuntimeError(f"policy iteration did not settle in {max_iter} iterations")


def psor_step(sys_lower, sys_diag, sys_upper, rhs, lower_obstacle, upper_obstacle, guess, *, omega=1.2,
              tol=1e-12, max_sweeps=100_000):
    """Projected SOR for the same complementarity problem (Cryer 1971), node by node: slow, for tiny grids.

    Each Gauss–Seidel update is over-relaxed by ``omega`` and projected onto ``[ℓ_i, u_i]``.
    """
    v = guess.copy()
    n = v.size
    for sweep in range(1, max_sweeps + 1):
        change = 0.0
        for i in range(n):
            acc = rhs[i]
            if i > 0:
                acc -= sys_lower[i] * v[i - 1]
            if i < n - 1:
                acc -= sys_upper[i] * v[i + 1]
            gs = acc / sys_diag[i]
            new = min(max(v[i] + omega * (gs - v[i]), lower_obstacle[i]), upper_obstacle[i])
            change = max(change, abs(new - v[i]))
            v[i] = new
        if change <= tol:
            return v, sweep
    raise RuntimeError(f"projected SOR did not converge in {max_sweeps} sweeps")


def solve_dynkin_reference(grid, diffusion, drift, lower_obstacle, upper_obstacle, terminal, dtau, weights, levels,
                           *, left_kind=0, right_kind=0, method="howard"):
    """March the double-obstacle variational inequality with policy iteration (or PSOR) per step.

    Parameters
    ----------
    grid, diffusion, drift, lower_obstacle, upper_obstacle, terminal : float64[n]
        As in :func:`pdecore.dynkin.solve_dynkin` (no reaction term).
    dtau, weights, levels : arrays
        From :meth:`pdecore.schemes.ThetaScheme.time_steps`.
    left_kind, right_kind : int
        Boundary codes of :mod:`pdecore._kernels.operator`; a Dirichlet end holds its terminal value.
    method : {"howard", "psor"}

    Returns
    -------
    values : float64[len(levels), n]
        In time-to-go order (level 0 = terminal data), like the kernel.
    iterations : int64[m]
    """
    x = np.asarray(grid, dtype=float)
    n = x.size
    gen_lo, gen_di, gen_up, _ = build_generator_reference(x, diffusion, drift, np.zeros(n), left_kind, right_kind)
    free = np.zeros(n, dtype=bool)
    free[0] = left_kind == BOUNDARY_DIRICHLET
    free[-1] = right_kind == BOUNDARY_DIRICHLET
    lo_obs = np.where(free, -np.inf, lower_obstacle)
    up_obs = np.where(free, np.inf, upper_obstacle)
    v = np.asarray(terminal, dtype=float).copy()
    values = np.zeros((len(levels), n))
    iterations = np.zeros(len(dtau), dtype=np.int64)
    stored = 0
    while stored < len(levels) and levels[stored] < 0:
        values[stored] = v
        stored += 1
    for k, (h, w) in enumerate(zip(dtau, weights)):
        rhs = v + (1.0 - w) * h * _apply(gen_lo, gen_di, gen_up, v)
        a_lo, a_di, a_up = -w * h * gen_lo, 1.0 - w * h * gen_di, -w * h * gen_up
        if method == "howard":
            v, iterations[k] = howard_step(a_lo, a_di, a_up, rhs, lo_obs, up_obs, v, free=free)
        else:
            v, iterations[k] = psor_step(a_lo, a_di, a_up, rhs, lo_obs, up_obs, v)
        while stored < len(levels) and levels[stored] <= k:
            values[stored] = v
            stored += 1
    return values, iterations
