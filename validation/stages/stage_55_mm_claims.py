"""Reproduce stage: the market-making paper's claims, each shown or refuted on the grid HJB (SPEC section 5).

Puts the four claims of :mod:`validation.market_making_claims` in the report, each with its figure and a
status (``reproduced``, ``refuted: <reason>``, ``corrected: <reason>``): (a) flat spreads with ψ0 = 0
(figure 1), (b) "out-of-the-money options quote wider spreads" (refuted for common fill parameters,
made true by the shipped ``examples/mm_moneyness_intensities.toml``), (c) the inventory hump of figure 6
(zero mean by symmetry; the learned policy of stage 50's run beside the grid-optimal one when that run
is in the same output folder), (d) the direction of the quotes in figures 2–5 (SPEC's **[fix]**); and
the quadratic approximation's error against a grid whose bound no longer moves the compared quotes.

Quick mode (< 30 s on 2 cores): γ = 0 for the common-strike comparison, 400 paths × 100 steps for the
inventory paths, the φ = 0 quadratic check on the ATM option only. Full mode: γ = 0.1 everywhere, six
strikes, 2000 paths × 200 steps, both options of the φ = 0 case and the correlated two-option 2-D grid.
"""

from __future__ import annotations

from validation.stages._types import StageContext, StageOutput

TITLE = "Market making: the paper's claims, shown or refuted"

#: Settings of the two modes; module-level so that tests can shrink them.
QUICK = {"strikes": (90.0, 100.0, 110.0), "strike_temperature": 0.0, "strike_bound": 100,
         "paths": 400, "path_steps": 100, "direction_paths": 300,
         "quadratic": {"one_option_bounds": (20, 60, 80), "two_option_bounds": (), "phi0_options": (0,)}}
FULL = {"strikes": (90.0, 95.0, 100.0, 105.0, 110.0, 115.0), "strike_temperature": 0.1, "strike_bound": 100,
        "paths": 2000, "path_steps": 200, "direction_paths": 1000,
        "quadratic": {"one_option_bounds": (20, 40, 60, 80, 100, 150), "two_option_bounds": (20, 30, 40),
                      "phi0_options": (0, 1)}}

#: Run folder of stage 50's one-option learner (its learned policy joins claim (c) when present).
LEARNED_RUN = "mm_one_option"


def _learned(ctx: StageContext):
    """The one-option learner of stage 50 in this output folder, or None."""
    run_dir = ctx.out_dir / "runs" / LEARNED_RUN
    if not (run_dir / "config.json").exists():
        return None
    from validation.experiments import load_run

    try:
        return load_run(run_dir, kind="market_making")[0]
    except (ValueError, FileNotFoundError, KeyError) as error:  # an unreadable run: report without it
        ctx.log(f"[mm claims] stage 50's run not used ({error})")
        return None


def _plain(value):
    """Metrics for JSON: numbers and nested dicts; the figures' curves and paths (arrays) are dropped."""
    import numpy as np

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()
                if k not in ("curves", "bid_curve", "ask_curve") and not (isinstance(v, np.ndarray) and v.size > 8)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return None if value.size > 8 else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def run(ctx: StageContext) -> StageOutput:
    import torch

    from validation import market_making_claims as claims

    torch.set_num_threads(1)
    settings = QUICK if ctx.quick else FULL
    results = {}
    ctx.log("[mm claims] (a) flat spreads with ψ0 = 0 ...")
    results["flat"] = claims.claim_flat_spreads()
    ctx.log("[mm claims] (b) strikes and moneyness ...")
    results["strike"] = claims.claim_strike_independence(strikes=settings["strikes"],
                                                          temperature=settings["strike_temperature"],
                                                          max_inventory=settings["strike_bound"])
    learner = _learned(ctx)
    ctx.log("[mm claims] (c) inventory paths ...")
    results["paths"] = claims.claim_inventory_paths(
        n_paths=settings["paths"], n_steps=settings["path_steps"], seed=ctx.seed,
        max_inventory=100 if learner is None else learner.model.max_inventory, learner=learner)
    ctx.log("[mm claims] (d) direction of the quotes ...")
    results["direction"] = claims.claim_quote_direction(n_paths=settings["direction_paths"],
                                                        n_steps=settings["path_steps"], seed=ctx.seed)
    ctx.log("[mm claims] quadratic approximation against a converged grid ...")
    quadratic = claims.quadratic_error_converged(**settings["quadratic"])
    written = claims.plot_claims(results, ctx.out_dir / "figures")
    figures = [f"figures/{path.name}" for path in written]

    strike = results["strike"]
    paths = results["paths"]
    lines = ["Each claim of the paper's market-making section decided on the inventory-grid HJB "
             "(`validation/market_making_claims.py`; one call, SPEC's paper-like defaults in days unless said).",
             "", "| claim | status |", "|---|---|",
             f"| (a) figure 1: flat spreads with ψ0 = 0 | {results['flat']['status']} |",
             f"| (b) OTM options quote wider spreads | {strike['status']} |",
             f"| (b′) the same with vega-scaled k | {strike['corrected_status']} |",
             f"| (c) figure 6: inventory hump | {paths['status']} |",
             f"| (d) figures 2–5: direction of the quotes | {results['direction']['status']} |", ""]
    lines += [f"![{name}]({name})" for name in figures]
    learned_note = ("the learned policy of stage 50's run is drawn beside the grid's" if learner is not None else
                    "stage 50's learned run is not in this output folder, so only the grid-optimal band is drawn")
    lines += ["", f"Claim (c): {learned_note} (common random numbers).", ""]
    lines += ["Quadratic approximation (Bergault et al. 2021) against a converged grid: the grid's bound Q̄ is "
              "raised until its quotes on |q| ≤ 10 (t = 0) stop moving; units of 1/k.", "",
              "| case | Q̄ | quote move to next Q̄ | approximation error |", "|---|---|---|---|"]
    for name, case in quadratic.items():
        for i, bound in enumerate(case["bounds"]):
            move = f"{case['moves'][i]:.1e}" if i < len(case["moves"]) else "–"
            lines.append(f"| {name} | {bound} | {move} | {case['errors'][i]:.1e} |")
    lines.append("")
    for name, case in quadratic.items():
        converged = case["converged_bound"]
        lines.append(f"- {name}: error {case['error_smallest_bound']:.3f}/k against the Q̄ = {case['bounds'][0]} grid "
                     "(mostly the grid's truncation); "
                     + (f"{case['error_converged']:.1e}/k against the grid with Q̄ = {converged}, whose quotes moved "
                        f"by less than {case['settle']:g}/k from the previous bound"
                        if converged is not None else "no bound tried settled the quotes"))
    if ctx.quick:
        lines += ["", "_Quick mode: γ = 0 for the strike comparison, fewer paths, the φ = 0 quadratic check on "
                  "the ATM option only (full mode: γ = 0.1, both options and the correlated 2-D grid)._"]
    metrics = {name: _plain(value) for name, value in results.items()}
    metrics["quadratic_converged"] = _plain(quadratic)
    metrics["status"] = {"a_flat": results["flat"]["status"], "b_strike": strike["status"],
                         "b_moneyness": strike["corrected_status"], "c_inventory": paths["status"],
                         "d_direction": results["direction"]["status"]}
    metrics["settings"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()
                           if k != "quadratic"}
    return StageOutput(title=TITLE, metrics=metrics, report="\n".join(lines), figures=figures)
