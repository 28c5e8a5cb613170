"""Reproduce stage: RL for optimal stopping (martingale loss and TD(0)) against the PDE (SPEC section 3).

An agent that does not know σ learns to exercise the American put of SPEC (``S_0 = K = 40, r = 0.06,
σ = 0.4, T = 1``) on ``L = 50`` dates with ``κ = 10, λ = 1`` (paper Table 1), learning the early-exercise
premium with σ fitted by the European martingale loss. The stage trains the offline ML learner (and,
in full mode, the online TD(0) learner), evaluates them on fresh test paths against
:func:`pdecore.solve_american` (price, boundary, exploratory value) and the discrete oracle
:func:`pdecore.stopping_oracle` (the floors a perfect learner reaches), and draws the paper's
figures 1, 2, 3 and 8.

Quick mode: 300 ML steps, periodic evaluation on 2^13 paths, final evaluation on 2^16 paths (about a
minute on 2 cores). Full mode: 1000 ML steps and 5000 TD(0) steps (paper settings), 2^18 test paths.
"""

from __future__ import annotations

from validation.stages._types import StageContext, StageOutput

TITLE = "RL optimal stopping: martingale loss and TD(0) learners vs the PDE oracle"

#: Settings of the two modes (training steps per algorithm, evaluation paths during training, final test
#: paths). Module-level so that tests can shrink them.
#: Both at the paper's step size 0.01; TD(0) with the paper's plain SGD update (the config's "auto"
#: optimizer; see rl.stopping.config.StoppingConfig.optimizer for why not Adam).
QUICK = {"plan": {"ml": 1000}, "eval_paths": 2**13, "test_paths": 2**16, "learning_rates": {}}
FULL = {"plan": {"ml": 1000, "td0": 5000}, "eval_paths": 2**14, "test_paths": 2**18, "learning_rates": {}}


def _train(ctx: StageContext, algorithm: str, steps: int, eval_every: int, eval_paths: int, references,
           learning_rate: float):
    """Train one learner through :func:`validation.experiments.run` (the references solved once)."""
    from validation import experiments

    spec = {"kind": "stopping",
            "train": {"algorithm": algorithm, "seed": ctx.seed, "learning_rate": learning_rate, "steps": steps,
                      "eval_every": eval_every, "checkpoint_every": steps, "eval_at_start": True},
            "evaluate": {"eval_paths": eval_paths}}
    run_dir = ctx.out_dir / "runs" / f"stopping_{algorithm}"
    experiments.run(spec, out=run_dir, force=True, progress=ctx.progress, reference=references.stopping_reference)
    learner, _ = experiments.load_run(run_dir, reference=references.stopping_reference, kind="stopping")
    return learner, run_dir


def run(ctx: StageContext) -> StageOutput:
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from rl.trainer import reduce_allocation_overhead
    from validation.stopping import (PDEReferences, comparison_table, evaluate_learner, public_evaluation,
                                     read_metrics, write_figures)

    reduce_allocation_overhead()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    settings = QUICK if ctx.quick else FULL
    plan, eval_paths, test_paths = settings["plan"], settings["eval_paths"], settings["test_paths"]

    from rl.stopping.config import StoppingConfig

    learners, curves, evaluations = {}, {}, {}
    ctx.log("[stopping_rl] PDE references: VI, exploratory HJB, discrete oracle ...")
    references = PDEReferences.compute(StoppingConfig())
    for algorithm, steps in plan.items():
        ctx.log(f"[stopping_rl] training {algorithm} for {steps} steps ...")
        learner, run_dir = _train(ctx, algorithm, steps, eval_every=max(steps // 10 if ctx.quick else steps // 50, 10),
                                  eval_paths=eval_paths, references=references,
                                  learning_rate=settings.get("learning_rates", {}).get(algorithm, 0.01))
        learners[algorithm] = learner
        curves[f"{algorithm.upper()}"] = read_metrics(run_dir)
        evaluations[algorithm] = evaluate_learner(learner, test_paths=test_paths, references=references)

    figures = []
    for index, (algorithm, learner) in enumerate(learners.items()):
        written = write_figures(learner, evaluations[algorithm], references, ctx.out_dir / "figures",
                                curves=curves if index == 0 else None, prefix=f"stopping_{algorithm}_")
        figures += [f"figures/{path.name}" for path in written]

    metrics = {algorithm: {key: value for key, value in public_evaluation(ev).items()
                           if not isinstance(value, (list, dict))}
               for algorithm, ev in evaluations.items()}
    metrics["settings"] = {"steps": plan, "test_paths": test_paths, "eval_paths": eval_paths, "seed": ctx.seed}
    lines = [
        "Agent: premium formulation, σ learned from 0.8 by the European martingale loss; paper Table 1 "
        f"(L = 50, κ = 10, λ = 1, lr 0.01, batch 1024; TD(0) lr {settings.get('learning_rates', {}).get('td0', 0.01)} "
        "with plain SGD as in the paper's Algorithm 2); "
        f"training steps: {', '.join(f'{a.upper()} {n}' for a, n in plan.items())}; {test_paths:,} test paths "
        "(plain Monte Carlo as in the paper, and with the European payoff as control variate).",
        "",
    ]
    for algorithm, evaluation in evaluations.items():
        lines += [f"### {algorithm.upper()}", "", comparison_table(evaluation), ""]
    lines += [f"![premium curves]({figures[0]})", "", f"![decisions]({figures[1]})", ""]
    lines += [f"![{name}]({name})" for name in figures[2:4]]
    if ctx.quick:
        lines += ["", "_Quick mode: ML only (the paper's 1000 steps) on fewer test paths; TD(0)'s 5000 steps run "
                      "in `--full`._"]
    return StageOutput(title=TITLE, metrics=metrics, report="\n".join(lines), figures=figures)
