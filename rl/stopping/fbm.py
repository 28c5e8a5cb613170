"""Fractional Brownian motion on ``t_n = n/N`` and its Markovized state (SPEC section 7; Becker,
Cheridito & Jentzen, "Deep optimal stopping", JMLR 2019, section 4.3).

Problem. Stop ``W^H`` (Hurst index ``H ∈ (0, 1)``, ``W^H_0 = 0``) on the dates ``t_n = n/N``,
``n = 0..N`` (paper: N = 100) to maximize ``E[W^H_τ]``. ``W^H`` is not Markov, so the state at date
``n`` is the path so far, written most recent first and padded with zeros:

.. math::

    X_n = (W^H_{t_n}, W^H_{t_{n−1}}, …, W^H_{t_1}, W^H_{t_0}, 0, …, 0) ∈ \\mathbb R^{N+1},

a Markov chain whose payoff is its first coordinate, ``g(X_n) = X_n^{(1)}``. For ``H = ½`` (Brownian
motion) every stopping rule is worth 0 (optional stopping); for ``H ≠ ½`` the increments are
correlated and stopping pays.

Sampling is exact: ``(W^H_{t_1}, …, W^H_{t_N})`` is Gaussian with covariance
``C_ij = ½(t_i^{2H} + t_j^{2H} − |t_i − t_j|^{2H})``; its Cholesky factor ``C = LLᵀ`` is computed once in
float64 and a path is ``L Z`` with ``Z`` standard normal (``O(N²)`` per path; N = 100 costs nothing).
Paths are drawn in float64 on the CPU from the caller's generator (a seed gives the same paths on
every device).

The conditional mean of the terminal value, ``E[W^H_1 | W^H_{t_1..t_n}] = β_nᵀ (W^H_{t_1}, …, W^H_{t_n})``
with ``β_n = C_{1:n,1:n}^{−1} C_{1:n,N}``, is the "European" value of stopping at maturity; the
premium formulation of :mod:`rl.stopping.high_dim` learns ``V − that``.
"""

from __future__ import annotations

import numpy as np
import torch

from pdecore.budget import check_memory
from pdecore.checks import check_int, check_real


def fbm_covariance(hurst: float, n_dates: int) -> np.ndarray:
    """``C_ij = ½(t_i^{2H} + t_j^{2H} − |t_i − t_j|^{2H})`` for ``t_i = i/N``, ``i, j = 1..N`` (float64)."""
    times = np.arange(1, n_dates + 1) / n_dates
    power = 2.0 * hurst
    return 0.5 * (times[:, None] ** power + times[None, :] ** power
                  - np.abs(times[:, None] - times[None, :]) ** power)


