"""Settings of the high-dimensional stopping learner (SPEC section 7): a torch-free module.

Kept apart from :mod:`rl.stopping.high_dim` (the learner, which needs torch) as
:mod:`rl.stopping.config` is kept apart from the 1-D learner: the experiment registry
(:mod:`validation.experiments`) reads the schema from this class when it is imported, and that must
not cost a torch import.
"""

from __future__ import annotations

from dataclasses import dataclass

from pdecore.basket import BASKET_CASES
from pdecore.checks import check_choice, check_int, check_positive, check_real
from rl.config_base import ConfigRecord
from rl.stopping.config import MARTINGALE_WEIGHTINGS

PROBLEMS = ("basket", "fbm")
FORMULATIONS = ("price", "premium")
#: What the networks see of the state: ``"log"`` (basket only: log-prices), ``"level"`` (the prices; the fBm path).
STATE_INPUTS = ("auto", "log", "level")
#: The networks' input layer: ``"shared"`` (one for all dates, basket default) or ``"per_date"`` (fBm default).
INPUT_NORMS = ("auto", "standardize", "affine")
INPUT_LAYERS = ("auto", "shared", "per_date")
#: The networks' hidden-to-hidden layers: one for all dates (``"shared"``) or one per date.
HIDDEN_LAYERS = ("auto", "shared", "per_date")
#: Floating-point types of the simulated paths (the keys of :data:`rl.stopping.basket.DTYPES`).
DTYPE_NAMES = ("float32", "float64")


