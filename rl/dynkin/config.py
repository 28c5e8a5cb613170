"""Frozen, validated configuration of the Dynkin-game learners (SPEC section 4; paper section 4.7).

Defaults: the SPEC's default market (``α = 0.168, r = 0.008, σ = 0.3, θ = 0.005, T = 1``; the paper
does not publish Dai & Dong's parameters, this choice reproduces its figure 7) and the paper's game
setting: 10 intervals, κ = 5, λ = 1e-2 (paper sweep: λ ∈ {1e-2, 1e-4, 1e-6}, lr ∈ {0.1, 0.05, 0.01,
0.005}), 15000 steps.

The agent knows θ (it pays it) and observes prices; it does not know α or σ. The settings that shape
the training data without model knowledge: the initial ratios are uniform on
``[initial_low, initial_high]`` (exploring starts around where the investor might hold), and the
obstacles are clamped at the insolvency floor ``−(1−θ)(1 − insolvency_margin)`` (see
:mod:`pdecore.dynkin_oracle`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pdecore.checks import check_choice, check_int, check_positive, check_range, check_real
from pdecore.dynkin_oracle import insolvency_floor
from pdecore.params import MertonCosts
from rl.config_base import ConfigRecord

ALGORITHMS = ("ml", "td0", "dai_dong")
OPTIMIZERS = ("auto", "adam", "sgd")


@dataclass(frozen=True)
class DynkinConfig(ConfigRecord):
    """Settings of one Dynkin-learner run.

    Parameters
    ----------
    drift, rate, volatility, cost, maturity : float
        The simulated market (α, r, σ), the proportional cost θ and the horizon T
        (:class:`pdecore.MertonCosts`; α and σ are unknown to the agent).
    n_steps : int
        ``L``, the decision dates (paper: 10).
    penalty : float
        κ with ``κΔt ≤ 1`` (paper: 5).
    temperature : float
        λ > 0 (paper: 1e-2, 1e-4, 1e-6).
    algorithm : {"ml", "td0", "dai_dong"}
        Offline martingale loss, online TD(0), or the Dai & Dong (2024) baseline (Cox-intensity
        randomization with the unnormalized entropy, TD error).
    learning_rate : float
        Step size of the value networks (paper: 0.1, 0.05, 0.01, 0.005).
    lr_decay_updates : int
        Cosine decay of the step size from ``learning_rate`` to ``lr_final_fraction·learning_rate`` over
        this many updates, then constant (0: constant). Why: the martingale targets are noisy on the scale
        that decides the trades (the terminal value ``x_T/(x_T+1−θ)`` has a standard deviation of about
        0.3, the obstacles differ by about 0.01), so the late steps must average over many batches.
    lr_final_fraction : float
        In ``(0, 1]``.
    gap_weight_exponent : float
        The squared errors of date ``l`` are weighted by ``ω = (θ/g(X_l))^p``, ``g = (u − ℓ)/2`` the
        obstacles' half-gap (:func:`rl.losses.dynkin_martingale_loss`: such state weights leave the
        minimizer unchanged). ``p = 2`` measures errors in units of the gap, which is what decides the
        trades; the gap shrinks like ``θ|x|/(1+x)²`` towards ``x = 0``, where the buy boundary lies. 0: off.
    optimizer : {"auto", "adam", "sgd"}
        ``auto`` is Adam for every algorithm. Unlike the stopping learner (where ``auto`` gives the paper's
        plain SGD for TD(0)), plain SGD at the paper's rates does not move the quantities that decide the
        trades here: they are 1e-3 of the value (measured: TD(0) with SGD at 0.01 left the t = 0 band at
        (−0.78, −0.57) after 3000 steps, with Adam (−0.4495, −0.3586) against the oracle's (−0.4478, −0.3514)).
    batch_size : int
        Paths per step (≥ 2: batch normalization).
    hidden, n_hidden, batch_norm
        Per-date network (paper section 4.1: 2 hidden layers of 21 ReLU units with batch norm).
    initial_low, initial_high : float
        Initial ratios ``x_0`` uniform on this interval (above the insolvency floor).
    insolvency_margin : float
        ``m`` of the floor ``−(1−θ)(1−m)`` (obstacles clamped below it).
    detach_policy : bool
        Gradients do not flow through ``ν, μ`` and the survival weight (paper default).
    eval_paths, eval_seed
        Paths that calibrate the batch-norm statistics for evaluation, and their seed.
    eval_grid : int
        Nodes of the ratio grid on which the learned band is read off.
    seed : int
        Training paths and initial weights.
    device : str
        ``"cpu"`` or ``"cuda[:N]"``.
    compile : bool
        ``torch.compile`` the training loss (same maths, other summation order).
    """

    drift: float = 0.168
    rate: float = 0.008
    volatility: float = 0.3
    cost: float = 0.005
    maturity: float = 1.0
    n_steps: int = 10
    penalty: float = 5.0
    temperature: float = 1e-2
    algorithm: str = "ml"
    learning_rate: float = 0.01
    lr_decay_updates: int = 15000
    lr_final_fraction: float = 0.01
    gap_weight_exponent: float = 2.0
    optimizer: str = "auto"
    batch_size: int = 1024
    hidden: int = 21
    n_hidden: int = 2
    batch_norm: bool = True
    initial_low: float = -0.8
    initial_high: float = -0.1
    insolvency_margin: float = 0.05
    detach_policy: bool = True
    eval_paths: int = 2**14
    eval_seed: int = 20240601
    eval_grid: int = 2001
    seed: int = 0
    device: str = "cpu"
    compile: bool = False

    def __post_init__(self) -> None:
        check_choice("algorithm", self.algorithm, ALGORITHMS, fix='use "ml", "td0" or "dai_dong"')
        check_choice("optimizer", self.optimizer, OPTIMIZERS, fix='use "auto", "adam" or "sgd"')
        if self.optimizer == "auto":
            object.__setattr__(self, "optimizer", "adam")
        for name in ("drift", "rate", "initial_low", "initial_high"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), fix=f"pass a finite {name}"))
        object.__setattr__(self, "gap_weight_exponent", check_range(
            "gap_weight_exponent", self.gap_weight_exponent, 0.0, 4.0, fix="pass 0 (off), 1 or 2"))
        for name in ("volatility", "maturity", "penalty", "temperature", "learning_rate"):
            object.__setattr__(self, name, check_positive(name, getattr(self, name),
                                                          fix=f"pass a positive {name.replace('_', ' ')}"))
        object.__setattr__(self, "cost", check_range("cost", self.cost, 0.0, 1.0, closed_high=False,
                                                     fix="pass a proportional cost in [0, 1) such as 0.005"))
        check_range("lr_final_fraction", self.lr_final_fraction, 0.0, 1.0, closed_low=False,
                    fix="pass a fraction in (0, 1], e.g. 0.01")
        for name, minimum in (("lr_decay_updates", 0), ("n_steps", 1), ("batch_size", 2), ("hidden", 1), ("n_hidden", 1),
                              ("eval_paths", 2), ("eval_grid", 11), ("seed", 0), ("eval_seed", 0)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=minimum,
                                                     fix=f"pass an integer {name} >= {minimum}"))
        for name in ("batch_norm", "detach_policy", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.device, str) or not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        model = self.model()  # validates the market: π_M = (α − r)/σ² > 0
        if not math.isfinite(model.merton_fraction):
            raise ValueError(f"the Merton fraction {model.merton_fraction!r} is not finite; check drift and volatility")
        floor = insolvency_floor(self.cost, self.insolvency_margin)
        if not floor < self.initial_low < self.initial_high:
            raise ValueError(f"need insolvency floor {floor:.6g} < initial_low {self.initial_low!r} < initial_high "
                             f"{self.initial_high!r}; pass an interval of ratios above the floor, e.g. [-0.8, -0.1]")
        if self.algorithm != "dai_dong" and self.penalty * self.dt > 1.0 + 1e-12:
            raise ValueError(f"penalty*dt = {self.penalty:g}*{self.dt:g} = {self.penalty * self.dt:.6g} > 1: the survival "
                             f"factor 1 - penalty*(nu + mu)*dt can be negative; lower penalty below {1.0 / self.dt:g} "
                             "or raise n_steps")

    # ------------------------------------------------------------------ derived objects
    @property
    def dt(self) -> float:
        """``Δt = T / L``."""
        return self.maturity / self.n_steps

    @property
    def floor(self) -> float:
        """The insolvency floor ``−(1−θ)(1−m)``."""
        return insolvency_floor(self.cost, self.insolvency_margin)

    def model(self) -> MertonCosts:
        """The true market as a :class:`pdecore.MertonCosts`."""
        return MertonCosts(drift=self.drift, rate=self.rate, volatility=self.volatility, cost=self.cost,
                           maturity=self.maturity)
