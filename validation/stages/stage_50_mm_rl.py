"""Reproduce stage: RL market making (policy iteration, Fang & Xu Algorithm 1) vs the grid HJB (SPEC 5).

A market maker in one at-the-money call (SPEC's paper-like defaults, γ = 0.1) learns its quotes by
entropy-regularized policy iteration with a value network (:mod:`rl.market_making.learner`); the inventory-grid
HJB (:func:`pdecore.solve_market_making`) is the reference. The stage reports the learned spreads'
errors in units of 1/k at t = 0 and 0.6 T for ``|q| ≤ Q̄/2``, and the P&L of the learned, grid-optimal,
quadratic-approximation and constant-1/k policies on common random numbers, and draws the paper's
figures (spreads vs inventory at t = 0 and 0.6 T, spreads over time at a long inventory, inventory
paths).

Quick mode: ``Q̄ = 100`` (the bound is hit on well under 1% of path-steps), 150 policy-iteration steps
of the model-free network, P&L on 1000 paths × 1000 steps. Full mode: the same run with P&L on 4000
paths × 2000 steps, plus the two-option runs (strikes 100 and 105, correlation 0.6, 200 steps) with
φ = 0 and φ > 0 and their cross-inventory figures. Every run is a :mod:`validation.experiments` spec
(the model as a ``[model]`` table), so ``runs/*/config.json`` replays it with ``pderl train mm``.
"""

from __future__ import annotations

from validation.stages._types import StageContext, StageOutput

TITLE = "RL market making: policy iteration with a value network vs the inventory-grid HJB"

#: Settings of the two modes; module-level so that tests can shrink them. ``long_inventory``: the
#: inventory of the spreads-over-time figure; ``path_paths``: paths of the inventory-path figure.
QUICK = {"max_inventory": 100, "steps": 150, "reference_n_time": 1000, "pnl_paths": 1000, "pnl_steps": 1000,
         "long_inventory": 20, "path_paths": 300, "two_options": False}
FULL = {**QUICK, "pnl_paths": 4000, "pnl_steps": 2000, "two_options": True}


