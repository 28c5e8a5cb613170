"""The exploratory stopping learner in d dimensions: the geometric-basket put (d = 40…200) and the
fractional Brownian motion (101-dimensional Markovized state) of the stopping paper's v3, section 5
(SPEC section 7).

Method (SPEC section 3, unchanged but for the state). On the dates ``t_l = lΔt``, ``l = 0..L``, one
value network per date ``l < L`` (:class:`rl.networks.BatchedValueNetwork`: all dates in one batched
module, batch norm after the input, before each ReLU and on the output) takes the paper's inputs, the
state and the payoff, ``(X_l, h_l) ∈ R^{D+1}`` (the basket's state as log-prices by default,
``state_inputs``; for the basket one input layer shared by all dates by default, ``input_layer``), and
outputs ``w_l = V_l − h_l``. The policy is
``π_l = sigmoid(−κ w_l/λ)`` (detached), the loss the offline martingale loss
:func:`rl.losses.martingale_loss` (Dai, Sun, Xu & Zhou, Algorithm 1), one Adam step per batch of fresh
paths, and execution exercises at the first date with ``w_l ≤ 0`` (``π ≥ ½``).

Formulations
------------
* ``price``: ``h = g`` (discounted by ``e^{−r t}`` inside the loss), terminal value ``g(X_T)``.
* ``premium``: ``h = g − V_E`` with ``V_E(t_l, X_l)`` the exact "European" value of waiting until T:
  for the basket the Black–Scholes put on the geometric mean ``G`` (a GBM, see
  :mod:`rl.stopping.basket`), for the fBm the conditional mean ``E[W^H_1 | F_{t_l}]``
  (:meth:`rl.stopping.fbm.FBMSimulator.terminal_mean`); terminal value 0. ``e^{−rt}V_E(t, X_t)`` is a
  martingale, so the two formulations have the same optimal stopping rule, and the premium has much
  less variance.

Paper settings (SPEC section 7): basket L = 100, λ = 1, batch 2^10, learning rate 0.05 × 0.1 every 300
steps, 1000 steps; fBm L = 100, λ = 0.1, batch 2^10, learning rate 0.01 halved every 200 steps, 3000
steps. The penalty κ is not given there; the default κ = 1/Δt = 100 is the value at which the discrete
oracle's execution price is the Bermudan price (``κΔt = 1`` makes ``V_l = C_l + (g − C_l)^+``
at ``λ → 0``); measured for the basket's 1-D equivalent (:func:`pdecore.oracle.stopping_oracle`,
λ = 1): P_stopping floors 6.2994 (κ = 10), 6.5061 (κ = 50), 6.5149 (κ = 100, = Bermudan) against the
American 6.5452, so κ = 10 alone would cost 3.8 %.

Measured (d = 40, seed 0, paper schedule, 1000 steps, 2^14 test paths, prices as inputs and the
paper's survival weights, on a machine shared by ~7 jobs): ``price`` 6.301 ± 0.061 (control variate
6.346 ± 0.032); ``premium`` 6.392 ± 0.061 (6.428 ± 0.032), against the American 6.5452 and the
Bermudan (101 dates) 6.5149: hence ``premium`` by default. The restarted weighting and log-price
inputs (the config's defaults, see :class:`HighDimStoppingConfig`) came later; all acceptance runs
are in ``docs/high_dim_stopping.md``.

Evaluation: :meth:`HighDimStoppingLearner.evaluate` reports on fresh common test paths (seed
``eval_seed``) ``p_stopping`` = ``E[e^{−rτ} g(X_τ)]`` (plain Monte Carlo, a lower bound of the value up
to its standard error, as in the paper) and ``p_stopping_cv`` = ``V_E(0) + E[e^{−rτ}(g − V_E)(X_τ)]``,
the same expectation (optional stopping of the martingale ``e^{−rt}V_E``) with a far smaller standard
error. With ``execution_substeps = m > 1`` (basket) the test paths are drawn on ``L·m`` dates and the
rule is executed on all of them, the premium interpolated linearly in time between the networks of the
two surrounding decision dates (:meth:`HighDimStoppingLearner.exercise`): the American option's price
then no longer pays the Bermudan gap of the 101 dates; ``p_decision_dates`` is the paper's evaluation
(exercise at the decision dates only) on the same paths. The networks still carry the boundary of a holder
who may exercise every Δt, about ``β σ √Δt`` (``β = 0.5826``) above that of one who may exercise every
Δt/m, as for a discretely monitored barrier (Broadie, Glasserman & Kou 1997). With
``continuity_correction`` (the shipped specs) the rule asks each network at the state moved that far
toward continuation along the diffusion's own metric, the direction from the learned premium's gradient
and the covariance of simulated increments (:meth:`HighDimStoppingLearner.continuity_shifts`).
"""