@dataclass(frozen=True)
class HighDimStoppingConfig(ConfigRecord):
    """Settings of :class:`HighDimStoppingLearner` (defaults: the paper's basket at d = 40).

    Parameters
    ----------
    problem : {"basket", "fbm"}
    dimension : int
        Basket: number of assets d. Ignored by the fBm (its state has ``n_dates + 1`` coordinates).
    case : {"main", "variant"}
        Basket parameter set (:data:`rl.stopping.basket.BASKET_CASES`).
    correlation : float
        Basket: equicorrelation of the Brownian motions (paper 0).
    hurst : float
        fBm: Hurst index H.
    n_dates : int
        L decision dates on [0, T] (T = 1).
    formulation : {"price", "premium"}
    state_inputs : {"auto", "log", "level"}
        The state part of the networks' inputs (the payoff part is ``h``). ``"level"``: the state itself,
        the prices ``X_l`` (the paper's wording) or the fBm path. ``"log"`` (basket only): the log-prices,
        the GBM's natural coordinates; a monotone transform of the state, so no model knowledge enters.
        ``"auto"`` (default) resolves to ``"log"`` for the basket and ``"level"`` for the fBm. Why: with
        ``σ_i`` up to 1.6 the prices are lognormal with tails so heavy that the input batch norm (scaled
        by a batch standard deviation that the tail dominates) sends a few paths per batch far out in
        every hidden unit, more of them the more assets there are (measured in
        ``docs/high_dim_stopping.md``).
    input_layer : {"auto", "shared", "per_date"}
        ``"per_date"``: every date's network has its own input layer (the paper). ``"shared"``: one input
        layer ``Linear(D + 1, hidden)`` for all dates, after each date's own input batch norm, the later
        layers per date (:class:`rl.networks.BatchedValueNetwork`, ``shared_input``). ``"auto"`` (default)
        resolves to ``"shared"`` for the basket and ``"per_date"`` for the fBm. Why: after a date's batch
        norm the basket's informative direction (the standardized log geometric mean, weights ``∝ σ_i``)
        is the same at every date, while the other D − 1 directions are noise; one layer fitted from all
        dates' paths finds it from L times the data, and the learning error that grows with d shrinks
        (measured in ``docs/high_dim_stopping.md``). The fBm's informative direction (the conditional
        mean's weights on the past) changes with the date, so it keeps one layer per date. A generic
        architecture choice: nothing of the model enters.
    hidden_layers : {"auto", "shared", "per_date"}
        The hidden-to-hidden layers (``n_hidden − 1``): ``"shared"`` one for all dates, after the
        shared input layer (each date keeps its batch norms, a shift and scale per hidden unit, and its
        output layer; :class:`rl.networks.BatchedValueNetwork`, ``shared_hidden``), or ``"per_date"``.
        ``"auto"`` (default) resolves to ``"per_date"``. ``"shared"`` needs ``input_layer="shared"``.
    input_norm : {"auto", "standardize", "affine"}
        What follows each date's input batch norm's standardization: ``"affine"`` a learned scale and
        shift per date and input (``nn.BatchNorm1d``'s default, the paper's), ``"standardize"`` nothing.
        ``"auto"`` (default) resolves to ``"standardize"`` with the shared input layer (and batch norm)
        and to ``"affine"`` otherwise. Why: before a per-date layer the scales are redundant (the
        layer absorbs them), but before the shared layer they are ``L × (D + 1)`` per-date weights of the
        inputs, each fitted from one date's paths, which puts back the per-date noise the shared layer
        removes (measured in ``docs/high_dim_stopping.md``).
    martingale_weighting : {"restarted", "survival"}
        Per-date weights of the martingale loss, as for the 1-D learner
        (:class:`rl.stopping.config.StoppingConfig`): ``"survival"`` is the paper's ``½ E[Σ_l G_l² Δt]``,
        which weighs date ``l``'s residual by ``R_l²``; ``"restarted"`` (default) fits every path at
        every date (:func:`rl.losses.restarted_martingale_residuals`, same minimizer). Why the default:
        at ``κΔt = 1`` a path the current rule stops has ``R = 0`` from then on, so with ``"survival"``
        the later dates' networks never see the states that the early rule (wrongly) stops, and the
        fit settles on a self-consistent but poor rule (measured in ``docs/high_dim_stopping.md``).
    penalty, temperature : float
        κ (with ``κΔt ≤ 1``) and λ.
    learning_rate, lr_decay_every, lr_decay_factor :
        Adam step ``learning_rate · lr_decay_factor^{⌊step/lr_decay_every⌋}`` (0: constant).
    batch_size, hidden, n_hidden, batch_norm :
        Paths per step and the networks' shape (SPEC section 3: 2 hidden layers of 21, batch norm).
    dtype : {"float32", "float64"}
        Precision of paths and networks.
    seed, eval_paths, test_paths, eval_seed :
        Training seed; periodic and final test paths and their seed (common to all runs).
    execution_substeps : int
        Basket only: ``m``, the learned rule is executed on the test paths at ``L·m`` equally spaced
        dates, not only at the ``L`` decision dates it was trained on (default 1: the paper's
        evaluation). Between ``t_l`` and ``t_{l+1}`` it exercises where the premium interpolated
        linearly in time, ``(1 − a) w_l(x_t) + a w_{l+1}(x_t)`` with ``a = (t − t_l)/Δt`` and
        ``w_L = 0``, is ``≤ 0``; at the decision dates it is the trained rule itself. Why: the option is
        American, and a rule that may exercise only at the 101 dates gives away the Bermudan gap
        (0.46 % of the American price at d = 40, ``docs/high_dim_stopping.md``), as much as the paper's
        whole tolerance. The rule stays adapted and the paths exact, so its price is still a lower
        bound of the American price. The fBm is a stopping problem on its 101 dates: it refuses ``m > 1``.
    continuity_correction : bool
        Basket only, with ``execution_substeps = m > 1``: between and at the decision dates the rule is
        asked at a state moved toward continuation, ``y + c_l`` (log-prices), by ``β (1 − 1/√m) √Δt``
        standard deviations of the state's own diffusion across the boundary, ``c_l = θ√Δt Σ ḡ_l /
        sqrt(ḡ_lᵀ Σ ḡ_l)`` with ``θ = β (1 − 1/√m)``, ``β = −ζ(½)/√(2π) ≈ 0.5826`` (Broadie, Glasserman &
        Kou's constant), ``ḡ_l`` the learned premium's gradient near its zero set and ``Σ`` the
        covariance of the log-price increments per unit time, both estimated from simulated paths
        (:meth:`rl.stopping.high_dim.HighDimStoppingLearner.continuity_shifts`; nothing of the model
        enters). Default ``True`` (no effect at ``m = 1``). Why: the networks learn the premium of a
        holder who may exercise every Δt, whose boundary sits about ``β σ √Δt`` above the boundary of one
        who may exercise every ``Δt/m`` (a discretely monitored barrier's shift); interpolating in time
        cannot move it, the shift does. Exact networks: 6.5233 → 6.5419 at d = 40 (1000 dates; their
        Bermudan price 6.5422), ``docs/high_dim_stopping.md``. ``p_decision_dates`` keeps the unshifted
        rule (the paper's evaluation).
    antithetic_test_paths : bool
        Basket only: draw the test paths in antithetic pairs (the second path of a pair has the first's
        normals negated; :meth:`rl.stopping.basket.BasketSimulator.sample_log`). The prices are still
        the means over the ``test_paths`` paths; their standard errors are over the independent pairs.
        Default ``False`` (the paper's independent paths). Why: the two paths of a pair are negatively
        correlated (−0.56 for the stopped put on the 1-D equivalent), which cuts the plain estimator's
        standard error by a third at the same number of paths (``docs/high_dim_stopping.md``).
    """

    problem: str = "basket"
    dimension: int = 40
    case: str = "main"
    correlation: float = 0.0
    hurst: float = 0.3
    n_dates: int = 100
    formulation: str = "premium"
    state_inputs: str = "auto"
    input_layer: str = "auto"
    input_norm: str = "auto"
    hidden_layers: str = "auto"
    martingale_weighting: str = "restarted"
    penalty: float = 100.0
    temperature: float = 1.0
    learning_rate: float = 0.05
    lr_decay_every: int = 300
    lr_decay_factor: float = 0.1
    batch_size: int = 1024
    hidden: int = 21
    n_hidden: int = 2
    batch_norm: bool = True
    dtype: str = "float32"
    seed: int = 0
    eval_paths: int = 2**14
    test_paths: int = 2**17
    eval_seed: int = 20260
    execution_substeps: int = 1
    continuity_correction: bool = True
    antithetic_test_paths: bool = False
    steps: int = 1000  # recorded for the report; the trainer's [train] steps drive training

    #: What runs recorded before these keys existed did: prices as inputs, the paper's survival weights.
    LEGACY_DEFAULTS = {"state_inputs": "level", "martingale_weighting": "survival", "input_layer": "per_date",
                       "input_norm": "affine", "hidden_layers": "per_date", "continuity_correction": False}

    def _resolve_auto(self, name: str, choices: tuple[str, ...], resolved: str) -> None:
        """Check ``name`` against ``choices`` and replace ``"auto"`` by ``resolved``."""
        check_choice(name, getattr(self, name), choices, fix="use " + ", ".join(f'"{c}"' for c in choices))
        if getattr(self, name) == "auto":
            object.__setattr__(self, name, resolved)

    def __post_init__(self) -> None:
        check_choice("problem", self.problem, PROBLEMS, fix="use problem='basket' or problem='fbm'")
        check_choice("formulation", self.formulation, FORMULATIONS, fix="use 'price' or 'premium'")
        check_choice("case", self.case, tuple(BASKET_CASES), fix="use case='main' or 'variant'")
        # the "auto" architecture keys resolve from the problem (and the input layer), in this order
        self._resolve_auto("state_inputs", STATE_INPUTS, "log" if self.problem == "basket" else "level")
        if self.state_inputs == "log" and self.problem != "basket":
            raise ValueError(f"state_inputs='log' needs positive states (the basket's prices), got problem="
                             f"{self.problem!r}; use state_inputs='level' (or 'auto') for the fBm path")
        self._resolve_auto("input_layer", INPUT_LAYERS, "shared" if self.problem == "basket" else "per_date")
        self._resolve_auto("hidden_layers", HIDDEN_LAYERS, "per_date")
        if self.hidden_layers == "shared" and self.input_layer != "shared":
            raise ValueError(f'hidden_layers="shared" shares the hidden layers of networks whose input layers differ '
                             f'(input_layer={self.input_layer!r}); use input_layer="shared" or hidden_layers="per_date"')
        self._resolve_auto("input_norm", INPUT_NORMS,
                           "standardize" if self.input_layer == "shared" and self.batch_norm else "affine")
        if self.input_norm == "standardize" and not self.batch_norm:
            raise ValueError('input_norm="standardize" needs the input batch norm, got batch_norm=False; use '
                             'input_norm="affine" (or "auto") without batch norm')
        check_choice("martingale_weighting", self.martingale_weighting, MARTINGALE_WEIGHTINGS,
                     fix='use "restarted" (default) or "survival" (the paper\'s Algorithm 1)')
        check_choice("dtype", self.dtype, DTYPE_NAMES, fix="use 'float32' or 'float64'")
        for name in ("dimension", "n_dates", "batch_size", "hidden", "n_hidden", "eval_paths", "test_paths",
                     "steps", "execution_substeps"):
            check_int(name, getattr(self, name), minimum=2 if name == "batch_size" else 1,
                      fix=f"pass a positive integer {name}")
        if self.problem == "fbm" and self.execution_substeps != 1:
            raise ValueError(f"execution_substeps={self.execution_substeps!r}: the fBm is stopped on its n_dates + 1 "
                             "dates only (a stopping problem on t_n = n/100, not an American one); use "
                             "execution_substeps=1")
        if not isinstance(self.continuity_correction, bool):
            raise ValueError(f"continuity_correction must be true or false, got {self.continuity_correction!r}")
        if not isinstance(self.antithetic_test_paths, bool):
            raise ValueError(f"antithetic_test_paths must be true or false, got {self.antithetic_test_paths!r}")
        if self.problem == "fbm" and self.antithetic_test_paths:
            raise ValueError("antithetic_test_paths=True is implemented for the basket's paths; use "
                             "antithetic_test_paths=False for the fBm")
        if self.antithetic_test_paths and (self.test_paths % 2 or self.eval_paths % 2):
            raise ValueError(f"test_paths={self.test_paths}, eval_paths={self.eval_paths} with antithetic_test_paths="
                             "True: antithetic paths come in pairs; pass even numbers of paths")
        check_int("lr_decay_every", self.lr_decay_every, minimum=0, fix="pass 0 (constant) or a step count")
        check_int("seed", self.seed, minimum=0, fix="pass a non-negative seed")
        check_int("eval_seed", self.eval_seed, minimum=0, fix="pass a non-negative seed")
        for name in ("penalty", "temperature", "learning_rate", "lr_decay_factor"):
            check_positive(name, getattr(self, name), fix=f"pass a positive {name}")
        check_real("correlation", self.correlation, fix="pass 0 for independent assets")
        check_real("hurst", self.hurst, fix="pass a Hurst index in (0, 1)")
        if self.penalty / self.n_dates > 1.0 + 1e-12:
            raise ValueError(f"penalty={self.penalty!r} with n_dates={self.n_dates!r} gives κΔt = "
                             f"{self.penalty / self.n_dates:.4g} > 1 (survival factor 1 − κπΔt < 0); pass "
                             f"penalty <= {self.n_dates}")

    @property
    def dt(self) -> float:
        return 1.0 / self.n_dates


__all__ = ["DTYPE_NAMES", "FORMULATIONS", "HIDDEN_LAYERS", "HighDimStoppingConfig", "INPUT_LAYERS", "INPUT_NORMS", "PROBLEMS", "STATE_INPUTS"]
