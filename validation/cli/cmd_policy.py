"""``pderl validate policy``: hold any policy against pderl's oracles (issue 16).

::

    pderl validate policy --problem examples/stopping_paper.toml --policy my_agents:greedy [--json]
    pderl validate policy --problem examples/mm_train_one_option.toml --policy my_agents:load_ppo() --paths 2000

``--policy module:attribute`` names a callable (observation array → action array, in the layout of the
problem's environment, :mod:`rl.envs`) or an object with Stable-Baselines3's ``predict``; a trailing
``()`` calls a zero-argument factory first (e.g. one that loads a saved agent). The numbers are those of
:func:`validation.policies.validate_policy`; ``--plot FILE`` also writes its figure.
"""

from __future__ import annotations

import sys


def _validate_policy(args) -> int:
    import torch

    from validation.cli.common import IMAGE_SUFFIXES, check_input_text_file, check_output_file, emit
    from validation.policies import load_policy, plot_validation, validate_policy

    problem = check_input_text_file("--problem", args.problem, suffixes=(".toml",))
    plot = None
    if args.plot is not None:
        plot = check_output_file("--plot", args.plot, suffixes=IMAGE_SUFFIXES, overwrite=args.overwrite)
    torch.set_num_threads(max(1, args.threads))
    if "" not in sys.path:
        sys.path.insert(0, "")  # a policy module in the current folder, as `python -m` would find it
    policy = load_policy(args.policy)
    options = {}
    if args.years is not None:
        options["years"] = args.years
    if args.action_mode is not None:
        options["action_mode"] = args.action_mode
    result = validate_policy(policy, problem, n_paths=args.paths, seed=args.seed, n_steps=args.n_steps, **options)
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = plot_validation(result)
        ax.figure.savefig(plot, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        result["plot"] = str(plot)
    if args.json:
        emit(result, as_json=True)
    else:
        emit({key: value for key, value in result.items() if not isinstance(value, (list, dict))}, as_json=False)
    return 0


def register(verbs) -> None:
    """Add the ``policy`` noun to ``validate``."""
    from validation.cli.common import positive_int, thread_count  # the CLI's one set of argparse types
    from validation.cli.common import add_json_flag, add_overwrite_flag

    p = verbs["validate"].add_parser(
        "policy", help="validate any policy (callable or SB3 agent) against the PDE / grid oracles",
        description="Run a policy written against the pderl/ Gymnasium environments through pderl's own "
                    "evaluation: stopping (prices on common random numbers, per-date accuracy vs the PDE "
                    "boundary and the oracle), market making (spread error in units of 1/k vs the grid HJB, "
                    "P&L vs the grid-optimal policy), Merton with costs (implied band vs the PDE band, "
                    "20-year log return).")
    p.add_argument("--problem", required=True, help="experiment spec TOML (kind stopping, market_making or dynkin)")
    p.add_argument("--policy", required=True, help="module:attribute of the policy (a trailing () calls a factory)")
    p.add_argument("--paths", type=positive_int, default=None,
                   help="test paths (default: the spec's; stopping 2^18, market making 4000, Merton 10000)")
    p.add_argument("--seed", type=int, default=None, help="seed of the common random numbers (default: the spec's)")
    p.add_argument("--n-steps", type=positive_int, default=None, help="market making: simulation steps")
    p.add_argument("--years", type=float, default=None, help="Merton: backtest horizon in years (default 20)")
    p.add_argument("--action-mode", choices=("discrete", "band"), default=None,
                   help="Merton: the policy's action layout (default discrete: sell/hold/buy)")
    p.add_argument("--threads", type=thread_count, default=1, help="torch threads (default 1)")
    p.add_argument("--plot", default=None, help="also write the validation figure to this image file")
    add_overwrite_flag(p)
    add_json_flag(p)
    p.set_defaults(handler=_validate_policy)
