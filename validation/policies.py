"""Hold any policy against pderl's oracles with the numbers pderl reports for its own learners (issue 16).

:func:`validate_policy` takes a policy written against the environments of :mod:`rl.envs` (observation
array → action array, the layout of the environment's spaces, one row per path) or any object with
Stable-Baselines3's ``predict(obs, deterministic=True)``, and a problem (an experiment spec, a file or a
mapping, or the parameter objects the oracles take). It runs the policy through the project's own
evaluation, never a second one:

* **stopping** (:class:`rl.stopping.config.StoppingConfig`; spec kind ``"stopping"``): the policy's
  decisions on the learners' common test paths (:meth:`~rl.stopping.learner.StoppingLearner.test_paths`,
  seed ``eval_seed``) go through :func:`rl.stopping.evaluation.evaluate_stopping` against
  :func:`validation.stopping.build_reference`: ``P_stopping`` and ``P_control`` (plain, control-variate,
  and common-random-number estimates against the discrete oracle's rule), their relative errors to
  the American price, and the per-date decision accuracy against the oracle's decisions
  (``accuracy``) and the PDE (variational-inequality) boundary (``accuracy_vi``);
* **market making** (:class:`pdecore.MarketMakingModel`; spec kind ``"market_making"``): the spread
  error against the grid HJB's policy in units of ``1/k`` (:func:`rl.market_making.evaluation.spread_errors`
  at ``t = 0`` and ``0.6 T`` on ``|q_i| ≤ Q̄/2``, mids at ``S_0``) and the P&L on common random numbers
  next to the grid-optimal policy (the quadratic approximation's when the grid is infeasible), the
  quadratic policy and the constant ``1/k`` quotes (:func:`validation.market_making.compare_policies`):
  mean, s.d., standard error, and the paired difference and ratio to the reference policy;
* **Merton with costs** (:class:`pdecore.MertonCosts`; spec kind ``"dynkin"``): the no-trade band the
  policy implies at ``t = 0`` (scanning the ratio ``x = B/S`` for where it switches from selling to
  holding and from holding to buying, or the band it returns in ``action_mode="band"``) against the PDE
  band (:func:`pdecore.solve_merton_costs`), and the 20-year log return of that band next to the PDE
  band's and buy-and-hold on common random numbers (:func:`validation.backtest_merton.backtest_merton`).

The exact optimal policies are available as plain callables (:func:`stopping_boundary_policy` for a
boundary such as the PDE's or the oracle's, :func:`grid_quote_policy` for the grid HJB's quotes) and
pderl's own trained learners as well (:func:`learner_policy`), so both sides of a comparison are
measured by the same code. Figures: :func:`plot_validation` draws the per-date accuracy (stopping), the
spreads against inventory (market making) or the implied band (Merton).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["validate_policy", "as_policy_function", "stopping_boundary_policy", "grid_quote_policy",
           "learner_policy", "problem_from", "plot_validation", "load_policy"]


# ====================================================================== policies
def as_policy_function(policy) -> Callable[[np.ndarray], np.ndarray]:
    """``obs [M, d] → actions`` from a callable or an object with SB3's ``predict(obs, deterministic=True)``."""
    predict = getattr(policy, "predict", None)
    if callable(predict):
        def act(obs):
            return np.asarray(predict(obs, deterministic=True)[0])
        return act
    if callable(policy):
        return lambda obs: np.asarray(policy(obs))
    raise ValueError(f"policy must be a callable (observations -> actions) or have predict(obs, deterministic=True), "
                     f"got {type(policy).__name__}")


def load_policy(reference: str):
    """The object named ``module:attribute`` (``pderl validate policy --policy``); a zero-argument
    factory named ``module:attribute()`` is called."""
    import importlib

    if ":" not in reference:
        raise ValueError(f"--policy must be module:attribute, got {reference!r}; e.g. my_agents:greedy")
    module_name, attribute = reference.split(":", 1)
    call = attribute.endswith("()")
    attribute = attribute[:-2] if call else attribute
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} of --policy {reference!r}: {exc}") from None
    obj = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r} (--policy {reference!r})")
        obj = getattr(obj, part)
    return obj() if call else obj


