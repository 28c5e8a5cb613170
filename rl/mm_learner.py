"""Entropy-regularized policy iteration for option market making (Fang & Xu, Algorithm 1; SPEC section 5).

Algorithm
---------
A value network ``V(t, Q[, P, S]; θ)`` is fitted by the discretized continuous-time TD loss of the
paper (eqs. 20–21) on paths simulated under the current policy, and the policy is the Gibbs density
of :mod:`rl.mm_policies` with ``Δ^±_i = V(t, Q ± e_i) − V(t, Q)`` taken from the network; repeat::

    every `paths_every` steps:  simulate `batch_paths` paths under π = Gibbs(V)      (Algorithm 1, "generate")
    every step:                 one Adam step on the TD loss of a mini-batch of them  ("compute loss, update θ")
                                π ← Gibbs(V) with the updated network                ("update policy")

TD error (paper eq. 20, discretized on the simulation grid ``t_j``). For a state ``Y_j = (t_j, Q_j)``
of a simulated path, with the step's fills integrated out (their intensities under the current
policy are known: it is the Gibbs policy of the network itself),

.. math::

    δ_j = \\frac{V(t_{j+1}, Q_j) − V(t_j, Q_j)}{Δt_j}
        + \\sum_{i,\\pm} 1_{\\text{side active}}\\Big[\\bar λ^\\pm_i\\, D^\\pm_i + \\bar ι^\\pm_i + γ\\,\\bar{𝓗}^\\pm_i\\Big]
        − \\frac{φ}{2} Q_j^\\top ΣΣ^\\top Q_j ,

where ``D^±_i = V(t_{j+1}, Q_j ± e_i) − V(t_{j+1}, Q_j)`` (the jump of the value if a fill occurs in
the step), and ``λ̄`` (mean fill rate), ``ῑ`` (mean spread income rate ``E_π[λ(δ)δ]``) and ``𝓗̄``
(entropy) are the moments of the current Gibbs policy at ``Δ̂ = D`` (held fixed: no gradient flows
through the policy, as in policy evaluation). With ``scheme="trapezoid"`` (default) the bracket is
averaged over both ends of the step (``D`` at ``t_j`` and at ``t_{j+1}``), which is second order in
``Δt`` and keeps the discretization residual of the exact θ small in the terminal boundary layer.
``V(T, Q) = −Σ_i ĉ_i Q_i²`` with ``ĉ_i = ψ0`` times the
running mean of ``P_iT²`` over the simulated paths (learned from data; ``terminal="sampled"`` uses
each path's own ``−ψ0 Σ_i P_iT² Q_i²``, the paper's penalty, unbiased but noisy). The loss is paper
eq. 21, ``𝓛(θ) = E Σ_j δ_j² Δt_j`` (:func:`continuous_td_loss`), minimized by its full gradient.

Why the fills are integrated out: the sampled version ``δ_j = (V(t_{j+1}, Q_{j+1}) − V(t_j, Q_j))/Δt +
…`` has a conditional variance of order ``λ (D^±)²/Δt`` whose gradient, in a squared loss, pulls the
jumps ``D^±`` (exactly what sets the spreads) towards zero (the double-sampling bias of residual
gradients; Jia & Zhou 2022). With the expectation over the step's fills taken in closed form and a
network of (t, Q) only, δ_j carries no sampling noise at all except the terminal ``P_T``, which does
not depend on θ, so the minimizer is unbiased. ``td_target="sampled"`` keeps the literal version for
comparison.

State and normalization. For policies of (t, Q) only, θ of the grid HJB is the value (``P_T`` and
``Q_T`` are independent), so the default network takes (t, Q); ``market_inputs=True`` adds the
paper's (P, S) (normalized), which can only help a (t, Q, P, S) policy but is then compared with a
(t, Q) oracle. The network is

.. math::

    V(t, Q) = L \\frac{T − t}{T}\\,(1 + g(τ)) − \\sum_i a_i(t) Q_i^2
              − \\frac{4 s(t)}{\\bar Q^2} Q^\\top M(τ) Q
              + s(t)\\,\\big[h(τ, Q/\\bar Q) − h(τ, 0)\\big],

with ``τ`` time features, ``L`` the value of myopic quoting, ``a_i(t) ≈ c_i/(1 + 4λ_0 k c_i (T − t))``
the linear–quadratic (small-skew) approximation of the inventory cost (``λ_0 = A e^{−1}``; with
φ > 0 the scalar Riccati of :meth:`MarketMakingValueNetwork.baseline_coefficients`) used as a
baseline, and ``s(t) = (max_i a_i(t) + (φ/2) λ_max(ΣΣᵀ)(T − t)) Q̄²/4`` the scale of the learned
correction ``h`` (terminal and running inventory costs); ``M(τ)`` is a learned symmetric matrix
(a small network of the time features, zero at the start; optional, ``quadratic_head=True``), meant
as a well-conditioned direction for the cross-inventory terms that the diagonal baseline lacks. Writing the
inventory part as a difference makes ``Δ`` depend on ``h`` alone, so it is not drowned by the
``O(L)`` level. ``baseline="none"`` drops the ``a_i`` term (then ``s`` keeps the scale only).

The Riccati baseline (``baseline="riccati"``) is a **warm start that uses model knowledge** (A, k, ψ0,
φ, Σ): with it the one-option spreads are within tolerance before any training. ``baseline="learned"``
is the model-free network: nothing in it is derived from the dynamics,

.. math::

    V(t, Q) = L\\,\\frac{T − t}{T}(1 + g(τ)) − \\sum_i ĉ_i ρ_i(τ) Q_i^2 + s(t)\\,[h(τ, Q/\\bar Q) − h(τ, 0)],
    \\qquad ρ_i = \\frac{1}{1 + (τ/T)\\, e^{u_i(τ)}}, \\qquad u_i(τ) = 300\\, r_i + g_u\\, w_i(τ),

with ``r_i`` a learned scalar (the rate of the hyperbolic decay of the aversion with time to go, the
leading-order shape of any linear–quadratic inventory cost) and ``w`` a small network of generic time
features (``τ/T`` and ``log(1 + 1000 τ/T)``), both starting at zero; the small gain ``g_u``
(``aversion_shape_gain``) makes the deviations from the hyperbola the slow direction of the fit. With a
running risk penalty (φ > 0) the network adds ``−τ Qᵀ(R ∘ Z(τ))Q``, ``R = (φ/2)ΣΣᵀ`` the reward's
running-risk matrix and ``Z_ij = 1/(1 + (τ/T) e^{100 z_ij})`` a learned saturation per entry (``z`` from
zero): the running cost accumulated over the time to go, which inventory control caps; it carries the
cross-inventory terms. ``ĉ_i`` are the terminal coefficients estimated from the simulated ``P_T`` (the
reward, not the dynamics), ``L`` the mean reward of the latest simulated paths and
``s(t) = (max_i ĉ_i ρ_i + λ_max(R) τ) Q̄²/4`` (held fixed in the gradient). Any coefficient in ``(0, ĉ_i]`` has the form
``ĉ_i ρ_i``; at the start the value is half to all of the terminal penalty at every date, so the initial
spreads sit at the bounds (about 5/k from the grid's): whatever the agent gets right afterwards it
learned from the simulated data.

Notes
-----
Measured behaviour of the model-free default (one option, paper-like defaults, Q̄ = 100, γ = 0.1;
``benchmarks/bench_mm_rl.py``; shared 2-core machine, 1 thread per run). From ≈ 4.95/k before training,
150 steps of 256/32 paths on a 400-date grid graded 2.25 towards T (≈ 100 s) give max spread errors
over |q| ≤ 50 of 0.006–0.020/k at t = 0 and 0.001–0.040/k at 0.6 T on seeds 0–5 (acceptance 0.05/k),
and P&L ratios to the grid-optimal policy of 0.9984 and 0.9982 on 4000 common paths (seeds 1, 2:
−0.78 ± 0.14 and −0.85 ± 0.15 below the grid policy; the quadratic approximation is −1.17 and −1.04
below it). The learned aversion is within 3–20% of the grid's at 1–10 days to go.

What it took (each measured on the same settings): the earlier weighting, every date by the inverse
of its own residual (``balance_exponent = 1``), minimizes ``Σ_j log m_j`` at its fixed point, which
rewards exact zeros; the zero-aversion value (constant spreads) solves the mid-horizon equation
exactly, so the learned aversion drifted to zero on two seeds out of three (spread errors 0.069/k and
0.17/k, the size of the whole skew, and P&L ratios −3.5). Capping the weights stopped the collapse but
left the aversion 10–25× too small at 4–10 days; ``α = 1/2`` made it 40% too large, ``α = 3/4`` was
within 20% but the shape of ``u(τ)``, free at gain 30, still varied from seed to seed (0.045–0.06/k at
t = 0). Making the hyperbolic rate one learned scalar (gain 300) with the time-dependent shape at gain 3
fixed both: the rate is pinned by the dates where the data are strong (near T) and carried to the
long horizon by the hyperbola. Plain eq. 21 (``time_weighting = "none"``) leaves the mid-horizon
unfitted (aversion 10× too large at 4 days, 1.8/k at 0.6 T).

Two options (strikes 100 and 105, Q̄ = 30, correlation 0.6), φ = 0.5, 200 steps (220–280 s), seeds
0/1/2: spreads within 0.057/0.074/0.069 /k of the grid's at t = 0 (0.032–0.049/k at 0.6 T), P&L
0.9975–0.9984 of the grid policy's (500 common paths), slope of option 1's bid in option 0's inventory
5.7e-4/1.8e-3/1.5e-3 (grid 9.5e-4: the sign is learned, the size within a factor of 2). 100 steps were
enough on seed 0 (0.037/k, P&L 0.9998, −0.16 ± 0.12 on 2000 paths, slope 6.8e-4) but not on seeds 1 and
2 (0.147/k, 0.102/k). With φ = 0: 0.024–0.036/k and slopes below 1e-7 (grid 4e-18). The running-risk
part ``τ R ∘ Z`` carries the cross effect: without it the learned slope was 9e-6 (the MLP ``h`` does not
find it in 200 steps), with the quadratic head instead of it the spreads were 0.12–0.15/k off; its rate
gain matters (300: ``Z`` saturates to ≈ 0 within 20 steps, slope 3e-5; 30: ``Z`` stays at its start,
slope 2.4e-3; 100 is used).

Ten options (``examples/mm_train_ten_options.toml``, φ = 1, γ = 0, no grid): the model-free network
reaches only 0.88–0.94 of the quadratic approximation's P&L (300 paths × 500 steps, 100 steps of
training, with every weighting, 200–400 time steps, exploring states): it stays 10–40× too averse in
the last 0.1 day for the in-the-money options, whose terminal layer (``≈ 1/(4 A e^{−1} k ĉ)`` ≈ 3e-4 day
for ĉ ≈ 15) is where the hyperbolic prior of ``ρ`` is wrong (spreads at their bounds). There the
Riccati warm start (``baseline = "riccati"``, ``time_weighting = "scale"``, grading 1.5) is used and
disclosed: 1.0000 ± 0.0004 of the quadratic approximation's P&L. It also puts the one-option spreads
within 0.002/k before any training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from pdecore._validate import check_choice, check_int, check_positive, check_range
from rl.mm_policies import ASK, BID, DTYPE, DifferencePolicy, GibbsSpreadTable, MarketState
from rl.mm_simulator import MarketMakingSimulator


# ====================================================================== loss (pure function)
def continuous_td_loss(values: torch.Tensor, next_values: torch.Tensor, reward_rate: torch.Tensor,
                       dt: torch.Tensor, mask: torch.Tensor | None = None,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
    """Discretized continuous-time TD loss (Fang & Xu eqs. 20–21): ``E Σ_j δ_j² Δt_j``.

    ``δ_j = (next_values_j − values_j)/Δt_j + reward_rate_j``.

    Parameters
    ----------
    values : Tensor[..., N]
        ``V(t_j, Y_j)``, j = 0..N−1 (trailing axis: time steps; leading axes: paths).
    next_values : Tensor[..., N]
        ``V(t_{j+1}, ·)``, or its conditional expectation over the step's fills.
    reward_rate : Tensor[..., N]
        Reward per unit time over the step (expected spread income + γ·entropy − running risk).
    dt : Tensor[N] or Tensor[..., N]
        Step lengths ``Δt_j > 0``.
    mask : Tensor[..., N] of bool, optional
        Steps to include (others contribute zero).
    weights : Tensor[N] or Tensor[..., N], optional
        Positive weights ``w_j`` of the squared errors (``Σ_j w_j δ_j² Δt_j``): a preconditioner that
        leaves the zero-residual solution unchanged.

    Returns
    -------
    Tensor[]
        ``mean over leading axes of Σ_j δ_j² Δt_j``.
    """
    if values.shape != next_values.shape or values.shape != reward_rate.shape:
        raise ValueError(f"values, next_values and reward_rate must have the same shape [..., N], got "
                         f"{tuple(values.shape)}, {tuple(next_values.shape)}, {tuple(reward_rate.shape)}")
    delta = (next_values - values) / dt + reward_rate
    terms = delta**2 * dt
    if weights is not None:
        terms = terms * weights
    if mask is not None:
        terms = torch.where(mask, terms, torch.zeros_like(terms))
    return terms.sum(dim=-1).mean()


def graded_times(horizon: float, n_steps: int, grading: float = 1.0) -> np.ndarray:
    """``t_j = T (1 − (1 − j/N)^p)``: uniform for p = 1, refined towards T for p > 1 (the boundary
    layer of the terminal penalty), with the first step ``≈ pT/N``."""
    s = np.linspace(0.0, 1.0, n_steps + 1)
    times = horizon * (1.0 - (1.0 - s) ** grading)
    times[0], times[-1] = 0.0, horizon
    return times


# ====================================================================== configuration
@dataclass(frozen=True)
class MMTrainConfig:
    """Settings of the market-making learner (the ``[train]`` table of ``pderl train mm``).

    Attributes
    ----------
    hidden, layers : int
        Width and depth of the MLP ``h`` (tanh activations, smooth in t and Q).
    lr : float
        Adam learning rate; decayed by ``lr_decay`` over the run (geometric, to ``lr·lr_decay``).
    lr_decay : float
        Final/initial learning-rate ratio.
    total_steps : int
        Gradient steps (the trainer's ``total_steps``).
    batch_paths : int
        Paths simulated per policy-iteration round.
    paths_every : int
        Gradient steps per round (1 = Algorithm 1 literally: new paths at every step).
    paths_per_step : int
        Paths of the stored batch whose whole trajectories form one gradient step's mini-batch.
    n_steps : int
        Time steps of the training paths.
    time_grading : float
        ``p`` of :func:`graded_times` (≥ 1): refine the training grid towards T.
    initial_inventory : float
        Training paths start from ``Q_0`` uniform on the integers of ``[−f Q̄, f Q̄]`` (exploring
        starts), ``f`` = this fraction (0 = start flat, as in the evaluation).
    td_target : {"expected", "sampled"}
        Fills integrated out of the TD error (default, unbiased) or the literal sampled transition.
    terminal : {"estimated", "sampled", "model"}
        Terminal value ``V(T, Q) = −Σ_i ĉ_i Q_i²`` with ``ĉ_i = ψ0 × (running mean of P_iT² over every
        path simulated so far)`` (default: learned from data, noise-free within a step), the path's
        own ``−ψ0 Σ P_iT² Q_i²`` (unbiased but noisy: the noise, divided by the last Δt, dominates
        the loss), or the model's exact ``c_i = ψ0 E[P_iT²]``.
    scheme : {"trapezoid", "explicit"}
        Time discretization of the TD error: the jump and reward terms averaged over both ends of the
        step (second order; default) or taken at ``t_{j+1}`` only (first order).
    time_weighting : {"balanced", "scale", "none"}
        A preconditioner of eq. 21 that leaves its zero-residual solution unchanged: ``"balanced"``
        (default) weighs each date by ``(median_k m_k / m_j)^α``, ``m_j`` a running mean of the date's own
        ``δ_j² Δt_j`` (``α = balance_exponent``, clipped to ``[1/weight_limit, weight_limit]``), so that
        the boundary layer of the terminal penalty, whose residuals are orders of magnitude larger, does
        not drown the mid-horizon dates that set the spreads; ``"scale"`` weighs ``δ_j²`` by ``s(0)/s(t_j)``,
        the inverse of the inventory part's scale (module docstring); ``"none"`` is plain eq. 21.
    balance_exponent : float
        ``α`` of ``"balanced"``, in (0, 1]. At a fixed point the weights are ``∝ m_j^{−α}``, so the
        training minimizes ``Σ_j m_j^{1−α}``: ``α = 1/2`` is the L1 norm of the residual over dates (the
        norm that bounds the value error, ``V − V^π = −E∫δ``), ``α = 1`` is ``Σ_j log m_j``, which any
        solution with exactly zero residual on most dates minimizes, and the zero-aversion value
        (constant spreads) is such a solution away from T: with ``α = 1`` the learned aversion collapses.
        ``α = 3/4`` (default) gave the best mid-horizon aversion (``1/2``: 40% too large; module docstring).
    weight_limit : float
        Largest ratio of a date's weight to the median date's (``"balanced"``): a date whose residual
        runs away cannot buy itself out of the loss.
    market_inputs : bool
        Feed (P, S) to the network besides (t, Q) (the paper's V(t, Q, P, S)).
    baseline : {"learned", "riccati", "none"}
        ``"learned"`` (default): the model-free network (a learned quadratic aversion ``ĉ ρ(τ) Q²`` from a
        neutral start, level and terminal coefficients from the simulated data); ``"riccati"``: the
        linear–quadratic inventory baseline of the module docstring, a warm start that uses model
        knowledge (A, k, ψ0, φ, Σ); ``"none"``: no quadratic term (the correction's scale still comes
        from the model).
    aversion_shape_gain : float
        Model-free network: gain of the time-dependent part of ``u(τ)`` (the aversion's exponent is
        ``300 u_0 + g·net(τ)``, ``u_0`` a learned scalar per option). A small gain makes the
        hyperbolic decay ``ρ ≈ 1/(1 + e^{u_0} τ/T)`` the fast direction of the fit, its deviations
        the slow one (module docstring).
    quadratic_head : bool
        Add the learned quadratic form ``−qᵀM(τ)q`` of the module docstring to the network.
    exploring_states : float
        Fraction of each mini-batch whose inventories are redrawn uniformly on ``[−f Q̄, f Q̄]`` at every
        date (``f = initial_inventory``); possible because the TD error with the fills integrated out
        needs only ``(t_j, Q_j)``. Requires ``td_target = "expected"``. 0 (default) = path states only.
    eval_every_paths : int
        Paths of the P&L check in :meth:`MarketMakingLearner.evaluate` (0 = spreads only).
    eval_n_steps : int
        Time steps of evaluation simulations.
    seed : int
        Seed of the learner's generators (initialization, paths, mini-batches).
    """

    hidden: int = 64
    layers: int = 3
    lr: float = 3e-3
    lr_decay: float = 0.1
    total_steps: int = 150
    batch_paths: int = 256
    paths_every: int = 10
    paths_per_step: int = 32
    n_steps: int = 400
    time_grading: float = 2.25
    initial_inventory: float = 0.5
    td_target: str = "expected"
    terminal: str = "estimated"
    scheme: str = "trapezoid"
    time_weighting: str = "balanced"
    market_inputs: bool = False
    baseline: str = "learned"
    quadratic_head: bool = False
    exploring_states: float = 0.0
    weight_limit: float = 100.0
    balance_exponent: float = 0.75
    aversion_shape_gain: float = 3.0
    eval_every_paths: int = 0
    eval_n_steps: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden, minimum=1, fix="pass a positive width, e.g. hidden = 64")
        check_int("layers", self.layers, minimum=1, fix="pass a positive depth, e.g. layers = 3")
        check_positive("lr", self.lr, fix="pass a positive learning rate, e.g. lr = 0.003")
        check_range("lr_decay", self.lr_decay, 0.0, 1.0, fix="pass a ratio in (0, 1], e.g. lr_decay = 0.1")
        if not self.lr_decay > 0.0:
            raise ValueError(f"lr_decay must be > 0, got {self.lr_decay!r}; pass e.g. lr_decay = 0.1")
        check_int("total_steps", self.total_steps, minimum=1, fix="pass a positive number of steps, e.g. 600")
        check_int("batch_paths", self.batch_paths, minimum=1, fix="pass a positive number of paths, e.g. 256")
        check_int("paths_every", self.paths_every, minimum=1, fix="pass a positive period, e.g. 10")
        check_int("paths_per_step", self.paths_per_step, minimum=1, fix="pass a positive number, e.g. 32")
        if self.paths_per_step > self.batch_paths:
            raise ValueError(f"paths_per_step={self.paths_per_step} exceeds batch_paths={self.batch_paths}; "
                             "pass paths_per_step <= batch_paths")
        check_int("n_steps", self.n_steps, minimum=2, fix="pass the number of time steps, e.g. n_steps = 200")
        check_range("time_grading", self.time_grading, 1.0, 4.0, fix="pass a grading exponent in [1, 4]")
        check_range("initial_inventory", self.initial_inventory, 0.0, 1.0,
                    fix="pass a fraction of max_inventory in [0, 1]")
        check_choice("td_target", self.td_target, ("expected", "sampled"), fix="pass 'expected' or 'sampled'")
        check_choice("terminal", self.terminal, ("estimated", "sampled", "model"),
                     fix="pass 'estimated', 'sampled' or 'model'")
        check_choice("scheme", self.scheme, ("trapezoid", "explicit"), fix="pass 'trapezoid' or 'explicit'")
        check_choice("time_weighting", self.time_weighting, ("balanced", "scale", "none"),
                     fix="pass 'balanced', 'scale' or 'none'")
        check_range("balance_exponent", self.balance_exponent, 0.0, 1.0, closed_low=False,
                    fix="pass an exponent in (0, 1], e.g. balance_exponent = 0.75")
        check_range("weight_limit", self.weight_limit, 1.0, 1e12,
                    fix="pass a ratio >= 1, e.g. weight_limit = 100")
        check_positive("aversion_shape_gain", self.aversion_shape_gain,
                       fix="pass a positive gain, e.g. aversion_shape_gain = 3")
        check_choice("market_inputs", self.market_inputs, (True, False), fix="pass true or false")
        check_choice("baseline", self.baseline, ("learned", "riccati", "none"),
                     fix="pass 'learned' (model-free), 'riccati' (warm start from the model) or 'none'")
        check_choice("quadratic_head", self.quadratic_head, (True, False), fix="pass true or false")
        check_range("exploring_states", self.exploring_states, 0.0, 1.0,
                    fix="pass a fraction of the mini-batch in [0, 1], e.g. exploring_states = 0.5")
        if self.exploring_states > 0.0 and self.td_target != "expected":
            raise ValueError(f"exploring_states={self.exploring_states!r} needs td_target = 'expected' (the "
                             "redrawn states have no sampled transitions); pass exploring_states = 0")
        check_int("eval_every_paths", self.eval_every_paths, minimum=0, fix="pass 0 or a number of paths")
        check_int("eval_n_steps", self.eval_n_steps, minimum=1, fix="pass a positive number of steps")
        check_int("seed", self.seed, minimum=0, fix="pass a non-negative seed")

    @classmethod
    def from_mapping(cls, table: dict) -> "MMTrainConfig":
        """Build from a TOML ``[train]`` table, rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in [train]; valid keys are {sorted(known)}")
        return cls(**table)


# ====================================================================== value network
class MarketMakingValueNetwork(nn.Module):
    """``V(t, Q[, P, S])`` with the level/inventory split of the module docstring.

    Parameters
    ----------
    model : pdecore.MarketMakingModel
    hidden, layers : int
    market_inputs : bool
    baseline : {"riccati", "none"}
    """

    def __init__(self, model, *, hidden: int = 64, layers: int = 3, market_inputs: bool = False,
                 baseline: str = "riccati", quadratic_head: bool = False,
                 aversion_shape_gain: float = 3.0) -> None:
        super().__init__()
        n = model.n_options
        self.n_options = n
        self.horizon = float(model.horizon)
        self.max_inventory = float(model.max_inventory)
        self.market_inputs = bool(market_inputs)
        check_choice("baseline", baseline, ("learned", "riccati", "none"),
                     fix="pass 'learned' (model-free), 'riccati' (warm start from the model) or 'none'")
        self.use_baseline = baseline == "riccati"
        self.model_free = baseline == "learned"
        self.use_quadratic_head = bool(quadratic_head)
        decay = model.decay_array()
        intensity = 0.5 * (model.intensity_bid_array() + model.intensity_ask_array())
        low, high = model.spread_bounds
        myopic = np.clip(1.0 / decay, low, high)
        rate0 = intensity * np.exp(-decay * myopic)
        coeffs = np.maximum(model.terminal_coefficients(), 1e-12)
        # level: value of myopic quoting over the horizon (both sides, every option)
        level = float(2.0 * np.sum(rate0 * myopic) * self.horizon)
        if self.model_free:
            # nothing from the dynamics: the level scale is set from the first simulated rewards
            # (MarketMakingLearner), the terminal coefficients start at ψ0 P_i(0)² (observed prices)
            # and are replaced by ψ0 × the simulated mean of P_iT²
            level = 0.0
            coeffs = np.maximum(float(model.terminal_penalty) * np.asarray(model.mid_prices(model.spot, 0.0))**2,
                                1e-12)
        self.register_buffer("level", torch.tensor(level, dtype=DTYPE))
        self.register_buffer("coeffs", torch.as_tensor(coeffs, dtype=DTYPE))
        self.register_buffer("stiffness", torch.as_tensor(4.0 * rate0 * decay * coeffs, dtype=DTYPE))
        running_diag = 0.5 * model.risk_aversion * np.diag(model.noise_cov_array())
        self.register_buffer("running_diag", torch.as_tensor(running_diag, dtype=DTYPE))
        stiff_max = float(np.max(4.0 * rate0 * decay * coeffs))
        # running-risk rate (φ/2) λ_max(ΣΣᵀ): the inventory cost per unit time that the terminal
        # baseline ignores; it enters the scale of the learned correction
        top_eigenvalue = max(0.0, float(np.linalg.eigvalsh(model.noise_cov_array()).max()))
        self.running_rate = 0.5 * float(model.risk_aversion) * top_eigenvalue
        if self.model_free:  # generic time resolution: a thousandth of the horizon
            stiff_max = 1000.0 / self.horizon
        self.log_time_norm = math.log1p(stiff_max * self.horizon)
        self.stiff_max = stiff_max
        spot, sigma = float(model.spot), float(model.volatility)
        self.register_buffer("spot0", torch.tensor(spot, dtype=DTYPE))
        self.spot_scale = sigma * math.sqrt(self.horizon)
        self.register_buffer("price0", torch.as_tensor(model.mid_prices(spot, 0.0), dtype=DTYPE))
        self.price_scale = max(1e-8, sigma * spot * math.sqrt(self.horizon))
        n_time = 2
        n_in = n_time + n + (n + 1 if self.market_inputs else 0)
        blocks: list[nn.Module] = []
        width = n_in
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden, dtype=DTYPE), nn.Tanh()]
            width = hidden
        blocks.append(nn.Linear(width, 1, dtype=DTYPE))
        self.inventory_net = nn.Sequential(*blocks)
        self.level_net = nn.Sequential(nn.Linear(n_time, 16, dtype=DTYPE), nn.Tanh(), nn.Linear(16, 1, dtype=DTYPE))
        # learned quadratic form −qᵀ M(t) q (M symmetric, n(n+1)/2 entries from the time features): a
        # well-conditioned direction for the cross-inventory terms (φ > 0) that the diagonal baseline lacks
        self.register_buffer("tri_rows", torch.triu_indices(n, n)[0])
        self.register_buffer("tri_cols", torch.triu_indices(n, n)[1])
        self.quadratic_net = nn.Sequential(nn.Linear(n_time, 16, dtype=DTYPE), nn.Tanh(),
                                           nn.Linear(16, n * (n + 1) // 2, dtype=DTYPE))
        # model-free inventory aversion: ρ_i(τ) = 1/(1 + (τ/T) exp(u_i(τ))) ∈ (0, 1], u from zero
        self.aversion_rate = nn.Parameter(torch.zeros(n, dtype=DTYPE))
        # model-free running-risk part (φ > 0): −τ qᵀ(R ∘ Z(τ))q, R = (φ/2)ΣΣᵀ the reward's running-risk
        # matrix, Z_ij = 1/(1 + (τ/T) e^{100 z_ij}) a learned saturation per entry (symmetric), starting at
        # z = 0: the running cost accumulated with time to go, which inventory control caps
        running_matrix = 0.5 * model.risk_aversion * model.noise_cov_array()
        self.register_buffer("running_matrix", torch.as_tensor(running_matrix, dtype=DTYPE))
        self.running_saturation = nn.Parameter(torch.zeros(n * (n + 1) // 2, dtype=DTYPE))
        self.aversion_shape_gain = float(aversion_shape_gain)
        self.aversion_net = nn.Sequential(nn.Linear(n_time, 16, dtype=DTYPE), nn.Tanh(),
                                          nn.Linear(16, n, dtype=DTYPE))
        with torch.no_grad():  # start from the baseline: corrections begin small
            self.inventory_net[-1].weight.mul_(0.0 if self.model_free else 0.1)
            self.level_net[-1].weight.mul_(0.1)
            self.quadratic_net[-1].weight.zero_()
            self.quadratic_net[-1].bias.zero_()
            self.aversion_net[-1].weight.zero_()
            self.aversion_net[-1].bias.zero_()

    def baseline_coefficients(self, t: torch.Tensor) -> torch.Tensor:
        """``a_i(t)``, shape ``t.shape + (n,)``: the scalar Riccati ``da/dτ = r_i − κ_i a²``, ``a(0) = c_i``.

        ``κ_i = 4 λ_0 k_i`` (curvature of the two sides' Hamiltonians at zero gain), ``r_i = (φ/2)(ΣΣᵀ)_ii``
        (running risk, cross terms ignored), ``τ = T − t``. With ``s = √(r/κ)``, ``w = √(rκ)``:
        ``a = (c + s² ρ)/(1 + c ρ)``, ``ρ = tanh(wτ)/s`` (→ κτ as r → 0, giving ``c/(1 + κcτ)``).
        """
        to_go = (self.horizon - t).clamp(min=0.0)[..., None]
        kappa = self.stiffness / self.coeffs  # 4 λ0 k
        s = torch.sqrt(self.running_diag / kappa)
        w = torch.sqrt(self.running_diag * kappa)
        safe_s = torch.where(s > 0, s, torch.ones_like(s))
        ratio = torch.where(s > 0, torch.tanh(w * to_go) / safe_s, kappa * to_go)
        return (self.coeffs + s**2 * ratio) / (1.0 + self.coeffs * ratio)

    #: gain of the aversion's decay rate ``r_i``: lets ``u`` cover the orders of magnitude between the
    #: terminal penalty and the mid-horizon inventory aversion in a few dozen Adam steps
    AVERSION_RATE_GAIN = 300.0
    #: gain of the running-risk saturations ``z_ij`` (300 saturated them to zero within 20 steps, 30 left
    #: them at their start; module docstring)
    RUNNING_RATE_GAIN = 100.0

    def learned_coefficients(self, t: torch.Tensor) -> torch.Tensor:
        """Model-free ``b_i(t) = ĉ_i ρ_i(τ)``, ``ρ_i = 1/(1 + (τ/T) e^{u_i(τ)})`` (shape ``t.shape + (n,)``).

        Any coefficient in ``(0, ĉ_i]`` has this form (``ρ(0) = 1`` matches the terminal reward, which
        is the objective, not the model); ``u_i = 300 r_i + g_u w_i(τ)`` (module docstring) starts at
        zero, so the initial value is half to all of the terminal penalty at every date (spreads at
        the bounds: a neutral, deliberately bad start)."""
        to_go = (self.horizon - t).clamp(min=0.0)[..., None]
        shape = self.aversion_net(self._time_features(t))
        u = self.AVERSION_RATE_GAIN * self.aversion_rate + self.aversion_shape_gain * shape
        return self.coeffs / (1.0 + to_go / self.horizon * torch.exp(u.clamp(max=30.0)))

    def running_part(self, t: torch.Tensor) -> torch.Tensor:
        """Model-free running-risk matrix ``τ (R ∘ Z(τ))``, shape ``t.shape + (n, n)`` (zero when φ = 0)."""
        n = self.n_options
        to_go = (self.horizon - t).clamp(min=0.0)[..., None, None]
        z = torch.zeros((n, n), dtype=self.running_saturation.dtype, device=self.running_saturation.device)
        z = z.index_put((self.tri_rows, self.tri_cols), self.running_saturation)
        z = z + z.T - torch.diag(torch.diagonal(z))
        rate = torch.exp((self.RUNNING_RATE_GAIN * z).clamp(max=30.0))
        return to_go * self.running_matrix / (1.0 + to_go / self.horizon * rate)

    def correction_scale(self, t: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        """``s(t) = (max_i a_i(t) + (φ/2) λ_max(ΣΣᵀ)(T − t)) Q̄²/4``: the size of the inventory part
        (model-free network: the learned ``b_i`` in place of ``a_i``, held fixed; ``(φ/2)ΣΣᵀ`` is the
        running-risk coefficient of the reward, which the agent is given like the terminal penalty)."""
        to_go = (self.horizon - t).clamp(min=0.0)
        if self.model_free:
            # the running-risk rate is a coefficient of the reward (like ĉ), not of the dynamics: it sets
            # the scale of the cross-inventory terms, which grow with the time to go while b decays
            with torch.no_grad():
                b = self.learned_coefficients(t) if a is None else a
                return (b.max(dim=-1).values + self.running_rate * to_go) * self.max_inventory**2 / 4.0
        if a is None:
            a = self.baseline_coefficients(t)
        return (a.max(dim=-1).values + self.running_rate * to_go) * self.max_inventory**2 / 4.0

    def _time_features(self, t: torch.Tensor) -> torch.Tensor:
        to_go = (self.horizon - t).clamp(min=0.0)
        return torch.stack([to_go / self.horizon, torch.log1p(self.stiff_max * to_go) / self.log_time_norm], dim=-1)

    def _market_features(self, prices, spot):
        return torch.cat([(prices - self.price0) / self.price_scale,
                          (torch.log(spot / self.spot0) / self.spot_scale)[..., None]], dim=-1)

    def forward(self, t: torch.Tensor, inventory: torch.Tensor, prices: torch.Tensor | None = None,
                spot: torch.Tensor | None = None, *, reference: torch.Tensor | None = None) -> torch.Tensor:
        """V at ``t[B]``, ``inventory[B, n]`` (and ``prices[B, n]``, ``spot[B]`` with market inputs).

        ``reference`` (optional ``[B]``) is ``h(τ, 0)`` precomputed, to save a pass when the same
        (t, P, S) is evaluated at several inventories.
        """
        time_feat = self._time_features(t)
        to_go = (self.horizon - t).clamp(min=0.0)
        scaled_q = inventory / self.max_inventory
        parts = [time_feat, scaled_q]
        if self.market_inputs:
            parts.append(self._market_features(prices, spot))
        h = self.inventory_net(torch.cat(parts, dim=-1)).squeeze(-1)
        if reference is None:
            reference = self.reference(t, prices, spot)
        a = self.learned_coefficients(t) if self.model_free else self.baseline_coefficients(t)
        scale = self.correction_scale(t, a.detach())
        inventory_part = scale * (h - reference)
        if self.use_quadratic_head:  # learned quadratic form, in units of scale·4/Q̄² per lot²
            upper = self.quadratic_net(time_feat)  # [B, n(n+1)/2]
            n = self.n_options
            matrix = inventory.new_zeros(inventory.shape[:-1] + (n, n))
            matrix[..., self.tri_rows, self.tri_cols] = upper
            matrix = 0.5 * (matrix + matrix.transpose(-1, -2))
            quad = torch.einsum("...i,...ij,...j->...", inventory, matrix, inventory)
            inventory_part = inventory_part - scale * (4.0 / self.max_inventory**2) * quad
        if self.use_baseline or self.model_free:
            inventory_part = inventory_part - (a * inventory**2).sum(-1)
        if self.model_free and self.running_rate > 0.0:
            inventory_part = inventory_part - torch.einsum("...i,...ij,...j->...", inventory,
                                                           self.running_part(t), inventory)
        level = self.level * (to_go / self.horizon) * (1.0 + self.level_net(time_feat).squeeze(-1))
        return level + inventory_part

    def reference(self, t, prices=None, spot=None) -> torch.Tensor:
        """``h(τ, 0[, P, S])``: the network at zero inventory."""
        time_feat = self._time_features(t)
        parts = [time_feat, torch.zeros(t.shape + (self.n_options,), dtype=t.dtype, device=t.device)]
        if self.market_inputs:
            parts.append(self._market_features(prices, spot))
        return self.inventory_net(torch.cat(parts, dim=-1)).squeeze(-1)

    def values_and_differences(self, t: torch.Tensor, inventory: torch.Tensor, prices=None, spot=None):
        """``V(t, Q)`` ``[B]`` and ``Δ[B, n, 2]`` (column 0: ``V(Q+e_i) − V(Q)``, 1: ``V(Q−e_i) − V(Q)``)
        in one batched pass over the 2n + 1 inventories."""
        b, n = inventory.shape
        eye = torch.eye(n, dtype=inventory.dtype, device=inventory.device)
        shifted = torch.cat([inventory[None], inventory[None] + eye[:, None, :], inventory[None] - eye[:, None, :]])

        def rep(x):
            return None if x is None else x.expand((2 * n + 1,) + x.shape).reshape((-1,) + x.shape[1:])

        reference = self.reference(t, prices, spot)
        values = self.forward(rep(t), shifted.reshape(-1, n), rep(prices), rep(spot),
                              reference=rep(reference)).reshape(2 * n + 1, b)
        centre = values[0]
        diffs = torch.stack([values[1:n + 1] - centre, values[n + 1:] - centre], dim=-1)  # [n, B, 2]
        return centre, diffs.permute(1, 0, 2)


class NetworkPolicy(DifferencePolicy):
    """The Gibbs policy of a :class:`MarketMakingValueNetwork` (the policy-update step of Algorithm 1)."""

    def __init__(self, table: GibbsSpreadTable, network: MarketMakingValueNetwork, *, execution: str = "sample"):
        self.network = network
        super().__init__(table, self._differences, execution=execution)

    @torch.no_grad()
    def _differences(self, t: float, state: MarketState) -> torch.Tensor:
        inventory = state.inventory
        if self.network.market_inputs:
            tt = torch.full((inventory.shape[0],), float(t), dtype=DTYPE, device=inventory.device)
            return self.network.values_and_differences(tt, inventory, state.prices, state.spot)[1]
        # a (t, Q) network: evaluate each distinct inventory once (paths share few inventories); the
        # inventories are encoded as one integer key, as unique over rows is slow
        n = inventory.shape[1]
        base = 2 * int(round(self.network.max_inventory)) + 1
        if n * math.log2(base) > 62:
            tt = torch.full((inventory.shape[0],), float(t), dtype=DTYPE, device=inventory.device)
            return self.network.values_and_differences(tt, inventory)[1]
        weights = torch.tensor([base**i for i in range(n)], dtype=torch.long, device=inventory.device)
        keys = ((inventory.round().long() + base // 2) * weights).sum(-1)
        unique_keys, inverse = torch.unique(keys, return_inverse=True)
        first = torch.zeros(unique_keys.shape[0], dtype=torch.long, device=keys.device)
        first.scatter_(0, inverse, torch.arange(keys.shape[0], device=keys.device))
        unique = inventory[first]
        tt = torch.full((unique.shape[0],), float(t), dtype=DTYPE, device=inventory.device)
        return self.network.values_and_differences(tt, unique)[1][inverse]


# ====================================================================== learner
class PathBatch(dict):
    """Stored training paths: ``times [N+1]``, ``inventory [M, N+1, n]``, ``prices``/``spot``."""


class MarketMakingLearner:
    """Policy iteration with a value network (paper Algorithm 1), implementing the trainer contract.

    Parameters
    ----------
    model : pdecore.MarketMakingModel
    config : MMTrainConfig
    reference : MarketMakingResult, optional
        A grid HJB solution to measure spread errors against in :meth:`evaluate`.
    """

    def __init__(self, model, config: MMTrainConfig | None = None, *, reference=None) -> None:
        self.model = model
        self.config = config or MMTrainConfig()
        cfg = self.config
        self.device = torch.device("cpu")
        init = torch.Generator().manual_seed(cfg.seed)
        torch_state = torch.get_rng_state()
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=init)))
        self.network = MarketMakingValueNetwork(model, hidden=cfg.hidden, layers=cfg.layers,
                                                market_inputs=cfg.market_inputs, baseline=cfg.baseline,
                                                quadratic_head=cfg.quadratic_head,
                                                aversion_shape_gain=cfg.aversion_shape_gain)
        torch.set_rng_state(torch_state)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.lr)
        gamma = cfg.lr_decay ** (1.0 / max(1, cfg.total_steps))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=gamma)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)
        self.table = GibbsSpreadTable.from_model(model)
        self.times = graded_times(model.horizon, cfg.n_steps, cfg.time_grading)
        self.simulator = MarketMakingSimulator(model, times=self.times)
        self.reference = reference
        self._paths: PathBatch | None = None
        self.n_options = model.n_options
        self.qbar = int(model.max_inventory)
        self.path_steps = 0
        # running sums for the terminal coefficients ĉ_i = ψ0 mean(P_iT²) ("estimated")
        self._terminal_sum = torch.zeros(self.n_options, dtype=DTYPE)
        self._terminal_count = 0
        self._residual_ema: torch.Tensor | None = None  # time_weighting="balanced"
        self._refit_level = False

    # ------------------------------------------------------------------ trainer contract
    def config_dict(self) -> dict:
        from dataclasses import asdict as dc_asdict

        model = dc_asdict(self.model) if hasattr(self.model, "__dataclass_fields__") else repr(self.model)
        return {"kind": "market_making", "model": model, "train": asdict(self.config)}

    def to(self, device) -> "MarketMakingLearner":
        if torch.device(device).type != "cpu":
            raise ValueError("the market-making learner runs on CPU only for now; pass --device cpu")
        return self

    def policy(self, *, execution: str = "sample") -> NetworkPolicy:
        """The current Gibbs policy of the network."""
        return NetworkPolicy(self.table, self.network, execution=execution)

    def _simulate_paths(self) -> PathBatch:
        cfg = self.config
        m, n = cfg.batch_paths, self.n_options
        width = int(math.floor(cfg.initial_inventory * self.qbar))
        start = torch.randint(-width, width + 1, (m, n), generator=self.generator).to(DTYPE)
        self.network.eval()
        result = self.simulator.simulate(self.policy(execution="sample"), m, generator=self.generator,
                                         initial_inventory=start, record=True)
        self.network.train()
        self.path_steps += m * (len(self.times) - 1)
        self._terminal_sum += (result.prices[-1] ** 2).sum(0)
        self._terminal_count += m
        self._refit_level = True
        if self.network.model_free:  # the learned value's terminal coefficients: ĉ from the data
            with torch.no_grad():
                self.network.coeffs.copy_(self.terminal_coefficients().clamp(min=1e-12))
        return PathBatch(inventory=result.inventory.permute(1, 0, 2).contiguous(),
                         prices=result.prices.permute(1, 0, 2).contiguous(),
                         spot=result.spot.T.contiguous())

    def sample_batch(self, step: int) -> dict:
        """Every ``paths_every`` steps simulate a new round of paths; return a mini-batch of them."""
        cfg = self.config
        if self._paths is None or step % cfg.paths_every == 0:
            self._paths = self._simulate_paths()
        chosen = torch.randperm(cfg.batch_paths, generator=self.generator)[:cfg.paths_per_step]
        batch = {key: value[chosen] for key, value in self._paths.items()}
        redrawn = int(round(cfg.exploring_states * cfg.paths_per_step))
        if redrawn > 0:
            # exploring states: with the step's fills integrated out, the TD error at a date needs only
            # (t_j, Q_j), so part of the mini-batch gets inventories drawn uniformly at every date; the
            # network then sees every inventory at every date, also near T where the paths have
            # mean-reverted to a flat book
            width = max(1, int(math.floor(cfg.initial_inventory * self.qbar)))
            inventory = batch["inventory"].clone()
            inventory[:redrawn] = torch.randint(-width, width + 1, inventory[:redrawn].shape,
                                                generator=self.generator).to(DTYPE)
            batch["inventory"] = inventory
        return batch

    def terminal_coefficients(self) -> torch.Tensor:
        """``ĉ_i`` of the terminal value: estimated from the simulated ``P_T`` or the model's (``[n]``)."""
        if self.config.terminal == "model":
            return torch.as_tensor(self.model.terminal_coefficients(), dtype=DTYPE)
        count = max(1, self._terminal_count)
        return float(self.model.terminal_penalty) * self._terminal_sum / count

    def _terminal(self, inventory: torch.Tensor, prices: torch.Tensor) -> torch.Tensor:
        """``V(T, Q)``: ``−ψ0 Σ_i P_iT² Q_i²`` with the path's own ``P_T`` ("sampled"), else
        ``−Σ ĉ_i Q_i²``."""
        if self.config.terminal == "sampled":
            return -float(self.model.terminal_penalty) * ((prices * inventory) ** 2).sum(-1)
        return -(self.terminal_coefficients() * inventory**2).sum(-1)

    def td_terms(self, batch: dict):
        """Values, next values and reward rates ``[B, N]`` of a mini-batch (the inputs of the loss)."""
        cfg = self.config
        net = self.network
        inventory, prices, spot = batch["inventory"], batch["prices"], batch["spot"]  # [B, N+1, n], [B, N+1]
        b, n_dates, n = inventory.shape
        n_steps = n_dates - 1
        times = torch.as_tensor(self.times, dtype=DTYPE)
        dt = times[1:] - times[:-1]
        q0 = inventory[:, :-1].reshape(-1, n)
        t0 = times[:-1].expand(b, n_steps).reshape(-1)
        t1 = times[1:].expand(b, n_steps).reshape(-1)
        market = cfg.market_inputs
        p0 = prices[:, :-1].reshape(-1, n) if market else None
        s0 = spot[:, :-1].reshape(-1) if market else None
        p1 = prices[:, 1:].reshape(-1, n) if market else None
        s1 = spot[:, 1:].reshape(-1) if market else None
        # next-date values at the same inventory and its ±e_i neighbours (network before T, penalty at T)
        next_centre, diffs = net.values_and_differences(t1, q0, p1, s1)
        next_centre = next_centre.reshape(b, n_steps)
        diffs = diffs.reshape(b, n_steps, n, 2)
        last_q = inventory[:, -2]
        p_terminal = prices[:, -1]
        eye = torch.eye(n, dtype=DTYPE)
        term_centre = self._terminal(last_q, p_terminal)
        term_up = self._terminal(last_q[:, None, :] + eye, p_terminal[:, None, :]) - term_centre[:, None]
        term_down = self._terminal(last_q[:, None, :] - eye, p_terminal[:, None, :]) - term_centre[:, None]
        next_centre = torch.cat([next_centre[:, :-1], term_centre[:, None]], dim=1)
        diffs = torch.cat([diffs[:, :-1], torch.stack([term_up, term_down], dim=-1)[:, None]], dim=1)
        q = inventory[:, :-1]
        active = torch.stack([q < self.qbar, q > -self.qbar], dim=-1).to(DTYPE)  # [B, N, n, 2]
        gamma = float(self.model.temperature)

        def rates(d):
            """Σ over active sides of the expected income + γ·entropy, and of λ̄·D (jump term)."""
            stats = self.table.stats(d.detach())
            return ((active * (stats.income + gamma * stats.entropy)).sum(dim=(-1, -2)),
                    (active * stats.rate * d).sum(dim=(-1, -2)))

        reward, jump = rates(diffs)
        if cfg.scheme == "trapezoid":
            # jump term and rewards averaged over both ends of the step: second order in Δt, which
            # matters in the boundary layer of the terminal penalty
            values, diffs0 = net.values_and_differences(t0, q0, p0, s0)
            values = values.reshape(b, n_steps)
            reward0, jump0 = rates(diffs0.reshape(b, n_steps, n, 2))
            reward, jump = 0.5 * (reward + reward0), 0.5 * (jump + jump0)
        else:
            values = net(t0, q0, p0, s0).reshape(b, n_steps)
        phi = float(self.model.risk_aversion)
        if phi > 0.0:
            cov = torch.as_tensor(self.model.noise_cov_array(), dtype=DTYPE)
            reward = reward - 0.5 * phi * torch.einsum("bji,ik,bjk->bj", q, cov, q)
        if cfg.td_target == "expected":
            next_values = next_centre + dt * jump
        else:  # literal sampled transition: V(t_{j+1}, Q_{j+1})
            q1 = inventory[:, 1:]
            nxt = net(t1, q1.reshape(-1, n), p1, s1).reshape(b, n_steps)
            terminal = self._terminal(inventory[:, -1], p_terminal)
            next_values = torch.cat([nxt[:, :-1], terminal[:, None]], dim=1)
        return values, next_values, reward, dt

    def _weights(self) -> torch.Tensor | None:
        """Per-date weights of the loss (see ``MMTrainConfig.time_weighting``); None for plain eq. 21."""
        if self.config.time_weighting == "none":
            return None
        if self.config.time_weighting == "balanced":
            if self._residual_ema is None:
                return None
            # median, not mean: a runaway date must not move the reference of every other date; the
            # clip keeps a date whose residual grows from buying itself out of the loss (without it the
            # terminal date's weight fell as 1/its residual and the learned aversion collapsed to zero,
            # the degenerate zero-aversion solution of the mid-horizon equation)
            limit = self.config.weight_limit
            ratio = (self._residual_ema.median() / self._residual_ema) ** self.config.balance_exponent
            return ratio.clamp(1.0 / limit, limit)
        times = torch.as_tensor(self.times, dtype=DTYPE)
        mid = 0.5 * (times[1:] + times[:-1])
        scale = self.network.correction_scale(mid)
        return self.network.correction_scale(times[:1]) / scale

    def train_step(self, batch: dict) -> dict[str, float]:
        values, next_values, reward, dt = self.td_terms(batch)
        if self.network.model_free and self._refit_level:
            # output scale of the model-free network's level: the mean reward collected over the
            # horizon on the latest paths (re-estimated every round, as the policy changes)
            self._refit_level = False
            with torch.no_grad():
                self.network.level.fill_(float((reward * dt).sum(-1).mean()))
            values, next_values, reward, dt = self.td_terms(batch)
        if self.config.time_weighting == "balanced":
            with torch.no_grad():  # running mean of each date's δ² Δt (a diagonal preconditioner)
                per_date = (((next_values - values) / dt + reward) ** 2 * dt).mean(0)
                if self._residual_ema is None:
                    self._residual_ema = per_date.clone()
                else:
                    self._residual_ema.mul_(0.9).add_(0.1 * per_date)
                self._residual_ema.clamp_(min=1e-12)
        loss = continuous_td_loss(values, next_values, reward, dt, weights=self._weights())
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return {"losses/td": float(loss.detach()), "charts/lr": float(self.scheduler.get_last_lr()[0]),
                "charts/path_steps": float(self.path_steps)}

    # ------------------------------------------------------------------ spreads and evaluation
    @torch.no_grad()
    def mean_spreads(self, t: float, inventory) -> tuple[np.ndarray, np.ndarray]:
        """Learned mean bid and ask spreads ``[B, n]`` at time t for integer inventories ``[B, n]``
        (market inputs, if any, at ``S_0`` and ``P = p(S_0, t)``)."""
        q = torch.as_tensor(np.asarray(inventory, dtype=float), dtype=DTYPE).reshape(-1, self.n_options)
        tt = torch.full((q.shape[0],), float(t), dtype=DTYPE)
        extra = (None, None)
        if self.config.market_inputs:
            spot = torch.full((q.shape[0],), float(self.model.spot), dtype=DTYPE)
            prices = torch.as_tensor(self.model.mid_prices(self.model.spot, t), dtype=DTYPE).expand(q.shape[0], -1)
            extra = (prices, spot)
        self.network.eval()
        _, diffs = self.network.values_and_differences(tt, q, *extra)
        self.network.train()
        spreads = self.table.mean_spread(diffs).numpy()
        return spreads[..., BID], spreads[..., ASK]

    def evaluate(self) -> dict[str, float]:
        """Spread errors against the grid reference (units of 1/k) at t = 0 and 0.6 T, |q| ≤ Q̄/2."""
        out: dict[str, float] = {}
        if self.reference is not None:
            errors = spread_errors(self, self.reference)
            out.update({f"eval/{k}": v for k, v in errors.items()})
        if self.config.eval_every_paths > 0:
            state = self.generator.get_state()
            gen = torch.Generator().manual_seed(10_000 + self.config.seed)
            sim = MarketMakingSimulator(self.model, n_steps=self.config.eval_n_steps)
            result = sim.simulate(self.policy(execution="sample"), self.config.eval_every_paths, generator=gen)
            self.generator.set_state(state)
            summary = result.summary()
            out["eval/objective_mean"] = summary["objective_mean"]
            out["eval/pnl_mean"] = summary["pnl_mean"]
        return out

    def state_dict(self) -> dict:
        return {"network": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
                "paths": None if self._paths is None else dict(self._paths), "path_steps": self.path_steps,
                "terminal_sum": self._terminal_sum.clone(), "terminal_count": self._terminal_count,
                "residual_ema": None if self._residual_ema is None else self._residual_ema.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self._paths = None if state["paths"] is None else PathBatch(state["paths"])
        self.path_steps = int(state.get("path_steps", 0))
        self._terminal_sum = state["terminal_sum"].clone()
        self._terminal_count = int(state["terminal_count"])
        ema = state.get("residual_ema")
        self._residual_ema = None if ema is None else ema.clone()


def inventory_box(n_options: int, half_width: int) -> np.ndarray:
    """All integer inventories with ``|q_i| ≤ half_width``, shape ``[(2w+1)^n, n]``."""
    axis = np.arange(-half_width, half_width + 1)
    grids = np.meshgrid(*([axis] * n_options), indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=-1)


def spread_errors(learner: MarketMakingLearner, reference, *, times_fraction=(0.0, 0.6),
                  half_width: int | None = None) -> dict[str, float]:
    """Max |learned − grid| mean spread in units of 1/k, per date, over ``|q_i| ≤ Q̄/2``.

    Returns ``max_spread_error`` (over both dates, options and sides) and
    ``max_spread_error_t{fraction}`` per date.
    """
    model = learner.model
    n = model.n_options
    w = model.max_inventory // 2 if half_width is None else int(half_width)
    box = inventory_box(n, w)
    decay = model.decay_array()
    out = {}
    worst = 0.0
    for frac in times_fraction:
        t = frac * model.horizon
        bid, ask = learner.mean_spreads(t, box)
        err = 0.0
        for i in range(n):
            grid_bid = reference.bid_spread(t, box, option=i)
            grid_ask = reference.ask_spread(t, box, option=i)
            err = max(err, float(np.nanmax(np.abs(bid[:, i] - grid_bid))) * decay[i],
                      float(np.nanmax(np.abs(ask[:, i] - grid_ask))) * decay[i])
        out[f"max_spread_error_t{frac:g}"] = err
        worst = max(worst, err)
    out["max_spread_error"] = worst
    return out


__all__ = ["continuous_td_loss", "graded_times", "MMTrainConfig", "MarketMakingValueNetwork", "NetworkPolicy",
           "MarketMakingLearner", "spread_errors", "inventory_box"]
