"""Exercise-boundary read-out of the American engine, one level at a time (kernel of
:func:`pdecore.american._exercise_boundary`).

For a put the exercise region of a level is ``[0, S*]``: the boundary lies between the last node ``i``
where ``V − g ≤ threshold`` (with ``g > 0``: the nodes below the strike) and the next node
``j = i + 1`` (``i ≤ n − 3`` so that ``k = j + 1`` exists). Two read-outs:

* ``sqrt`` (the variational inequality): smooth pasting makes ``V − g ≈ ½Γ(S − S*)²``, so ``√(V − g)``
  is linear next to ``S*``; the line through the two nearest continuation nodes ``j, k`` gives ``S*``,
  clipped to ``[x_{i−1}, x_j]`` (the last discretely exercised node may itself lie slightly beyond
  ``S*``). Where that line is unusable (``V − g`` not increasing) the linear read-out is used.
* ``linear`` (finite penalty): ``V − g`` crosses zero transversally; linear interpolation on ``[x_i, x_j]``.

A call is read by the caller on the mirrored grid.
"""

from __future__ import annotations

import math

from pdecore._numba import njit_kernel


@njit_kernel
def exercise_boundary_levels(x, values, payoff, sqrt_readout, threshold, out):
    """Write ``S*/K`` of every level of ``values`` (``float64[L, n]``) into ``out`` (NaN where no
    in-the-money node is exercised). ``x`` increasing, exercise region at the start of the grid."""
    n_levels, n = values.shape
    for level in range(n_levels):
        last = -1
        for i in range(n):
            if payoff[i] <= 0.0:  # the money ends here (the grid is ordered): nothing beyond is exercised
                break
            if values[level, i] - payoff[i] <= threshold:
                last = i
        if last < 0:
            out[level] = math.nan
            continue
        i = min(last, n - 3)
        j = i + 1
        g_i = values[level, i] - payoff[i]
        g_j = values[level, j] - payoff[j]
        g_k = values[level, j + 1] - payoff[j + 1]
        if g_j != g_i:
            share = -g_i / (g_j - g_i)
            share = min(max(share, 0.0), 1.0)
            linear = x[i] + share * (x[j] - x[i])
        else:
            linear = x[i]
        estimate = linear
        if sqrt_readout:
            s_j = math.sqrt(max(g_j, 0.0))
            s_k = math.sqrt(max(g_k, 0.0))
            if g_j > 0.0 and s_k > s_j:
                root = x[j] - s_j * (x[j + 1] - x[j]) / (s_k - s_j)
                x_far = x[max(i - 1, 0)]
                estimate = min(max(root, x_far), x[j])
        out[level] = estimate