def stopping_boundary_policy(config, boundary) -> Callable[[np.ndarray], np.ndarray]:
    """Stop iff ``x ≤ S*(t_l)`` (put) or ``x ≥ S*(t_l)`` (call) on the dates ``t_l = lΔt``: the rule of a
    boundary such as the PDE's (``StoppingReference.boundary``) or the oracle's (``target_boundary``).

    Decided by :func:`rl.stopping.evaluation.true_decisions`, the function the evaluation scores with,
    so the PDE boundary scores 100 % against itself.
    """
    import torch

    from rl.stopping.evaluation import true_decisions

    boundary = np.asarray(boundary, dtype=float)

    def act(obs):
        obs = np.asarray(obs, dtype=np.float32).reshape(-1, 3)
        dates = np.rint(obs[:, 0] / config.dt).astype(np.int64)
        spots = torch.as_tensor(obs[:, 1])
        out = np.zeros(obs.shape[0], dtype=np.int64)
        for date in np.unique(dates):
            rows = dates == date
            out[rows] = true_decisions(spots[torch.as_tensor(rows)][:, None], boundary[date:date + 1],
                                       config.kind)[:, 0].numpy()
        return out
    return act


def grid_quote_policy(model, result, *, execution: str = "mean") -> Callable[[np.ndarray], np.ndarray]:
    """The grid HJB's quotes as ``obs → (bid_1..bid_n, ask_1..ask_n)``: the mean spreads of the Gibbs
    policy of the exact gains ``θ(t, q ± e_i) − θ(t, q)`` (:func:`validation.market_making.grid_policy`)."""
    from rl.market_making.policies import GibbsSpreadTable
    from validation.market_making import grid_policy

    return _spread_policy_function(grid_policy(model, result, GibbsSpreadTable.from_model(model),
                                               execution=execution), model)


def _spread_policy_function(spread_policy, model):
    """A :class:`rl.market_making.policies.SpreadPolicy` with deterministic quotes as ``obs → actions``."""
    import torch

    from rl.market_making.policies import DTYPE, MarketState

    n = model.n_options

    def act(obs):
        obs = np.asarray(obs, dtype=float).reshape(-1, 2 + 2 * n)
        inventory = torch.as_tensor(np.rint(obs[:, 1:1 + n]), dtype=DTYPE)
        prices = torch.as_tensor(obs[:, 1 + n:1 + 2 * n], dtype=DTYPE)
        spot = torch.as_tensor(obs[:, -1], dtype=DTYPE)
        actions = np.empty((obs.shape[0], 2 * n))
        # the quotes depend on t through the policy's table: one call per distinct date
        for t in np.unique(obs[:, 0]):
            rows = torch.as_tensor(obs[:, 0] == t)
            state = MarketState(inventory[rows], spot[rows], prices[rows], torch.zeros_like(prices[rows]))
            uniforms = torch.full(inventory[rows].shape + (2,), 0.5, dtype=DTYPE)
            with torch.no_grad():
                quotes = spread_policy.quote(float(t), state, uniforms)
            actions[rows.numpy()] = torch.cat([quotes.bid, quotes.ask], dim=1).numpy()
        return actions
    return act


def learner_policy(learner) -> Callable[[np.ndarray], np.ndarray]:
    """pderl's own trained learner as a plain ``obs → actions`` callable (what an outside agent is).

    * :class:`rl.stopping.learner.StoppingLearner`: exercise iff ``w_l(x) ≤ 0`` (``π ≥ ½``) with the
      calibrated evaluation networks, date ``l = round(t/Δt)``;
    * :class:`rl.market_making.learner.MarketMakingLearner`: the mean spreads of its Gibbs policy;
    * :class:`rl.dynkin.learner.DynkinLearner`: sell below / buy above its learned band at the date
      (:meth:`~rl.dynkin.learner.DynkinLearner.bands`), hold inside (``pderl/MertonCosts-v0``'s actions).
    """
    from rl.dynkin.learner import DynkinLearner
    from rl.market_making.learner import MarketMakingLearner
    from rl.stopping.learner import StoppingLearner

    if isinstance(learner, StoppingLearner):
        return _stopping_learner_policy(learner)
    if isinstance(learner, MarketMakingLearner):
        learner.network.eval()
        return _spread_policy_function(learner.policy(execution="mean"), learner.model)
    if isinstance(learner, DynkinLearner):
        return _band_policy(learner.bands(), learner.config.maturity / learner.config.n_steps)
    raise ValueError(f"learner must be a StoppingLearner, MarketMakingLearner or DynkinLearner, got "
                     f"{type(learner).__name__}")


