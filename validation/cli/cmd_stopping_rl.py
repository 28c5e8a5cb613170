"""``pderl train|evaluate|validate stopping``: the RL stopping learners (SPEC section 3).

::

    pderl train stopping [--config SPEC.toml] [--algo ml|td0|dong] [--steps N] [--seed S] [--penalty 10]
                         [--temperature 1] [--lr 0.01] [--batch 1024] --out RUN [--resume] [--force]
                         [--device cpu|cuda] [--optimizer auto|adam|sgd] [--compile] [--threads N]
    pderl evaluate stopping RUN [--test-paths N] [--json]
    pderl validate stopping RUN --out DIR

Training is :func:`validation.experiments.run` on the spec of ``--config`` (default: the paper's
Table 1, written out in ``examples/stopping_paper.toml``) with one override per flag given (a flag
not given leaves the spec's value). It writes a run folder (``config.json`` with the resolved spec,
``metrics.jsonl``, ``checkpoint.pt``, ``summary.json``; see :mod:`rl.trainer`); ``--resume``
continues it from its checkpoint with the run's recorded spec, to its recorded total unless
``--steps`` raises it. Evaluation prints ``p_stopping``, ``p_control``,
``rel_error_stopping``, ``rel_error_control``, ``min_accuracy`` (the minimum over dates of the
share of test points where the learned decision equals the discrete oracle's, i.e. what a perfect
learner at the run's κ, λ, L would decide), ``min_accuracy_vi`` (the same against the continuous VI
boundary, the paper's reading, floored at about 95 % by the oracle itself at κ = 10, λ = 1; see
:func:`validation.stopping.evaluate_learner`), ``sigma_learned`` (and more with ``--json``).
Validation writes the paper's figures 1–3 and 8 and a comparison table.
"""

from __future__ import annotations

import argparse

from validation.cli.common import (add_json_flag, add_run_folder_arguments, check_input_text_file,
                                   check_output_folder, emit, finite_float, integer, nonnegative_int,
                                   positive_int, seed_int, thread_count)

#: Experiment kinds `pderl train|evaluate stopping` accepts: the 1-D put and the d-dimensional problems
#: (basket put, fBm; validation.high_dim_stopping), selected by the spec's ``kind``.
STOPPING_KINDS = ("stopping", "high_dim_stopping")

EVALUATE_KEYS = ("p_stopping", "p_control", "rel_error_stopping", "rel_error_control", "min_accuracy",
                 "min_accuracy_vi", "sigma_learned")


#: ``pderl train stopping`` flag (argparse dest) → spec key. Flags not given are ``None`` and leave
#: the spec (file or defaults, the paper's Table 1) alone.
FLAG_KEYS = {"algo": "train.algorithm", "formulation": "train.formulation", "steps": "train.steps",
             "seed": "train.seed", "penalty": "train.penalty", "temperature": "train.temperature",
             "lr": "train.learning_rate", "optimizer": "train.optimizer", "batch": "train.batch_size",
             "n_steps": "train.n_steps", "sigma_lr": "train.volatility_learning_rate",
             "initial_sigma": "train.initial_volatility", "sigma_warmup": "train.volatility_warmup",
             "output_init": "train.output_init", "scheme": "train.scheme", "eval_every": "train.eval_every",
             "eval_paths": "evaluate.eval_paths", "checkpoint_every": "train.checkpoint_every",
             "device": "train.device", "threads": "train.threads", "compile": "train.compile"}


