"""``pderl train|evaluate|validate dynkin``: RL for Merton's problem with costs as a Dynkin game.

::

    pderl train dynkin [--config FILE.toml] [--seed S] [--steps N] [--algo ml|td0|dai_dong]
                       [--penalty K] [--temperature L] [--lr A] --out RUN [--resume] [--force]
    pderl evaluate dynkin RUN [--years Y] [--paths M] [--seed S] [--json]
    pderl validate dynkin RUN --out DIR [--compare RUN ...]

The stopping paper's section 4.7 / appendix D (SPEC section 4): the no-trade band of Merton's problem
with proportional costs θ learned by two randomized stoppers (sell: ν = sigmoid(κ(ℓ − w)/λ), buy:
μ = sigmoid(κ(w − u)/λ)) from simulated prices, without α or σ. Training goes through
:func:`validation.experiments.run` (spec ``kind = "dynkin"``, :class:`validation.dynkin.DynkinKind`;
defaults: ``examples/dynkin_paper.toml``'s paper setting). ``evaluate`` prints the learned t = 0 band
(``sell_boundary_t0``, ``buy_boundary_t0``), the discrete oracle's at the run's (κ, λ, L)
(``oracle_*``), the VI band (``vi_*``) and the 20-year daily backtest of the learned band, the
oracle band and buy-and-hold on common paths (``mean_log_return`` ± ``mean_log_return_stderr``,
``oracle_mean_log_return``, ``buy_and_hold_mean_log_return``). ``validate`` writes paper figure 7.
"""

from __future__ import annotations

from validation.cli.common import (add_json_flag, add_run_folder_arguments, emit, finite_float, positive_int,
                                   seed_int, thread_count)

#: flag dest -> spec key (only flags given on the command line become overrides)
FLAG_KEYS = {"seed": "train.seed", "steps": "train.steps", "algo": "train.algorithm", "penalty": "train.penalty",
             "temperature": "train.temperature", "lr": "train.learning_rate", "n_steps": "train.n_steps",
             "batch": "train.batch_size", "device": "train.device", "threads": "train.threads"}

EVALUATE_KEYS = ("sell_boundary_t0", "buy_boundary_t0", "oracle_sell_boundary_t0", "oracle_buy_boundary_t0",
                 "vi_sell_boundary_t0", "vi_buy_boundary_t0", "mean_log_return", "mean_log_return_stderr",
                 "oracle_mean_log_return", "mean_log_return_minus_oracle", "mean_log_return_minus_oracle_stderr",
                 "buy_and_hold_mean_log_return", "merton_growth", "step")


def register(verbs) -> None:
    """Add the ``dynkin`` noun to ``train``, ``evaluate`` and ``validate``."""
    p = verbs["train"].add_parser(
        "dynkin", help="learn Merton's no-trade band with costs as a Dynkin game (paper section 4.7)",
        description="Train the two-player exploratory stopping learners (martingale loss, TD(0), Dai-Dong) on "
                    "simulated stock prices into a run folder; defaults: the paper setting of "
                    "examples/dynkin_paper.toml.")
    p.add_argument("--config", default=None, help="experiment spec TOML (kind = \"dynkin\"); default: the paper's")
    p.add_argument("--seed", type=seed_int, default=None, help="seed of paths and weights")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (paper: 15000)")
    p.add_argument("--algo", choices=("ml", "td0", "dai_dong"), default=None, help="learner (default ml)")
    p.add_argument("--penalty", type=finite_float, default=None, help="κ (κΔt <= 1; paper 5)")
    p.add_argument("--temperature", type=finite_float, default=None, help="λ (paper 1e-2, 1e-4, 1e-6)")
    p.add_argument("--lr", type=finite_float, default=None, help="learning rate (paper 0.1 ... 0.005)")
    p.add_argument("--n-steps", type=positive_int, default=None, help="decision dates L (paper 10)")
    p.add_argument("--batch", type=positive_int, default=None, help="paths per step (default 1024)")
    p.add_argument("--device", default=None, help="cpu (default) or cuda")
    p.add_argument("--threads", type=thread_count, default=None, help="torch CPU threads (default 1)")
    add_run_folder_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_flag(p)
    p.set_defaults(handler=_train)

    p = verbs["evaluate"].add_parser(
        "dynkin", help="the learned t = 0 band against the discrete oracle and the VI, and its 20-year backtest",
        description="Learned band vs the discrete oracle at the run's (κ, λ, L) and the VI band; 20-year daily "
                    "backtest of the learned band, the oracle band and buy-and-hold on common paths.")
    p.add_argument("run", help="run folder written by `pderl train dynkin`")
    p.add_argument("--years", type=finite_float, default=None, help="backtest horizon (default: the spec's, 20)")
    p.add_argument("--paths", type=positive_int, default=None, help="backtest paths (default: the spec's, 10000)")
    p.add_argument("--seed", type=seed_int, default=None, help="seed of the common backtest paths")
    add_json_flag(p)
    p.set_defaults(handler=_evaluate)

    p = verbs["validate"].add_parser(
        "dynkin", help="paper figure 7 for a Dynkin run: band over training and its 20-year log return",
        description="Figure 7(a) (t = 0 boundaries over training with the oracle's and VI's) and 7(b) (20-year "
                    "mean log return of the band learned at each evaluation) and evaluation.json.")
    p.add_argument("run", help="run folder written by `pderl train dynkin`")
    p.add_argument("--out", required=True, help="output folder for the figures")
    p.add_argument("--compare", nargs="*", default=(), metavar="RUN", help="more Dynkin runs on the same axes")
    p.add_argument("--years", type=finite_float, default=None, help="backtest horizon (default 20)")
    p.add_argument("--paths", type=positive_int, default=None, help="backtest paths")
    add_json_flag(p)
    p.set_defaults(handler=_validate)


def _train(args) -> int:
    from validation import experiments

    overrides = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items() if getattr(args, dest) is not None}
    spec = args.config
    if spec is None and not args.resume:
        spec = {"kind": "dynkin"}
    summary = experiments.run(spec, out=args.out, overrides=overrides, resume=args.resume, force=args.force,
                              progress=not args.no_progress, kind="dynkin")
    evaluation = summary.get("evaluation", {})
    payload = {"run": str(args.out), "status": summary["status"], "steps": summary["step"],
               "seconds": round(summary["seconds"], 3)}
    payload.update({key.split("/")[-1]: value for key, value in evaluation.items()
                    if key.endswith("boundary_t0")})
    payload["note"] = f"run `pderl evaluate dynkin {args.out}` for the oracle band and the 20-year backtest"
    emit(payload, as_json=args.json)
    return 0


def _evaluate(args) -> int:
    from validation import experiments

    evaluation = experiments.evaluate(args.run, kind="dynkin", years=args.years, paths=args.paths, seed=args.seed)
    emit(evaluation if args.json else {key: evaluation[key] for key in EVALUATE_KEYS if key in evaluation},
         as_json=args.json)
    return 0


def _validate(args) -> int:
    from validation.cli.common import check_output_folder
    from validation.dynkin import validate_run

    check_output_folder("--out", args.out)
    result = validate_run(args.run, args.out, compare=args.compare, years=args.years, paths=args.paths)
    emit({"out": str(args.out), "figures": result["figures"],
          **{key: result["evaluation"][key] for key in EVALUATE_KEYS if key in result["evaluation"]}},
         as_json=args.json)
    return 0
