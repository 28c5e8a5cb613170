"""References, evaluation and figures of the Dynkin-game learners (issue 13; paper section 4.7, figure 7).

* :func:`build_reference` — what a run is judged against: the discrete oracle at the run's ``(κ, λ, L)``
  (:func:`pdecore.dynkin_oracle.dynkin_oracle`, the fixed point a perfect learner reaches, with the same
  insolvency floor as the learner) and the band of the variational inequality
  (:func:`pdecore.solve_merton_costs`, the continuous-time optimum).
* :func:`evaluate` (one run) and :func:`evaluate_bands` (many runs, one backtest) — the learned t = 0 band next to both, and the 20-year daily backtest of
  :mod:`validation.backtest_merton` (keep ``x`` inside the band by minimal trades paying θ) of the
  learned band, the oracle band and buy-and-hold on *common* stock paths, so that the difference of
  two bands' mean log returns carries only the noise of the paths where they trade differently
  (``mean_log_return_minus_oracle`` and its standard error).
* :func:`figure_boundaries` and :func:`figure_log_returns` — paper figure 7(a) (t = 0 sell and buy
  boundaries over training, with the oracle's and the VI's as lines) and 7(b) (the 20-year mean log
  return of the band learned at each evaluation, with the oracle band, the frictionless Merton growth
  and buy-and-hold), from the ``metrics.jsonl`` records of one or more runs.

Keys of :func:`evaluate` (issue 13): ``sell_boundary_t0``, ``buy_boundary_t0`` (learned),
``oracle_sell_boundary_t0``, ``oracle_buy_boundary_t0``, ``vi_sell_boundary_t0``, ``vi_buy_boundary_t0``,
``mean_log_return``, ``mean_log_return_stderr`` (learned band), ``oracle_mean_log_return``,
``buy_and_hold_mean_log_return``, plus ``sell_boundary_minus_oracle``, ``buy_boundary_minus_oracle`` and
``max_abs_boundary_error`` (the issue's 0.02 criterion; what a sweep aggregates to say which learner wins),
``mean_log_return_minus_oracle`` (+ ``_stderr``),
``oracle_mean_log_return_stderr``, ``buy_and_hold_bankrupt_share``, ``merton_growth`` (the
frictionless ``years·(r + (α − r)²/(2σ²))``) and the backtest settings.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from pdecore.checks import check_int, check_positive
from pdecore.dynkin_oracle import DynkinOracle, dynkin_oracle
from validation.backtest_merton import BandStrategy, _gbm_returns, run_strategies

__all__ = ["DynkinKind", "DynkinReference", "build_reference", "backtest_bands", "evaluate", "evaluate_bands",
           "band_strategy",
           "figure_boundaries", "figure_log_returns", "validate_run"]

BACKTEST_YEARS = 20.0
BACKTEST_PATHS = 10_000
BACKTEST_SEED = 20240601
STEPS_PER_YEAR = 252


@dataclass(frozen=True)
class DynkinReference:
    """The t = 0 bands a Dynkin run is compared with.

    Attributes
    ----------
    oracle_band : (float, float)
        Discrete oracle at the run's ``(κ, λ, L)`` and insolvency floor.
    vi_band : (float, float)
        Variational inequality (no penalty, no temperature, continuous time).
    oracle : DynkinOracle or None
    """

    oracle_band: tuple[float, float]
    vi_band: tuple[float, float]
    oracle: DynkinOracle | None = None


def build_reference(config, *, vi: bool = True, nodes_per_std: float = 16.0, n_std: float = 7.0) -> DynkinReference:
    """Discrete oracle at ``config``'s ``(κ, λ, L)`` and the VI band (``vi=False`` skips the PDE: NaN).

    ``config`` is a :class:`rl.dynkin.DynkinConfig` (market, game and insolvency margin are read from it);
    ``nodes_per_std`` and ``n_std`` are the oracle's grid (a spec's ``[numerics]``). The Dai–Dong baseline
    has no penalty factor; its runs are compared with the same oracle (the DSXZ scheme's, at the run's κ)
    and with the VI.
    """
    model = config.model()
    oracle = dynkin_oracle(model, n_steps=config.n_steps, penalty=config.penalty, temperature=config.temperature,
                           insolvency_margin=config.insolvency_margin, nodes_per_std=nodes_per_std, n_std=n_std)
    vi_band = (math.nan, math.nan)
    if vi:
        from pdecore.merton import solve_merton_costs

        vi_band = solve_merton_costs(model).band(0.0)
    return DynkinReference(oracle_band=oracle.band(0), vi_band=(float(vi_band[0]), float(vi_band[1])), oracle=oracle)


def band_strategy(name: str, sell: float, buy: float, cost: float) -> BandStrategy | None:
    """A :class:`BandStrategy` for a learned band, or None when it cannot be traded.

    NaN (no band) gives None. A missing edge (``−inf`` / ``+inf``) never trades on that side; the first
    purchase from cash goes to the buy edge, or to the sell edge when there is no buy edge. A sell edge at
    or below the insolvency ratio ``−(1−θ)`` cannot be traded back to and gives None.
    """
    if math.isnan(sell) or math.isnan(buy) or not sell <= buy:
        return None
    if math.isfinite(sell) and sell <= -(1.0 - cost):
        return None
    start = buy if math.isfinite(buy) else sell
    if not math.isfinite(start):
        return None
    return BandStrategy(name, sell, buy, initial_ratio=start)


def backtest_bands(model, bands: dict, *, years: float = BACKTEST_YEARS, paths: int = BACKTEST_PATHS,
                   seed: int = BACKTEST_SEED, steps_per_year: int = STEPS_PER_YEAR) -> dict:
    """Mean log return (and s.e.) of each band and of buy-and-hold on common daily GBM paths.

    Parameters
    ----------
    model : pdecore.MertonCosts
    bands : dict name -> (sell, buy)
        Bands that :func:`band_strategy` cannot trade map to NaN.

    Returns
    -------
    dict name -> StrategyOutcome (``"buy_and_hold"`` included) and ``"_paired"``: name -> per-path log
    returns, for paired differences.
    """
    years = check_positive("years", years, fix="pass a horizon in years such as 20")
    paths = check_int("paths", paths, minimum=2, fix="simulate at least 2 paths")
    steps_per_year = check_int("steps_per_year", steps_per_year, minimum=1)
    strategies = [BandStrategy("buy_and_hold", -math.inf, math.inf, initial_ratio=0.0)]
    for name, (sell, buy) in bands.items():
        strategy = band_strategy(name, float(sell), float(buy), model.cost)
        if strategy is not None:
            strategies.append(strategy)
    n_days = max(1, int(round(years * steps_per_year)))
    return run_strategies(_gbm_returns(model, n_days, paths, years / n_days, seed), strategies, rate=model.rate,
                          cost=model.cost, dt=years / n_days)


def _mean_se(outcome) -> tuple[float, float]:
    if outcome is None or outcome.mean is None:
        return math.nan, math.nan
    return outcome.mean, outcome.se


def evaluate(learner, reference: DynkinReference | None = None, *, years: float = BACKTEST_YEARS,
             paths: int = BACKTEST_PATHS, seed: int = BACKTEST_SEED, steps_per_year: int = STEPS_PER_YEAR,
             band: tuple[float, float] | None = None) -> dict:
    """The issue-13 evaluation of a Dynkin learner (module docstring lists the keys).

    Parameters
    ----------
    learner : rl.dynkin.DynkinLearner
        Its ``evaluate()`` gives the learned t = 0 band (ignored when ``band`` is given).
    reference : DynkinReference, optional
        Built by :func:`build_reference` when None.
    years, paths, seed, steps_per_year
        The backtest (default 20 years of 252 days, 10 000 paths).
    band : (float, float), optional
        Evaluate this band instead of the learner's (with ``learner`` still supplying the config).
    """
    config = learner.config
    reference = reference or build_reference(config)
    if band is None:
        learned = learner.evaluate()
        band = (learned["sell_boundary_t0"], learned["buy_boundary_t0"])
    return evaluate_bands(config, reference, {"learned": band}, years=years, paths=paths, seed=seed,
                          steps_per_year=steps_per_year)["learned"]


def evaluate_bands(config, reference: DynkinReference, bands: dict, *, years: float = BACKTEST_YEARS,
                   paths: int = BACKTEST_PATHS, seed: int = BACKTEST_SEED,
                   steps_per_year: int = STEPS_PER_YEAR) -> dict:
    """The :func:`evaluate` record of several learned bands from *one* common-path backtest.

    The backtest's cost is dominated by its 20·252 daily steps, not by the number of bands, so a
    stage or a sweep that judges many runs of one setting backtests them together (the paths, hence
    the oracle's and buy-and-hold's outcomes, are the same as in one :func:`evaluate` per band).

    Parameters
    ----------
    config : rl.dynkin.DynkinConfig
        The market (all bands share it).
    reference : DynkinReference
    bands : dict name -> (sell, buy)
        Learned t = 0 bands; the name ``"oracle"`` is reserved.

    Returns
    -------
    dict name -> evaluation mapping (the keys of :func:`evaluate`)
    """
    if "oracle" in bands:
        raise ValueError("band name 'oracle' is reserved for the reference band; rename that learned band")
    model = config.model()
    outcomes = backtest_bands(model, {**bands, "oracle": reference.oracle_band}, years=years, paths=paths,
                              seed=seed, steps_per_year=steps_per_year)
    oracle_mean, oracle_se = _mean_se(outcomes.get("oracle"))
    hold = outcomes["buy_and_hold"]
    out = {}
    for name, band in bands.items():
        learned_mean, learned_se = _mean_se(outcomes.get(name))
        difference, difference_se = math.nan, math.nan
        if name in outcomes and "oracle" in outcomes and learned_mean == learned_mean and oracle_mean == oracle_mean:
            paired = outcomes[name].log_return - outcomes["oracle"].log_return
            difference = float(paired.mean())
            difference_se = float(paired.std(ddof=1) / math.sqrt(paired.size))
        sell_error = float(band[0]) - float(reference.oracle_band[0])
        buy_error = float(band[1]) - float(reference.oracle_band[1])
        worst = max(abs(sell_error), abs(buy_error))  # NaN (no band) stays NaN; a missing edge gives inf
        out[name] = {
            "sell_boundary_t0": float(band[0]), "buy_boundary_t0": float(band[1]),
            "sell_boundary_minus_oracle": sell_error, "buy_boundary_minus_oracle": buy_error,
            "max_abs_boundary_error": worst if sell_error == sell_error and buy_error == buy_error else math.nan,
            "oracle_sell_boundary_t0": float(reference.oracle_band[0]),
            "oracle_buy_boundary_t0": float(reference.oracle_band[1]),
            "vi_sell_boundary_t0": float(reference.vi_band[0]), "vi_buy_boundary_t0": float(reference.vi_band[1]),
            "mean_log_return": learned_mean, "mean_log_return_stderr": learned_se,
            "oracle_mean_log_return": oracle_mean, "oracle_mean_log_return_stderr": oracle_se,
            "mean_log_return_minus_oracle": difference, "mean_log_return_minus_oracle_stderr": difference_se,
            "buy_and_hold_mean_log_return": _mean_se(hold)[0], "buy_and_hold_bankrupt_share": hold.bankrupt_share,
            "merton_growth": years * model.merton_growth_rate,
            "backtest_years": years, "backtest_paths": paths, "backtest_seed": seed, "steps_per_year": steps_per_year,
        }
    return out


# ---------------------------------------------------------------------------------------------- figures
def _curves(records_by_run: dict):
    """``{run: (steps, sell, buy)}`` from metrics.jsonl records (records without band keys are skipped;
    the trainer writes a missing edge, ±inf, as null: NaN here, a gap in the curves)."""
    out = {}
    for name, records in records_by_run.items():
        rows = [(r["step"], r.get("sell_boundary_t0"), r.get("buy_boundary_t0")) for r in records
                if "sell_boundary_t0" in r]
        if rows:
            steps, sell, buy = (np.array(v, dtype=float) for v in zip(*rows))
            out[name] = (steps, sell, buy)
    return out


def _band_statistics(curves: dict):
    """Mean and standard deviation over runs at the evaluation steps common to all runs."""
    steps = sorted(set.intersection(*(set(c[0].tolist()) for c in curves.values())))
    stacks = [np.stack([np.interp(steps, c[0], c[k]) for c in curves.values()]) for k in (1, 2)]
    return np.array(steps), stacks


def figure_boundaries(records_by_algorithm: dict, reference: DynkinReference, out=None, ax=None, *,
                      tolerance: float | None = None):
    """Paper figure 7(a): t = 0 sell and buy boundaries over training (mean ± 2 s.d. over runs).

    Parameters
    ----------
    records_by_algorithm : dict label -> list of runs, each a list of metrics.jsonl records
    reference : DynkinReference
        Drawn as horizontal lines (oracle solid, VI dotted).
    out : path, optional
        Save the figure there.
    tolerance : float, optional
        Shade ``oracle ± tolerance`` around both oracle boundaries (the issue-13 acceptance is 0.02).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    if tolerance is not None:
        for value in reference.oracle_band:
            if math.isfinite(value):
                ax.axhspan(value - tolerance, value + tolerance, color="grey", alpha=0.15, linewidth=0)
        ax.fill_between([], [], color="grey", alpha=0.15, label=f"oracle ± {tolerance:g}")
    for label, runs in records_by_algorithm.items():
        curves = _curves({i: r for i, r in enumerate(runs)})
        if not curves:
            continue
        steps, (sell, buy) = _band_statistics(curves)
        for values, side in ((sell, "sell"), (buy, "buy")):
            finite = np.where(np.isfinite(values), values, np.nan)
            with warnings.catch_warnings():  # a step where every run lacks this edge is a gap, not an error
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(finite, axis=0), np.nanstd(finite, axis=0)
            line, = ax.plot(steps, mean, label=f"{label}: {side}")
            ax.fill_between(steps, mean - 2 * std, mean + 2 * std, color=line.get_color(), alpha=0.2)
    for value, style, name in ((reference.oracle_band[0], "-", "oracle"), (reference.oracle_band[1], "-", "oracle"),
                               (reference.vi_band[0], ":", "VI"), (reference.vi_band[1], ":", "VI")):
        if math.isfinite(value):
            ax.axhline(value, color="black", linestyle=style, linewidth=0.9)
    ax.plot([], [], color="black", label="discrete oracle")
    ax.plot([], [], color="black", linestyle=":", label="variational inequality")
    ax.set_xlabel("training step (parameter updates)")
    ax.set_ylabel("t = 0 boundary: bond/stock ratio x = B/S (dimensionless)")
    ax.set_title("Free boundaries at the initial time (paper figure 7(a))")
    ax.legend(fontsize=8)
    if out is not None:
        ax.figure.savefig(out, dpi=150, bbox_inches="tight")
    return ax