def register(verbs) -> None:
    p = verbs["train"].add_parser(
        "stopping", help="train an RL agent to exercise an American option (martingale loss, TD(0), Dong)",
        description="Train the exploratory stopping learner of Dai, Sun, Xu & Zhou on simulated GBM paths "
                    "into a run folder. Settings: --config FILE.toml (schema: validation.experiments; "
                    "example: examples/stopping_paper.toml), else the paper's Table 1; each flag given "
                    "overrides one key.")
    p.add_argument("--config", default=None, help="experiment spec (TOML, kind = \"stopping\"); default: the "
                   "paper's Table 1")
    p.add_argument("--algo", default=None, help="ml (offline martingale loss), td0 (online TD(0)) or dong "
                                                "(Dong 2024 baseline); default ml")
    p.add_argument("--formulation", default=None, help="premium (learn the early-exercise premium, σ "
                                                       "learned; default) or price")
    p.add_argument("--steps", type=integer, default=None, help="training steps (default 1000; with --resume: "
                   "the recorded total)")
    p.add_argument("--seed", type=seed_int, default=None, help="seed of paths and initial weights (default 0)")
    p.add_argument("--penalty", type=finite_float, default=None, help="penalty factor κ (default 10; κT/L <= 1)")
    p.add_argument("--temperature", type=finite_float, default=None, help="temperature λ (default 1)")
    p.add_argument("--lr", type=finite_float, default=None, help="learning rate of the value networks (default 0.01)")
    p.add_argument("--optimizer", choices=["auto", "adam", "sgd"], default=None,
                   help="update rule of the value networks; auto: plain SGD for td0 (the paper's TD(0) update "
                        "θ += α δ ∇V), Adam for ml and dong (default auto)")
    p.add_argument("--batch", type=integer, default=None, help="paths per step (default 1024)")
    p.add_argument("--n-steps", type=positive_int, default=None, help="number of decision dates L (default 50)")
    p.add_argument("--sigma-lr", type=finite_float, default=None, help="learning rate of the volatility ϕ (default 0.01)")
    p.add_argument("--initial-sigma", type=finite_float, default=None, help="initial volatility guess ϕ (default 0.8)")
    p.add_argument("--known-sigma", action="store_true", help="give the agent the true σ instead of learning it")
    p.add_argument("--sigma-warmup", type=nonnegative_int, default=None,
                   help="initial steps that train only σ (default 100; 0 trains everything from the start)")
    p.add_argument("--output-init", default=None,
                   help="initial output shift: european (the agent's European price, default) or zero")
    p.add_argument("--scheme", default=None, help="path simulation: exact (default) or euler")
    p.add_argument("--eval-every", type=nonnegative_int, default=None, help="evaluate every N steps (default 10; 0: end only)")
    p.add_argument("--eval-paths", type=positive_int, default=None, help="test paths of the periodic evaluation (default 2^14)")
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=None, help="checkpoint every N steps (default 100)")
    add_run_folder_arguments(p)
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--threads", type=thread_count, default=None, help="torch CPU threads (default: torch's choice; on a "
                   "machine shared with other busy processes use 1: multi-threaded kernels then wait for a "
                   "descheduled thread at every op, measured 20 ms -> 100-900 ms per step)")
    p.add_argument("--compile", action="store_const", const=True, default=None,
                   help="torch.compile the training loss (about 2x faster steps after a one-off compilation "
                        "of 10-20 s; see rl.stopping.learner.StoppingLearner)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_flag(p)
    p.set_defaults(handler=_train)

    p = verbs["evaluate"].add_parser(
        "stopping", help="evaluate a trained stopping run on fresh test paths against the PDE",
        description="P_stopping, P_control, relative errors vs the American price, per-date accuracy vs the "
                    "PDE boundary, value errors vs the discrete oracle and the PDE.")
    p.add_argument("run", help="run folder written by `pderl train stopping`")
    p.add_argument("--test-paths", type=integer, default=None, help="number of test paths (default 2^18)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=thread_count, default=None,
                   help="torch CPU threads (default: the run's [train] threads, else torch's choice; with other "
                        "busy jobs on the machine use 1)")
    p.add_argument("--dual-paths", type=integer, default=0,
                   help="fBm runs: also the dual upper bound from the learned values on N outer paths (64 inner "
                        "draws each; e.g. 4096, about a minute); 0 (default): off")
    p.add_argument("--execution-substeps", type=integer, default=None,
                   help="basket runs: execute the learned rule on n_dates x M dates, the premium interpolated in "
                        "time between decision dates (default: the run's [evaluate] execution_substeps; 1 = the "
                        "paper's evaluation at the decision dates only)")
    p.add_argument("--continuity-correction", action=argparse.BooleanOptionalAction, default=None,
                   help="basket runs executed between decision dates: ask the premium at the state moved toward "
                        "continuation by the Broadie-Glasserman-Kou shift (default: the run's [evaluate] "
                        "continuity_correction; runs recorded before it existed: off)")
    p.add_argument("--antithetic", action=argparse.BooleanOptionalAction, default=None,
                   help="basket runs: test paths in antithetic pairs (standard errors over the pairs); default: "
                        "the run's [evaluate] antithetic_test_paths")
    add_json_flag(p)
    p.set_defaults(handler=_evaluate)

    p = verbs["validate"].add_parser(
        "stopping", help="write validation figures (paper figs 1-3, σ curve) and the comparison table",
        description="Figures reproducing the stopping paper's figures 1, 2, 3 and 8 for a trained run, and a "
                    "Markdown table against the paper's numbers and the discrete oracle's floors.")
    p.add_argument("run", help="run folder written by `pderl train stopping`")
    p.add_argument("--out", required=True, help="output folder for the figures")
    p.add_argument("--test-paths", type=integer, default=None, help="number of test paths (default 2^18)")
    p.add_argument("--compare", nargs="*", default=(), metavar="RUN",
                   help="more runs whose learning curves go on figure 3 (e.g. a TD(0) run)")
    add_json_flag(p)
    p.set_defaults(handler=_validate)


#: Refusal bounds of real training flags (a value past them is no training: float32 weights overflow or
#: the model leaves the parameter classes' range). ``--initial-sigma``: BlackScholes' volatility bound;
#: ``--penalty``/``--temperature``: solve_american's penalty bound 1e10 (λ enters the HJB as λ/κ beside κ);
#: learning rates: an Adam/SGD step of more than 10 on unit-scaled inputs only diverges.
REAL_FLAG_BOUNDS = {"penalty": ("--penalty", 1e10), "temperature": ("--temperature", 1e10),
                    "lr": ("--lr", 10.0), "sigma_lr": ("--sigma-lr", 10.0), "initial_sigma": ("--initial-sigma", 100.0)}

#: Optimistic evaluation throughput (path-dates per second on one core: one forward pass of a per-date
#: network of width 21 per path and date, vectorized over a chunk). Only evaluations that cannot finish
#: within ``PDERL_TIME_BUDGET`` at this rate are refused.
EVAL_PATH_DATES_PER_SECOND = 1e7


def check_stopping_sizes(spec: dict, *, test_paths: int | None = None, flag: str = "--test-paths") -> None:
    """Refuse, before any allocation, a 1-D stopping spec whose training batch exceeds the memory budget
    or whose evaluations cannot finish within the work budget (:mod:`pdecore.budget`); the message
    names the flag. (The deeper home of this check is rl.stopping's config/evaluation.)"""
    from pdecore.budget import check_memory, check_work
    from rl.stopping.config import training_bytes

    train, evaluate = spec.get("train", {}), spec.get("evaluate", {})
    n_dates = int(train.get("n_steps", 50))
    if test_paths is None:
        batch = int(train.get("batch_size", 1024))
        check_memory(f"--batch {batch} (batch_size) with --n-steps {n_dates} (L dates)",
                     training_bytes(batch, n_dates, int(train.get("hidden", 21)), int(train.get("n_hidden", 2))),
                     fix="pass a smaller --batch (the paper's is 1024)")
        eval_paths = int(evaluate.get("eval_paths", 2**14))
        check_work(f"--eval-paths {eval_paths} (eval_paths) with --n-steps {n_dates} (L dates)", float(eval_paths) * n_dates,
                   rate=EVAL_PATH_DATES_PER_SECOND, fix="pass a smaller --eval-paths (default 2^14)")
    else:
        check_work(f"{flag} {test_paths} (test_paths) with --n-steps {n_dates} (L dates)", float(test_paths) * n_dates,
                   rate=EVAL_PATH_DATES_PER_SECOND, fix=f"pass a smaller {flag} (default 2^18)")


def _check_real_flags(args) -> None:
    for dest, (flag, bound) in REAL_FLAG_BOUNDS.items():
        value = getattr(args, dest)
        if value is not None and abs(value) > bound:
            raise ValueError(f"{flag} {value:g} is past {bound:g}, where training is meaningless; pass a value "
                             f"of the usual scale (see `pderl train stopping --help`)")


def _check_positive_int(name: str, value) -> None:
    if value is not None and (not isinstance(value, int) or value <= 0):
        raise ValueError(f"{name} must be a positive integer, got {value!r}; pass e.g. {name} 1000")


def overrides_from_flags(args) -> dict:
    """The spec overrides of the flags given on the command line (``None``: not given)."""
    overrides = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items() if getattr(args, dest) is not None}
    if args.known_sigma:
        overrides["train.learn_volatility"] = False
    return overrides


