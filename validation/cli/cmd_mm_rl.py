"""``pderl train mm``, ``pderl evaluate mm`` and ``pderl validate mm``: the market-making learner.

Training is :func:`validation.experiments.run` on the spec of ``--config`` (a TOML file, kind
``"market_making"``): the schema of ``pderl solve mm`` (:mod:`validation.configs`) plus ``[train]``,
whose keys are the fields of :class:`rl.market_making.config.MMTrainConfig` (its ``total_steps`` is
``steps``) and the trainer's settings, and ``[evaluate]``::

    [train]
    steps = 600              # gradient steps
    eval_every = 100         # spread-error evaluation period (0 = end only; default steps // 10)
    checkpoint_every = 100   # checkpoint period (0 = end only; default steps // 10)
    hidden = 64              # ... any MMTrainConfig field (lr, batch_paths, n_steps, ...)

Unknown keys are refused by name. Each flag given (``--seed``, ``--steps``, ``--lr``, ``--device``,
``--threads``, ``--no-reference``) overrides one key; ``--resume`` without ``--config`` continues
the run with its recorded spec.
"""

from __future__ import annotations

from validation.cli.common import (add_json_flag, add_run_folder_arguments, check_input_text_file,
                                   check_output_folder, emit, finite_float,
                                   positive_int, seed_int, thread_count)

#: ``pderl train mm`` flag (argparse dest) → spec key; flags not given (``None``) leave the file's value.
FLAG_KEYS = {"seed": "train.seed", "steps": "train.steps", "lr": "train.lr", "device": "train.device",
             "threads": "train.threads"}


def overrides_from_flags(args) -> dict:
    """The spec overrides of the flags given on the command line."""
    overrides = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items() if getattr(args, dest) is not None}
    if args.no_reference:
        overrides["evaluate.reference"] = "none"
    return overrides


def _train(args) -> int:
    from validation import experiments

    if args.lr is not None and not 0 < args.lr <= 10:
        raise ValueError(f"--lr must lie in (0, 10] (Adam's step; larger only diverges), got {args.lr:g}")
    if args.config is not None:
        check_input_text_file("--config", args.config)
    if args.config is None and not args.resume:
        raise ValueError("--config FILE.toml is required (except with --resume, which reuses the run's spec); "
                         "see examples/mm_train_one_option.toml")
    summary = experiments.run(args.config, out=args.out, overrides=overrides_from_flags(args), resume=args.resume,
                              force=args.force, progress=not args.no_progress, kind="market_making")
    emit({"run_dir": str(summary["run_dir"]), "status": summary["status"], "step": summary["step"],
          "seconds": summary["seconds"], **summary["evaluation"]}, as_json=args.json)
    return 0


def _evaluate(args) -> int:
    import torch

    from validation import experiments

    torch.set_num_threads(max(1, args.threads))
    result = experiments.evaluate(args.run, kind="market_making", paths=args.paths, n_steps=args.n_steps,
                                  seed=args.seed)
    table = result.pop("table")
    if args.json:
        emit({**result, "table": table}, as_json=True)
    else:
        from validation.market_making import pnl_table_markdown

        emit({k: v for k, v in result.items()}, as_json=False)
        print(pnl_table_markdown(table))
    return 0


def _validate(args) -> int:
    import torch

    from validation.experiments import load_run
    from validation.market_making import validate_run

    check_output_folder("--out", args.out)
    torch.set_num_threads(max(1, args.threads))
    learner, _ = load_run(args.run, kind="market_making")
    result = validate_run(learner, args.out, n_paths=args.paths, n_steps=args.n_steps, seed=args.seed)
    emit({"out": str(args.out), "figures": result["figures"], "max_spread_error": result["max_spread_error"],
          "pnl_ratio_vs_grid": result["pnl_ratio_vs_grid"]}, as_json=args.json)
    return 0




def _add_simulation_arguments(p, *, paths: int | None) -> None:
    """The common-random-number simulation flags of ``evaluate mm`` (``None``: the run's ``[evaluate]``
    values, 4000 paths and seed 12345 unless its spec says otherwise) and ``validate mm``."""
    default_paths = "the run's [evaluate] paths, 4000" if paths is None else paths
    p.add_argument("--paths", type=positive_int, default=paths, help=f"simulated paths per policy (default "
                   f"{default_paths})")
    p.add_argument("--n-steps", type=positive_int, default=None, help="simulation steps (default 2·T·max A)")
    p.add_argument("--seed", type=seed_int, default=None if paths is None else 12345,
                   help="seed of the common random numbers (default 12345)")
    p.add_argument("--threads", type=thread_count, default=1, help="torch threads (default 1)")


def register(verbs) -> None:
    """Add the ``mm`` noun to ``train``, ``evaluate`` and ``validate``."""
    p = verbs["train"].add_parser(
        "mm", help="train the market-making learner (policy iteration, Fang & Xu Algorithm 1)",
        description="Train a value network by the continuous-time TD loss and its Gibbs spread policy on "
                    "simulated option market making; the config is the `pderl solve mm` TOML plus [train].")
    p.add_argument("--config", default=None, help="experiment spec, TOML ([model], [numerics], [train], "
                   "[evaluate]); required unless --resume")
    add_run_folder_arguments(p)
    p.add_argument("--seed", type=seed_int, default=None, help="override [train] seed")
    p.add_argument("--steps", type=positive_int, default=None, help="override [train] steps")
    p.add_argument("--lr", type=finite_float, default=None, help="override [train] lr (Adam learning rate)")
    p.add_argument("--device", default=None, help="override [train] device (default cpu)")
    p.add_argument("--threads", type=thread_count, default=None, help="override [train] threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-reference", action="store_true", help="do not solve the grid HJB for spread errors")
    add_json_flag(p)
    p.set_defaults(handler=_train)

    p = verbs["evaluate"].add_parser(
        "mm", help="evaluate a market-making run against the grid HJB on common random numbers",
        description="Spread errors (units of 1/k) against the grid policy and P&L of the learned, grid, "
                    "quadratic-approximation and constant-1/k policies on common random numbers.")
    p.add_argument("run", help="run folder of `pderl train mm`")
    _add_simulation_arguments(p, paths=None)
    add_json_flag(p)
    p.set_defaults(handler=_evaluate)

    p = verbs["validate"].add_parser(
        "mm", help="write validation figures and the P&L table of a market-making run",
        description="Learned vs grid spreads at t = 0 and 0.6 T, spreads over time at a long inventory, "
                    "inventory paths, the cross-inventory figure (n >= 2) and the P&L table.")
    p.add_argument("run", help="run folder of `pderl train mm`")
    p.add_argument("--out", required=True, help="output folder for figures and tables")
    _add_simulation_arguments(p, paths=2000)
    add_json_flag(p)
    p.set_defaults(handler=_validate)
