"""Time stepping (QuantLib's ``FdmSchemeDesc`` role): the θ-scheme with Rannacher start-up on a
time grid graded towards the terminal date.

Solvers march in time-to-go ``τ = T − t`` from ``τ = 0`` (the terminal condition) to ``τ = T``. One step
of the θ-scheme for ``v_τ = 𝓛v + f(v)`` with implicit weight ``w`` (``w = 1`` implicit Euler, ``w = ½``
Crank–Nicolson) reads::

    [I − w Δτ 𝓛] v^{n+1} − w Δτ f(v^{n+1}) = [I + (1 − w) Δτ 𝓛] v^n + (1 − w) Δτ f(v^n)

(SPEC section 1 writes the same with ``A = −𝓛`` and θ = 1 − w). Crank–Nicolson is second order but
not L-stable: the kink of the payoff excites undamped oscillations in the greeks. Rannacher's remedy
(Rannacher 1984; Giles & Carter 2006) replaces the first CN steps by implicit Euler *half*-steps, which
damps the high frequencies and keeps second order. Grading the steps towards ``τ = 0`` as
``τ_n = T (n/N)^p`` resolves the early-exercise boundary's ``√τ`` behaviour near expiry
(Forsyth & Vetzal 2002, section 6, use the same idea through time-step selection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pdecore._kernels.time_grid import graded_theta_steps
from pdecore.checks import check_int, check_range


@dataclass(frozen=True, slots=True)
class ThetaScheme:
    """θ-scheme settings (numerics only).

    Parameters
    ----------
    implicit_weight : float
        ``w`` in ``[½, 1]``: 1 is implicit Euler, ½ Crank–Nicolson.
    rannacher_steps : int
        Number of initial CN steps each replaced by two implicit-Euler half-steps.
    grading : float
        Exponent ``p ≥ 1`` of the graded time grid ``τ_n = T (n/N)^p`` (1 = uniform).
    """

    implicit_weight: float = 0.5
    rannacher_steps: int = 2
    grading: float = 2.0

    def __post_init__(self) -> None:
        check_range("implicit_weight", self.implicit_weight, 0.5, 1.0,
                    fix="use 0.5 (Crank-Nicolson) to 1.0 (implicit Euler)")
        check_int("rannacher_steps", self.rannacher_steps, minimum=0)
        check_range("grading", self.grading, 1.0, 10.0, fix="use 1 (uniform) to about 3")

    @classmethod
    def crank_nicolson(cls, rannacher_steps: int = 2, grading: float = 2.0) -> "ThetaScheme":
        """Crank–Nicolson with Rannacher start-up (the default, second order)."""
        return cls(0.5, rannacher_steps, grading)

    @classmethod
    def implicit_euler(cls, grading: float = 1.0) -> "ThetaScheme":
        """Fully implicit (first order, L-stable)."""
        return cls(1.0, 0, grading)

    def time_steps(self, horizon: float, n_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sub-step sizes and implicit weights for marching ``τ`` from 0 to ``horizon``.

        Parameters
        ----------
        horizon : float
            Total time to march (the maturity).
        n_steps : int
            Number of (graded) steps ``N``.

        Returns
        -------
        dtau : float64[m]
            Step sizes of the ``m ≥ N`` sub-steps actually taken (Rannacher half-steps split).
        weights : float64[m]
            Implicit weight of each sub-step.
        levels : int64[N + 1]
            Index into the sub-step sequence after which each of the ``N + 1`` graded levels
            ``τ_0 = 0, …, τ_N = horizon`` is reached (level 0 is before any sub-step: -1).
        """
        n_steps = check_int("n_time", n_steps, minimum=1, fix="use at least 1 time step")
        # the first ``split`` steps are Rannacher steps: two implicit-Euler half-steps each
        split = min(self.rannacher_steps, n_steps) if self.implicit_weight < 1.0 else 0
        dtau, weights = np.empty(n_steps + split), np.empty(n_steps + split)
        levels = np.empty(n_steps + 1, dtype=np.int64)
        graded_theta_steps(float(horizon), int(n_steps), float(self.grading), int(split), float(self.implicit_weight),
                           dtau, weights, levels)
        return dtau, weights, levels

    def level_times(self, horizon: float, n_steps: int) -> np.ndarray:
        """The graded levels ``τ_n = horizon · (n/N)^p``, ``n = 0..N``."""
        return horizon * (np.arange(n_steps + 1) / n_steps) ** self.grading
