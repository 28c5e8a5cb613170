"""Learners for optimal stopping: offline martingale loss (ML), online TD(0) and the Dong (2024)
baseline, in the premium or price formulation, with the volatility learned (SPEC section 3).

Problem (Dai, Sun, Xu & Zhou, "Learning to optimally stop diffusion processes", sections 2–4). On the
dates ``t_l = lΔt``, ``l = 0..L``, the exploratory penalized stopping problem has value networks
``V_l`` (``l < L``; ``V_L = g``) and the policy ``π_l = sigmoid(κ (g − V_l)/λ)``. Its discrete fixed
point (SPEC section 2) is

.. math::

    V_l(x) = (1 − κπΔt)\\, e^{−rΔt} E[V_{l+1} | X_l = x] + Δt\\,[κ π g − λ ℋ(π)],

which the martingale loss targets exactly (its minimizer is this conditional expectation), and which
TD(0) targets up to ``O(Δt²)`` (it discounts by ``1/(1 + rΔt)`` instead of ``e^{−rΔt}``).

Formulations
------------
* *premium* (paper section 4.1, appendix B): the payoff is ``h^ϕ(t, x) = g(x) − V_E^ϕ(t, x)`` with
  ``V_E^ϕ`` the Black–Scholes European price at the learned volatility ``ϕ``, the terminal value is 0,
  and the networks take ``(x, h^ϕ)`` and output ``w = V − h^ϕ``. ``ϕ`` is fitted by the European
  martingale loss (:func:`rl.losses.volatility_martingale_loss`) on the same batches.
* *price*: payoff ``g``, terminal ``g``, inputs ``(x, g)``, output ``w = V − g``.

In both, the learned American value is ``V = g + w`` (premium: ``e + V_E^ϕ = h^ϕ + w + V_E^ϕ``), and
execution exercises iff ``w ≤ 0`` (``V ≤ g``, i.e. ``π ≥ ½``).

Algorithms
----------
* ``ml``: one Adam step per batch on ``½ E[Σ_l G_l² Δt]`` (paper Algorithm 1; by default with each
  ``G_l`` divided by its survival weight ``R_l``, ``martingale_weighting="restarted"``, which keeps the
  minimizer and fits the deep in-the-money points that ``R_l ≈ 0`` hides; ``"survival"`` is the paper's).
* ``td0``: the TD(0) update ``θ_l += α ∇V_l δ_l`` of every date from one batch of paths (paper
  Algorithm 2). Date ``l``'s update touches only network ``l`` and reads network ``l + 1`` before its
  own update, so the paper's sweep over ``l`` equals one batched step (see :func:`rl.losses.td0_loss`).
* ``dong``: Dong (2024): intensity ``π̃ = min(e^{(g − V)/λ}, 1/Δt)``, regularizer ``λ(π̃ − π̃ log π̃)``,
  price formulation, semi-gradient squared TD error.

Evaluation (paper sections 4.3–4.4): :meth:`StoppingLearner.evaluate` reports, on fresh common test
paths, ``P_stopping`` and ``P_control`` of the execution rule, their relative errors against the
American price and the per-date accuracy against the exercise boundaries, all computed by
:func:`rl.stopping.evaluation.evaluate_stopping` against a :class:`~rl.stopping.evaluation.StoppingReference`
that the caller builds (:func:`validation.stopping.build_reference`).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from rl.black_scholes import bs_price_torch
from rl.losses import (dong_intensity, dong_loss, loss_scalars, martingale_loss, td0_loss,
                       volatility_martingale_loss)
from rl.networks import BatchedValueNetwork
from rl.schedules import cosine_learning_rate
from rl.seeding import derive_seeds
from rl.stopping.config import StoppingConfig
from rl.stopping.evaluation import EVAL_CHUNK, StoppingReference, evaluate_stopping, payoff_torch
from rl.stopping.policies import BernoulliStoppingPolicy
from rl.stopping.simulator import GBMSimulator


# ---------------------------------------------------------------------------------------------------
# the learner
# ---------------------------------------------------------------------------------------------------


class StoppingLearner:
    """ML / TD(0) / Dong learner of the American option (implements :mod:`rl.trainer`'s contract).

    Parameters
    ----------
    config : StoppingConfig
    reference : StoppingReference or None
        Comparison data for :meth:`evaluate`, built by the caller
        (:func:`validation.stopping.build_reference`: a learner does not solve PDEs); ``None`` skips
        relative errors and accuracies.
    device : str or torch.device
        Where networks run. Paths are always *drawn* on the CPU generator and moved, so the same seed
        gives the same paths on every device.
    compile : bool, default False
        Run the training forward/backward of the value networks through ``torch.compile`` (inductor
        fuses each batch norm with its ReLU and the reductions into a few C++ loops). Measured at the
        paper settings on 1 CPU thread: network forward+backward 13.6 → 7.8 ms, for a one-off
        compilation of about 10 s (cached by inductor across processes). The maths is unchanged;
        the floating-point summation order differs from eager mode, so a compiled run is
        reproducible against compiled runs (same seed, same weights), not bit-for-bit against an
        eager one. Evaluation always runs eagerly (other batch sizes would trigger recompiles).
        The loss's scalars (κ, λ, r, Δt, κ/λ) enter the graph as 0-d tensors, so one compiled graph
        per algorithm serves every (κ, λ): a sweep's worker compiles once, not once per grid point.
    """

    def __init__(self, config: StoppingConfig, *, reference: StoppingReference | None = None,
                 device: str | torch.device = "cpu", compile: bool = False) -> None:
        if not isinstance(config, StoppingConfig):
            raise ValueError(f"config must be a StoppingConfig, got {type(config).__name__}")
        if not (reference is None or isinstance(reference, StoppingReference)):
            raise ValueError(f"reference must be a StoppingReference or None, got {reference!r}; build one with "
                             "validation.stopping.build_reference(config)")
        self.config = config
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.simulator = GBMSimulator(config.model(), config.option(), spot=config.spot, n_steps=config.n_steps,
                                      scheme=config.scheme)
        self._reference = reference
        train_seed, init_seed = derive_seeds(config.seed, 2)
        self.generator = torch.Generator().manual_seed(train_seed)
        init = torch.Generator().manual_seed(init_seed)
        self.net = BatchedValueNetwork(config.n_steps, in_features=2, hidden=config.hidden,
                                       n_hidden=config.n_hidden, batch_norm=config.batch_norm, generator=init)
        self.net.to(self.device)
        # π = sigmoid(κ(g − V)/λ), detached by default so that only V_l receives gradient
        self.policy = BernoulliStoppingPolicy(config.penalty, config.temperature, detach=config.detach_policy)
        self.compiled = bool(compile)
        # Compiled: the networks, the policy and the loss become one graph (fewer, fused loops), with the
        # scalars as 0-d tensor inputs. As Python floats they were constants of the graph: a sweep's worker
        # recompiled it at its second λ and again at its second κ (17-20 s each) until dynamo marked them
        # dynamic. Eager keeps the floats (its numbers unchanged to the bit).
        self._loss_scalars = loss_scalars(penalty=config.penalty, temperature=config.temperature, rate=config.rate,
                                          dt=config.dt, tensors=self.compiled)
        self._value_loss = torch.compile(self._value_loss_eager) if self.compiled else self._value_loss_eager
        self._train_features = (torch.compile(self._train_features_eager) if self.compiled
                                else self._train_features_eager)
        self.premium = config.formulation == "premium"
        self.learns_volatility = self.premium and config.learn_volatility
        start_vol = config.initial_volatility if self.learns_volatility else config.volatility
        self.volatility = torch.nn.Parameter(torch.tensor(float(start_vol), dtype=self.dtype, device=self.device),
                                             requires_grad=self.learns_volatility)
        self.optimizer = self._make_optimizer(self.net.parameters(), config.learning_rate)
        self.volatility_optimizer = torch.optim.Adam([self.volatility], lr=config.volatility_learning_rate)
        self._eval_cache: torch.Tensor | None = None
        self.value_updates = 0  # number of value-network steps taken (for warm-up and output init)
        self.volatility_updates = 0
        times = torch.arange(config.n_steps, dtype=torch.float64) * config.dt
        self._time_to_maturity = (config.maturity - times).to(self.dtype).to(self.device)  # τ_l > 0, l < L

    def _make_optimizer(self, params, lr):
        if self.config.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        return torch.optim.SGD(params, lr=lr)

    # ------------------------------------------------------------------ contract
    def config_dict(self) -> dict:
        return {"learner": "stopping", **self.config.to_dict()}

    def to(self, device) -> "StoppingLearner":
        self.device = torch.device(device)
        self.net.to(self.device)
        with torch.no_grad():
            self.volatility.data = self.volatility.data.to(self.device)
        self._time_to_maturity = self._time_to_maturity.to(self.device)
        self._eval_cache = None
        return self

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "value_updates": self.value_updates, "volatility_updates": self.volatility_updates,
                "volatility": self.volatility.detach().clone(),
                "volatility_optimizer": self.volatility_optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        with torch.no_grad():
            self.volatility.copy_(state["volatility"])
        self.volatility_optimizer.load_state_dict(state["volatility_optimizer"])
        self.generator.set_state(state["generator"])
        self.value_updates = int(state.get("value_updates", 0))
        self.volatility_updates = int(state.get("volatility_updates", 0))

    def sample_batch(self, step: int) -> torch.Tensor:
        """``batch_size`` fresh paths ``(M, L + 1)`` from the training generator."""
        paths = self.simulator.sample(self.config.batch_size, self.generator, dtype=self.dtype)
        return paths.to(self.device)

    # ------------------------------------------------------------------ features
    def european(self, spots: torch.Tensor, volatility) -> torch.Tensor:
        """``V_E^ϕ(t_l, X_l)`` for ``spots`` of shape ``(B, L)`` (decision dates only)."""
        c = self.config
        return bs_price_torch(c.kind, spots, c.strike, self._time_to_maturity, volatility, c.rate, c.dividend)

    def features(self, paths: torch.Tensor, *, volatility=None):
        """Payoffs on the decision dates, the terminal payoff and the network inputs.

        Returns ``(payoffs (B, L), terminal (B,), inputs (L, 2, B), european (B, L) or None)``; in the
        premium formulation ``payoffs = h^ϕ`` (detached) and ``european`` carries the gradient in ϕ.
        """
        c = self.config
        n = c.n_steps
        spots = paths[:, :n]
        gains = payoff_torch(c.kind, paths, c.strike)
        european = None
        if self.premium:
            volatility = self.volatility if volatility is None else volatility
            european = self.european(spots, volatility)
            payoffs = gains[:, :n] - european.detach()
            terminal = torch.zeros_like(gains[:, n])
        else:
            payoffs = gains[:, :n]
            terminal = gains[:, n]
        inputs = torch.stack([spots.T, payoffs.T], dim=1)
        return payoffs, terminal, inputs, european, gains[:, n]

    # ------------------------------------------------------------------ training
    def train_step(self, paths: torch.Tensor) -> dict[str, float]:
        c = self.config
        payoffs, terminal, inputs, vol_loss = self._train_features(paths)
        diagnostics: dict[str, float] = {}
        if self.learns_volatility:
            self.volatility_optimizer.zero_grad(set_to_none=True)
            vol_loss.backward()
            if self.volatility_updates >= c.volatility_coarse_steps:
                # fast from the initial guess, then small (and decaying) to damp Adam's jitter
                for group in self.volatility_optimizer.param_groups:
                    group["lr"] = self.volatility_learning_rate_at(self.volatility_updates)
            self.volatility_optimizer.step()
            with torch.no_grad():
                self.volatility.clamp_(min=1e-3)  # keep ϕ a volatility
            diagnostics["losses/volatility"] = vol_loss.item()
            self.volatility_updates += 1
        diagnostics["charts/volatility"] = float(self.volatility.item())
        if self.volatility_updates <= c.volatility_warmup and self.learns_volatility:
            return diagnostics  # warm-up: σ only
        if self.value_updates == 0 and c.output_init == "european":
            self._init_output_shift(paths)

        self.net.train()
        loss, premium_part = self._value_loss(inputs, payoffs, terminal)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.lr_decay_updates:
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate_at(self.value_updates)
        self.optimizer.step()
        self.value_updates += 1
        diagnostics["losses/loss"] = loss.item()
        diagnostics["charts/value0"] = float((payoff_torch(c.kind, paths[:1, 0], c.strike)
                                              + premium_part[:, 0].mean()).item())
        return diagnostics

    def volatility_learning_rate_at(self, update: int) -> float:
        """Adam step size of ϕ at its update number ``update`` (0-based; see
        :class:`rl.stopping.config.StoppingConfig`, ``volatility_fine_decay``)."""
        c = self.config
        if update < c.volatility_coarse_steps:
            return c.volatility_learning_rate
        if c.volatility_fine_decay == "none":
            return c.volatility_fine_learning_rate
        fine_updates = update - c.volatility_coarse_steps
        return c.volatility_fine_learning_rate / math.sqrt(1.0 + fine_updates / max(c.volatility_coarse_steps, 1))

    def learning_rate_at(self, update: int) -> float:
        """Step size of value update number ``update`` (0-based): cosine decay from ``learning_rate``
        to ``lr_final_fraction · learning_rate`` over ``lr_decay_updates`` updates, then constant
        (Loshchilov & Hutter 2017, without restarts); constant when ``lr_decay_updates`` is 0."""
        c = self.config
        return cosine_learning_rate(update, learning_rate=c.learning_rate, decay_updates=c.lr_decay_updates,
                                    final_fraction=c.lr_final_fraction)

    def _train_features_eager(self, paths: torch.Tensor):
        """Training inputs of one batch and the European martingale loss of ϕ (None if ϕ is known)."""
        c = self.config
        payoffs, terminal, inputs, european, terminal_gain = self.features(paths)
        vol_loss = None
        if self.learns_volatility:
            vol_loss = volatility_martingale_loss(european, terminal_gain, rate=c.rate, dt=c.dt)
        return payoffs, terminal, inputs, vol_loss

    def _value_loss_eager(self, inputs: torch.Tensor, payoffs: torch.Tensor, terminal: torch.Tensor):
        """The value networks' loss on one batch and their outputs ``w`` (B, L) (training mode)."""
        c, s = self.config, self._loss_scalars  # s: floats, or 0-d tensors when compiled (see __init__)
        premium_part = self.net(inputs).T  # w = V − h, shape (B, L)
        values = payoffs + premium_part
        if c.algorithm == "ml":
            prob = self._probability(premium_part)
            loss = martingale_loss(values, payoffs, terminal, prob, penalty=s["penalty"], temperature=s["temperature"],
                                   rate=s["rate"], dt=s["dt"], weighting=c.martingale_weighting)
        elif c.algorithm == "td0":
            prob = self._probability(premium_part)
            next_values = torch.cat([values[:, 1:], terminal.unsqueeze(1)], dim=1)
            loss = td0_loss(values, next_values, payoffs, prob, penalty=s["penalty"], temperature=s["temperature"],
                            rate=s["rate"], dt=s["dt"])
        else:
            intensity = dong_intensity(payoffs, values.detach(), temperature=s["temperature"], dt=s["dt"])
            next_values = torch.cat([values[:, 1:], terminal.unsqueeze(1)], dim=1)
            loss = dong_loss(values, next_values, payoffs, intensity, temperature=s["temperature"], rate=s["rate"],
                             dt=s["dt"])
        return loss, premium_part

    @torch.no_grad()
    def _init_output_shift(self, paths: torch.Tensor) -> None:
        """``output_init="european"``: output batch-norm shift := batch mean of ``V_E^ϕ − g`` per date."""
        c = self.config
        if not self.net.batch_norm:
            return
        spots = paths[:, :c.n_steps]
        european = self.european(spots, self.volatility.detach())
        gains = payoff_torch(c.kind, spots, c.strike)
        self.net.norms[-1].bias.copy_((european - gains).mean(dim=0).unsqueeze(1))

    def _probability(self, premium_part: torch.Tensor) -> torch.Tensor:
        """``π = sigmoid(κ (h − V)/λ) = sigmoid(−κ w/λ)``, detached unless ``detach_policy=False``."""
        # h − V = −w exactly (negation is exact); κ/λ from the loss's scalars (a tensor when compiled)
        return self.policy.probability_of_gap(-premium_part, scale=self._loss_scalars["logit_scale"])

    # ------------------------------------------------------------------ evaluation
    @property
    def reference(self) -> StoppingReference | None:
        """The comparison data of :meth:`evaluate` (``None``: no reference metrics)."""
        return self._reference

    def test_paths(self, n_paths: int, *, seed_offset: int = 0):
        """Yield the common test paths in chunks (same paths for every run with the same ``eval_seed``)."""
        generator = torch.Generator().manual_seed(self.config.eval_seed + seed_offset)
        left = n_paths
        while left > 0:
            size = min(left, EVAL_CHUNK)
            yield self.simulator.sample(size, generator, dtype=self.dtype).to(self.device)
            left -= size

    def _calibration_paths(self) -> torch.Tensor:
        if self._eval_cache is None:
            self._eval_cache = next(self.test_paths(self.config.eval_paths))
        return self._eval_cache

    @torch.no_grad()
    def evaluation_network(self) -> BatchedValueNetwork:
        """A copy of the networks with batch-norm statistics calibrated on the evaluation paths (see
        :mod:`rl.networks`); the training networks are untouched."""
        net = copy.deepcopy(self.net)
        paths = self._calibration_paths()
        _, _, inputs, _, _ = self.features(paths, volatility=self.volatility.detach())
        net.calibrate(inputs)
        return net

    @torch.no_grad()
    def premium_part(self, paths: torch.Tensor, net: BatchedValueNetwork | None = None) -> torch.Tensor:
        """``w_l(X_l) = V_l − h`` on paths ``(B, L + 1)`` → ``(B, L)`` (evaluation mode)."""
        net = net or self.evaluation_network()
        _, _, inputs, _, _ = self.features(paths, volatility=self.volatility.detach())
        return net(inputs).T

    @torch.no_grad()
    def value_on_grid(self, spots, *, net: BatchedValueNetwork | None = None) -> dict[str, np.ndarray]:
        """Learned functions on a spot grid at every decision date.

        Returns float64 arrays of shape ``(L, n)``: ``"value"`` (American exploratory value
        ``g + w``), ``"premium"`` (``h^ϕ + w``; equals ``value`` minus the European price at ϕ) and
        ``"payoff"`` (``h^ϕ`` or ``g``).
        """
        c = self.config
        net = net or self.evaluation_network()
        grid = torch.as_tensor(np.asarray(spots, dtype=float), dtype=self.dtype, device=self.device)
        spots_ld = grid.unsqueeze(0).expand(c.n_steps, -1).T.contiguous()  # (n, L)
        paths = torch.cat([spots_ld, spots_ld[:, -1:]], dim=1)
        payoffs, _, inputs, _, _ = self.features(paths, volatility=self.volatility.detach())
        w = net(inputs).T
        gains = payoff_torch(c.kind, spots_ld, c.strike)
        return {"value": (gains + w).T.double().cpu().numpy(), "premium": (payoffs + w).T.double().cpu().numpy(),
                "payoff": payoffs.T.double().cpu().numpy()}

    @torch.no_grad()
    def evaluate(self, n_paths: int | None = None, *, final: bool = False) -> dict[str, float]:
        """Prices, errors and accuracies on the common test paths (the trainer's periodic evaluation).

        Parameters
        ----------
        n_paths : int, optional
            Number of test paths; default ``config.eval_paths`` (``config.test_paths`` if ``final``).
            The first ``eval_paths`` test paths are the same in both cases.

        Returns
        -------
        dict
            ``eval/p_stopping``, ``eval/p_control`` (plain Monte Carlo, as in the paper) with standard
            errors, ``eval/p_stopping_cv``, ``eval/p_control_cv`` (control variate, see
            :func:`rl.stopping.evaluation.control_variate`), ``eval/p_*_crn`` (common random numbers
            against the oracle's rule), ``eval/rel_error_*`` against the reference price (plain,
            ``_crn`` and ``_cv``), ``eval/min_accuracy``, ``eval/mean_accuracy`` (against the discrete
            oracle's decisions; the VI boundary for Dong's learner, which has no oracle), ``eval/min_accuracy_vi``,
            ``eval/mean_accuracy_vi`` (against the VI boundary), ``eval/volatility``,
            ``eval/value0`` (learned ``V_0(S_0)``), ``eval/exercise_share``; every number comes from
            :func:`rl.stopping.evaluation.evaluate_stopping` (the same as the final evaluation's).
        """
        c = self.config
        n_paths = n_paths or (c.test_paths if final else c.eval_paths)
        reference = self.reference
        result = evaluate_stopping(self, n_paths, reference)
        out = {}
        for name in ("stopping", "control"):
            for key in (f"p_{name}", f"p_{name}_stderr", f"p_{name}_cv", f"p_{name}_cv_stderr"):
                if key in result:
                    out[f"eval/{key}"] = result[key]
        out["eval/volatility"] = float(self.volatility.item())
        out["eval/value0"] = result["value0_paths"]
        out["eval/exercise_share"] = float(result["exercise_count"].sum()) / (n_paths * c.n_steps)
        for name in ("stopping", "control"):
            for key in (f"p_{name}_crn", f"p_{name}_crn_stderr"):
                if key in result:
                    out[f"eval/{key}"] = result[key]
        for name in ("stopping", "control"):
            for suffix in ("", "_crn", "_cv"):
                if f"rel_error_{name}{suffix}" in result:
                    out[f"eval/rel_error_{name}{suffix}"] = result[f"rel_error_{name}{suffix}"]
        if "accuracy_vi" in result:
            accuracy_vi, accuracy = result["accuracy_vi"], result["accuracy"]
            out["eval/min_accuracy_vi"] = float(accuracy_vi.min())
            out["eval/mean_accuracy_vi"] = float(accuracy_vi.mean())
            out["eval/min_accuracy"] = float(accuracy.min())
            out["eval/mean_accuracy"] = float(accuracy.mean())
            out["eval/argmin_accuracy"] = int(accuracy.argmin())
            if "oracle_accuracy" in result:
                out["eval/oracle_min_accuracy"] = float(result["oracle_accuracy"].min())
        out["eval/test_paths"] = n_paths
        return out

    @torch.no_grad()
    def per_date_accuracy(self, n_paths: int | None = None) -> np.ndarray:
        """Classification accuracy at each date ``l = 0..L−1`` against the VI exercise boundary."""
        reference = self.reference
        if reference is None or reference.boundary is None:
            raise ValueError("per-date accuracy needs a reference with a boundary; pass "
                             "reference=validation.stopping.build_reference(config)")
        return evaluate_stopping(self, n_paths or self.config.test_paths, reference)["accuracy_vi"]