def _spec_kind(spec) -> str | None:
    """The kind named by a spec file or mapping (``None``: none named), refused unless a stopping kind."""
    from validation.experiments import read_toml

    if spec is None:
        return None
    kind = (read_toml(spec) if not isinstance(spec, dict) else spec).get("kind", "stopping")
    if kind not in STOPPING_KINDS:
        raise ValueError(f"{spec!r} is a {kind!r} spec; `pderl train stopping` trains kind = "
                         f"{' or '.join(map(repr, STOPPING_KINDS))}")
    return kind


def _run_kind(run) -> str:
    """The kind recorded in a run folder's config.json, refused unless a stopping kind."""
    from pathlib import Path

    from rl.runs import read_json

    path = Path(run) / "config.json"
    kind = read_json(path, what="run configuration").get("spec", {}).get("kind", "stopping") if path.is_file() \
        else "stopping"
    if kind not in STOPPING_KINDS:
        raise ValueError(f"{str(run)!r} holds a {kind!r} run, not a stopping one; use `pderl evaluate` of its kind")
    return kind


def _check_test_paths(run, test_paths: int | None, kind: str) -> None:
    """``--test-paths`` against the work budget, with the run's recorded L (before loading anything)."""
    from pathlib import Path

    from rl.runs import read_json

    path = Path(run) / "config.json"
    if test_paths is None or kind != "stopping" or not path.is_file():
        return
    check_stopping_sizes(read_json(path, what="run configuration").get("spec", {}), test_paths=test_paths)