def figure_log_returns(records_by_algorithm: dict, config, reference: DynkinReference, out=None, ax=None, *,
                       years: float = BACKTEST_YEARS, paths: int = 2000, seed: int = BACKTEST_SEED,
                       steps_per_year: int = STEPS_PER_YEAR):
    """Paper figure 7(b): 20-year mean log return of the band learned at each evaluation step.

    Every recorded band is backtested on the same ``paths`` daily paths (common random numbers), with the
    oracle band, buy-and-hold and the frictionless Merton growth as lines. Bands that cannot be traded
    (no band yet) are left out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    model = config.model()
    bands = {"oracle": reference.oracle_band}
    keys = {}
    for label, runs in records_by_algorithm.items():
        for i, run in enumerate(runs):
            for step, sell, buy in zip(*_curves({0: run}).get(0, ((), (), ()))):
                name = f"{label}|{i}|{int(step)}"
                bands[name] = (sell, buy)
                keys[name] = (label, i, int(step))
    outcomes = backtest_bands(model, bands, years=years, paths=paths, seed=seed, steps_per_year=steps_per_year)
    # learners that reach the same band overlap exactly: a line style and a marker each keep both visible
    styles = [dict(linestyle="-", marker="o", markersize=4), dict(linestyle="--", marker="s", markersize=4),
              dict(linestyle=":", marker="^", markersize=4)]
    for index, label in enumerate(records_by_algorithm):
        per_run = {}
        for name, (lab, i, step) in keys.items():
            if lab == label and name in outcomes and outcomes[name].mean is not None:
                per_run.setdefault(i, {})[step] = outcomes[name].mean
        if not per_run:
            continue
        steps = sorted(set.intersection(*(set(v) for v in per_run.values())))
        values = np.array([[run[s] for s in steps] for run in per_run.values()])
        mean, std = values.mean(axis=0), values.std(axis=0)
        line, = ax.plot(steps, mean, label=label, **styles[index % len(styles)])
        ax.fill_between(steps, mean - 2 * std, mean + 2 * std, color=line.get_color(), alpha=0.2)
    if "oracle" in outcomes and outcomes["oracle"].mean is not None:
        ax.axhline(outcomes["oracle"].mean, color="black", label="oracle band")
    ax.axhline(years * model.merton_growth_rate, color="grey", linestyle="--", label="frictionless Merton")
    hold = outcomes["buy_and_hold"].mean
    if hold is not None:
        ax.axhline(hold, color="grey", linestyle=":", label="buy and hold")
    ax.set_xlabel("training step (parameter updates)")
    ax.set_ylabel(f"mean log return log(W_T/W_0) over {years:g} years")
    ax.set_title(f"Log return (paper figure 7(b)); {paths} common daily paths")
    ax.legend(fontsize=8)
    if out is not None:
        ax.figure.savefig(out, dpi=150, bbox_inches="tight")
    return ax


# ------------------------------------------------------------------------------------------------ specs
#: Where each key of an experiment spec (``kind = "dynkin"``, tables [model] [numerics] [train] [evaluate])
#: goes: DynkinConfig fields, trainer settings, oracle numerics and backtest settings.
SPEC_MODEL_KEYS = ("drift", "rate", "volatility", "cost", "maturity")
SPEC_TRAINER_KEYS = ("steps", "eval_every", "checkpoint_every", "eval_at_start", "threads")
SPEC_NUMERICS_KEYS = ("nodes_per_std", "n_std")
SPEC_BACKTEST_KEYS = ("backtest_years", "backtest_paths", "backtest_seed", "steps_per_year")


def config_from_spec(spec: dict):
    """``(DynkinConfig, trainer settings, oracle numerics, backtest settings)`` from a spec mapping.

    ``[model]`` and ``[train]`` (less the trainer keys) and ``[evaluate]`` (less the backtest keys) are
    :class:`rl.dynkin.DynkinConfig` fields; ``device`` and ``compile`` are config fields too. Unknown keys
    are refused by the config (``TypeError`` turned into a ``ValueError`` naming them).
    """
    from dataclasses import fields

    from rl.dynkin.config import DynkinConfig

    if spec.get("kind", "dynkin") != "dynkin":
        raise ValueError(f"spec kind must be 'dynkin', got {spec.get('kind')!r}")
    unknown_tables = sorted(set(spec) - {"kind", "model", "numerics", "train", "evaluate"})
    if unknown_tables:
        raise ValueError(f"unknown spec tables {unknown_tables}; use [model], [numerics], [train], [evaluate]")
    model = dict(spec.get("model", {}))
    train = dict(spec.get("train", {}))
    evaluate_table = dict(spec.get("evaluate", {}))
    numerics = dict(spec.get("numerics", {}))
    trainer = {k: train.pop(k) for k in SPEC_TRAINER_KEYS if k in train}
    backtest = {k: evaluate_table.pop(k) for k in SPEC_BACKTEST_KEYS if k in evaluate_table}
    names = {f.name for f in fields(DynkinConfig)}
    for table, keys in (("model", model), ("train", train), ("evaluate", evaluate_table)):
        bad = sorted(set(keys) - names)
        if bad or (table == "model" and set(keys) - set(SPEC_MODEL_KEYS)):
            raise ValueError(f"unknown keys {bad or sorted(set(keys) - set(SPEC_MODEL_KEYS))} in [{table}] of a "
                             "dynkin spec; see examples/dynkin_paper.toml")
    bad = sorted(set(numerics) - set(SPEC_NUMERICS_KEYS))
    if bad:
        raise ValueError(f"unknown keys {bad} in [numerics] of a dynkin spec; use {list(SPEC_NUMERICS_KEYS)}")
    config = DynkinConfig(**model, **train, **evaluate_table)
    return config, trainer, numerics, backtest


# ---------------------------------------------------------------------------------------- experiment kind
class DynkinKind:
    """Experiment adapter (:mod:`validation.experiments`) of :class:`rl.dynkin.DynkinLearner`.

    ``[model]`` is the market and the cost (:data:`SPEC_MODEL_KEYS`), ``[numerics]`` the discrete
    oracle's grid (:data:`SPEC_NUMERICS_KEYS`), ``[train]`` the other :class:`rl.dynkin.DynkinConfig`
    fields and the trainer's settings, ``[evaluate]`` the band read-out (``eval_*``) and the 20-year
    backtest (:data:`SPEC_BACKTEST_KEYS`). The learner only reads simulated prices and θ; the oracle and
    the VI band are solved by :func:`build_reference` at evaluation, never handed to the learner.
    """

    name = "dynkin"
    EVALUATE_FIELDS = ("eval_paths", "eval_seed", "eval_grid")
    TRAINER_DEFAULTS = {"steps": 15000, "eval_every": 250, "checkpoint_every": 1000, "eval_at_start": True,
                        "device": "cpu", "threads": 1}
    NUMERICS_DEFAULTS = {"nodes_per_std": 16.0, "n_std": 7.0}
    BACKTEST_DEFAULTS = {"backtest_years": BACKTEST_YEARS, "backtest_paths": BACKTEST_PATHS,
                         "backtest_seed": BACKTEST_SEED, "steps_per_year": STEPS_PER_YEAR}

    def config_class(self):
        from rl.dynkin.config import DynkinConfig

        return DynkinConfig

    def schema(self) -> dict:
        from dataclasses import fields

        from validation.experiments import Key

        config_fields = {f.name: f.default for f in fields(self.config_class())}
        model = {name: Key.like(config_fields[name]) for name in SPEC_MODEL_KEYS}
        evaluate_table = {name: Key.like(config_fields[name]) for name in self.EVALUATE_FIELDS}
        evaluate_table.update({name: Key.like(value) for name, value in self.BACKTEST_DEFAULTS.items()})
        train = {name: Key.like(default) for name, default in config_fields.items()
                 if name not in model and name not in evaluate_table}
        train["algorithm"].choices = ("ml", "td0", "dai_dong")
        train.update({name: Key.like(default) for name, default in self.TRAINER_DEFAULTS.items()})
        numerics = {name: Key.like(value) for name, value in self.NUMERICS_DEFAULTS.items()}
        return {"model": model, "numerics": numerics, "train": train, "evaluate": evaluate_table}

    def config(self, spec: dict):
        from dataclasses import fields

        names = {f.name for f in fields(self.config_class())}
        values = {key: value for table in ("model", "train", "evaluate") for key, value in spec[table].items()
                  if key in names}
        return self.config_class()(**values)

    def resolve(self, spec: dict) -> None:
        """Validate by building the configuration (κΔt > 1, λ <= 0, θ >= 1 ... are refused by name)."""
        self.config(spec)
        for key in ("nodes_per_std", "n_std"):
            check_positive(key, spec["numerics"][key], fix=f"set [numerics] {key} > 0")
        check_positive("backtest_years", spec["evaluate"]["backtest_years"], fix="set [evaluate] backtest_years > 0")
        for key in ("backtest_paths", "steps_per_year"):
            check_int(key, spec["evaluate"][key], minimum=1, fix=f"set [evaluate] {key} >= 1")

    def build(self, spec: dict, *, reference=None):
        from rl.dynkin import DynkinLearner

        return DynkinLearner(self.config(spec), device=spec["train"]["device"])

    def owns_record(self, learner_record: dict) -> bool:
        return learner_record.get("learner") == "dynkin"

    def learner_from_record(self, record: dict, *, device: str = "cpu", reference="default"):
        from rl.dynkin import DynkinLearner

        values = {k: v for k, v in record["learner"].items() if k != "learner"}
        values["device"] = device
        return DynkinLearner(self.config_class().from_dict(values), device=device)

    def evaluate(self, learner, record: dict, *, years: float | None = None, paths: int | None = None,
                 seed: int | None = None, **unknown) -> dict:
        """:func:`evaluate` with the spec's oracle grid and backtest (options override the backtest)."""
        if unknown:
            raise ValueError(f"unknown evaluation option(s) {sorted(unknown)}; allowed: years, paths, seed")
        spec = record.get("spec", {})
        numerics = {**self.NUMERICS_DEFAULTS, **spec.get("numerics", {})}
        backtest = {**self.BACKTEST_DEFAULTS, **{k: v for k, v in spec.get("evaluate", {}).items()
                                                 if k in self.BACKTEST_DEFAULTS}}
        reference = build_reference(learner.config, **numerics)
        evaluation = evaluate(learner, reference,
                              years=backtest["backtest_years"] if years is None else years,
                              paths=backtest["backtest_paths"] if paths is None else paths,
                              seed=backtest["backtest_seed"] if seed is None else seed,
                              steps_per_year=backtest["steps_per_year"])
        evaluation["step"] = record["checkpoint_step"]
        evaluation["algorithm"] = learner.config.algorithm
        return evaluation


