"""Scalar special functions shared by the kernels, in overflow-free forms.

The exploratory (entropy-regularized) problems of SPEC sections 1 and 4 replace the hinge ``z^+`` by
the softplus ``λ log(1 + e^{z/λ})``, whose derivative is the logistic sigmoid: the stopping
probability ``π = sigmoid(κ(g − V)/λ)``. The penalty march (:mod:`pdecore._kernels.penalty`) and the
discrete-time oracle step (:mod:`pdecore._kernels.oracle`) both need them; they live here once so that
both engines evaluate the same floating-point expressions (the twin tests compare the engines to the
digit).

Why these forms: ``e^z`` overflows for ``z > 709``, which happens for large penalties ``κ`` and small
temperatures ``λ``; writing both functions with ``e^{−|z|}`` only keeps every exponent non-positive.
"""

from __future__ import annotations

import math

from pdecore._numba import njit_kernel

__all__ = ["sigmoid", "softplus"]


@njit_kernel
def softplus(z):
    """``log(1 + e^z)`` without overflow or cancellation: ``max(z, 0) + log1p(e^{−|z|})``."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@njit_kernel
def sigmoid(z):
    """``1 / (1 + e^{−z})`` without overflow for either sign of ``z``."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)
