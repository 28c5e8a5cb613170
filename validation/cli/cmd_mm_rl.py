"""``pderl train mm``, ``pderl evaluate mm`` and ``pderl validate mm``: the market-making learner.

The configuration is the TOML schema of ``pderl solve mm`` (:mod:`validation.configs`) plus a
``[train]`` table whose keys are the fields of :class:`rl.market_making.config.MMTrainConfig` and three
trainer keys::

    [train]
    total_steps = 600        # gradient steps
    eval_every = 100         # spread-error evaluation period (0 = end only)
    checkpoint_every = 100   # checkpoint period (0 = end only)
    hidden = 64              # ... any MMTrainConfig field (lr, batch_paths, n_steps, ...)

Unknown keys are refused by name. ``--seed`` overrides ``train.seed``.
"""

from __future__ import annotations

from validation.cli.common import add_json_flag, add_run_folder_arguments, emit

TRAINER_KEYS = ("eval_every", "checkpoint_every")


def load_train_config(path, *, seed: int | None = None):
    """``(model, numerics, MMTrainConfig, trainer_settings)`` from a TOML file (errors name the key)."""
    from rl.market_making.config import MMTrainConfig
    from validation.configs import load_mm_config

    config = load_mm_config(path, extra_tables=("train",))
    table = dict(config.extras.get("train", {}))
    trainer = {key: table.pop(key) for key in TRAINER_KEYS if key in table}
    for key, value in trainer.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"[train] {key} must be a non-negative integer, got {value!r}; pass e.g. {key} = 100")
    if seed is not None:
        table["seed"] = seed
    for key, value in table.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in (
                "lr", "lr_decay", "time_grading", "initial_inventory") and value < 0:
            raise ValueError(f"[train] {key} must be non-negative, got {value!r}")
    try:
        train = MMTrainConfig.from_mapping(table)
    except TypeError as exc:  # wrong value types surface as TypeError inside the validators
        raise ValueError(f"[train] has a value of the wrong type: {exc}") from None
    return config.model, config.numerics, train, trainer


def _train(args) -> int:
    import torch

    from rl.market_making.learner import MarketMakingLearner
    from rl.trainer import Trainer
    from validation.market_making import grid_feasible

    model, numerics, train, trainer_settings = load_train_config(args.config, seed=args.seed)
    torch.set_num_threads(max(1, args.threads))
    reference = None
    if grid_feasible(model) and numerics.get("method", "grid") == "grid" and not args.no_reference:
        import pdecore

        reference = pdecore.solve_market_making(model, n_time=max(200, int(numerics.get("n_time", 200))))
    learner = MarketMakingLearner(model, train, reference=reference)
    every = max(1, train.total_steps // 10)
    trainer = Trainer(learner, args.out, total_steps=train.total_steps,
                      eval_every=trainer_settings.get("eval_every", every),
                      checkpoint_every=trainer_settings.get("checkpoint_every", every), seed=train.seed,
                      device=args.device, progress=not args.no_progress, resume=args.resume, force=args.force,
                      extra_config={"command": "train mm", "config_file": str(args.config)})
    summary = trainer.fit()
    emit({"run_dir": str(summary["run_dir"]), "status": summary["status"], "step": summary["step"],
          "seconds": summary["seconds"], **summary["evaluation"]}, as_json=args.json)
    return 0


def _evaluate(args) -> int:
    import torch

    from validation.market_making import evaluate_run, load_run

    torch.set_num_threads(max(1, args.threads))
    learner = load_run(args.run)
    result = evaluate_run(learner, n_paths=args.paths, n_steps=args.n_steps, seed=args.seed)
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

    from validation.market_making import load_run, validate_run

    torch.set_num_threads(max(1, args.threads))
    learner = load_run(args.run)
    result = validate_run(learner, args.out, n_paths=args.paths, n_steps=args.n_steps, seed=args.seed)
    emit({"out": str(args.out), "figures": result["figures"], "max_spread_error": result["max_spread_error"],
          "pnl_ratio_vs_grid": result["pnl_ratio_vs_grid"]}, as_json=args.json)
    return 0


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonnegative_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _add_simulation_arguments(p, *, paths: int) -> None:
    """The common-random-number simulation flags of ``evaluate mm`` and ``validate mm``."""
    p.add_argument("--paths", type=_positive_int, default=paths, help=f"simulated paths per policy (default {paths})")
    p.add_argument("--n-steps", type=_positive_int, default=None, help="simulation steps (default 2·T·max A)")
    p.add_argument("--seed", type=_nonnegative_int, default=12345, help="seed of the common random numbers")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch threads (default 1)")


def register(verbs) -> None:
    """Add the ``mm`` noun to ``train``, ``evaluate`` and ``validate``."""
    p = verbs["train"].add_parser(
        "mm", help="train the market-making learner (policy iteration, Fang & Xu Algorithm 1)",
        description="Train a value network by the continuous-time TD loss and its Gibbs spread policy on "
                    "simulated option market making; the config is the `pderl solve mm` TOML plus [train].")
    p.add_argument("--config", required=True, help="TOML file ([model], [numerics], [train])")
    add_run_folder_arguments(p)
    p.add_argument("--seed", type=_nonnegative_int, default=None, help="override [train] seed")
    p.add_argument("--device", default="cpu", help="cpu (the learner is CPU-only for now)")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-reference", action="store_true", help="do not solve the grid HJB for spread errors")
    add_json_flag(p)
    p.set_defaults(handler=_train)

    p = verbs["evaluate"].add_parser(
        "mm", help="evaluate a market-making run against the grid HJB on common random numbers",
        description="Spread errors (units of 1/k) against the grid policy and P&L of the learned, grid, "
                    "quadratic-approximation and constant-1/k policies on common random numbers.")
    p.add_argument("run", help="run folder of `pderl train mm`")
    _add_simulation_arguments(p, paths=4000)
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