def _train(args) -> int:
    import sys
    import warnings

    from rl.stopping.config import ExerciseWarning
    from validation import experiments

    _check_positive_int("--steps", args.steps)
    _check_positive_int("--batch", args.batch)
    _check_positive_int("--threads", args.threads)
    _check_real_flags(args)
    if args.config is not None:
        check_input_text_file("--config", args.config)
    if args.algo is not None and args.algo not in ("ml", "td0", "dong"):
        raise ValueError(f"--algo must be one of ml, td0, dong, got {args.algo!r}")
    overrides = overrides_from_flags(args)
    spec = args.config
    if spec is None and not args.resume:
        spec = {"kind": "stopping"}  # the paper's Table 1: every key at its default
    kind = _spec_kind(spec) or (_run_kind(args.out) if args.resume else "stopping")
    if spec is not None:
        # validate once here so that the ½-rule warning is printed before training, as one line
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ExerciseWarning)
            spec = experiments.load_spec(spec, overrides, kind=kind)
        if kind == "stopping":
            check_stopping_sizes(spec)
        for warning in caught:
            print(f"pderl: warning: {warning.message}", file=sys.stderr)
        overrides = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExerciseWarning)
        summary = experiments.run(spec, out=args.out, overrides=overrides, resume=args.resume, force=args.force,
                                  progress=not args.no_progress, kind=kind)
    evaluation = summary.get("evaluation", {})
    payload = {"run": str(args.out), "status": summary["status"], "steps": summary["step"],
               "seconds": round(summary["seconds"], 3)}
    for key in ("p_stopping", "p_control", "rel_error_stopping", "rel_error_control", "min_accuracy",
                "min_accuracy_vi"):
        if f"eval/{key}" in evaluation:
            payload[key] = evaluation[f"eval/{key}"]
    payload["sigma_learned"] = evaluation.get("eval/volatility")
    settings = summary["spec"]["evaluate"]
    payload["note"] = (f"periodic evaluation on {settings['eval_paths']} paths; run `pderl evaluate stopping "
                       f"{args.out}` for the {settings['test_paths']}-path evaluation")
    emit(payload, as_json=args.json)
    return 0