def validate_run(run_dir, out_dir, *, compare=(), years: float | None = None, paths: int | None = None) -> dict:
    """Paper figure 7 for a trained run (and more runs on the same axes): the t = 0 band over training
    (7a) and the 20-year mean log return of the band learned at each evaluation (7b), next to the
    oracle's and the VI's bands, plus the final evaluation as ``evaluation.json``.
    """
    from pathlib import Path

    from rl.runs import atomic_write_json, read_jsonl
    from validation.experiments import load_run

    learner, record = load_run(run_dir, kind="dynkin")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records: dict[str, list] = {}  # algorithm label -> runs (each its metrics.jsonl records)
    records.setdefault(learner.config.algorithm.upper(), []).append(read_jsonl(Path(run_dir) / "metrics.jsonl"))
    for other in compare:
        other_learner, _ = load_run(other, kind="dynkin")
        records.setdefault(other_learner.config.algorithm.upper(), []).append(read_jsonl(Path(other) / "metrics.jsonl"))
    kind = DynkinKind()
    evaluation = kind.evaluate(learner, record, years=years, paths=paths)
    reference = build_reference(learner.config, **{**kind.NUMERICS_DEFAULTS, **record.get("spec", {}).get("numerics", {})})
    figure_a, figure_b = out / "figure7a_boundaries.png", out / "figure7b_log_returns.png"
    figure_boundaries(records, reference, out=figure_a)
    figure_log_returns(records, learner.config, reference, out=figure_b,
                       **({"years": years} if years is not None else {}), **({"paths": paths} if paths is not None else {}))
    atomic_write_json(out / "evaluation.json", evaluation)
    return {"figures": [str(figure_a), str(figure_b)], "evaluation": evaluation}
