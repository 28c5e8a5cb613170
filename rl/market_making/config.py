"""Settings of the market-making learner: the ``[train]`` table of an experiment spec (SPEC section 5).

Every field is validated when the frozen dataclass is built, so a bad value is refused by name before
any simulation or network is allocated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from pdecore.checks import check_choice, check_int, check_range


#: Options removed from the learner (``docs/market_making_measurements.md``) with the value that made
#: them inactive; ``None``: every value was inactive (``eval_n_steps`` only served ``eval_every_paths``).
REMOVED_OPTIONS = {"quadratic_head": False, "exploring_states": 0.0, "eval_every_paths": 0, "eval_n_steps": None}


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
        ``α = 3/4`` (default) gave the best mid-horizon aversion (``1/2``: 40% too large;
        ``docs/market_making_measurements.md``).
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
        the slow one (:mod:`rl.market_making.learner`; measured in ``docs/market_making_measurements.md``).
    device : str
        Torch device of the network, tables, simulation and loss: ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"`` (the learner refuses CUDA when torch sees none). Random numbers are drawn on
        the CPU whatever the device, so a seed gives the same draws everywhere.
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
    weight_limit: float = 100.0
    balance_exponent: float = 0.75
    aversion_shape_gain: float = 3.0
    device: str = "cpu"
    seed: int = 0
    #: model-free running-risk part (φ > 0): "riccati" (default) the increment the running cost adds to the
    #: matrix Riccati whose R = 0 solution is the learned hyperbola (saturates at the running plateau,
    #: carries the cross terms, positive semidefinite); "psd" (before it) ``τ D R D``, ``D = diag(d_i(τ))``
    #: one saturation per option; "entrywise" (before issue 15) one saturation per entry of R, whose
    #: Hadamard product can be indefinite (ten options: inventories ran to the bound)
    running_form: str = "riccati"
    #: model-free aversion exponent ``300 r + g (w(τ) − w(0))``: "anchored" (default), the shape network is zero
    #: at the horizon, so that it cannot trade a constant with the rate r (seeds wandered along that flat
    #: direction); "free" (before it) ``300 r + g w(τ)``
    aversion_shape: str = "anchored"

    def __post_init__(self) -> None:
        def integer(name, minimum, fix, maximum=None):
            # stored converted: a TOML 64.0 becomes 64, so torch and numpy see an int
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=minimum, maximum=maximum,
                                                     fix=fix))

        integer("hidden", 1, "pass a positive width, e.g. hidden = 64")
        integer("layers", 1, "pass a positive depth, e.g. layers = 3")
        # Adam's step is about lr per parameter: beyond 10 the first step throws the network out of range
        check_range("lr", self.lr, 0.0, 10.0, closed_low=False, fix="pass a positive learning rate, e.g. lr = 0.003")
        check_range("lr_decay", self.lr_decay, 0.0, 1.0, fix="pass a ratio in (0, 1], e.g. lr_decay = 0.1")
        if not self.lr_decay > 0.0:
            raise ValueError(f"lr_decay must be > 0, got {self.lr_decay!r}; pass e.g. lr_decay = 0.1")
        integer("total_steps", 1, "pass a positive number of steps, e.g. 600")
        integer("batch_paths", 1, "pass a positive number of paths, e.g. 256")
        integer("paths_every", 1, "pass a positive period, e.g. 10")
        integer("paths_per_step", 1, "pass a positive number, e.g. 32")
        if self.paths_per_step > self.batch_paths:
            raise ValueError(f"paths_per_step={self.paths_per_step} exceeds batch_paths={self.batch_paths}; "
                             "pass paths_per_step <= batch_paths")
        integer("n_steps", 2, "pass the number of time steps, e.g. n_steps = 200")
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
        # the aversion's exponent is 300 u_0 + gain·net(τ) with |net| ≲ 1: beyond 100 exp() overflows
        check_range("aversion_shape_gain", self.aversion_shape_gain, 0.0, 100.0, closed_low=False,
                    fix="pass a positive gain up to 100, e.g. aversion_shape_gain = 3")
        if not isinstance(self.market_inputs, bool):
            raise ValueError(f"market_inputs must be true or false, got {self.market_inputs!r}; pass true or false")
        check_choice("aversion_shape", self.aversion_shape, ("anchored", "free"),
                     fix="pass 'anchored' (default) or 'free' (runs recorded before it)")
        check_choice("running_form", self.running_form, ("riccati", "psd", "entrywise"),
                     fix="pass 'riccati' (default), 'psd' or 'entrywise' (runs recorded before the Riccati form)")
        check_choice("baseline", self.baseline, ("learned", "riccati", "none"),
                     fix="pass 'learned' (model-free), 'riccati' (warm start from the model) or 'none'")
        if not (isinstance(self.device, str) and re.fullmatch(r"cpu|cuda(:[0-9]+)?", self.device)):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}; pass "
                             "device = 'cpu' (or 'cuda' on a machine with a GPU)")
        # torch seeds are 64-bit and the learner also uses seed + 1
        integer("seed", 0, "pass a non-negative seed below 2**63", maximum=2**63 - 2)

    @classmethod
    def from_mapping(cls, table: dict) -> "MMTrainConfig":
        """Build from a TOML ``[train]`` table, rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in [train]; valid keys are {sorted(known)}")
        return cls(**table)

    @classmethod
    def from_record(cls, record: dict, **overrides) -> "MMTrainConfig":
        """Rebuild from a run's recorded ``train`` mapping (``config.json``), ``overrides`` replacing keys
        (e.g. ``device="cpu"`` to evaluate a GPU run on a CPU machine).

        Runs recorded before the removal of :data:`REMOVED_OPTIONS` still load: a removed option at its
        inactive value changed nothing and is dropped; any other value is refused by name, since the
        current learner cannot reproduce that run.
        """
        values = {**record, **overrides}
        # runs recorded before these keys existed used the per-entry running form and the free shape (the
        # defaults since are not theirs)
        values.setdefault("running_form", "entrywise")
        values.setdefault("aversion_shape", "free")
        for name, inactive in REMOVED_OPTIONS.items():
            if name in values:
                value = values.pop(name)
                if inactive is not None and value != inactive:
                    raise ValueError(f"the run was trained with {name}={value!r}, an option the learner no "
                                     f"longer has (docs/market_making_measurements.md); it loads only with "
                                     f"{name}={inactive!r}")
        return cls(**values)


__all__ = ["MMTrainConfig", "REMOVED_OPTIONS"]