from __future__ import annotations

import copy
import math

import torch

from pdecore.budget import check_memory
from pdecore.checks import check_int
from rl.black_scholes import bs_price_torch
from rl.losses import martingale_loss
from rl.networks import BatchedValueNetwork
from rl.seeding import derive_seeds  # the learners' shared seed derivation (one seed → paths, weights)
from rl.stopping.basket import DTYPES, BasketMarket, BasketSimulator
from rl.stopping.fbm import FBMSimulator
from rl.stopping.high_dim_config import FORMULATIONS, PROBLEMS, HighDimStoppingConfig  # noqa: F401 (re-exported)
from rl.stopping.policies import BernoulliStoppingPolicy

#: Bytes of evaluation inputs held at once (paths are evaluated in chunks of at most this size).
EVAL_CHUNK_BYTES = 2**28

#: Broadie, Glasserman & Kou's constant ``β = −ζ(½)/√(2π)``: a barrier monitored every Δt acts like a
#: continuously monitored one moved by ``β σ √Δt`` (Math. Finance 7, 1997). Used by the continuity correction.
BGK_BETA = 0.5825971579390106

#: Near-zero points of the premium that set a date's boundary normal: the in-the-money points with the
#: smallest ``|w_l|``, this share of them (at least :data:`SHIFT_MIN_POINTS`).
SHIFT_NEAR_SHARE = 0.05
SHIFT_MIN_POINTS = 64


