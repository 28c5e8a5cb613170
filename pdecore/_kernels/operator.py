"""Generator of a 1-D diffusion on a non-uniform grid, as a tridiagonal matrix.

The operator is ``(𝓛v)(x) = a(x) v_xx + b(x) v_x + c(x) v`` with coefficient arrays ``a ≥ 0`` (half the
squared diffusion coefficient), ``b`` (drift) and ``c`` (reaction, e.g. ``−r``) given at the nodes.

Interior rows use the three-point formulas on a non-uniform grid, with ``h₋ = x_i − x_{i−1}`` and
``h₊ = x_{i+1} − x_i``::

    v_x  ≈ [−h₊² v_{i−1} + (h₊² − h₋²) v_i + h₋² v_{i+1}] / (h₋ h₊ (h₋ + h₊))
    v_xx ≈ 2 [h₊ v_{i−1} − (h₋ + h₊) v_i + h₋ v_{i+1}] / (h₋ h₊ (h₋ + h₊))

Central differencing of the drift is used wherever it keeps both off-diagonals non-negative; otherwise
the drift is upwinded (forward difference for ``b > 0``, backward for ``b < 0``). The resulting matrix
``−𝓛`` is then an M-matrix, which makes the implicit step monotone and the penalty iteration
convergent (Forsyth & Vetzal 2002, "Quadratic convergence for valuing American options using a
penalty method", SIAM J. Sci. Comput. 23(6), conditions (3.5)–(3.6)).

Boundary rows (index 0 and n−1) are chosen by a code:

* ``BOUNDARY_DEGENERATE`` (0): drop diffusion and take the drift one-sided *into* the domain. At
  ``S = 0`` for Black–Scholes (``a = b = 0``) this is the ODE ``V_t = rV`` that the PDE itself
  degenerates to; at ``S_max`` it is the linearity condition ``V_SS = 0``.
* ``BOUNDARY_DIRICHLET`` (1): a zero row; the caller fixes the value at that node.
"""

from __future__ import annotations

from pdecore._numba import njit_kernel

BOUNDARY_DEGENERATE = 0
BOUNDARY_DIRICHLET = 1


@njit_kernel
def build_generator(x, a, b, c, left_kind, right_kind, lower, diag, upper):
    """Fill ``lower/diag/upper`` with the tridiagonal matrix of 𝓛 (see module docstring).

    Parameters
    ----------
    x : float64[n]
        Strictly increasing nodes, ``n ≥ 3``.
    a, b, c : float64[n]
        Diffusion (``a ≥ 0``), drift and reaction coefficients at the nodes.
    left_kind, right_kind : int
        Boundary row codes ``BOUNDARY_DEGENERATE`` or ``BOUNDARY_DIRICHLET``.
    lower, diag, upper : float64[n]
        Outputs.

    Returns
    -------
    int
        Number of interior rows where the drift had to be upwinded (a diagnostic).
    """
    n = x.shape[0]
    n_upwind = 0
    for i in range(1, n - 1):
        hm = x[i] - x[i - 1]
        hp = x[i + 1] - x[i]
        denom = hm * hp * (hm + hp)
        diff_lo = 2.0 * a[i] * hp / denom
        diff_up = 2.0 * a[i] * hm / denom
        conv_lo = -b[i] * hp * hp / denom
        conv_up = b[i] * hm * hm / denom
        lo = diff_lo + conv_lo
        up = diff_up + conv_up
        if lo >= 0.0 and up >= 0.0:
            lower[i] = lo
            upper[i] = up
            diag[i] = -(diff_lo + diff_up) + b[i] * (hp * hp - hm * hm) / denom + c[i]
        else:
            n_upwind += 1
            if b[i] > 0.0:
                lower[i] = diff_lo
                upper[i] = diff_up + b[i] / hp
                diag[i] = -(diff_lo + diff_up) - b[i] / hp + c[i]
            else:
                lower[i] = diff_lo - b[i] / hm
                upper[i] = diff_up
                diag[i] = -(diff_lo + diff_up) + b[i] / hm + c[i]
    # --- boundary rows ---
    lower[0] = 0.0
    upper[n - 1] = 0.0
    if left_kind == BOUNDARY_DIRICHLET:
        diag[0] = 0.0
        upper[0] = 0.0
    else:
        h = x[1] - x[0]
        if b[0] > 0.0:  # flow into the domain: forward difference is the upwind one
            upper[0] = b[0] / h
            diag[0] = -b[0] / h + c[0]
        else:  # outflow: characteristics leave through this boundary, no condition needed
            upper[0] = 0.0
            diag[0] = c[0]
    if right_kind == BOUNDARY_DIRICHLET:
        diag[n - 1] = 0.0
        lower[n - 1] = 0.0
    else:
        # V_xx = 0 with a backward first derivative: exact for linear v. For b < 0 this is the
        # upwind difference; for b > 0 (e.g. a call's S_max) it breaks the M-matrix sign pattern in
        # this one row, which is harmless when S_max is far out (callers may prefer Dirichlet).
        h = x[n - 1] - x[n - 2]
        lower[n - 1] = -b[n - 1] / h
        diag[n - 1] = b[n - 1] / h + c[n - 1]
    return n_upwind
