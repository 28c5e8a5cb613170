"""Entropy-regularized policy iteration for option market making (Fang & Xu, Algorithm 1; SPEC section 5).

Algorithm
---------
A value network ``V(t, Q[, P, S]; θ)`` is fitted by the discretized continuous-time TD loss of the
paper (eqs. 20–21) on paths simulated under the current policy, and the policy is the Gibbs density
of :mod:`rl.market_making.policies` with ``Δ^±_i = V(t, Q ± e_i) − V(t, Q)`` taken from the network; repeat::

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
              + s(t)\\,\\big[h(τ, Q/\\bar Q) − h(τ, 0)\\big],

with ``τ`` time features, ``L`` the value of myopic quoting, ``a_i(t) ≈ c_i/(1 + 4λ_0 k c_i (T − t))``
the linear–quadratic (small-skew) approximation of the inventory cost (``λ_0 = A e^{−1}``; with
φ > 0 the scalar Riccati of :meth:`MarketMakingValueNetwork.baseline_coefficients`) used as a
baseline, and ``s(t) = (max_i a_i(t) + (φ/2) λ_max(ΣΣᵀ)(T − t)) Q̄²/4`` the scale of the learned
correction ``h`` (terminal and running inventory costs). Writing the inventory part as a difference makes ``Δ`` depend on ``h`` alone, so it is not drowned by the
``O(L)`` level. ``baseline="none"`` drops the ``a_i`` term (then ``s`` keeps the scale only).

The Riccati baseline (``baseline="riccati"``) is a **warm start that uses model knowledge** (A, k, ψ0,
φ, Σ): with it the one-option spreads are within tolerance before any training. ``baseline="learned"``
is the model-free network: nothing in it is derived from the dynamics,

.. math::

    V(t, Q) = L\\,\\frac{T − t}{T}(1 + g(τ)) − \\sum_i ĉ_i ρ_i(τ) Q_i^2 + s(t)\\,[h(τ, Q/\\bar Q) − h(τ, 0)],
    \\qquad ρ_i = \\frac{1}{1 + (τ/T)\\, e^{u_i(τ)}}, \\qquad u_i(τ) = 300\\, r_i + g_u\\, w_i(τ),

with ``r_i`` a learned scalar (the rate of the hyperbolic decay of the aversion with time to go, the
leading-order shape of any linear–quadratic inventory cost) and ``w`` a small network of generic time
features (``τ/T`` and ``log(1 + 1000 τ/T)``), both starting at zero, taken as ``w(τ) − w(0)``
(``aversion_shape="anchored"``, the default: the shape cannot trade a constant with the rate); the small gain ``g_u``
(``aversion_shape_gain``) makes the deviations from the hyperbola the slow direction of the fit. With a
running risk penalty (φ > 0) the network adds ``−Qᵀ Δ(τ) Q`` (``running_form="riccati"``, the default):
the increment that the reward's running-risk matrix ``R = (φ/2)ΣΣᵀ`` adds to the solution of the matrix
Riccati ``dA/dτ = R − A K A``, ``A(0) = diag(ĉ)``, whose ``R = 0`` solution is the hyperbola above
(``K = diag(κ_i e^{10 z_i})``, ``κ_i = e^{300 r_i}/(ĉ_i T)`` the stiffness the learned rate implies and
``z_i`` a learned correction from zero; :meth:`MarketMakingValueNetwork.running_part`). It saturates at the
running plateau ``≈ √(R/κ)`` instead of growing like ``τR``, carries the cross-inventory terms and is
positive semidefinite. The earlier forms put one learned saturation on ``τR`` (``"psd"``: ``τ D R D``;
``"entrywise"``: per entry of R, which could make the form indefinite); their slope at τ = 0 is three
times the Riccati's, and fitted on dates graded towards T they saturated too early (two options: 0.4 of
the grid's long-horizon aversion). ``ĉ_i`` are the terminal coefficients estimated from the simulated ``P_T`` (the
reward, not the dynamics), ``L`` the mean reward of the latest simulated paths and
``s(t) = (max_i ĉ_i ρ_i + λ_max(R) τ) Q̄²/4`` (held fixed in the gradient). ``ĉ_i`` (start) and ``R`` are the reward's
coefficients, handed over by the learner (:meth:`MarketMakingLearner.reward_coefficients`): the network
reads no A, k, σ, ψ0, φ or Σ itself. Any coefficient in ``(0, ĉ_i]`` has the form
``ĉ_i ρ_i``; at the start the value is half to all of the terminal penalty at every date, so the initial
spreads sit at the bounds (about 5/k from the grid's): whatever the agent gets right afterwards it
learned from the simulated data.

Notes
-----
Measured behaviour and the variants tried: ``docs/market_making_measurements.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import torch

from pdecore.budget import check_memory

from rl.losses import continuous_td_loss
from rl.market_making.config import MMTrainConfig
from rl.market_making.evaluation import spread_errors
from rl.market_making.networks import MarketMakingValueNetwork
from rl.market_making.policies import ASK, BID, DTYPE, DifferencePolicy, GibbsSpreadTable, MarketState
from rl.market_making.simulator import MarketMakingSimulator, graded_times
from rl.trainer import resolve_device


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


def check_learner_memory(n_options: int, cfg: MMTrainConfig) -> float:
    """Refuse, before any tensor exists, a learner whose stored paths or mini-batch cannot fit.

    Held at once: the round of ``batch_paths`` recorded paths (inventory, prices, spot: ``2n + 1`` floats
    per date, simulated then permuted, so twice), the network (``hidden² × layers`` weights with Adam's
    two moments and the gradient, four copies) and one gradient step's activations: every date of
    ``paths_per_step`` paths is evaluated at the inventory and its ``2n`` neighbours, at both ends of
    the step, each keeping ``hidden × layers`` activations and their gradients. Training itself is not
    bounded in time (it checkpoints); only memory is refused here (:mod:`pdecore.budget`).
    """
    n = float(n_options)
    dates = float(cfg.n_steps) + 1.0
    paths = 2.0 * float(cfg.batch_paths) * dates * (2.0 * n + 1.0)
    weights = 4.0 * float(cfg.hidden) * (float(cfg.hidden) * float(cfg.layers) + 2.0 * n + 4.0)
    activations = 2.0 * 2.0 * float(cfg.paths_per_step) * dates * (2.0 * n + 1.0) * float(cfg.hidden) * cfg.layers
    return check_memory(f"the market-making learner with batch_paths={cfg.batch_paths}, n_steps={cfg.n_steps}, "
                        f"paths_per_step={cfg.paths_per_step}, hidden={cfg.hidden}, layers={cfg.layers}",
                        8.0 * (paths + weights + activations),
                        fix="lower batch_paths, n_steps, paths_per_step or hidden (the defaults 256, 400, 32, 64 "
                            "need about 250 MB for one option)")


class MarketMakingLearner:
    """Policy iteration with a value network (paper Algorithm 1), implementing the trainer contract.

    Parameters
    ----------
    model : pdecore.MarketMakingModel
    config : MMTrainConfig
    reference : MarketMakingResult, optional
        A grid HJB solution to measure spread errors against in :meth:`evaluate`.

    Notes
    -----
    Devices: the network, the Gibbs tables, the simulator and every tensor of the loss live on
    ``config.device`` (moved later by :meth:`to`); the random numbers do not. The initial weights
    come from torch's CPU generator and every path, fill and mini-batch draw from a CPU
    ``torch.Generator`` (moved to the device after drawing), so a seed gives the same draws, hence
    the same paths up to floating-point rounding of the device's arithmetic, on every device.
    """

    def __init__(self, model, config: MMTrainConfig | None = None, *, reference=None) -> None:
        self.model = model
        self.config = config or MMTrainConfig()
        cfg = self.config
        if not isinstance(cfg, MMTrainConfig):
            raise ValueError(f"config must be an MMTrainConfig, got {type(cfg).__name__}; pass MMTrainConfig(...)")
        check_learner_memory(model.n_options, cfg)
        self.device = resolve_device(cfg.device)  # refuses CUDA when absent, naming the device
        init = torch.Generator().manual_seed(cfg.seed)
        torch_state = torch.get_rng_state()
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=init)))
        terminal0, running_cost = self.reward_coefficients()
        self.network = MarketMakingValueNetwork(model, hidden=cfg.hidden, layers=cfg.layers,
                                                market_inputs=cfg.market_inputs, baseline=cfg.baseline,
                                                aversion_shape_gain=cfg.aversion_shape_gain,
                                                terminal_coefficients=terminal0, running_cost=running_cost,
                                                running_form=cfg.running_form, aversion_shape=cfg.aversion_shape)
        torch.set_rng_state(torch_state)
        self.network.to(self.device)  # initialized on the CPU stream above, then moved
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.lr)
        gamma = cfg.lr_decay ** (1.0 / max(1, cfg.total_steps))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=gamma)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)  # CPU on every device (class notes)
        self.table = GibbsSpreadTable.from_model(model).to(self.device)
        self.times = graded_times(model.horizon, cfg.n_steps, cfg.time_grading)
        self.simulator = MarketMakingSimulator(model, times=self.times, device=self.device)
        self.reference = reference
        self._paths: PathBatch | None = None
        self.n_options = model.n_options
        self.qbar = int(model.max_inventory)
        self.path_steps = 0
        # running sums for the terminal coefficients ĉ_i = ψ0 mean(P_iT²) ("estimated")
        self._terminal_sum = torch.zeros(self.n_options, dtype=DTYPE, device=self.device)
        self._terminal_count = 0
        self._residual_ema: torch.Tensor | None = None  # time_weighting="balanced"
        self._refit_level = False

    def reward_coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """The objective's quadratic inventory charges, as the TD reward computes them (not the dynamics).

        Returns ``ĉ⁰_i = ψ0 P_i(0)²`` (the terminal penalty ``ψ0 (P_iT Q_iT)²`` at the observed mids of
        t = 0, the start of the running estimate ψ0 × mean ``P_iT²``) and the running-cost matrix
        ``R = (φ/2)ΣΣᵀ`` of the running penalty ``−QᵀRQ dt`` charged by :meth:`td_terms`. These are what
        the model-free network is given (:class:`MarketMakingValueNetwork`); it reads no A, k, σ itself.
        """
        model = self.model
        terminal = float(model.terminal_penalty) * np.asarray(model.mid_prices(model.spot, 0.0), dtype=float) ** 2
        return terminal, 0.5 * float(model.risk_aversion) * model.noise_cov_array()

    # ------------------------------------------------------------------ trainer contract
    def config_dict(self) -> dict:
        from dataclasses import asdict as dc_asdict

        model = dc_asdict(self.model) if hasattr(self.model, "__dataclass_fields__") else repr(self.model)
        return {"kind": "market_making", "model": model, "train": asdict(self.config)}

    def to(self, device) -> "MarketMakingLearner":
        """Move the network, tables, simulator and stored tensors to ``device`` (generators stay on the CPU)."""
        device = resolve_device(str(device))
        if device == self.device:
            return self
        self.device = device
        self.network.to(device)  # in place: the optimizer keeps its parameters (its state follows on load)
        for state in self.optimizer.state.values():
            for key, value in state.items():
                if torch.is_tensor(value):
                    state[key] = value.to(device)
        self.table.to(device)
        self.simulator = MarketMakingSimulator(self.model, times=self.times, device=device)
        self._terminal_sum = self._terminal_sum.to(device)
        if self._residual_ema is not None:
            self._residual_ema = self._residual_ema.to(device)
        if self._paths is not None:
            self._paths = PathBatch({key: value.to(device) for key, value in self._paths.items()})
        return self

    def policy(self, *, execution: str = "sample") -> NetworkPolicy:
        """The current Gibbs policy of the network."""
        return NetworkPolicy(self.table, self.network, execution=execution)

    def _simulate_paths(self) -> PathBatch:
        cfg = self.config
        m, n = cfg.batch_paths, self.n_options
        width = int(math.floor(cfg.initial_inventory * self.qbar))
        start = torch.randint(-width, width + 1, (m, n), generator=self.generator).to(DTYPE).to(self.device)
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
        chosen = torch.randperm(cfg.batch_paths, generator=self.generator)[:cfg.paths_per_step].to(self.device)
        return {key: value[chosen] for key, value in self._paths.items()}

    def terminal_coefficients(self) -> torch.Tensor:
        """``ĉ_i`` of the terminal value: estimated from the simulated ``P_T`` or the model's (``[n]``)."""
        if self.config.terminal == "model":
            return torch.as_tensor(self.model.terminal_coefficients(), dtype=DTYPE, device=self.device)
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
        times = torch.as_tensor(self.times, dtype=DTYPE, device=self.device)
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
        eye = torch.eye(n, dtype=DTYPE, device=self.device)
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
            cov = torch.as_tensor(self.model.noise_cov_array(), dtype=DTYPE, device=self.device)
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
        times = torch.as_tensor(self.times, dtype=DTYPE, device=self.device)
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
        device = self.device
        q = torch.as_tensor(np.asarray(inventory, dtype=float), dtype=DTYPE, device=device).reshape(-1, self.n_options)
        tt = torch.full((q.shape[0],), float(t), dtype=DTYPE, device=device)
        extra = (None, None)
        if self.config.market_inputs:
            spot = torch.full((q.shape[0],), float(self.model.spot), dtype=DTYPE, device=device)
            prices = torch.as_tensor(self.model.mid_prices(self.model.spot, t), dtype=DTYPE,
                                     device=device).expand(q.shape[0], -1)
            extra = (prices, spot)
        self.network.eval()
        _, diffs = self.network.values_and_differences(tt, q, *extra)
        self.network.train()
        spreads = self.table.mean_spread(diffs).cpu().numpy()
        return spreads[..., BID], spreads[..., ASK]

    @torch.no_grad()
    def aversion(self, t: float) -> np.ndarray:
        """Learned inventory aversion at q = 0, ``a_i(t) = −½ (V(Q+e_i) + V(Q−e_i) − 2V(Q))`` at Q = 0, ``[n]``.

        The collapse this learner once showed (docs/market_making_measurements.md) is this quantity
        drifting to zero (flat spreads); :meth:`evaluate` reports its ratio to the grid's.
        """
        q = torch.zeros((1, self.n_options), dtype=DTYPE, device=self.device)
        tt = torch.full((1,), float(t), dtype=DTYPE, device=self.device)
        extra = (None, None)
        if self.config.market_inputs:
            extra = (torch.as_tensor(self.model.mid_prices(self.model.spot, t), dtype=DTYPE,
                                     device=self.device)[None],
                     torch.full((1,), float(self.model.spot), dtype=DTYPE, device=self.device))
        self.network.eval()
        _, diffs = self.network.values_and_differences(tt, q, *extra)
        self.network.train()
        return (-0.5 * diffs[0].sum(-1)).cpu().numpy()

    def evaluate(self) -> dict[str, float]:
        """Spread errors against the grid reference (units of 1/k) at t = 0 and 0.6 T, |q| ≤ Q̄/2, and the
        ratio of the learned inventory aversion at q = 0 to the grid's (worst option; 1 is exact, near 0
        a collapsed aversion)."""
        if self.reference is None:
            return {}
        out = {f"eval/{k}": v for k, v in spread_errors(self, self.reference).items()}
        for frac in (0.0, 0.6):
            t = frac * float(self.model.horizon)
            learned = self.aversion(t)
            ratios = []
            for i in range(self.n_options):
                zero = np.zeros(self.n_options, dtype=int)
                up, down = zero.copy(), zero.copy()
                up[i], down[i] = 1, -1
                grid = -0.5 * (self.reference.theta(t, tuple(up)) + self.reference.theta(t, tuple(down))
                               - 2.0 * self.reference.theta(t, tuple(zero)))
                ratios.append(learned[i] / grid if grid > 0 else float("nan"))
            worst = max(ratios, key=lambda r: abs(math.log(r)) if r > 0 else math.inf)
            out[f"eval/aversion_ratio_t{frac:g}"] = float(worst)
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
        # checkpoints load on the CPU first: the stored tensors follow the learner's device
        paths = state["paths"]
        self._paths = None if paths is None else PathBatch({k: v.to(self.device) for k, v in paths.items()})
        self.path_steps = int(state.get("path_steps", 0))
        self._terminal_sum = state["terminal_sum"].clone().to(self.device)
        self._terminal_count = int(state["terminal_count"])
        ema = state.get("residual_ema")
        self._residual_ema = None if ema is None else ema.clone().to(self.device)


__all__ = ["MarketMakingLearner", "NetworkPolicy", "PathBatch"]