class HighDimStoppingLearner:
    """Martingale-loss learner of a d-dimensional stopping problem (implements :mod:`rl.trainer`'s contract).

    Parameters
    ----------
    config : HighDimStoppingConfig
    reference : dict, optional
        ``{"price": float, ...}`` from :mod:`validation.high_dim_stopping` (the learner solves nothing);
        adds relative errors to :meth:`evaluate`.
    device : str or torch.device
        Where the networks run; paths are drawn on the CPU generator and moved (same seed, same paths).
    """

    def __init__(self, config: HighDimStoppingConfig, *, reference: dict | None = None,
                 device: str | torch.device = "cpu") -> None:
        if not isinstance(config, HighDimStoppingConfig):
            raise ValueError(f"config must be a HighDimStoppingConfig, got {type(config).__name__}")
        self.config = config
        self.reference = reference
        self.device = torch.device(device)
        self.dtype = DTYPES[config.dtype]
        if config.problem == "basket":
            self.market = BasketMarket(config.dimension, config.case, config.correlation)
            self.simulator = BasketSimulator(self.market, config.n_dates)
            # the test paths live on the execution grid, L·m dates (the decision dates are every m-th)
            self.test_simulator = (self.simulator if config.execution_substeps == 1 else
                                   BasketSimulator(self.market, config.n_dates * config.execution_substeps))
            self.rate = self.market.rate
            geometric = self.market.geometric_parameters()
            self._geometric = geometric
        else:
            self.market = None
            self.simulator = FBMSimulator(config.hurst, config.n_dates)
            self.test_simulator = self.simulator
            self.rate = 0.0
        self.state_dimension = self.simulator.dimension
        self.premium = config.formulation == "premium"
        self.check_memory(config.batch_size, training=True)
        train_seed, init_seed = derive_seeds(config.seed, 2)
        self.generator = torch.Generator().manual_seed(train_seed)
        init = torch.Generator().manual_seed(init_seed)
        self.net = BatchedValueNetwork(config.n_dates, in_features=self.state_dimension + 1, hidden=config.hidden,
                                       n_hidden=config.n_hidden, batch_norm=config.batch_norm, generator=init,
                                       shared_input=config.input_layer == "shared",
                                       input_affine=config.input_norm == "affine",
                                       shared_hidden=config.hidden_layers == "shared")
        self.net.to(device=self.device, dtype=self.dtype)
        self.policy = BernoulliStoppingPolicy(config.penalty, config.temperature, detach=True)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.learning_rate)
        self.value_updates = 0
        self._calibration = None
        self._shifts = None

    # ------------------------------------------------------------------ memory
    def bytes_per_path(self, *, training: bool, execution_grid: bool = True) -> float:
        """Bytes held per path: its draw, the network inputs (a copy, the normalized copy and, in
        training, their gradient) and the hidden activations (saved for the backward pass). In evaluation
        on an execution grid finer than the decision dates (``execution_grid`` and
        ``execution_substeps > 1``): that grid's draw, its payoffs, European values and exercise flags,
        and two sets of network inputs (the interpolated rule)."""
        c = self.config
        size = torch.empty((), dtype=self.dtype).element_size()
        if training:
            inputs = c.n_dates * (self.state_dimension + 1) * size * 3
            hidden = c.n_dates * c.hidden * c.n_hidden * size * 6
            return float(self.simulator.bytes_per_path(self.dtype) + inputs + hidden)
        inputs = c.n_dates * (self.state_dimension + 1) * size * 2
        hidden = c.n_dates * c.hidden * c.n_hidden * size * 2
        if c.execution_substeps == 1 or not execution_grid:
            return float(self.simulator.bytes_per_path(self.dtype) + inputs + hidden)
        grid = (c.n_dates * c.execution_substeps + 1) * 8 * 4  # gains, European values, log G, exercise flags
        # the moved states of the continuity correction
        shifted = 2 * c.n_dates * self.state_dimension * size if self.corrects_continuity() else 0
        return float(self.test_simulator.bytes_per_path(self.dtype) + 2 * (inputs + hidden) + grid + shifted)

    def check_memory(self, n_paths: int, *, training: bool) -> float:
        """Refuse (``ValueError``) before allocation a batch × dates × dimension that exceeds the budget."""
        c = self.config
        what = (f"{c.problem} learner batch={n_paths}, n_dates={c.n_dates}, state dimension={self.state_dimension}"
                f", dtype={c.dtype}")
        if training:
            fix = "use a smaller batch_size (or a smaller dimension / float32)"
        else:
            what += f", execution grid n_dates x {c.execution_substeps}"
            fix = "use fewer execution_substeps (or a smaller dimension / float32)"
        return check_memory(what, n_paths * self.bytes_per_path(training=training), fix=fix)

    def eval_chunk(self, *, execution_grid: bool = True) -> int:
        """Paths per evaluation chunk (bounded by :data:`EVAL_CHUNK_BYTES`), on the execution grid or on
        the decision dates."""
        per_path = self.bytes_per_path(training=False, execution_grid=execution_grid)
        return max(256, min(2**15, int(EVAL_CHUNK_BYTES // per_path)))

    def calibration_paths(self) -> int:
        """Paths (on the decision dates) that set the evaluation networks' batch-norm statistics: as many
        as one evaluation chunk holds on the decision dates, whatever the execution grid, so the networks
        executed are the same on every grid."""
        return min(self.config.eval_paths, self.eval_chunk(execution_grid=False))

    # ------------------------------------------------------------------ trainer contract
    def config_dict(self) -> dict:
        return {"learner": "high_dim_stopping", **self.config.to_dict()}

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "value_updates": self.value_updates, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.value_updates = int(state.get("value_updates", 0))
        self._calibration = None
        self._shifts = None

    def sample_batch(self, step: int) -> torch.Tensor:
        """``batch_size`` fresh raw paths from the training generator (basket: log-prices ``(B, L+1, d)``;
        fBm: ``(B, L+1)``)."""
        return self.sample_raw(self.config.batch_size, self.generator)

    def sample_raw(self, n_paths: int, generator: torch.Generator, *, execution_grid: bool = False,
                   antithetic: bool = False) -> torch.Tensor:
        """Raw paths (basket: log-prices, fBm: the path) in the learner's dtype on its device, on the
        decision dates or (``execution_grid``) on the ``L·m + 1`` dates the rule is executed on;
        ``antithetic`` (basket): the second half of the paths is the first half's mirror image."""
        simulator = self.test_simulator if execution_grid else self.simulator
        if self.config.problem == "basket":
            return simulator.sample_log(n_paths, generator, dtype=self.dtype, device=self.device,
                                        antithetic=antithetic)
        return simulator.sample(n_paths, generator, dtype=self.dtype, device=self.device)

    # ------------------------------------------------------------------ features
    def payoffs_and_european(self, raw: torch.Tensor, *, need_european: bool = True,
                             log_geometric: torch.Tensor | None = None):
        """Payoffs ``g(X_n)`` and ``V_E(t_n, X_n)`` (``V_E(T) = g``) on the paths' ``N + 1`` equally spaced
        dates (the decision dates, ``N = L``, or the execution grid), float64 ``(B, N + 1)`` each
        (``V_E``: ``None`` unless ``need_european``). Basket: ``log_geometric``, ``log G`` of ``raw`` if the
        caller has summed it already (:meth:`BasketSimulator.log_geometric_mean`)."""
        c = self.config
        if c.problem == "basket":
            if log_geometric is None:
                log_geometric = self.simulator.log_geometric_mean(raw)
            geometric = torch.exp(log_geometric)
            gains = torch.clamp(self.market.strike - geometric, min=0.0)
            if not need_european:
                return gains, None
            n_dates = raw.shape[1] - 1
            times = torch.arange(n_dates, dtype=torch.float64, device=raw.device) / n_dates
            european = self._european(geometric[:, :-1], times)
            return gains, torch.cat([european, gains[:, -1:]], dim=1)
        gains = raw.to(torch.float64)
        if not need_european:
            return gains, None
        return gains, torch.cat([self.simulator.terminal_mean(gains), gains[:, -1:]], dim=1)

    def _european(self, geometric: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Basket: ``V_E(t, G)``, the Black–Scholes put on the geometric mean at times ``t < T`` (float64)."""
        p = self._geometric
        return bs_price_torch("put", geometric, self.market.strike, 1.0 - times, p["volatility"], p["rate"],
                              p["dividend"])

    def _basket_payoffs(self, log_geometric: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Basket: the payoff input ``h`` (the formulation's) at ``log G`` ``(B, n)`` and times ``(n,)`` before T,
        in the learner's dtype."""
        geometric = torch.exp(log_geometric)
        gains = torch.clamp(self.market.strike - geometric, min=0.0)
        if self.premium:
            gains = gains - self._european(geometric, times)
        return gains.to(self.dtype)

    def features(self, raw: torch.Tensor, *, need_european: bool = True):
        """``(inputs (L, D + 1, B), payoffs h (B, L), terminal (B,), gains g (B, L + 1), european (B, L + 1))``.

        ``h`` and ``terminal`` follow the formulation; the inputs are the paper's: the state (basket:
        the log-prices ``log X_l``, or the prices with ``state_inputs="level"``; fBm: the Markovized
        path) and ``h``. ``gains`` and ``european`` are float64
        (for the evaluation; ``european`` is ``None`` when neither the formulation nor the caller needs it),
        the rest in the learner's dtype.
        """
        c = self.config
        gains, european = self.payoffs_and_european(raw, need_european=need_european or self.premium)
        if self.premium:
            payoffs = (gains - european)[:, :c.n_dates]
            terminal = torch.zeros_like(gains[:, -1])
        else:
            payoffs = gains[:, :c.n_dates]
            terminal = gains[:, -1]
        states = raw[:, :c.n_dates] if c.problem == "basket" else self.simulator.states(raw)[:, :c.n_dates, :]
        payoffs = payoffs.to(self.dtype)
        return self._network_inputs(states, payoffs), payoffs, terminal.to(self.dtype), gains, european

    def _network_inputs(self, states: torch.Tensor, payoffs: torch.Tensor) -> torch.Tensor:
        """``(L, D + 1, B)`` inputs from one state ``(B, L, D)`` (basket: log-prices, as drawn) and one
        payoff ``h`` ``(B, L)`` per network."""
        if self.config.problem == "basket" and self.config.state_inputs != "log":
            states = torch.exp(states)
        return torch.cat([states, payoffs.to(self.dtype).unsqueeze(2)], dim=2).permute(1, 2, 0).contiguous()

    # ------------------------------------------------------------------ training
    def learning_rate_at(self, update: int) -> float:
        """``learning_rate · lr_decay_factor^{⌊update/lr_decay_every⌋}`` (paper: step decay)."""
        c = self.config
        if not c.lr_decay_every:
            return c.learning_rate
        return c.learning_rate * c.lr_decay_factor ** (update // c.lr_decay_every)

    @torch.no_grad()
    def _init_output_shift(self, payoffs: torch.Tensor, terminal: torch.Tensor) -> None:
        """Output batch-norm shift := batch mean of ``e^{−r(T − t_l)} terminal − h_l`` per date: the
        networks start at the value of waiting until T (a far better start than 0 at κ = 100)."""
        if not self.net.batch_norm:
            return
        c = self.config
        times = torch.arange(c.n_dates, dtype=torch.float64, device=payoffs.device) * c.dt
        wait = torch.exp(-self.rate * (1.0 - times)).to(self.dtype).unsqueeze(0) * terminal.unsqueeze(1)
        self.net.norms[-1].bias.copy_((wait - payoffs).mean(dim=0).unsqueeze(1))

    def train_step(self, raw: torch.Tensor) -> dict[str, float]:
        c = self.config
        inputs, payoffs, terminal, _, _ = self.features(raw, need_european=False)
        if self.value_updates == 0:
            self._init_output_shift(payoffs, terminal)
        self.net.train()
        premium_part = self.net(inputs).T  # w = V − h, (B, L)
        values = payoffs + premium_part
        prob = self.policy.probability_of_gap(-premium_part)
        loss = martingale_loss(values, payoffs, terminal, prob, penalty=c.penalty, temperature=c.temperature,
                               rate=self.rate, dt=c.dt, weighting=c.martingale_weighting)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate_at(self.value_updates)
        self.optimizer.step()
        self.value_updates += 1
        self._calibration = None
        self._shifts = None
        return {"losses/loss": loss.item(), "charts/learning_rate": self.learning_rate_at(self.value_updates - 1),
                "charts/value0": float(values[:, 0].mean().item())}

    # ------------------------------------------------------------------ evaluation
    def test_batches(self, n_paths: int, *, seed_offset: int = 0):
        """Raw test paths on the execution grid, in chunks (the same paths for every run with the same
        ``eval_seed``, ``execution_substeps`` and ``antithetic_test_paths``; antithetic chunks are
        ``[paths(z); paths(−z)]``, of even size)."""
        generator = torch.Generator().manual_seed(self.config.eval_seed + seed_offset)
        antithetic = self.config.antithetic_test_paths
        chunk = self.eval_chunk() // 2 * 2 if antithetic else self.eval_chunk()
        left = n_paths
        while left > 0:
            size = min(left, chunk)
            yield self.sample_raw(size, generator, execution_grid=True, antithetic=antithetic)
            left -= size

    def calibration_raw(self) -> torch.Tensor:
        """The calibration paths (:meth:`calibration_paths` of them): the first draws of the test seed on the
        decision dates, a plain evaluation's (m = 1, no antithetic pairs) first chunk, whatever this
        configuration's execution grid. They set the batch norms and the continuity correction's moves."""
        return self.sample_raw(self.calibration_paths(), torch.Generator().manual_seed(self.config.eval_seed))

    @torch.no_grad()
    def evaluation_network(self) -> BatchedValueNetwork:
        """A copy of the networks with batch-norm statistics calibrated on the first evaluation chunk."""
        if self._calibration is None:
            net = copy.deepcopy(self.net)
            net.calibrate(self.features(self.calibration_raw())[0])
            self._calibration = net
        return self._calibration

    def corrects_continuity(self) -> bool:
        """Whether the execution rule carries the continuity correction (:class:`HighDimStoppingConfig`)."""
        c = self.config
        return c.problem == "basket" and c.execution_substeps > 1 and c.continuity_correction

    def continuity_shifts(self, net: BatchedValueNetwork | None = None) -> torch.Tensor:
        """The continuity correction's moves of the log-prices, ``(L + 1, d)`` float64 (row ``l``: date ``l``'s
        network; row ``L`` zero, as ``w_L = 0``).

        ``c_l = θ √Δt Σ ḡ_l / sqrt(ḡ_lᵀ Σ ḡ_l)`` with ``θ = β (1 − 1/√m)`` (:data:`BGK_BETA`):

        * ``Σ``: the covariance per unit time of the log-price increments of the calibration paths
          (:meth:`calibration_raw`, as for the batch norms), pooled over dates;
        * ``ḡ_l``: the mean gradient of ``w_l`` (payoff input included) in the log-prices at the
          in-the-money calibration points nearest its zero set (:data:`SHIFT_NEAR_SHARE`).

        So ``ḡ_lᵀ c_l = θ √Δt sqrt(ḡ_lᵀ Σ ḡ_l)``: the premium's rise over a move of ``θ`` standard
        deviations of one decision step's diffusion across the boundary. A date without a usable gradient (date 0,
        where every path is at the spot) takes the nearest date's move. For a premium that depends on the
        log geometric mean only (the exact one) the move of ``log G`` is ``θ σ_G √Δt``, the
        Broadie–Glasserman–Kou shift between the boundaries of exercise every Δt and every Δt/m (tested).
        """
        if self._shifts is None:
            self._shifts = self._estimate_shifts(net or self.evaluation_network())
        return self._shifts

    def _estimate_shifts(self, net: BatchedValueNetwork) -> torch.Tensor:
        c = self.config
        L, d, m = c.n_dates, self.state_dimension, c.execution_substeps
        shifts = torch.zeros(L + 1, d, dtype=torch.float64)
        if not self.corrects_continuity():
            return shifts
        raw = self.calibration_raw()
        # Σ: per-date sums of the increments' outer products in float64 (no (B·L, d) float64 copy)
        total = torch.zeros(d, dtype=torch.float64)
        second = torch.zeros(d, d, dtype=torch.float64)
        for l in range(L):
            step = (raw[:, l + 1] - raw[:, l]).to(torch.float64).cpu()
            total += step.sum(dim=0)
            second += step.T @ step
        count = raw.shape[0] * L
        mean = total / count
        sigma = (second - count * torch.outer(mean, mean)) / (count - 1) / c.dt
        times = torch.arange(L, dtype=torch.float64, device=raw.device) * c.dt
        with torch.enable_grad():  # the whole derivative, through the payoff input too (callers may hold no_grad)
            states = raw[:, :L].detach().clone().requires_grad_(True)
            log_geometric = self.simulator.log_geometric_mean(states)
            premium = net(self._network_inputs(states, self._basket_payoffs(log_geometric, times))).T  # (B, L)
            gradient, = torch.autograd.grad(premium.sum(), states)  # w_l depends on date l's state only
        premium, gradient = premium.detach().cpu(), gradient.to(torch.float64).cpu()
        in_money = (log_geometric.detach().cpu() < math.log(self.market.strike))
        theta = BGK_BETA * (1.0 - 1.0 / math.sqrt(m))
        valid = []
        for l in range(L):
            points = torch.nonzero(in_money[:, l]).squeeze(1)
            if points.numel() < SHIFT_MIN_POINTS:
                continue
            near = points[torch.argsort(premium[points, l].abs())[:max(SHIFT_MIN_POINTS,
                                                                        int(SHIFT_NEAR_SHARE * points.numel()))]]
            normal = gradient[near, l].mean(dim=0)
            spread = float(normal @ sigma @ normal)
            if not math.isfinite(spread) or spread <= 0.0:
                continue
            shifts[l] = theta * math.sqrt(c.dt) * (sigma @ normal) / math.sqrt(spread)
            valid.append(l)
        if valid:
            for l in range(L):
                if l not in valid:
                    shifts[l] = shifts[min(valid, key=lambda v: (abs(v - l), -v))]
        return shifts

    @torch.no_grad()
    def exercise(self, raw: torch.Tensor, net: BatchedValueNetwork | None = None):
        """Execution rule on raw paths: ``(exercise bool (B, N), gains (B, N+1), european (B, N+1) or None)``.

        On the decision dates (``N = L``) the rule is ``w_l ≤ 0``. On the execution grid (``N = L·m``,
        ``m = execution_substeps``) it is the premium interpolated in time,
        ``(1 − k/m) w_l(x) + (k/m) w_{l+1}(x) ≤ 0`` at ``t = t_l + kΔt/m`` with ``w_L = 0``
        (:class:`HighDimStoppingConfig`): every network ``l`` is evaluated on the states ``m`` times per
        interval, as date ``l`` and (shifted by one) as date ``l + 1``, in two batched passes per ``k``.
        With the continuity correction network ``l`` is asked at ``log x + c_l``
        (:meth:`continuity_shifts`), its payoff input at the moved state too.
        """
        net = net or self.evaluation_network()
        c = self.config
        m = (raw.shape[1] - 1) // c.n_dates
        if m * c.n_dates != raw.shape[1] - 1:
            raise ValueError(f"raw paths with {raw.shape[1]} dates are on neither the decision dates ({c.n_dates + 1}) "
                             f"nor an execution grid of n_dates·m + 1 dates; draw them with sample_raw")
        if m == 1:
            inputs, _, _, gains, european = self.features(raw)
            return net(inputs).T <= 0.0, gains, european
        moved = self.corrects_continuity() and m == c.execution_substeps
        log_geometric = self.simulator.log_geometric_mean(raw) if moved else None  # summed once, used twice
        gains, european = self.payoffs_and_european(raw, need_european=True, log_geometric=log_geometric)
        payoffs = None if moved else (gains - european if self.premium else gains)  # the moved rule makes its own
        exercise = torch.empty((raw.shape[0], c.n_dates * m), dtype=torch.bool, device=raw.device)
        base = torch.arange(c.n_dates, device=raw.device) * m
        if moved:
            shifts = self.continuity_shifts(net).to(raw.device)
            state_shifts = shifts.to(self.dtype)
            geometric_shifts = self.simulator.log_geometric_mean(shifts)  # (L + 1,): the moves of log G
        for k in range(m):
            if moved:
                dates = base + k
                states, times = raw[:, dates], dates.to(torch.float64) / (c.n_dates * m)

                def inputs_of(nets):  # network l's inputs at the states moved by c_l, l in nets
                    return self._network_inputs(states + state_shifts[nets], self._basket_payoffs(
                        log_geometric[:, dates] + geometric_shifts[nets], times))

                inputs = inputs_of(slice(0, c.n_dates))
                later_inputs = inputs_of(slice(1, c.n_dates + 1)) if k else None
            else:
                inputs = self._network_inputs(raw[:, base + k], payoffs[:, base + k])  # (L, D + 1, B)
                later_inputs = inputs
            premium = net(inputs).T  # w_l at t_l + kΔt/m, (B, L)
            if k:
                a = k / m
                # network l + 1 on the same states: the inputs moved up one network (network 0's slot unused)
                later = net(torch.cat([later_inputs[:1], later_inputs[:-1]], dim=0)).T[:, 1:]
                later = torch.cat([later, torch.zeros_like(later[:, :1])], dim=1)  # w_L = 0
                premium = (1.0 - a) * premium + a * later
            exercise[:, base + k] = premium <= 0.0
        return exercise, gains, european

    def stopped(self, exercise: torch.Tensor, gains: torch.Tensor, european: torch.Tensor | None):
        """Per path ``(e^{−rτ} g(X_τ), e^{−rτ}(g − V_E)(X_τ) or None, τ index)`` with τ the first exercise
        date (else T) of the paths' ``N + 1`` equally spaced dates."""
        stops = torch.cat([exercise, torch.ones_like(exercise[:, :1])], dim=1)
        first = torch.argmax(stops.to(torch.int8), dim=1)
        n_dates = exercise.shape[1]
        discount = torch.exp(-self.rate * (first.to(torch.float64) * (1.0 / n_dates))).to(gains.device)
        value = discount * gains.gather(1, first.unsqueeze(1)).squeeze(1)
        premium = None
        if european is not None:
            premium = value - discount * european.gather(1, first.unsqueeze(1)).squeeze(1)
        return value, premium, first

    @torch.no_grad()
    def evaluate(self, n_paths: int | None = None, *, final: bool = False, comparison=None) -> dict[str, float]:
        """Prices of the execution rule on the common test paths.

        Parameters
        ----------
        n_paths : int, optional
            Default ``eval_paths`` (``test_paths`` if ``final``).
        comparison : callable, optional
            ``comparison(raw) -> exercise bool (B, N)``: another rule (the 1-D oracle's) evaluated on
            the same paths (on the execution grid, ``N = L·m``); adds ``p_comparison`` and the
            common-random-numbers difference ``p_stopping_minus_comparison`` with its standard error.

        Returns
        -------
        dict
            ``eval/p_stopping`` (+ ``_stderr``: the rule as executed, on the execution grid),
            ``eval/p_stopping_cv`` (+ ``_stderr``; the martingale control variate of the module
            docstring, when ``V_E`` is known), ``eval/exercise_share``, ``eval/mean_stopping_time`` and,
            with a reference price, ``eval/rel_error_stopping`` (and ``_cv``). With
            ``execution_substeps > 1`` also ``eval/p_decision_dates`` (+ ``_stderr``, ``_cv``): the same
            networks exercised at the L decision dates only (the paper's evaluation) on the same paths.
            With ``antithetic_test_paths`` every mean is over the ``n_paths`` paths as before and every
            standard error is over the ``n_paths/2`` independent pair means.
        """
        c = self.config
        n_paths = check_int("n_paths", n_paths or (c.test_paths if final else c.eval_paths), minimum=2,
                            fix="pass at least 2 test paths")
        self.check_memory(min(n_paths, self.eval_chunk()), training=False)
        net = self.evaluation_network()
        m = c.execution_substeps
        if c.antithetic_test_paths and n_paths % 2:
            raise ValueError(f"n_paths={n_paths} with antithetic_test_paths=True: the paths come in pairs; pass an "
                             f"even number, e.g. {n_paths + 1}")
        sums = {name: [0.0, 0.0] for name in ("p", "cv", "cmp", "diff", "p_dates", "cv_dates")}
        # the independent units of the standard errors: paths, or antithetic pairs (averaged first)
        units = n_paths // 2 if c.antithetic_test_paths else n_paths

        def add(name, x):
            if c.antithetic_test_paths:
                half = x.shape[0] // 2
                x = 0.5 * (x[:half] + x[half:])  # test_batches: each chunk is [paths(z); paths(−z)]
            sums[name][0] += float(x.sum())
            sums[name][1] += float(x.square().sum())

        dates = 0.0
        exercised = 0.0
        european0 = None
        for raw in self.test_batches(n_paths):
            exercise, gains, european = self.exercise(raw, net)
            value, premium, first = self.stopped(exercise, gains, european)
            add("p", value)
            if premium is not None:
                european0 = float(european[0, 0])  # V_E(0, X_0): the same on every path
                add("cv", premium)
            if comparison is not None:
                other, _, _ = self.stopped(comparison(raw).to(exercise.device), gains, european)
                add("cmp", other)
                add("diff", value - other)
            if m > 1:  # the decision dates' rule, w_l ≤ 0 at t_l: the uncorrected rule at k = 0
                dates_rule = self.exercise(raw[:, ::m], net)[0] if self.corrects_continuity() else exercise[:, ::m]
                value, premium, _ = self.stopped(dates_rule, gains[:, ::m], european[:, ::m])
                add("p_dates", value)
                add("cv_dates", premium)
            dates += float(first.to(torch.float64).sum())
            exercised += float(exercise.sum())

        def mean_stderr(name):
            total, squares = sums[name]
            mean = total / units
            return mean, math.sqrt(max(squares / units - mean**2, 0.0) / (units - 1))

        out = {}
        out["eval/p_stopping"], out["eval/p_stopping_stderr"] = mean_stderr("p")
        if european0 is not None:
            mean, stderr = mean_stderr("cv")
            out["eval/p_stopping_cv"], out["eval/p_stopping_cv_stderr"] = european0 + mean, stderr
            out["eval/european0"] = european0
        if m > 1:
            out["eval/p_decision_dates"], out["eval/p_decision_dates_stderr"] = mean_stderr("p_dates")
            if european0 is not None:
                mean, stderr = mean_stderr("cv_dates")
                out["eval/p_decision_dates_cv"], out["eval/p_decision_dates_cv_stderr"] = european0 + mean, stderr
        if comparison is not None:
            out["eval/p_comparison"], out["eval/p_comparison_stderr"] = mean_stderr("cmp")
            out["eval/p_stopping_minus_comparison"], out["eval/p_stopping_minus_comparison_stderr"] = \
                mean_stderr("diff")
        out["eval/exercise_share"] = exercised / (n_paths * c.n_dates * m)
        out["eval/mean_stopping_time"] = dates / n_paths * c.dt / m
        if self.reference and self.reference.get("price") is not None:
            price = float(self.reference["price"])
            out["eval/reference_price"] = price
            out["eval/rel_error_stopping"] = (out["eval/p_stopping"] - price) / price
            if "eval/p_stopping_cv" in out:
                out["eval/rel_error_stopping_cv"] = (out["eval/p_stopping_cv"] - price) / price
            if "eval/p_decision_dates" in out:
                out["eval/rel_error_decision_dates"] = (out["eval/p_decision_dates"] - price) / price
        out["eval/test_paths"] = n_paths
        return out


__all__ = ["FORMULATIONS", "PROBLEMS", "HighDimStoppingConfig", "HighDimStoppingLearner"]
