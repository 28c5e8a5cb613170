"""The market-making value network ``V(t, Q[, P, S]; θ)`` of Fang & Xu's policy iteration (SPEC section 5).

The level/inventory split, the model-free aversion and the (model-based, opt-in) Riccati warm start
are documented in :mod:`rl.market_making.learner`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from pdecore.checks import check_choice
from pdecore.gibbs import argmax_spread
from rl.market_making.policies import DTYPE


def _draw_removed_head(n_time: int, n_options: int) -> None:
    """Draw, and discard, the initial weights of the removed learned quadratic head.

    The network's initialization is one stream of torch's global generator (seeded by the learner).
    The quadratic head (``quadratic_head``, removed: ``docs/market_making_measurements.md``) drew its
    two layers here, between the level and the aversion networks; drawing the same numbers keeps the
    initialization of every later layer, and so every seed's recorded runs, unchanged.
    """
    nn.Linear(n_time, 16, dtype=DTYPE)
    nn.Linear(16, n_options * (n_options + 1) // 2, dtype=DTYPE)


class MarketMakingValueNetwork(nn.Module):
    """``V(t, Q[, P, S])`` with the level/inventory split of the module docstring.

    Parameters
    ----------
    model : pdecore.MarketMakingModel
        Read for the problem's structure (n, T, Q̄, S_0 and the observed mids at t = 0) only when
        ``baseline="learned"``; the model-based baselines also read A, k, ψ0, φ, Σ.
    hidden, layers : int
    market_inputs : bool
        Feed (P, S) too (not default; normalized by σ√T).
    baseline : {"learned", "riccati", "none"}
        ``"learned"``: the model-free network (:meth:`_model_free_setup`); ``"riccati"``: the model-based
        warm start; ``"none"``: no quadratic term (scales from the model).
    aversion_shape_gain : float
    terminal_coefficients : array (n,), required with ``baseline="learned"``
        Initial ``ĉ_i`` of the terminal reward ``−Σ ĉ_i Q_i²`` (the learner passes ψ0 P_i(0)², then its
        running estimate ψ0 × mean ``P_iT²``).
    running_cost : array (n, n), required with ``baseline="learned"``
        The reward's running-cost matrix ``R`` of ``−Qᵀ R Q dt`` (the learner passes ``(φ/2)ΣΣᵀ``, the
        running penalty its TD reward charges).
    running_form : {"riccati", "psd", "entrywise"}
        The model-free running-risk part (:meth:`running_part`); the last two reload earlier runs.
    aversion_shape : {"anchored", "free"}
        The time-dependent part of the aversion's exponent (:meth:`_aversion_shape`); ``"free"`` reloads
        earlier runs.
    """

    def __init__(self, model, *, hidden: int = 64, layers: int = 3, market_inputs: bool = False,
                 baseline: str = "riccati", aversion_shape_gain: float = 3.0, terminal_coefficients=None,
                 running_cost=None, running_form: str = "riccati", aversion_shape: str = "anchored") -> None:
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
        self.running_form = check_choice("running_form", running_form, ("riccati", "psd", "entrywise"),
                                         fix="pass 'riccati' (default), 'psd' or 'entrywise' (runs recorded "
                                             "before the Riccati form)")
        self.shape_anchored = check_choice("aversion_shape", aversion_shape, ("anchored", "free"),
                                           fix="pass 'anchored' (default) or 'free' (runs recorded before it)") == "anchored"
        if self.model_free:
            level, coeffs, stiffness, running_diag, running_matrix, stiff_max = self._model_free_setup(
                n, terminal_coefficients, running_cost)
        else:
            level, coeffs, stiffness, running_diag, running_matrix, stiff_max = self._model_based_setup(model)
        self.register_buffer("level", torch.tensor(level, dtype=DTYPE))
        self.register_buffer("coeffs", torch.as_tensor(coeffs, dtype=DTYPE))
        self.register_buffer("stiffness", torch.as_tensor(stiffness, dtype=DTYPE))
        self.register_buffer("running_diag", torch.as_tensor(running_diag, dtype=DTYPE))
        # running-risk rate λ_max(R), R = (φ/2)ΣΣᵀ the reward's running-cost matrix: the inventory cost per
        # unit time that the terminal coefficients ignore; it enters the scale of the learned correction
        self.running_rate = max(0.0, float(np.linalg.eigvalsh(running_matrix).max()))
        self.log_time_norm = math.log1p(stiff_max * self.horizon)
        self.stiff_max = stiff_max
        spot = float(model.spot)
        self.register_buffer("spot0", torch.tensor(spot, dtype=DTYPE))
        # the observed mids at t = 0 (market data, not a model parameter)
        self.register_buffer("price0", torch.as_tensor(model.mid_prices(spot, 0.0), dtype=DTYPE))
        # the (non-default) market inputs are normalized by the move of S over the horizon, σ√T
        sigma = float(model.volatility) if self.market_inputs or not self.model_free else 1.0
        self.spot_scale = sigma * math.sqrt(self.horizon)
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
        # upper-triangle indices of the symmetric running-risk saturations below
        self.register_buffer("tri_rows", torch.triu_indices(n, n)[0])
        self.register_buffer("tri_cols", torch.triu_indices(n, n)[1])
        _draw_removed_head(n_time, n)
        # model-free inventory aversion: ρ_i(τ) = 1/(1 + (τ/T) exp(u_i(τ))) ∈ (0, 1], u from zero
        self.aversion_rate = nn.Parameter(torch.zeros(n, dtype=DTYPE))
        # model-free running-risk part (φ > 0; running_part): "riccati" reads the diagonal z_ii as the log of a
        # stiffness correction (gain 10), "psd" as saturations of τR, "entrywise" every entry; all from z = 0
        # (the upper triangle is kept for every form, so the parameters of recorded runs keep their shape)
        self.register_buffer("running_matrix", torch.as_tensor(running_matrix, dtype=DTYPE))
        self.running_saturation = nn.Parameter(torch.zeros(n * (n + 1) // 2, dtype=DTYPE))
        self.aversion_shape_gain = float(aversion_shape_gain)
        self.aversion_net = nn.Sequential(nn.Linear(n_time, 16, dtype=DTYPE), nn.Tanh(),
                                          nn.Linear(16, n, dtype=DTYPE))
        with torch.no_grad():  # start from the baseline: corrections begin small
            self.inventory_net[-1].weight.mul_(0.0 if self.model_free else 0.1)
            self.level_net[-1].weight.mul_(0.1)
            self.aversion_net[-1].weight.zero_()
            self.aversion_net[-1].bias.zero_()

    def _model_free_setup(self, n: int, terminal_coefficients, running_cost):
        """Buffers of the model-free network: nothing from the model's dynamics or objective parameters.

        The network reads only the problem's structure (n, T, Q̄) and the observed mids at t = 0. What the
        objective charges, ``terminal_coefficients`` (``ĉ_i``, replaced by the learner with ψ0 × the
        simulated mean of ``P_iT²``) and ``running_cost`` (the reward's running-cost matrix ``R``), is
        handed over by :class:`~rl.market_making.learner.MarketMakingLearner`, which computes the reward;
        the level scale is set from the first simulated rewards; the time resolution is generic (a
        thousandth of the horizon). No A, k, σ, ψ0, φ or Σ is read here.
        """
        if terminal_coefficients is None or running_cost is None:
            raise ValueError("the model-free network (baseline='learned') needs terminal_coefficients and "
                             "running_cost, the reward's coefficients; build it through MarketMakingLearner, or "
                             "pass them (e.g. MarketMakingLearner.reward_coefficients())")
        coeffs = np.maximum(np.asarray(terminal_coefficients, dtype=float).reshape(n), 1e-12)
        running_matrix = np.asarray(running_cost, dtype=float).reshape(n, n)
        zeros = np.zeros(n)
        return 0.0, coeffs, zeros, zeros, running_matrix, 1000.0 / self.horizon

    def _model_based_setup(self, model):
        """Buffers of the Riccati warm start (``baseline="riccati"``) and of ``"none"``: model knowledge.

        ``L`` the value of myopic quoting over the horizon (both sides, every option), ``c_i`` the model's
        terminal coefficients, the stiffness ``4 λ_0 k_i c_i`` (``λ_0 = A e^{−k δ_myopic}``) and the running
        risk ``(φ/2)(ΣΣᵀ)_ii`` of :meth:`baseline_coefficients`.
        """
        decay = model.decay_array()
        intensity = 0.5 * (model.intensity_bid_array() + model.intensity_ask_array())
        low, high = model.spread_bounds
        myopic = argmax_spread(0.0, decay, low, high)  # the γ = 0 quote at zero gain, clip(1/k)
        rate0 = intensity * np.exp(-decay * myopic)
        coeffs = np.maximum(model.terminal_coefficients(), 1e-12)
        level = float(2.0 * np.sum(rate0 * myopic) * self.horizon)
        stiffness = 4.0 * rate0 * decay * coeffs
        running_diag = 0.5 * model.risk_aversion * np.diag(model.noise_cov_array())
        running_matrix = 0.5 * model.risk_aversion * model.noise_cov_array()
        return level, coeffs, stiffness, running_diag, running_matrix, float(np.max(stiffness))

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
    #: them at their start; docs/market_making_measurements.md)
    RUNNING_RATE_GAIN = 100.0

    def _aversion_shape(self, t: torch.Tensor) -> torch.Tensor:
        """``w_i(τ)`` of the aversion's exponent, shape ``t.shape + (n,)``.

        ``aversion_shape="anchored"`` (default): ``w(τ) − w(0)``, zero at the horizon. A free network can
        also add a constant to the exponent, which is what the rate ``r`` does: the fit is then flat
        along the trade between the two, and each seed wandered along it (one option, seed 7: from the
        right aversion at step 25 to 0.59 of it; started at the right rate, to 1.34 of it). Anchored, the
        rate alone sets the exponent in the terminal layer, where the data are strongest, and the shape
        only its change with time to go (docs/market_making_measurements.md).
        """
        shape = self.aversion_net(self._time_features(t))
        if self.shape_anchored:
            end = torch.full((1,), self.horizon, dtype=t.dtype, device=t.device)
            shape = shape - self.aversion_net(self._time_features(end))[0]
        return shape

    def learned_coefficients(self, t: torch.Tensor) -> torch.Tensor:
        """Model-free ``b_i(t) = ĉ_i ρ_i(τ)``, ``ρ_i = 1/(1 + (τ/T) e^{u_i(τ)})`` (shape ``t.shape + (n,)``).

        Any coefficient in ``(0, ĉ_i]`` has this form (``ρ(0) = 1`` matches the terminal reward, which
        is the objective, not the model); ``u_i = 300 r_i + g_u w_i(τ)`` (module docstring) starts at
        zero, so the initial value is half to all of the terminal penalty at every date (spreads at
        the bounds: a neutral, deliberately bad start)."""
        to_go = (self.horizon - t).clamp(min=0.0)[..., None]
        shape = self._aversion_shape(t)
        u = self.AVERSION_RATE_GAIN * self.aversion_rate + self.aversion_shape_gain * shape
        return self.coeffs / (1.0 + to_go / self.horizon * torch.exp(u.clamp(max=30.0)))

    #: gain of the running part's stiffness multiplier ``e^{g z_i}`` (``running_form="riccati"``)
    RICCATI_STIFFNESS_GAIN = 10.0
    #: most RK4 nodes of the running part's Riccati over the horizon (``running_form="riccati"``)
    RICCATI_MAX_NODES = 4096

    def learned_stiffness(self, to_go: torch.Tensor) -> torch.Tensor:
        """``κ_i(τ) = e^{u_i(τ)}/(ĉ_i T)``, shape ``to_go.shape + (n,)``: the stiffness the learned aversion implies.

        The terminal part ``ĉ/(1 + (τ/T) e^{u(τ)})`` of :meth:`learned_coefficients` is ``ĉ/(1 + ĉ κ τ)``:
        with a constant ``u`` the solution of the linear–quadratic Riccati ``da/dτ = −κ a²``, ``a(0) = ĉ``,
        ``κ`` the curvature of the fill Hamiltonians that the data near T pin (learned, not A or k).
        """
        shape = self._aversion_shape(self.horizon - to_go)
        u = self.AVERSION_RATE_GAIN * self.aversion_rate + self.aversion_shape_gain * shape
        return torch.exp(u.clamp(max=30.0)) / (self.coeffs * self.horizon)

    def _riccati_nodes(self):
        """:meth:`_solve_riccati_nodes`, cached while no gradient is recorded.

        The policy's simulation evaluates the network at every one of its time steps with the same
        parameters (400 solves per round of paths, most of a round's time, unneeded): without gradients the
        nodes are kept until a tensor they are computed from changes (its storage or its version counter,
        which every in-place update, the optimizer's step and ``load_state_dict`` included, advances). With
        gradients they are solved afresh, so that each loss has its own graph.
        """
        if torch.is_grad_enabled():
            return self._solve_riccati_nodes()
        sources = (self.aversion_rate, self.running_saturation, self.coeffs, self.running_matrix,
                   *self.aversion_net.parameters())
        key = tuple((tensor.data_ptr(), tensor._version) for tensor in sources)
        cached = getattr(self, "_riccati_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, self._solve_riccati_nodes())
            self._riccati_cache = cached
        return cached[1]

    def _solve_riccati_nodes(self):
        """The running increment's RK4 solution on nodes of ``τ ∈ [0, T]`` graded towards 0.

        With a constant stiffness K, ``P = A^{−1}`` of the matrix Riccati ``dA/dτ = R − A K A``,
        ``A(0) = C = diag(ĉ)``, obeys ``dP/dτ = K − P R P``, ``P(0) = C^{−1}`` (not stiff where A is: the
        terminal layer, A ≈ ĉ), and ``E = P − P_0``, ``P_0 = C^{−1} + Kτ`` its R = 0 solution, solves
        ``dE/dτ = −P R P``, ``E(0) = 0``. Here ``P_0(τ) = C^{−1} + τ K(τ)`` is the inverse of the learned
        hyperbola itself (its time-dependent shape included, :meth:`learned_stiffness`, times the learned
        correction ``e^{10 z}``), so that at R = 0 the form is exactly the hyperbola and with a constant
        stiffness exactly the Riccati. Returns the nodes ``[N + 1]``, ``E`` and ``dE/dτ`` at them
        (``[N + 1, n, n]``) and the correction ``e^{10 z}``. The largest step keeps
        ``h · 2√(λ_max(R) max κ)`` (the linearized rate at the running plateau) below 1/4.
        """
        correction = torch.exp(self.RICCATI_STIFFNESS_GAIN * self.running_saturation[self.tri_rows == self.tri_cols])
        dtype, device = self.coeffs.dtype, self.coeffs.device
        coarse = torch.linspace(0.0, self.horizon, 65, dtype=dtype, device=device)
        kappa_max = float((self.learned_stiffness(coarse) * correction).detach().max())
        rate = 2.0 * math.sqrt(max(self.running_rate, 0.0) * kappa_max)
        # nodes graded towards τ = 0 (τ_k = T (k/N)²), where the time features, hence κ(τ), vary on the
        # scale T/1000; the largest step, 2T/N at τ = T, keeps h · rate ≤ 1/4
        nodes = int(min(self.RICCATI_MAX_NODES, max(64, math.ceil(8.0 * rate * self.horizon))))
        grid = self.horizon * (torch.arange(nodes + 1, dtype=dtype, device=device) / nodes) ** 2
        steps = grid[1:] - grid[:-1]
        # P_0 at the nodes (even j) and the midpoints of the steps (odd j): RK4's evaluation times
        taus = torch.stack([grid[:-1], grid[:-1] + 0.5 * steps], dim=-1).reshape(-1)
        taus = torch.cat([taus, grid[-1:]])
        p0 = 1.0 / self.coeffs + taus[:, None] * self.learned_stiffness(taus) * correction  # [2N + 1, n]
        r = self.running_matrix

        def slope(j, e):
            p = torch.diag(p0[j]) + e
            return -(p @ r @ p)

        e = torch.zeros_like(r)
        values, slopes = [e], [slope(0, e)]
        # the step sizes as Python floats in one transfer (one read per node would stall a GPU at every node)
        for k, h in enumerate(steps.tolist()):
            k1 = slopes[-1]
            k2 = slope(2 * k + 1, e + 0.5 * h * k1)
            k3 = slope(2 * k + 1, e + 0.5 * h * k2)
            k4 = slope(2 * k + 2, e + h * k3)
            e = e + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            e = 0.5 * (e + e.T)
            values.append(e)
            slopes.append(slope(2 * k + 2, e))
        return grid, torch.stack(values), torch.stack(slopes), correction

    def _riccati_running_part(self, to_go: torch.Tensor) -> torch.Tensor:
        """``Δ(τ) = A_R(τ) − A_0(τ)`` at ``to_go`` (shape ``to_go.shape + (n, n)``), positive semidefinite.

        ``A_R = (P_0 + E)^{−1}`` with E cubic-Hermite interpolated between the RK4 nodes, and
        ``A_0 = P_0^{−1}``; ``Δ = −(P_0 + E)^{−1} E P_0^{−1}``. Evaluated once per distinct τ.
        """
        n = self.n_options
        flat = to_go.reshape(-1)
        unique, inverse = torch.unique(flat, return_inverse=True)
        grid, values, slopes, correction = self._riccati_nodes()
        index = (torch.searchsorted(grid, unique.contiguous(), right=True) - 1).clamp(0, grid.numel() - 2)
        h = (grid[index + 1] - grid[index])[:, None, None]
        s = ((unique - grid[index])[:, None, None] / h).clamp(0.0, 1.0)
        h00, h10 = (1 + 2 * s) * (1 - s) ** 2, s * (1 - s) ** 2
        h01, h11 = s**2 * (3 - 2 * s), s**2 * (s - 1)
        e = h00 * values[index] + h10 * h * slopes[index] + h01 * values[index + 1] + h11 * h * slopes[index + 1]
        p0 = 1.0 / self.coeffs + unique[:, None] * self.learned_stiffness(unique) * correction  # [U, n]: P_0
        p = torch.diag_embed(p0) + e
        delta = -torch.linalg.solve(p, e) / p0[:, None, :]
        delta = 0.5 * (delta + delta.transpose(-1, -2))
        return delta[inverse].reshape(to_go.shape + (n, n))

    def running_part(self, t: torch.Tensor) -> torch.Tensor:
        """Model-free running-risk matrix, shape ``t.shape + (n, n)`` (zero when φ = 0).

        ``running_form="riccati"`` (default): the increment ``Δ(τ) = A_R(τ) − A_0(τ)`` that the running
        cost ``R = (φ/2)ΣΣᵀ`` adds to the solution of the matrix Riccati ``dA/dτ = R − A K A``,
        ``A(0) = diag(ĉ)``, whose ``R = 0`` solution is the learned hyperbola: ``K = diag(κ_i e^{10 z_i})``,
        ``κ_i(τ)`` the stiffness of :meth:`learned_stiffness` and ``z_i`` a learned correction from zero. It
        saturates at the running plateau ``≈ √(R/κ)`` (the Riccati's steady state) instead of growing
        like ``τR``, carries the cross-inventory terms of R, and is positive semidefinite (``A_R ⪰ A_0``
        for ``R ⪰ 0``, the Riccati comparison theorem). The earlier forms below put one saturation
        ``1/(1 + (τ/T)e^{100 z})`` on ``τR``, whose slope at τ = 0 is three times the Riccati's: fitted on
        dates graded towards T it saturated about five times too early, and two options learned 0.4 of
        the grid's long-horizon aversion (docs/market_making_measurements.md).
        ``running_form="psd"`` (the default before the Riccati form): ``Z_ij = d_i d_j``, ``d_i = (1 + (τ/T) e^{100 z_ii})^{−1/2}`` (the
        diagonal saturations only), i.e. ``τ D R D`` with ``D = diag(d)``: positive semidefinite whenever R
        is, so no direction of the inventory space can gain from holding more (Schur product theorem).
        ``"entrywise"``: a free saturation per entry, which for many correlated options made ``R ∘ Z``
        indefinite (ten options: the inventory ran to ±Q̄ along the negative directions on 55% of the
        path-steps; docs/market_making_measurements.md).
        """
        n = self.n_options
        if self.running_form == "riccati":
            return self._riccati_running_part((self.horizon - t).clamp(min=0.0))
        to_go = (self.horizon - t).clamp(min=0.0)[..., None, None]
        if self.running_form == "psd":
            z_diag = self.running_saturation[self.tri_rows == self.tri_cols]  # triu order: z_00, …, z_nn
            rate = torch.exp((self.RUNNING_RATE_GAIN * z_diag).clamp(max=30.0))
            d = torch.rsqrt(1.0 + to_go[..., 0] / self.horizon * rate)  # [..., n]
            return to_go * self.running_matrix * d[..., :, None] * d[..., None, :]
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


__all__ = ["MarketMakingValueNetwork"]