def _band_policy(bands, dt: float):
    """Sell below ``x_s(t_l)``, buy above ``x_b(t_l)``, hold between (``pderl/MertonCosts-v0``'s discrete
    actions) from bands ``(L, 2)`` on the dates ``t_l = lΔt``; a NaN edge never trades on its side."""
    from rl.envs.merton import BUY, HOLD, SELL

    bands = np.asarray(bands, dtype=float)
    sell_edge = np.where(np.isnan(bands[:, 0]), -np.inf, bands[:, 0])
    buy_edge = np.where(np.isnan(bands[:, 1]), np.inf, bands[:, 1])

    def act(obs):
        obs = np.asarray(obs, dtype=float).reshape(-1, 3)
        dates = np.clip(np.floor(obs[:, 0] / dt + 1e-9).astype(np.int64), 0, len(bands) - 1)
        ratio = obs[:, 1]
        return np.where(ratio < sell_edge[dates], SELL, np.where(ratio > buy_edge[dates], BUY, HOLD))
    return act


def _stopping_learner_policy(learner):
    import torch

    config = learner.config
    net = learner.evaluation_network()

    def act(obs):
        obs = np.asarray(obs, dtype=np.float32).reshape(-1, 3)
        dates = np.rint(obs[:, 0] / config.dt).astype(np.int64)
        n_dates = config.n_steps
        rows_per_date = obs.shape[0] // n_dates
        if rows_per_date * n_dates == obs.shape[0] and np.array_equal(
                dates, np.repeat(np.arange(n_dates), rows_per_date)):
            # whole paths, date-major (what validate_policy sends): one pass of the networks, the same
            # inputs as the learner's own evaluation
            spots = torch.as_tensor(obs[:, 1].reshape(n_dates, rows_per_date).T.copy()).to(learner.device)
            paths = torch.cat([spots, spots[:, -1:]], dim=1)
            w = learner.premium_part(paths, net)
            return (w <= 0.0).T.reshape(-1).cpu().numpy().astype(np.int64)
        out = np.zeros(obs.shape[0], dtype=np.int64)
        for date in np.unique(dates):
            rows = dates == date
            spots = torch.as_tensor(obs[rows, 1]).to(learner.device)
            # the learner's features need whole paths: a path that stays at x gives date l's inputs exactly
            paths = spots[:, None].expand(-1, config.n_steps + 1).contiguous()
            w = learner.premium_part(paths, net)[:, date]
            out[rows] = (w <= 0.0).cpu().numpy()
        return out
    return act


# ====================================================================== problems
def problem_from(problem):
    """``(kind, parameters, spec)`` of a problem: a spec file or mapping, or a parameter object.

    ``kind`` is ``"stopping"`` (a :class:`~rl.stopping.config.StoppingConfig`), ``"market_making"`` (a
    :class:`pdecore.MarketMakingModel`) or ``"merton"`` (a :class:`pdecore.MertonCosts`); ``spec`` is the
    resolved spec (``None`` for parameter objects).
    """
    from pdecore.market_making_params import MarketMakingModel
    from pdecore.params import MertonCosts
    from rl.stopping.config import StoppingConfig

    if isinstance(problem, StoppingConfig):
        return "stopping", problem, None
    if isinstance(problem, MarketMakingModel):
        return "market_making", problem, None
    if isinstance(problem, MertonCosts):
        return "merton", problem, None
    if isinstance(problem, (str, Path, Mapping)):
        from validation.configs import read_toml

        data = read_toml(problem) if isinstance(problem, (str, Path)) else dict(problem)
        kind = data.get("kind")
        if kind == "dynkin":
            from validation.dynkin import config_from_spec

            return "merton", config_from_spec(data)[0].model(), data
        from validation.experiments import KINDS, load_spec

        spec = load_spec(data)
        adapter = KINDS[spec["kind"]]
        if spec["kind"] == "stopping":
            return "stopping", adapter.config(spec), spec
        if spec["kind"] == "market_making":
            return "market_making", adapter.model(spec), spec
    raise ValueError(f"problem must be a spec (TOML path or mapping with kind stopping, market_making or dynkin) "
                     f"or a StoppingConfig, MarketMakingModel or MertonCosts, got {type(problem).__name__}")


