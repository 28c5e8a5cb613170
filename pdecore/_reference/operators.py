"""NumPy/SciPy twins of :mod:`pdecore._kernels.tridiagonal` and :mod:`pdecore._kernels.operator`.

They are written for clarity (whole-array expressions, ``scipy.linalg.solve_banded``) and are used
only by the tests to check the Numba kernels.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_banded

from pdecore._kernels.operator import BOUNDARY_DIRICHLET


def thomas_solve_reference(lower, diag, upper, rhs):
    """Solve the tridiagonal system with LAPACK's banded solver."""
    n = len(diag)
    ab = np.zeros((3, n))
    ab[0, 1:] = upper[:-1]
    ab[1] = diag
    ab[2, :-1] = lower[1:]
    return solve_banded((1, 1), ab, rhs)


def tridiagonal_to_sparse(lower, diag, upper):
    """The tridiagonal matrix as a ``scipy.sparse`` CSR matrix."""
    from scipy import sparse

    n = len(diag)
    return sparse.diags([lower[1:], diag, upper[:-1]], [-1, 0, 1], shape=(n, n), format="csr")


def build_generator_reference(x, a, b, c, left_kind, right_kind):
    """Whole-array version of :func:`pdecore._kernels.operator.build_generator`.

    Returns ``(lower, diag, upper, n_upwind)``.
    """
    x, a, b, c = (np.asarray(v, dtype=float) for v in (x, a, b, c))
    n = len(x)
    lower, diag, upper = np.zeros(n), np.zeros(n), np.zeros(n)
    hm = x[1:-1] - x[:-2]
    hp = x[2:] - x[1:-1]
    ai, bi, ci = a[1:-1], b[1:-1], c[1:-1]
    denom = hm * hp * (hm + hp)
    diff_lo, diff_up = 2 * ai * hp / denom, 2 * ai * hm / denom
    central_lo = diff_lo - bi * hp**2 / denom
    central_up = diff_up + bi * hm**2 / denom
    central_diag = -(diff_lo + diff_up) + bi * (hp**2 - hm**2) / denom + ci
    central = (central_lo >= 0) & (central_up >= 0)
    forward = ~central & (bi > 0)
    lower[1:-1] = np.where(central, central_lo, np.where(forward, diff_lo, diff_lo - bi / hm))
    upper[1:-1] = np.where(central, central_up, np.where(forward, diff_up + bi / hp, diff_up))
    diag[1:-1] = np.where(central, central_diag,
                          np.where(forward, -(diff_lo + diff_up) - bi / hp + ci, -(diff_lo + diff_up) + bi / hm + ci))
    if left_kind != BOUNDARY_DIRICHLET:
        h = x[1] - x[0]
        upper[0] = b[0] / h if b[0] > 0 else 0.0
        diag[0] = (-b[0] / h if b[0] > 0 else 0.0) + c[0]
    if right_kind != BOUNDARY_DIRICHLET:
        h = x[-1] - x[-2]
        lower[-1] = -b[-1] / h
        diag[-1] = b[-1] / h + c[-1]
    return lower, diag, upper, int(np.count_nonzero(~central))
