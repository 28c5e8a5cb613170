"""Shared set-up of the American kernel tests (penalty and projected marches): a Black–Scholes put in
units of the strike (``x = S/K``) on a sinh grid concentrated at the strike, its generator bands, the
Crank–Nicolson time levels with two Rannacher steps, the payoff and the sub-step times."""

from __future__ import annotations

import numpy as np

from pdecore._kernels.operator import BOUNDARY_DEGENERATE, BOUNDARY_DIRICHLET, build_generator
from pdecore.grids import SinhGrid
from pdecore.schemes import ThetaScheme


def put_problem(n=41, n_time=12, sigma=0.4, r=0.06, q=0.02):
    """``dict(x, lower, diag, upper, dtau, weights, levels, payoff, tau)`` (``tau`` at every sub-step
    time point, ``tau[0] = 0``)."""
    x = SinhGrid(0.0, 4.0, 1.0, n, 0.15).nodes()
    lower, diag, upper = np.zeros(n), np.zeros(n), np.zeros(n)
    build_generator(x, 0.5 * sigma**2 * x**2, (r - q) * x, np.full(n, -r), BOUNDARY_DEGENERATE,
                    BOUNDARY_DIRICHLET, lower, diag, upper)
    dtau, weights, levels = ThetaScheme.crank_nicolson(rannacher_steps=2).time_steps(1.0, n_time)
    return dict(x=x, lower=lower, diag=diag, upper=upper, dtau=dtau, weights=weights, levels=levels,
                payoff=np.maximum(1.0 - x, 0.0), tau=np.concatenate([[0.0], np.cumsum(dtau)]))


def receding_obstacle(problem):
    """``g − 0.05 √τ e^{−x}`` per sub-step time point (premium-like, time-dependent), ``(m + 1, n)``."""
    return problem["payoff"][None, :] - 0.05 * np.sqrt(problem["tau"])[:, None] * np.exp(-problem["x"])[None, :]