# ====================================================================== validation
def validate_policy(policy, problem, *, n_paths: int | None = None, seed: int | None = None,
                    n_steps: int | None = None, reference=None, **options) -> dict[str, Any]:
    """The validation numbers of ``policy`` on ``problem`` (module docstring).

    Parameters
    ----------
    policy : callable or object with ``predict``
        ``obs [M, d] → actions`` in the layout of the problem's environment (:mod:`rl.envs`).
    problem : path, mapping, StoppingConfig, MarketMakingModel or MertonCosts
    n_paths : int, optional
        Test paths: stopping default the config's ``test_paths`` (2^18); market making the spec's
        ``[evaluate] paths`` or 4000; Merton 10 000 backtest paths.
    seed : int, optional
        Seed of the common random numbers: stopping the config's ``eval_seed`` (the learners' test
        paths); market making the spec's or 12345; Merton 0.
    n_steps : int, optional
        Market making: simulator steps (default the simulator's).
    reference
        A solved reference to reuse: a :class:`rl.stopping.evaluation.StoppingReference`, a
        :class:`pdecore.MarketMakingResult`, or a :class:`pdecore.MertonResult`.
    **options
        Market making: ``reference_execution`` (``"mean"``, default, deterministic quotes like the
        policy's, or ``"sample"``), ``include`` (benchmark policies), ``spread_half_width`` (the inventory
        box ``|q_i| ≤ w`` of the spread error, default ``Q̄/2``). Merton: ``years`` (20),
        ``action_mode`` (``"discrete"`` or ``"band"``), ``trade_step``, ``ratio_grid``.

    Returns
    -------
    dict
        ``problem`` (the kind) and the numbers of that kind (module docstring).
    """
    kind, parameters, spec = problem_from(problem)
    act = as_policy_function(policy)
    if kind == "stopping":
        _refuse(options, ())
        return _validate_stopping(act, parameters, n_paths=n_paths, seed=seed, reference=reference)
    if kind == "market_making":
        _refuse(options, ("reference_execution", "include", "spread_half_width"))
        defaults = (spec or {}).get("evaluate", {})
        return _validate_market_making(act, parameters, n_paths=n_paths or defaults.get("paths", 4000),
                                       seed=defaults.get("seed", 12345) if seed is None else seed,
                                       n_steps=n_steps or defaults.get("n_steps"), reference=reference, **options)
    _refuse(options, ("years", "action_mode", "trade_step", "ratio_grid"))
    backtest = {}
    if spec is not None:  # a dynkin spec's [evaluate] backtest settings are the defaults
        from validation.dynkin import config_from_spec

        backtest = config_from_spec(spec)[3]
    if "backtest_years" in backtest:
        options.setdefault("years", backtest["backtest_years"])
    return _validate_merton(act, parameters, n_paths=n_paths or backtest.get("backtest_paths", 10_000),
                            seed=backtest.get("backtest_seed", 0) if seed is None else seed,
                            reference=reference, **options)


def _refuse(options: dict, allowed) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for this problem; allowed: {list(allowed) or 'none'}")