class FBMSimulator:
    """Exact fBm paths and their Markovized states.

    Parameters
    ----------
    hurst : float
        ``H ∈ (0, 1)``.
    n_dates : int, default 100
        ``N``: dates ``t_n = n/N``, ``n = 0..N``; the state has ``N + 1`` coordinates.
    """

    def __init__(self, hurst: float, n_dates: int = 100) -> None:
        hurst = check_real("hurst", hurst, fix="pass a Hurst index in (0, 1), e.g. 0.3")
        if not 0.0 < hurst < 1.0:
            raise ValueError(f"hurst must lie in (0, 1), got {hurst!r}; pass e.g. hurst = 0.3 (0.5 is Brownian motion)")
        self.hurst = hurst
        self.n_dates = check_int("n_dates", n_dates, minimum=1, fix="pass the number of dates, e.g. 100")
        self.dimension = self.n_dates + 1
        self.dt = 1.0 / self.n_dates
        covariance = fbm_covariance(hurst, self.n_dates)
        try:
            factor = np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError as error:  # not expected for N ≤ a few thousand (C is positive definite)
            raise ValueError(f"the fBm covariance for hurst={hurst!r}, n_dates={n_dates!r} is numerically not "
                             "positive definite; use fewer dates") from error
        self.covariance = covariance
        self._factor_t = torch.as_tensor(factor.T.copy())  # paths = Z @ Lᵀ
        # β_n (n = 1..N−1) of E[W_1 | W_{t_1..t_n}], as rows of an (N, N) lower-triangular matrix whose
        # row n holds β_n in its first n entries (row 0: nothing known, E[W_1] = 0)
        regression = np.zeros((self.n_dates, self.n_dates))
        for n in range(1, self.n_dates):
            regression[n, :n] = np.linalg.solve(covariance[:n, :n], covariance[:n, self.n_dates - 1])
        self._regression = torch.as_tensor(regression)

    def bytes_per_path(self, dtype: torch.dtype = torch.float32) -> int:
        """Memory of one path's Markovized states (all ``N + 1`` dates) in ``dtype``, plus its draw."""
        size = torch.empty((), dtype=dtype).element_size()
        return (self.n_dates + 1) * self.dimension * size + 3 * 8 * (self.n_dates + 2)

    def sample(self, n_paths: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu") -> torch.Tensor:
        """Paths ``(W^H_{t_0}, …, W^H_{t_N})`` of shape ``(n_paths, N + 1)`` (``W^H_{t_0} = 0``)."""
        n_paths = check_int("n_paths", n_paths, minimum=1, fix="pass a positive number of paths")
        normals = torch.randn((n_paths, self.n_dates), generator=generator, dtype=torch.float64)
        paths = torch.zeros((n_paths, self.n_dates + 1), dtype=torch.float64)
        paths[:, 1:] = normals @ self._factor_t
        return paths.to(device=device, dtype=dtype)

    def states(self, paths: torch.Tensor) -> torch.Tensor:
        """Markovized states ``X_n`` of shape ``(B, N + 1 dates, N + 1 coordinates)`` from ``(B, N + 1)`` paths.

        Memory is estimated and refused before allocation (:func:`pdecore.budget.check_memory`).
        """
        n_paths = paths.shape[0]
        check_memory(f"fBm states n_paths={n_paths}, n_dates={self.n_dates}",
                     float(n_paths) * self.bytes_per_path(paths.dtype),
                     fix="use fewer paths at a time (smaller batch_size or evaluation chunk)")
        # z = (W_N, …, W_0, 0, …, 0): X_n is the window of N + 1 entries starting at N − n (a strided view;
        # the flip makes the one copy, about 4x faster than an index gather)
        reversed_padded = torch.cat([paths.flip(1), torch.zeros_like(paths)], dim=1)
        return reversed_padded.unfold(1, self.dimension, 1)[:, :self.dimension].flip(1)

    def conditional_law(self, paths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Law of each date's value given the path before it: ``W^H_{t_m} | W^H_{t_1..t_{m−1}} ~ N(μ_m, s_m²)``.

        Returns ``μ`` of shape ``(B, N)`` (column ``m − 1`` for date ``m = 1..N``) and ``s`` of shape ``(N,)``,
        float64. From the Cholesky factor: ``W = L Z`` gives ``Z = L⁻¹ W``, ``μ_m = Σ_{k<m} L_{mk} Z_k`` and
        ``s_m = L_{mm}`` (used by the dual upper bound, :mod:`rl.stopping.dual`).
        """
        factor = self._factor_t.T.to(device=paths.device)  # L, lower triangular (N, N), float64
        values = paths[:, 1:].to(torch.float64)
        normals = torch.linalg.solve_triangular(factor, values.T, upper=False)  # Z, (N, B)
        strictly_lower = torch.tril(factor, diagonal=-1)
        return (strictly_lower @ normals).T, torch.diagonal(factor).clone()

    def terminal_mean_weight_on_last(self) -> torch.Tensor:
        """``∂E[W^H_1 | W^H_{t_1..t_n}] / ∂W^H_{t_n}`` for ``n = 0..N−1`` (0 at ``n = 0``), float64 ``(N,)``:
        how date ``n``'s conditional terminal mean moves with that date's own value."""
        weights = torch.zeros(self.n_dates, dtype=torch.float64)
        index = torch.arange(1, self.n_dates)
        weights[1:] = self._regression[index, index - 1]
        return weights

    def terminal_mean(self, paths: torch.Tensor) -> torch.Tensor:
        """``E[W^H_1 | W^H_{t_1..t_n}]`` for ``n = 0..N−1`` → ``(B, N)``, and at ``n = N`` it is ``W^H_1``."""
        regression = self._regression.to(device=paths.device, dtype=paths.dtype)
        return paths[:, 1:] @ regression.T