def _evaluate(args) -> int:
    _check_positive_int("--test-paths", args.test_paths)
    from validation import experiments

    kind = _run_kind(args.run)
    _check_test_paths(args.run, args.test_paths, kind)
    options = {"test_paths": args.test_paths}
    if args.dual_paths:
        if args.dual_paths < 2:
            raise ValueError(f"--dual-paths must be 0 (off) or at least 2 outer paths, got {args.dual_paths}; "
                             "pass e.g. --dual-paths 4096")
        if kind != "high_dim_stopping":
            raise ValueError(f"--dual-paths is for fBm runs (pderl train stopping --config examples/fbm.toml); "
                             f"{args.run} is a {kind} run, whose evaluation compares with the PDE oracle instead")
        options["dual_paths"] = args.dual_paths
    for flag, key, value in (("--execution-substeps", "execution_substeps", args.execution_substeps),
                             ("--antithetic", "antithetic_test_paths", args.antithetic),
                             ("--continuity-correction", "continuity_correction", args.continuity_correction)):
        if value is None:
            continue
        if kind != "high_dim_stopping":
            raise ValueError(f"{flag} is for basket runs (pderl train stopping --config examples/basket_d40.toml); "
                             f"{args.run} is a {kind} run; drop the option")
        options[key] = value
    evaluation = experiments.evaluate(args.run, device=args.device, kind=kind, threads=args.threads, **options)
    if args.json:
        emit(evaluation, as_json=True)
    elif kind == "high_dim_stopping":
        emit({key: value for key, value in evaluation.items() if not isinstance(value, (dict, list))}, as_json=False)
    else:
        emit({key: evaluation[key] for key in (*EVALUATE_KEYS, "p_stopping_cv", "rel_error_stopping_cv",
                                               "value0", "oracle_value0", "value0_rel_error_oracle",
                                               "value_max_abs_error_oracle", "test_paths", "step")},
             as_json=False)
    return 0


def _validate(args) -> int:
    _check_positive_int("--test-paths", args.test_paths)
    from pathlib import Path

    from rl.runs import atomic_write_json, atomic_write_text
    from rl.trainer import reduce_allocation_overhead
    from validation.experiments import load_run
    from validation.stopping import (PDEReferences, comparison_table, evaluate_learner, public_evaluation,
                                     read_metrics, write_figures)

    check_output_folder("--out", args.out)
    _check_test_paths(args.run, args.test_paths, _run_kind(args.run))
    reduce_allocation_overhead()
    learner, record = load_run(args.run, kind="stopping")
    references = PDEReferences.compute(learner.config)
    evaluation = evaluate_learner(learner, test_paths=args.test_paths, references=references)
    curves = {f"{learner.config.algorithm.upper()} ({Path(args.run).name})": read_metrics(args.run)}
    for other in args.compare or ():
        other_learner, _ = load_run(other, reference=None, kind="stopping")
        curves[f"{other_learner.config.algorithm.upper()} ({Path(other).name})"] = read_metrics(other)
    out = Path(args.out)
    figures = write_figures(learner, evaluation, references, out, curves=curves)
    table = comparison_table(evaluation)
    atomic_write_text(out / "comparison.md", table + "\n")
    public = public_evaluation(evaluation)
    atomic_write_json(out / "evaluation.json", public)
    payload = {"figures": [str(f) for f in figures], "table": str(out / "comparison.md"),
               **{key: public[key] for key in EVALUATE_KEYS}}
    emit(payload, as_json=args.json, text=None if args.json else table + "\n\nfigures: " +
         ", ".join(str(f) for f in figures))
    return 0