# ---------------------------------------------------------------------------------------------- stopping
class _StoppingRule:
    """What :func:`rl.stopping.evaluation.evaluate_stopping` reads from a learner, for any policy: the
    config, the common test paths (the learners' own :meth:`StoppingLearner.test_paths`) and
    ``w = V − g`` whose sign is the decision (−1 where the policy stops, +1 where it continues)."""

    def __init__(self, act, config) -> None:
        import torch

        from rl.stopping.simulator import GBMSimulator

        self.act, self.config = act, config
        self.simulator = GBMSimulator(config.model(), config.option(), spot=config.spot, n_steps=config.n_steps,
                                      scheme=config.scheme)
        self.dtype, self.device = torch.float32, torch.device("cpu")
        self.option = config.option()

    def test_paths(self, n_paths, *, seed_offset=0):
        from rl.stopping.learner import StoppingLearner

        return StoppingLearner.test_paths(self, n_paths, seed_offset=seed_offset)

    def premium_part(self, paths, net=None):
        import torch

        c = self.config
        spots = paths[:, :c.n_steps].double().cpu().numpy()
        gains = self.option.payoff(spots)
        n_paths, n_dates = spots.shape
        # a Markov policy decides each (path, date) from its observation alone: one call with every
        # observation of the chunk, date-major (a learner wrapped by learner_policy then runs its networks
        # once, as its own evaluation does)
        obs = np.stack([np.repeat(np.arange(n_dates) * c.dt, n_paths), spots.T.reshape(-1), gains.T.reshape(-1)],
                       axis=1).astype(np.float32)
        action = np.asarray(self.act(obs)).reshape(-1)
        if action.shape != (obs.shape[0],):
            raise ValueError(f"the policy must return one action per observation row, got shape "
                             f"{np.shape(action)} for {obs.shape[0]} rows")
        decisions = (action.astype(np.int64) == 1).reshape(n_dates, n_paths).T
        return torch.as_tensor(np.where(decisions, -1.0, 1.0), dtype=paths.dtype, device=paths.device)


def _validate_stopping(act, config, *, n_paths, seed, reference):
    from rl.stopping.evaluation import StoppingReference, evaluate_stopping
    from validation.stopping import build_reference

    if seed is not None:
        config = config.replace(eval_seed=int(seed))
    if reference is None:
        # the oracle is the target of the ML/TD(0) recursion at κ, λ, L; Dong's config would skip it
        reference = build_reference(config if config.algorithm != "dong" else config.replace(algorithm="ml"))
    if not isinstance(reference, StoppingReference):
        raise ValueError(f"reference must be a StoppingReference for a stopping problem, got {type(reference).__name__}")
    n_paths = int(n_paths or config.test_paths)
    rule = _StoppingRule(act, config)
    result = evaluate_stopping(rule, n_paths, reference, net=rule)
    out: dict[str, Any] = {"problem": "stopping"}
    for name in ("stopping", "control"):
        for suffix in ("", "_stderr", "_cv", "_cv_stderr", "_crn", "_crn_stderr"):
            if f"p_{name}{suffix}" in result:
                out[f"p_{name}{suffix}"] = result[f"p_{name}{suffix}"]
        for suffix in ("", "_cv", "_crn"):
            if f"rel_error_{name}{suffix}" in result:
                out[f"rel_error_{name}{suffix}"] = result[f"rel_error_{name}{suffix}"]
    out["american_price"] = reference.price
    out["european_price"] = reference.european
    out["oracle_p_stopping"] = reference.target_p_stopping
    out["oracle_p_control"] = reference.target_p_control
    for key in ("accuracy", "accuracy_vi", "oracle_accuracy"):
        if key in result:
            out[key] = result[key].tolist()
            out[f"min_{key}"] = float(result[key].min())
            out[f"mean_{key}"] = float(result[key].mean())
    out["exercise_share"] = (result["exercise_count"] / n_paths).tolist()
    out["test_paths"] = n_paths
    out["eval_seed"] = config.eval_seed
    return out


# ------------------------------------------------------------------------------------- market making
class _ObservationSpreadPolicy:
    """A policy on observation arrays as a :class:`rl.market_making.policies.SpreadPolicy` (the
    simulator's protocol) and as the ``mean_spreads`` that :func:`spread_errors` reads."""

    def __init__(self, act, model) -> None:
        self.act, self.model = act, model

    def _actions(self, t, inventory, prices, spot):
        from rl.envs.market_making import observations, spreads_from_actions

        obs = observations(t, inventory, prices, spot)
        return spreads_from_actions(self.act(obs), self.model, obs.shape[0])

    def quote(self, t, state, uniforms):
        import torch

        from rl.market_making.policies import DTYPE, Quotes

        bid, ask = self._actions(t, state.inventory, state.prices, state.spot)
        device = state.inventory.device
        return Quotes(bid.to(device), ask.to(device), torch.zeros(bid.shape[0], dtype=DTYPE, device=device))

    def mean_spreads(self, t, inventory):
        """Spreads at integer inventories ``[B, n]``, the market at ``S_0`` and ``P = p(S_0, t)``
        (the convention of :meth:`MarketMakingLearner.mean_spreads`)."""
        import torch

        from rl.market_making.policies import DTYPE

        q = torch.as_tensor(np.asarray(inventory, dtype=float), dtype=DTYPE).reshape(-1, self.model.n_options)
        prices = torch.as_tensor(self.model.mid_prices(self.model.spot, t), dtype=DTYPE).expand(q.shape[0], -1)
        spot = torch.full((q.shape[0],), float(self.model.spot), dtype=DTYPE)
        bid, ask = self._actions(float(t), q, prices, spot)
        return bid.numpy(), ask.numpy()


