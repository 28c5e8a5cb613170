"""Frozen, validated configuration of the stopping learners (SPEC section 3, paper Table 1).

The problem (market, contract, dates, penalty, temperature) and the learning settings live in one
flat frozen dataclass so that a run folder's ``config.json`` rebuilds the learner exactly
(:meth:`StoppingConfig.from_dict`). Defaults are the paper's Table 1 with the SPEC's put
(``S_0 = K = 40, r = 0.06, σ = 0.4, T = 1``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from pdecore.budget import check_memory
from pdecore.checks import (check_choice, check_int, check_nonnegative, check_positive, check_range,
                               check_real)
from pdecore.params import AmericanOption, BlackScholes
from rl.config_base import ConfigRecord

ALGORITHMS = ("ml", "td0", "dong")


def training_bytes(batch: int, n_dates: int, hidden: int, n_hidden: int) -> float:
    """Estimated bytes of one training step: ``batch · (L + 1)`` path-dates × float32 × (6 path arrays
    (normals, log-spots, spots, payoffs, values, targets) + 4 per hidden unit (activation, batch-norm
    output and both gradients) × ``hidden · n_hidden``)."""
    return float(batch) * (n_dates + 1) * 4.0 * (6 + 4 * hidden * n_hidden)
FORMULATIONS = ("premium", "price")
OPTIMIZERS = ("auto", "adam", "sgd")
MARTINGALE_WEIGHTINGS = ("restarted", "survival")


class ExerciseWarning(UserWarning):
    """The ½-threshold execution rule cannot exercise at these settings (``λ log 2 ≥ r K``)."""


@dataclass(frozen=True)
class StoppingConfig(ConfigRecord):
    """Settings of one stopping-learner run.

    Parameters
    ----------
    algorithm : {"ml", "td0", "dong"}
        Offline martingale loss, online TD(0), or the Dong (2024) baseline (price formulation, Dong's
        entropy, TD error).
    formulation : {"premium", "price"}
        Learn the early-exercise premium (payoff ``h = g − V_E^ϕ``, terminal 0; paper section 4.1) or
        the price (payoff ``g``). ``"dong"`` always uses ``"price"``.
    kind, strike, maturity : American option (paper: put, 40, 1).
    spot : float
        ``S_0`` of every path (40).
    volatility, rate, dividend : float
        The *true* market of the simulator (σ = 0.4 is unknown to the agent when
        ``learn_volatility``).
    n_steps : int
        ``L`` (50).
    penalty : float
        κ (10); requires ``κ Δt ≤ 1``.
    temperature : float
        λ (1). A warning (:class:`ExerciseWarning`) is issued for a put when ``λ log 2 ≥ r K``.
    learning_rate : float
        Step size of the value networks (0.01, the paper's).
    lr_decay_updates : int
        Length of a cosine decay of the value networks' step size, in value-network updates: the
        step size goes from ``learning_rate`` down to ``lr_final_fraction · learning_rate`` over the
        first ``lr_decay_updates`` updates and stays there. 0 keeps it constant (the paper).
    lr_final_fraction : float
        End point of that decay (0.1).
    batch_size : int
        Paths per step ``M`` (1024, at least 2 for batch normalization).
    hidden, n_hidden, batch_norm : network shape (21, 2, True; paper section 4.1).
    optimizer : {"auto", "adam", "sgd"}
        Update rule of the value networks. ``"auto"`` (default) resolves to ``"sgd"`` for TD(0) and
        ``"adam"`` for the martingale loss and Dong's learner; the resolved name is what the run's
        config records. Why: the paper's TD(0) (Algorithm 2) is the plain semi-gradient update
        ``θ_l += α ∇V_l δ_l``, and it is also what works at its step size: at the paper settings
        (α = 0.01, 5000 steps, 2^18 test paths) plain SGD gives P_stopping errors of 0.198, 0.201,
        0.212, 0.227, 0.211 % on seeds 0–4 (mean 0.21 %; benchmarks/bench_rl_stopping.py), while Adam
        at 0.01 stays noisy (1.06 %, seed 0) because it rescales every TD step to about α per weight
        however small ``δ`` has become (0.27 % only at α = 0.002). The martingale loss is fine with
        Adam at 0.01.
    martingale_weighting : {"restarted", "survival"}
        Weights of the martingale loss's per-date squared residuals (``algorithm="ml"`` only).
        ``"survival"`` is the paper's Algorithm 1 exactly: ``½ E[Σ_l G_l² Δt]``, where the survival
        weight ``R_l`` multiplies date ``l``'s residual. ``"restarted"`` (default) uses ``G_l / R_l``,
        the martingale difference of the same problem restarted at ``t_l``
        (:func:`rl.losses.restarted_martingale_residuals`): the same minimizer (``R_l`` is known at
        ``t_l``, so it is a per-date importance weight that leaves the conditional expectation
        unchanged) and the same model-free data, but deep in-the-money points at late dates, which
        every path reaches after many exercising dates with ``R ≈ 0``, are fitted too. Why the
        default: with ``"survival"`` one seed in five (seed 3) reached only 90 % accuracy against the
        oracle at date 48 after 1000 steps (benchmarks/bench_rl_stopping.py); the change alters every
        ML run's numbers.
    learn_volatility : bool
        Learn σ by the European martingale loss (paper appendix B); otherwise the agent uses the
        true σ in ``h``. Only used by the premium formulation.
    initial_volatility : float
        ϕ at start (0.8).
    volatility_learning_rate : float
        Adam step size of ϕ for its first ``volatility_coarse_steps`` updates (0.01: from 0.8 to about
        0.4 in under 100 steps).
    volatility_fine_learning_rate : float
        Adam step size of ϕ afterwards (0.001). With 0.01 throughout, Adam's stationary jitter of ϕ
        on batches of 1024 paths is about ±0.008 (measured), larger than the ±0.005 target.
    volatility_coarse_steps : int
        Number of ϕ updates at the coarse step size (100).
    volatility_fine_decay : {"sqrt", "none"}
        ``"sqrt"`` (default): after the coarse phase the step size of ϕ is
        ``volatility_fine_learning_rate / sqrt(1 + k / volatility_coarse_steps)`` at the k-th fine
        update (a Robbins–Monro-type decay), ``"none"`` keeps it constant. Why: the learned American
        value inherits the European price at ϕ (``V = h^ϕ + w + V_E^ϕ``), so ϕ's stationary jitter
        moves ``V_0`` by vega·Δϕ (≈ 0.6 % of ``V_0`` per 0.002 of ϕ at the paper settings); with a
        constant fine step ϕ still wanders by about ±0.002 after 1000 steps (measured: ϕ = 0.40202
        and a 0.75 % ``V_0`` error on seed 4).
    volatility_warmup : int
        Number of initial steps that train only ϕ (the value networks wait for a sensible payoff
        ``h^ϕ``); they count towards the run's steps. Default 100 (only with ``learn_volatility``; 0
        trains both from the start, as the paper seems to).
    output_init : {"zero", "european"}
        Initial shift of the output batch normalization (the mean of ``w = V − h`` at each date).
        ``"zero"`` (PyTorch's default) starts every date on the exercise boundary ``V = h``;
        ``"european"`` (default) sets it, at the first value update, to the batch mean of
        ``V_E^ϕ − g``, i.e. the American value starts at the agent's European price (zero premium),
        a data-dependent initialisation in the spirit of Salimans & Kingma (2016). The shift otherwise
        moves by at most about one learning rate per Adam step: with ``"zero"`` the learned ``V_0``
        is still 2.4 % low after the paper's 1000 steps (measured), with ``"european"`` it is there
        after about 200.
    scheme : {"exact", "euler"}
        Path simulation scheme.
    detach_policy : bool
        Stop gradients through π and R (default, as in the paper).
    eval_paths : int
        Test paths used by the periodic evaluation during training (learning curves).
    test_paths : int
        Test paths of the final evaluation (``M_test = 2^18``).
    seed : int
        Seed of the training generator and of the initial weights.
    eval_seed : int
        Seed of the (common) test paths: the same for every run, so runs compare on the same paths.
    """

    algorithm: str = "ml"
    formulation: str = "premium"
    kind: str = "put"
    strike: float = 40.0
    maturity: float = 1.0
    spot: float = 40.0
    volatility: float = 0.4
    rate: float = 0.06
    dividend: float = 0.0
    n_steps: int = 50
    penalty: float = 10.0
    temperature: float = 1.0
    learning_rate: float = 0.01
    batch_size: int = 1024
    hidden: int = 21
    n_hidden: int = 2
    batch_norm: bool = True
    optimizer: str = "auto"
    martingale_weighting: str = "restarted"
    lr_decay_updates: int = 0
    lr_final_fraction: float = 0.1
    learn_volatility: bool = True
    initial_volatility: float = 0.8
    volatility_learning_rate: float = 0.01
    volatility_fine_learning_rate: float = 0.001
    volatility_coarse_steps: int = 100
    volatility_fine_decay: str = "sqrt"
    volatility_warmup: int = 100
    output_init: str = "european"
    scheme: str = "exact"
    detach_policy: bool = True
    eval_paths: int = 2**14
    test_paths: int = 2**18
    seed: int = 0
    eval_seed: int = 20240601

    def __post_init__(self) -> None:
        check_choice("algorithm", self.algorithm, ALGORITHMS, fix="use --algo ml, td0 or dong")
        check_choice("formulation", self.formulation, FORMULATIONS, fix='use "premium" or "price"')
        if self.algorithm == "dong" and self.formulation != "price":
            object.__setattr__(self, "formulation", "price")  # Dong (2024) learns the price
        check_choice("optimizer", self.optimizer, OPTIMIZERS, fix='use "auto", "adam" or "sgd"')
        if self.optimizer == "auto":
            object.__setattr__(self, "optimizer", "sgd" if self.algorithm == "td0" else "adam")
        check_choice("martingale_weighting", self.martingale_weighting, MARTINGALE_WEIGHTINGS,
                     fix='use "restarted" (default) or "survival" (the paper\'s Algorithm 1)')
        check_choice("scheme", self.scheme, ("exact", "euler"), fix='use "exact" or "euler"')
        object.__setattr__(self, "volatility_coarse_steps", check_int(
            "volatility_coarse_steps", self.volatility_coarse_steps, minimum=0, fix="pass 0 or a number of updates"))
        object.__setattr__(self, "lr_decay_updates", check_int(
            "lr_decay_updates", self.lr_decay_updates, minimum=0, fix="pass 0 (constant) or a number of updates"))
        check_range("lr_final_fraction", self.lr_final_fraction, 0.0, 1.0, fix="pass a fraction in (0, 1], e.g. 0.1")
        if self.lr_final_fraction <= 0.0:
            raise ValueError(f"lr_final_fraction must be > 0, got {self.lr_final_fraction}; pass e.g. 0.1")
        check_choice("volatility_fine_decay", self.volatility_fine_decay, ("sqrt", "none"), fix='use "sqrt" or "none"')
        check_choice("output_init", self.output_init, ("zero", "european"), fix='use "zero" or "european"')
        object.__setattr__(self, "volatility_warmup", check_int("volatility_warmup", self.volatility_warmup, minimum=0,
                                                                fix="pass 0 or a number of steps"))
        for name in ("strike", "maturity", "spot", "volatility", "penalty", "temperature", "learning_rate",
                     "initial_volatility", "volatility_learning_rate", "volatility_fine_learning_rate"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name),
                                                          fix=f"pass a positive {name.replace('_', ' ')}"))
        for name in ("rate", "dividend"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), fix=f"pass a finite {name}"))
        # the market and the contract through pdecore's own parameter objects, so that their bounds
        # (volatility <= 100, |rate|, |dividend| <= 100, strike <= 1e15, maturity <= 1000 years) apply here too
        self.model()
        self.option()
        check_range("spot", self.spot, 0.0, 1e15, closed_low=False, fix="pass a spot price below 1e15")
        for name in ("learning_rate", "volatility_learning_rate", "volatility_fine_learning_rate"):
            # a step size past 10 diverges on any of the paper's problems (the networks' outputs are O(K))
            check_range(name, getattr(self, name), 0.0, 10.0, closed_low=False,
                        fix=f"pass a {name.replace('_', ' ')} in (0, 10], e.g. 0.01")
        object.__setattr__(self, "n_steps", check_int("n_steps", self.n_steps, minimum=1,
                                                      fix="pass a positive number of dates such as 50"))
        object.__setattr__(self, "batch_size", check_int(
            "batch_size", self.batch_size, minimum=2,
            fix="pass a batch of at least 2 paths (batch normalization needs a spread), e.g. --batch 1024"))
        for name in ("hidden", "n_hidden", "eval_paths", "test_paths"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1,
                                                     fix=f"pass a positive integer {name}"))
        for name in ("eval_paths", "test_paths"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}; pass e.g. 16384")
        # torch seeds are 64-bit: a seed must stay below 2**63
        object.__setattr__(self, "seed", check_int("seed", self.seed, minimum=0, maximum=2**63 - 2,
                                                   fix="pass a non-negative seed below 2**63"))
        object.__setattr__(self, "eval_seed", check_int("eval_seed", self.eval_seed, minimum=0, maximum=2**63 - 2,
                                                        fix="pass a non-negative seed below 2**63"))
        for name in ("batch_norm", "learn_volatility", "detach_policy"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        check_nonnegative("dividend", self.dividend, fix="pass a dividend yield >= 0")
        check_memory(f"a stopping learner with batch_size={self.batch_size}, n_steps={self.n_steps}, "
                     f"hidden={self.hidden}, n_hidden={self.n_hidden}",
                     training_bytes(self.batch_size, self.n_steps, self.hidden, self.n_hidden),
                     fix="pass a smaller batch_size (the paper's is 1024)")
        penalty_step = self.penalty * self.dt
        if self.algorithm != "dong":
            check_range("penalty * dt", penalty_step, 0.0, 1.0,
                        fix=f"κΔt = {self.penalty:g}·{self.dt:g} must be <= 1 so that the survival factor "
                            f"1 − κπΔt stays >= 0; lower --penalty below {1.0 / self.dt:g} or raise n_steps")
        # the ½-rule needs λ log 2 < rK (SPEC section 3); Dong's entropy has no such threshold
        half_rule_blocked = self.temperature * math.log(2.0) >= self.rate * self.strike
        if self.algorithm != "dong" and self.kind == "put" and half_rule_blocked:
            warnings.warn(
                f"temperature λ={self.temperature:g} gives λ·log 2 = {self.temperature * math.log(2):.4g} >= r·K = "
                f"{self.rate * self.strike:.4g}: the ½-rule (exercise iff π >= ½) can then never exercise the put "
                f"and the learned price collapses to the European price; use λ < {self.rate * self.strike / math.log(2):.4g}",
                ExerciseWarning, stacklevel=3)

    # ------------------------------------------------------------------ derived objects
    @property
    def dt(self) -> float:
        """``Δt = T / L``."""
        return self.maturity / self.n_steps

    def model(self) -> BlackScholes:
        """The true market as a :class:`pdecore.BlackScholes`."""
        return BlackScholes(volatility=self.volatility, rate=self.rate, dividend=self.dividend)

    def option(self) -> AmericanOption:
        """The contract as a :class:`pdecore.AmericanOption` (also validates ``kind``)."""
        return AmericanOption(self.kind, self.strike, self.maturity)
