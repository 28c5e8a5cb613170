"""Tridiagonal kernels: the linear algebra under every 1-D implicit step.

A tridiagonal matrix is stored as three arrays of length ``n``: ``lower[i]`` multiplies ``v[i-1]``
(``lower[0]`` unused), ``diag[i]`` multiplies ``v[i]``, ``upper[i]`` multiplies ``v[i+1]``
(``upper[n-1]`` unused) — the same ``lower/diag/upper`` layout as QuantLib's ``TripleBandLinearOp``.

The Thomas algorithm is stable without pivoting for the diagonally dominant M-matrices that the
upwinded operators of :mod:`pdecore._kernels.operator` produce (Forsyth & Vetzal 2002, section 3).
"""

from __future__ import annotations

from pdecore._numba import STATUS_OK, STATUS_SINGULAR, njit_kernel


@njit_kernel
def thomas_solve(lower, diag, upper, rhs, out, work):
    """Solve ``T v = rhs`` for tridiagonal ``T`` into ``out``.

    Parameters
    ----------
    lower, diag, upper : float64[n]
        Bands of ``T`` (see module docstring).
    rhs : float64[n]
        Right-hand side (not modified).
    out : float64[n]
        Receives the solution; may alias ``rhs``.
    work : float64[n]
        Scratch space for the modified super-diagonal.

    Returns
    -------
    int
        ``STATUS_OK``, or ``STATUS_SINGULAR`` on a zero pivot.
    """
    n = diag.shape[0]
    pivot = diag[0]
    if pivot == 0.0:
        return STATUS_SINGULAR
    work[0] = upper[0] / pivot
    out[0] = rhs[0] / pivot
    for i in range(1, n):
        pivot = diag[i] - lower[i] * work[i - 1]
        if pivot == 0.0:
            return STATUS_SINGULAR
        work[i] = upper[i] / pivot if i < n - 1 else 0.0
        out[i] = (rhs[i] - lower[i] * out[i - 1]) / pivot
    for i in range(n - 2, -1, -1):
        out[i] -= work[i] * out[i + 1]
    return STATUS_OK


@njit_kernel
def tridiagonal_apply(lower, diag, upper, v, out):
    """``out = T v`` for tridiagonal ``T`` (``out`` must not alias ``v``)."""
    n = diag.shape[0]
    if n == 1:
        out[0] = diag[0] * v[0]
        return STATUS_OK
    out[0] = diag[0] * v[0] + upper[0] * v[1]
    for i in range(1, n - 1):
        out[i] = lower[i] * v[i - 1] + diag[i] * v[i] + upper[i] * v[i + 1]
    out[n - 1] = lower[n - 1] * v[n - 2] + diag[n - 1] * v[n - 1]
    return STATUS_OK
