"""Reproduce stage: RL for the Dynkin game of Merton's problem with costs (paper figure 7; issue 13).

An agent that sees simulated stock prices and the cost θ, not α or σ, learns the no-trade band of
Merton's log-utility problem with proportional costs as a randomized Dynkin game of two stoppers on
``L = 10`` dates with ``κ = 5, λ = 1e-2`` (SPEC default market ``α = 0.168, r = 0.008, σ = 0.3,
θ = 0.005, T = 1``; ``examples/dynkin_paper.toml``). The stage trains the DSXZ offline martingale-loss
learner (ML) and the Dai & Dong (2024) baseline through :func:`validation.experiments.run`, and judges
each final t = 0 band against

* the discrete oracle :func:`pdecore.dynkin_oracle.dynkin_oracle` at the run's ``(κ, λ, L)`` — the
  fixed point a perfect learner reaches, hence the acceptance target;
* the variational-inequality band :func:`pdecore.solve_merton_costs` (continuous time, no penalty);
* the 20-year daily backtest of :mod:`validation.backtest_merton` on common paths (learned band, oracle
  band, buy-and-hold), so the log-return gap to the oracle carries only the paths where they differ.

Acceptance (issue 13, at the paper setting, 15000 ML steps, seeds 0-2): every ML seed's t = 0 sell and
buy boundaries within **0.02** of the oracle's, and its mean 20-year log return within **0.05** of the
oracle band's. The flags are computed in both modes; only full mode is the acceptance setting.

Quick mode: 300 steps of each algorithm on one seed, band read on 2048 paths, backtest 1000 paths
(about half a minute on 2 loaded cores). Full mode: 15000 steps, seeds ``seed .. seed + 2`` (0-2 by
default), 10 000 backtest paths (the paper's setting; about 30 minutes on 2 cores for the six runs).

Outputs: ``figures/dynkin_figure7a_boundaries.png`` (t = 0 boundaries over training, mean ± 2 s.d. over
seeds, oracle solid and VI dotted), ``figures/dynkin_figure7b_log_returns.png`` (mean 20-year log return
of the band learned at each evaluation, with the oracle band, the frictionless Merton growth and
buy-and-hold), ``data/dynkin_bands.csv`` (the table of the report).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from validation.stages._types import StageContext, StageOutput

TITLE = "RL Dynkin game: Merton's no-trade band with costs, DSXZ vs Dai-Dong vs the discrete oracle (figure 7)"

#: The experiment spec every run starts from (the paper setting); the stage overrides only the keys below.
SPEC_FILE = Path(__file__).resolve().parents[2] / "examples" / "dynkin_paper.toml"

#: Issue-13 acceptance: t = 0 boundaries (ratio units x = B/S) and mean 20-year log return vs the oracle.
BOUNDARY_TOLERANCE = 0.02
LOG_RETURN_TOLERANCE = 0.05

#: Settings of the two modes. ``seeds`` is a count (seeds ctx.seed, ctx.seed + 1, ...). ``figure_paths``:
#: backtest paths per recorded band in figure 7(b). Module-level so that tests can shrink them.
QUICK = {"algorithms": ("ml", "dai_dong"), "seeds": 1, "steps": 300, "eval_every": 60, "eval_paths": 2048,
         "backtest_paths": 1000, "figure_paths": 200}
FULL = {"algorithms": ("ml", "dai_dong"), "seeds": 3, "steps": 15000, "eval_every": 250, "eval_paths": 16384,
        "backtest_paths": 10_000, "figure_paths": 2000}

LABELS = {"ml": "DSXZ ML", "td0": "DSXZ TD(0)", "dai_dong": "Dai-Dong"}
TABLE_KEYS = ("sell_boundary_t0", "buy_boundary_t0", "oracle_sell_boundary_t0", "oracle_buy_boundary_t0",
              "vi_sell_boundary_t0", "vi_buy_boundary_t0", "mean_log_return", "mean_log_return_stderr",
              "oracle_mean_log_return", "mean_log_return_minus_oracle", "mean_log_return_minus_oracle_stderr",
              "buy_and_hold_mean_log_return")


def _finite_or_none(value):
    """JSON-safe scalar: a missing band edge (±inf) or no band (NaN) becomes null."""
    value = float(value)
    return value if math.isfinite(value) else None


def _errors(evaluation: dict) -> tuple[float, float, float]:
    """``(|Δ sell|, |Δ buy|, |Δ log return|)`` against the oracle; inf when an edge or the band is missing."""
    def gap(a, b):
        d = abs(float(a) - float(b))
        return d if math.isfinite(d) else math.inf

    return (gap(evaluation["sell_boundary_t0"], evaluation["oracle_sell_boundary_t0"]),
            gap(evaluation["buy_boundary_t0"], evaluation["oracle_buy_boundary_t0"]),
            gap(evaluation["mean_log_return_minus_oracle"], 0.0))


def _train(ctx: StageContext, algorithm: str, seed: int, settings: dict):
    """One run through the experiment layer; returns ``(learner, run_dir)``."""
    from validation import experiments

    steps = settings["steps"]
    overrides = {"train.algorithm": algorithm, "train.seed": seed, "train.steps": steps,
                 "train.lr_decay_updates": steps, "train.eval_every": settings["eval_every"],
                 "train.checkpoint_every": steps, "train.threads": 1,
                 "evaluate.eval_paths": settings["eval_paths"]}
    run_dir = ctx.out_dir / "runs" / f"dynkin_{algorithm}_seed{seed}"
    # the spec's defaults are the paper setting too (checked equal to the file): an install without
    # examples/ still runs the stage
    spec = SPEC_FILE if SPEC_FILE.exists() else {"kind": "dynkin"}
    experiments.run(spec, out=run_dir, overrides=overrides, force=True, progress=ctx.progress, kind="dynkin")
    learner, _ = experiments.load_run(run_dir, kind="dynkin")
    return learner, run_dir


def _table(rows: list[dict]) -> str:
    header = ("| algorithm | seed | sell (learned / oracle / VI) | buy (learned / oracle / VI) | "
              "20-y log return learned ± s.e. | oracle band | learned − oracle ± s.e. | buy & hold |")
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {LABELS.get(r['algorithm'], r['algorithm'])} | {r['seed']} | "
            f"{r['sell_boundary_t0']:.4f} / {r['oracle_sell_boundary_t0']:.4f} / {r['vi_sell_boundary_t0']:.4f} | "
            f"{r['buy_boundary_t0']:.4f} / {r['oracle_buy_boundary_t0']:.4f} / {r['vi_buy_boundary_t0']:.4f} | "
            f"{r['mean_log_return']:.4f} ± {r['mean_log_return_stderr']:.4f} | {r['oracle_mean_log_return']:.4f} | "
            f"{r['mean_log_return_minus_oracle']:+.5f} ± {r['mean_log_return_minus_oracle_stderr']:.5f} | "
            f"{r['buy_and_hold_mean_log_return']:.4f} |")
    return "\n".join(lines)


def run(ctx: StageContext) -> StageOutput:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from rl.runs import read_jsonl
    from validation.dynkin import build_reference, evaluate_bands, figure_boundaries, figure_log_returns

    torch.set_num_threads(1)
    settings = QUICK if ctx.quick else FULL
    seeds = [ctx.seed + i for i in range(settings["seeds"])]
    bands, records, learners = {}, {}, {}
    reference = None
    for algorithm in settings["algorithms"]:
        for seed in seeds:
            ctx.log(f"[dynkin] training {algorithm} seed {seed} for {settings['steps']} steps ...")
            learner, run_dir = _train(ctx, algorithm, seed, settings)
            if reference is None:
                # one oracle and one VI for every run: all share the market, (κ, λ, L) and the floor
                ctx.log("[dynkin] discrete oracle and VI band ...")
                reference = build_reference(learner.config)
            learners[algorithm] = learner
            records.setdefault(LABELS.get(algorithm, algorithm), []).append(read_jsonl(run_dir / "metrics.jsonl"))
            learned = learner.evaluate()
            bands[(algorithm, seed)] = (learned["sell_boundary_t0"], learned["buy_boundary_t0"])

    # every final band on the same backtest paths, in one pass (its cost is the 5040 days, not the bands)
    ctx.log(f"[dynkin] backtest of {len(bands)} learned bands and the oracle band ...")
    evaluations = evaluate_bands(learners[settings["algorithms"][0]].config, reference,
                                 {f"{a}|{s}": band for (a, s), band in bands.items()}, paths=settings["backtest_paths"])
    rows = [{"algorithm": a, "seed": s, **{k: evaluations[f"{a}|{s}"][k] for k in TABLE_KEYS}} for a, s in bands]

    config = learners[settings["algorithms"][0]].config
    figure_a = ctx.figure_path("dynkin_figure7a_boundaries.png")
    figure_b = ctx.figure_path("dynkin_figure7b_log_returns.png")
    ax = figure_boundaries(records, reference, out=figure_a, tolerance=BOUNDARY_TOLERANCE)
    plt.close(ax.figure)
    ax = figure_log_returns(records, config, reference, out=figure_b, paths=settings["figure_paths"])
    plt.close(ax.figure)
    with ctx.data_path("dynkin_bands.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["algorithm", "seed", *TABLE_KEYS])
        writer.writeheader()
        writer.writerows(rows)

    metrics: dict = {key: _finite_or_none(rows[0][key]) for key in
                     ("oracle_sell_boundary_t0", "oracle_buy_boundary_t0", "vi_sell_boundary_t0", "vi_buy_boundary_t0",
                      "oracle_mean_log_return", "buy_and_hold_mean_log_return")}
    for algorithm in settings["algorithms"]:
        mine = [r for r in rows if r["algorithm"] == algorithm]
        errors = [_errors(r) for r in mine]
        metrics[algorithm] = {
            "max_sell_boundary_error": _finite_or_none(max(e[0] for e in errors)),
            "max_buy_boundary_error": _finite_or_none(max(e[1] for e in errors)),
            "max_boundary_error": _finite_or_none(max(max(e[:2]) for e in errors)),
            "max_log_return_gap": _finite_or_none(max(e[2] for e in errors)),
            "runs": {str(r["seed"]): {k: _finite_or_none(r[k]) for k in TABLE_KEYS} for r in mine},
        }
    ml_errors = [_errors(r) for r in rows if r["algorithm"] == "ml"]
    boundaries_pass = bool(ml_errors) and all(max(e[:2]) <= BOUNDARY_TOLERANCE for e in ml_errors)
    log_return_pass = bool(ml_errors) and all(e[2] <= LOG_RETURN_TOLERANCE for e in ml_errors)
    metrics["acceptance"] = {"boundary_tolerance": BOUNDARY_TOLERANCE, "log_return_tolerance": LOG_RETURN_TOLERANCE,
                             "boundaries_pass": boundaries_pass, "log_return_pass": log_return_pass,
                             "passed": boundaries_pass and log_return_pass, "paper_setting": not ctx.quick}
    metrics["settings"] = {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
                           "seeds": seeds, "n_steps": config.n_steps, "penalty": config.penalty,
                           "temperature": config.temperature, "learning_rate": config.learning_rate}

    verdict = "PASS" if metrics["acceptance"]["passed"] else "FAIL"
    if ctx.quick:
        verdict += " (quick mode, not the acceptance setting)"

    def show(value):
        return "none (no band)" if value is None else f"{value:.4f}"

    worst = metrics.get("ml", {})
    lines = [
        f"Market α = {config.drift}, r = {config.rate}, σ = {config.volatility}, θ = {config.cost}, T = {config.maturity}; "
        f"L = {config.n_steps}, κ = {config.penalty:g}, λ = {config.temperature:g}, lr {config.learning_rate:g} "
        f"(cosine decay), {settings['steps']} steps, seeds {seeds}; backtest {settings['backtest_paths']} paths of "
        "20 years, daily rebalancing, common random numbers. Boundaries are bond/stock ratios x = B/S.",
        "",
        _table(rows),
        "",
        f"**Acceptance (issue 13, ML; boundaries within {BOUNDARY_TOLERANCE}, log return within "
        f"{LOG_RETURN_TOLERANCE} of the oracle): {verdict}** — worst boundary error "
        f"{show(worst.get('max_boundary_error'))}, worst log-return gap {show(worst.get('max_log_return_gap'))} "
        f"over seeds {seeds}.",
        "",
        "![figure 7(a)](figures/dynkin_figure7a_boundaries.png)",
        "",
        "![figure 7(b)](figures/dynkin_figure7b_log_returns.png)",
    ]
    if ctx.quick:
        lines += ["", f"_Quick mode: {settings['steps']} steps on one seed; the acceptance is judged at the paper "
                      "setting (15000 steps, seeds 0-2: `pderl reproduce --full`)._"]
    return StageOutput(title=TITLE, metrics=metrics, report="\n".join(lines),
                       figures=["figures/dynkin_figure7a_boundaries.png", "figures/dynkin_figure7b_log_returns.png"])