def _validate_market_making(act, model, *, n_paths, seed, n_steps, reference, reference_execution="mean",
                            include=("quadratic", "constant"), spread_half_width=None):
    from rl.market_making.evaluation import spread_errors
    from rl.market_making.policies import ConstantSpreadPolicy, GibbsSpreadTable
    from validation.market_making import compare_policies, grid_policy, grid_reference, quadratic_policy

    if reference is None:
        reference = grid_reference(model)
    table = GibbsSpreadTable.from_model(model)
    policy = _ObservationSpreadPolicy(act, model)
    policies = {"policy": policy}
    if reference is not None:
        policies["grid"] = grid_policy(model, reference, table, execution=reference_execution)
    if "quadratic" in include or reference is None:
        policies["quadratic"] = quadratic_policy(model, table, execution=reference_execution)
    if "constant" in include:
        policies["constant"] = ConstantSpreadPolicy.myopic(model)
    ref_name = "grid" if reference is not None else "quadratic"
    table_out = compare_policies(model, policies, n_paths=n_paths, n_steps=n_steps, seed=seed, reference=ref_name)
    out: dict[str, Any] = {"problem": "market_making", "reference": ref_name, "max_spread_error": float("nan")}
    if reference is not None:
        out.update(spread_errors(policy, reference, half_width=spread_half_width))
    mine = table_out["policy"]
    out.update({"pnl_mean": mine["pnl_mean"], "pnl_std": mine["pnl_std"], "pnl_stderr": mine["pnl_stderr"],
                "pnl_ratio_vs_reference": mine["pnl_ratio"], "pnl_diff_vs_reference": mine["pnl_diff_vs_ref"],
                "pnl_diff_stderr": mine["pnl_diff_stderr"], "reference_pnl_mean": table_out[ref_name]["pnl_mean"],
                "reference_execution": reference_execution, "n_paths": n_paths, "seed": seed, "table": table_out})
    return out


# -------------------------------------------------------------------------------------------- Merton
def implied_band(act, model, *, action_mode: str = "discrete", ratio_grid=None, t: float = 0.0):
    """The no-trade band ``[x_s, x_b]`` a policy implies at time ``t``.

    ``"discrete"``: the policy is asked at every ratio of ``ratio_grid`` (default 4001 points on
    ``[x_M − 2, x_M + 2]`` clipped above ``−(1−θ)``, step 0.001); ``x_s`` is the largest ratio where it
    sells that lies below its lowest hold and ``x_b`` the smallest ratio where it buys above its highest
    hold (midpoints between grid neighbours, so the error is half a grid step). ``"band"``: the band it
    returns at ``x_M``.
    """
    from rl.envs.merton import BUY, SELL

    floor = -(1.0 - model.cost)
    if action_mode == "band":
        weight = 1.0 / (1.0 + model.merton_ratio)
        band = np.asarray(act(np.array([[t, model.merton_ratio, weight]], dtype=np.float32)), dtype=float).reshape(-1)
        return float(band.min()), float(band.max())
    if ratio_grid is None:
        centre = model.merton_ratio
        ratio_grid = np.linspace(centre - 2.0, centre + 2.0, 4001)
        ratio_grid = ratio_grid[ratio_grid > floor + 1e-6]
    ratio_grid = np.sort(np.asarray(ratio_grid, dtype=float))
    weight = 1.0 / (1.0 + ratio_grid)
    obs = np.stack([np.full(ratio_grid.size, t), ratio_grid, weight], axis=1).astype(np.float32)
    actions = np.asarray(act(obs)).reshape(-1)
    sells, buys = actions == SELL, actions == BUY
    holds = ~(sells | buys)
    if not holds.any():
        # no hold region: the band collapses to the switch point between selling and buying
        if sells.any() and buys.any():
            switch = 0.5 * (ratio_grid[sells].max() + ratio_grid[buys].min())
            return float(switch), float(switch)
        raise ValueError("the policy neither holds nor switches between selling and buying on the ratio grid; "
                         "pass ratio_grid covering its band")
    low_hold, high_hold = ratio_grid[holds].min(), ratio_grid[holds].max()
    below = ratio_grid < low_hold
    above = ratio_grid > high_hold
    sell_edge = 0.5 * (ratio_grid[below & sells].max() + low_hold) if (below & sells).any() else -math.inf
    buy_edge = 0.5 * (ratio_grid[above & buys].min() + high_hold) if (above & buys).any() else math.inf
    return float(sell_edge), float(buy_edge)