def _train(ctx: StageContext, name: str, model_table: dict, steps: int, reference):
    """Train one learner through :func:`validation.experiments.run` (the grid reference solved once)."""
    from validation import experiments

    spec = {"kind": "market_making", "model": model_table,
            "train": {"steps": steps, "seed": ctx.seed, "eval_every": max(1, steps // 6), "checkpoint_every": steps,
                      "eval_at_start": True}}
    run_dir = ctx.out_dir / "runs" / name
    summary = experiments.run(spec, out=run_dir, force=True, progress=ctx.progress, reference=reference)
    learner, _ = experiments.load_run(run_dir, kind="market_making")
    return learner, summary


def run(ctx: StageContext) -> StageOutput:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    import pdecore
    from validation.configs import build_model
    from validation.market_making import (compare_policies, cross_effect, evaluate_run, plot_cross_inventory,
                                             plot_inventory_paths, plot_spreads_over_time,
                                             plot_spreads_vs_inventory, pnl_table_markdown)

    torch.set_num_threads(1)
    settings = QUICK if ctx.quick else FULL
    qbar = settings["max_inventory"]
    model_table = {"preset": "paper", "n_options": 1, "max_inventory": qbar}
    model = build_model(model_table)
    ctx.log("[mm_rl] grid reference ...")
    reference = pdecore.solve_market_making(model, n_time=settings["reference_n_time"])
    steps = settings["steps"]
    ctx.log(f"[mm_rl] training one option for {steps} steps ...")
    learner, summary = _train(ctx, "mm_one_option", model_table, steps, reference)
    baseline = summary["spec"]["train"]["baseline"]
    n_paths, n_steps = settings["pnl_paths"], settings["pnl_steps"]
    ctx.log(f"[mm_rl] P&L on common random numbers ({n_paths} paths x {n_steps} steps) ...")
    evaluation = evaluate_run(learner, n_paths=n_paths, n_steps=n_steps, seed=ctx.seed + 777, reference=reference)

    figures = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, frac in zip(axes, (0.0, 0.6)):
        plot_spreads_vs_inventory(learner, reference, frac * model.horizon, ax=ax)
    figures.append(ctx.save_figure(fig, "mm_rl_spreads_vs_inventory.png", dpi=110))
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_spreads_over_time(learner, reference, settings["long_inventory"], ax=ax)
    figures.append(ctx.save_figure(fig, "mm_rl_spreads_over_time.png", dpi=110))
    paths = compare_policies(model, {"learned": learner.policy()}, n_paths=settings["path_paths"], n_steps=n_steps,
                             seed=ctx.seed + 1, record="learned")["_paths"]
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_inventory_paths(paths, ax=ax)
    figures.append(ctx.save_figure(fig, "mm_rl_inventory_paths.png", dpi=110))

    metrics = {key: evaluation[key] for key in (
        "max_spread_error", "max_spread_error_t0", "max_spread_error_t0.6", "pnl_mean", "pnl_std",
        "pnl_ratio_vs_grid",
        "pnl_diff_vs_reference", "pnl_diff_stderr", "objective_diff_vs_reference", "objective_diff_stderr")}
    metrics["training_seconds"] = summary["seconds"]
    metrics["value_baseline"] = baseline
    metrics["training_steps"] = steps
    metrics["bound_step_share_learned"] = evaluation["table"]["learned"]["bound_step_share"]
    lines = [
        f"One option, paper-like defaults (Q̄ = {qbar}, γ = 0.1), {steps} policy-iteration steps "
        f"({summary['seconds']:.0f} s).",
        "",
        _value_network_note(baseline),
        "",
        f"Learned vs grid mean spreads, |q| ≤ Q̄/2: max error {evaluation['max_spread_error_t0']:.4f}/k "
        "at t = 0 and "
        f"{evaluation['max_spread_error_t0.6']:.4f}/k at 0.6 T (acceptance 0.05/k).",
        "",
        f"P&L on common random numbers ({n_paths} paths, {n_steps} steps; reference: grid-optimal policy): "
        f"learned − grid = {evaluation['pnl_diff_vs_reference']:+.3f} ± {evaluation['pnl_diff_stderr']:.3f} "
        f"(ratio {evaluation['pnl_ratio_vs_grid']:.4f}; acceptance: within 1%).",
        "",
        pnl_table_markdown(evaluation["table"]),
        "",
        "![spreads vs inventory](figures/mm_rl_spreads_vs_inventory.png)",
        "![spreads over time](figures/mm_rl_spreads_over_time.png)",
        "![inventory paths](figures/mm_rl_inventory_paths.png)",
    ]

    if settings["two_options"]:
        for label, phi in (("phi0", 0.0), ("phi", 0.5)):
            table2 = {"preset": "paper", "n_options": 2, "max_inventory": 30, "risk_aversion": phi,
                      "noise_cov": [[0.0025, 0.0015], [0.0015, 0.0025]]}
            model2 = build_model(table2)
            reference2 = pdecore.solve_market_making(model2, n_time=400)
            learner2, _ = _train(ctx, f"mm_two_options_{label}", table2, 200, reference2)
            fig, ax = plt.subplots(figsize=(6, 4))
            plot_cross_inventory(learner2, reference2, title=f"two options, φ = {phi}", ax=ax)
            fig.tight_layout()
            name = f"mm_rl_cross_inventory_{label}.png"
            fig.savefig(ctx.figure_path(name), dpi=110)
            plt.close(fig)
            figures.append(f"figures/{name}")
            effect = cross_effect(learner2, reference2)
            metrics[f"cross_effect_{label}"] = effect
            lines += ["", f"Two options, φ = {phi}: slope of option 1's bid in option 0's inventory: learned "
                      f"{effect['learned_slope']:.5f}, grid {effect.get('grid_slope', float('nan')):.5f}.",
                      f"![cross inventory](figures/{name})"]
    else:
        lines += ["", "_Quick mode: the two-option cross-inventory runs are part of the full mode._"]
    return StageOutput(title=TITLE, metrics=metrics, report="\n".join(lines), figures=figures)


def _value_network_note(baseline: str) -> str:
    """Say where the value network starts from: a model-based warm start is disclosed, not hidden."""
    if baseline == "riccati":
        return ("Value network: the closed-form small-skew Riccati value (it uses the model's A, k, ψ0, φ, Σ) "
                "as a warm start, plus a learned correction; with it the spreads are already close before "
                "training, so this run shows the policy iteration keeps them there and measures the P&L. The "
                "model-free network (`baseline = \"learned\"`, neutral start) is an option of "
                "`rl.market_making.learner`; its measured accuracy is in that module's docstring.")
    if baseline == "learned":
        return ("Value network: model-free, from a neutral start (`baseline = \"learned\"`): the spreads "
                "start at the bounds, about 5/k from the grid's, and everything after that is learned from "
                "simulated paths (the reward's terminal and running-risk coefficients are the only other "
                "inputs).")
    return "Value network: no inventory baseline (`baseline = \"none\"`)."