def _validate_merton(act, model, *, n_paths, seed, reference, years=20.0, action_mode="discrete", trade_step=0.05,
                     ratio_grid=None):
    from pdecore.merton import solve_merton_costs
    from validation.backtest_merton import backtest_merton

    result = reference if reference is not None else solve_merton_costs(model)
    pde_band = tuple(float(v) for v in result.band(0.0))
    band = implied_band(act, model, action_mode=action_mode, ratio_grid=ratio_grid)
    out: dict[str, Any] = {"problem": "merton", "implied_band": list(band), "pde_band": list(pde_band),
                           "band_error": [band[0] - pde_band[0], band[1] - pde_band[1]]}
    if math.isfinite(band[0]) and math.isfinite(band[1]):
        report = backtest_merton(model, years=years, paths=n_paths, seed=seed, band=pde_band, extra_bands=[band])
        outcomes = report.outcomes
        mine, pde = outcomes["band_0"], outcomes["omniscient"]
        out.update({"log_return_mean": mine.mean, "log_return_se": mine.se, "pde_band_log_return_mean": pde.mean,
                    "pde_band_log_return_se": pde.se, "buy_and_hold_log_return_mean": outcomes["buy_and_hold"].mean,
                    "merton_reference": report.merton_reference, "bankrupt_share": mine.bankrupt_share})
        if mine.mean is not None and pde.mean is not None:
            diff = mine.log_return - pde.log_return  # common random numbers: the paired difference
            out["log_return_diff_vs_pde"] = float(diff.mean())
            out["log_return_diff_se"] = float(diff.std(ddof=1) / math.sqrt(diff.size))
    else:
        out["log_return_mean"] = None  # an unbounded band never sells or never buys: no band to backtest
    out.update({"years": years, "paths": n_paths, "seed": seed})
    return out


# ====================================================================== figures
def plot_validation(result: dict, *, ax=None):
    """One figure of a :func:`validate_policy` result: per-date accuracy (stopping), the P&L of every
    policy with its s.e. (market making) or the implied band against the PDE band (Merton)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    kind = result["problem"]
    if kind == "stopping":
        dates = np.arange(len(result["accuracy_vi"]))
        ax.plot(dates, result["accuracy_vi"], label="vs PDE boundary")
        if "accuracy" in result:
            ax.plot(dates, result["accuracy"], "--", label="vs discrete oracle")
        ax.set_xlabel("date l")
        ax.set_ylabel("decision accuracy")
        ax.legend()
    elif kind == "market_making":
        table = {k: v for k, v in result["table"].items() if not k.startswith("_")}
        names = list(table)
        ax.bar(names, [table[n]["pnl_mean"] for n in names], yerr=[table[n]["pnl_stderr"] for n in names])
        ax.set_ylabel("P&L (common random numbers)")
    else:
        for edges, label, style in ((result["pde_band"], "PDE band", "-"), (result["implied_band"], "policy", "--")):
            for edge in edges:
                if math.isfinite(edge):
                    ax.axvline(edge, linestyle=style, label=label)
                    label = None
        ax.set_xlabel("ratio x = B/S")
        ax.legend()
    return ax
