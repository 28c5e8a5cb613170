"""Validation of the market-making learner against the inventory-grid HJB (SPEC sections 5–6).

The learner (:mod:`rl.market_making`, Fang & Xu's policy iteration, their Algorithm 1) approximates
the value ``θ(t, q)`` of the exploratory market-making problem, whose exact solution on the inventory
grid ``q ∈ {−Q̄..Q̄}^n`` is the HJB of SPEC section 5,

.. math::

    θ_t − \\tfrac{φ}{2} qᵀΣΣᵀq + \\sum_i \\big[1\\{q_i<Q̄\\} H^b_i(θ(q+e_i) − θ(q))
    + 1\\{q_i>−Q̄\\} H^a_i(θ(q−e_i) − θ(q))\\big] = 0, \\qquad θ(T, q) = −\\sum_i c_i q_i^2,

solved by :func:`pdecore.solve_market_making` while ``(2Q̄+1)^n`` is small (:data:`MAX_GRID_STATES`),
else approximated by the quadratic ``θ ≈ −qᵀA(t)q − qᵀB(t) − C(t)`` of Bergault, Evangelista, Guéant &
Vieira (2021) (:func:`pdecore.quadratic_approximation`). Why both a spread comparison and a P&L one:
the spreads show *where* the learned policy differs from the optimal one, the P&L on common random
numbers shows what the difference costs.

What is compared, and how
-------------------------
* **Spreads**: the learned policy's mean spreads ``E_π[δ]`` against the grid's, per option, side,
  date and inventory, in units of ``1/k`` (:func:`rl.market_making.evaluation.spread_errors`;
  SPEC section 6).
* **P&L on common random numbers**: every policy is simulated by
  :class:`rl.market_making.simulator.MarketMakingSimulator` from generators with the same seed, so all see the
  same underlying, the same price shocks and the same order-flow uniforms. Reported per policy: mean
  and s.d. of the P&L ``X_T − ψ0 Σ(P_iT Q_iT)² − (φ/2)∫QᵀΣΣᵀQ``, the exploratory objective (P&L +
  γ·entropy, what the grid's θ(0, 0) is), mean ``|Q_T|``; and for every policy the paired
  difference to the reference policy with its standard error (common random numbers make it far
  smaller than the s.d. of either P&L).
* Policies: the learned Gibbs policy, the grid-optimal Gibbs policy (its θ table), the quadratic
  approximation of Bergault et al. (2021) (its θ's gains through the same Gibbs machinery) and
  constant ``1/k`` spreads.

Figures (each function takes ``ax=None`` and returns the Axes): learned vs grid spreads against
inventory at a date, spreads over time at a fixed long inventory, inventory paths (mean ± s.d.) and
the two-option cross-inventory figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["load_run", "grid_reference", "quadratic_policy", "grid_policy", "compare_policies",
           "evaluate_run", "plot_spreads_vs_inventory", "plot_spreads_over_time", "plot_inventory_paths",
           "plot_cross_inventory", "validate_run", "pnl_table_markdown", "MAX_GRID_STATES"]

#: Largest inventory grid solved as the reference (beyond it: the quadratic approximation).
MAX_GRID_STATES = 200_000


# ====================================================================== runs and references
def load_run(run_dir):
    """The trained learner of a market-making run folder, ready to evaluate (network in eval mode).

    A thin wrapper of :func:`validation.experiments.load_run` (one loader for every kind of run).
    """
    from validation.experiments import load_run as load_any_run

    return load_any_run(run_dir, kind="market_making")[0]


def grid_feasible(model) -> bool:
    """Whether the inventory grid is small enough to serve as the reference.

    The grid has ``(2Q̄+1)^n`` states, each carrying one ODE of the HJB, so time and memory grow
    exponentially in the number of options n (for scale: at :data:`MAX_GRID_STATES` = 2·10^5 states,
    θ saved at 200 times is 200 × 2·10^5 float64, 320 MB); beyond the limit the quadratic
    approximation is the reference (:func:`quadratic_policy`).
    """
    return (2 * model.max_inventory + 1) ** model.n_options <= MAX_GRID_STATES


def grid_reference(model, *, n_time: int | None = None):
    """The grid HJB solution of ``model`` (``None`` when the grid is too large, see :func:`grid_feasible`).

    Parameters
    ----------
    model : pdecore.MarketMakingModel
    n_time : int, optional
        Saved time intervals of θ (θ is linear in t between them); default 1000 for one option and
        200 for several, where each saved time holds ``(2Q̄+1)^n`` values.

    Returns
    -------
    pdecore.MarketMakingResult or None
    """
    import pdecore

    if not grid_feasible(model):
        return None
    if n_time is None:
        n_time = 1000 if model.n_options == 1 else 200
    return pdecore.solve_market_making(model, n_time=n_time)


def grid_policy(model, result, table, *, execution: str = "sample"):
    """The grid-optimal Gibbs policy from a :class:`pdecore.MarketMakingResult`.

    The policy quotes from the Gibbs density ``π(δ) ∝ exp(A e^{−kδ}(δ + Δ)/γ)`` on
    ``[δ_min, δ_max]`` (the argmax ``clip(1/k − Δ)`` at γ = 0) with the grid's exact gains
    ``Δ = θ(t, q ± e_i) − θ(t, q)`` (SPEC section 5): the optimal policy the learner is measured against.
    ``execution`` is ``"sample"`` (the exploratory policy) or ``"mean"`` (its mean spread).
    """
    from rl.market_making.policies import GridValuePolicy

    return GridValuePolicy(table, result.times, result.values, model.max_inventory, execution=execution)


def quadratic_policy(model, table, *, execution: str = "sample"):
    """The quadratic approximation's policy: its θ's gains through the Gibbs table (or the argmax).

    With ``θ ≈ −qᵀA(t)q − qᵀB(t) − C(t)`` (Bergault, Evangelista, Guéant & Vieira 2021; SPEC section 5)
    the exact discrete gains are ``θ(q + e_i) − θ(q) = −(2(Aq)_i + A_ii) − B_i`` (bid: a fill adds one
    lot) and ``θ(q − e_i) − θ(q) = 2(Aq)_i − A_ii + B_i`` (ask), which keep the lot-size term ``A_ii``
    as :func:`pdecore.quadratic_approximation` does. Why: it is the reference policy when the grid is
    infeasible, and a second benchmark beside the grid when it is not.
    """
    import torch

    import pdecore
    from rl.market_making.policies import DTYPE, DifferencePolicy

    approx = pdecore.quadratic_approximation(model)
    cache: dict[float, tuple] = {}

    def differences(t, state):
        if t not in cache:
            cache.clear()
            a = torch.as_tensor(approx.quadratic_matrix(t), dtype=DTYPE)
            b = torch.as_tensor(approx.linear_vector(t), dtype=DTYPE)
            cache[t] = (a, b)
        a, b = cache[t]
        slope = state.inventory @ a  # (Aq)_i, [M, n]
        diag = torch.diagonal(a)
        up = -(2.0 * slope + diag) - b
        down = 2.0 * slope - diag + b
        return torch.stack([up, down], dim=-1)

    return DifferencePolicy(table, differences, execution=execution)


def compare_policies(model, policies: dict, *, n_paths: int = 4000, n_steps: int | None = None, seed: int = 0,
                     reference: str | None = None, record: str | None = None) -> dict:
    """Simulate every policy on common random numbers; return per-policy statistics.

    Every policy is run by one :class:`rl.market_making.simulator.MarketMakingSimulator` from a fresh
    generator with the same ``seed``, so all policies see the same underlying, price shocks and
    order-flow uniforms. The paired difference ``P&L_policy − P&L_reference`` then has a standard
    error ``s.d.(difference)/√n_paths`` far below that of either P&L (the shared noise cancels), which
    is what makes a small gap between the learned and the optimal policy measurable.

    Parameters
    ----------
    model : MarketMakingModel
    policies : dict name -> policy
    n_paths, n_steps, seed : simulation settings (same generator seed for every policy)
    reference : str, optional
        Name of the policy the others are compared with (paired differences).
    record : str, optional
        Name of a policy whose inventory paths are kept (``result["paths"]``).

    Returns
    -------
    dict
        ``{name: {pnl_mean, pnl_std, pnl_stderr, objective_mean, objective_stderr,
        mean_abs_terminal_inventory, bound_step_share, [pnl_diff_vs_ref, pnl_diff_stderr, pnl_ratio]}}``
        plus ``"_paths"`` (times, inventory paths) when ``record`` is given.
    """
    import torch

    from rl.market_making.simulator import MarketMakingSimulator

    sim = MarketMakingSimulator(model, n_steps=n_steps)
    results = {}
    raw = {}
    for name, policy in policies.items():
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            res = sim.simulate(policy, n_paths, generator=gen, record=(name == record))
        raw[name] = res
        summary = res.summary()
        results[name] = {key: summary[key] for key in (
            "pnl_mean", "pnl_std", "pnl_stderr", "objective_mean", "objective_stderr", "spread_income_mean",
            "terminal_penalty_mean", "running_risk_mean", "mean_abs_terminal_inventory", "bound_step_share")}
    if reference is not None and reference in raw:
        ref = raw[reference]
        for name, res in raw.items():
            diff = res.pnl - ref.pnl
            results[name]["pnl_diff_vs_ref"] = float(diff.mean())
            results[name]["pnl_diff_stderr"] = float(diff.std()) / math.sqrt(n_paths)
            results[name]["pnl_ratio"] = float(res.pnl.mean() / ref.pnl.mean())
            odiff = res.objective - ref.objective
            results[name]["objective_diff_vs_ref"] = float(odiff.mean())
            results[name]["objective_diff_stderr"] = float(odiff.std()) / math.sqrt(n_paths)
    if record is not None and raw[record].inventory is not None:
        results["_paths"] = {"times": raw[record].times, "inventory": raw[record].inventory.numpy()}
    return results


def evaluate_run(learner, *, n_paths: int = 4000, n_steps: int | None = None, seed: int = 12345,
                 reference=None, include=("learned", "grid", "quadratic", "constant")) -> dict:
    """The numbers of ``pderl evaluate mm``: spread errors and P&L on common random numbers.

    The reference policy is the grid-optimal one when the grid is feasible, else the quadratic
    approximation (SPEC section 6: spread errors in units of ``1/k``, P&L mean and s.d. of each
    policy on common random numbers, :func:`compare_policies`).

    Parameters
    ----------
    learner : rl.market_making.learner.MarketMakingLearner
    n_paths, n_steps, seed : int
        Simulation settings shared by every policy (``n_steps`` default: the simulator's).
    reference : pdecore.MarketMakingResult, optional
        The grid solution (solved here when omitted and feasible).
    include : tuple of str
        Policies simulated beside the learned one: ``"grid"``, ``"quadratic"``, ``"constant"``
        (the myopic ``1/k`` spreads).

    Returns
    -------
    dict
        ``max_spread_error`` (units of 1/k, NaN without a grid) and the other spread errors of
        :func:`rl.market_making.evaluation.spread_errors`, ``pnl_mean``, ``pnl_std``, ``pnl_stderr``,
        ``pnl_ratio_vs_grid`` (vs the reference policy; key kept for the CLI contract),
        ``pnl_diff_vs_reference`` ± ``pnl_diff_stderr``, ``objective_mean``,
        ``objective_diff_vs_reference`` ± ``objective_diff_stderr``, ``reference`` (the reference
        policy's name), ``n_paths`` and the full ``table``.
    """
    from rl.market_making.evaluation import spread_errors
    from rl.market_making.policies import ConstantSpreadPolicy

    model = learner.model
    if reference is None:
        reference = grid_reference(model)
    policies = {"learned": learner.policy(execution="sample")}
    if reference is not None and "grid" in include:
        policies["grid"] = grid_policy(model, reference, learner.table)
    if "quadratic" in include:
        policies["quadratic"] = quadratic_policy(model, learner.table)
    if "constant" in include:
        policies["constant"] = ConstantSpreadPolicy.myopic(model)
    ref_name = "grid" if "grid" in policies else "quadratic"
    table = compare_policies(model, policies, n_paths=n_paths, n_steps=n_steps, seed=seed, reference=ref_name)
    out = {"max_spread_error": float("nan"), "reference": ref_name}
    if reference is not None:
        out.update(spread_errors(learner, reference))
    learned = table["learned"]
    out.update({"pnl_mean": learned["pnl_mean"], "pnl_std": learned["pnl_std"], "pnl_stderr": learned["pnl_stderr"],
                "pnl_ratio_vs_grid": learned["pnl_ratio"], "pnl_diff_vs_reference": learned["pnl_diff_vs_ref"],
                "pnl_diff_stderr": learned["pnl_diff_stderr"],
                "objective_mean": learned["objective_mean"],
                "objective_diff_vs_reference": learned["objective_diff_vs_ref"],
                "objective_diff_stderr": learned["objective_diff_stderr"],
                "n_paths": n_paths, "table": table})
    return out


def pnl_table_markdown(table: dict) -> str:
    """The P&L table as Markdown (mean, s.d., objective, mean |Q_T|, paired difference ± s.e.)."""
    lines = ["| policy | P&L mean | P&L s.d. | objective (P&L + γ·entropy) | mean abs(Q_T) "
             "| P&L − reference (± s.e.) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in table.items():
        if name.startswith("_"):
            continue
        diff = row.get("pnl_diff_vs_ref", float("nan"))
        err = row.get("pnl_diff_stderr", float("nan"))
        lines.append(f"| {name} | {row['pnl_mean']:.3f} | {row['pnl_std']:.3f} | {row['objective_mean']:.3f} | "
                     f"{row['mean_abs_terminal_inventory']:.2f} | {diff:+.3f} ± {err:.3f} |")
    return "\n".join(lines)


# ====================================================================== figures
def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def plot_spreads_vs_inventory(learner, reference, t: float, *, option: int = 0, half_width: int | None = None,
                              ax=None):
    """Learned (markers) vs grid (lines) mean bid/ask spreads of ``option`` against its inventory at t."""
    ax = _axes(ax)
    model = learner.model
    w = model.max_inventory // 2 if half_width is None else half_width
    q = np.zeros((2 * w + 1, model.n_options))
    q[:, option] = np.arange(-w, w + 1)
    bid, ask = learner.mean_spreads(t, q)
    ax.plot(q[:, option], bid[:, option], "o", ms=3, color="C0", label="learned bid")
    ax.plot(q[:, option], ask[:, option], "s", ms=3, color="C3", label="learned ask")
    if reference is not None:
        ax.plot(q[:, option], reference.bid_spread(t, q, option=option), "-", color="C0", label="grid bid")
        ax.plot(q[:, option], reference.ask_spread(t, q, option=option), "-", color="C3", label="grid ask")
    ax.set_xlabel(f"inventory of option {option} (lots)")
    ax.set_ylabel("mean spread (price units)")
    which = f"\noption {option}; the other options' inventories at 0" if model.n_options > 1 else ""
    ax.set_title(f"spreads vs inventory at t = {t:g} days{which}", fontsize=10 if which else None)
    ax.legend(fontsize=7)
    return ax


def plot_spreads_over_time(learner, reference, inventory: int, *, option: int = 0, n_points: int = 101, ax=None):
    """Learned vs grid mean spreads over [0, T) at a fixed (long) inventory of ``option``."""
    ax = _axes(ax)
    model = learner.model
    times = np.linspace(0.0, model.horizon, n_points)[:-1]
    q = np.zeros((1, model.n_options))
    q[0, option] = inventory
    learned = np.array([[s[0, option] for s in learner.mean_spreads(t, q)] for t in times])
    ax.plot(times, learned[:, 0], "o", ms=3, color="C0", label="learned bid")
    ax.plot(times, learned[:, 1], "s", ms=3, color="C3", label="learned ask")
    if reference is not None:
        grid_bid = [reference.bid_spread(t, q[0], option=option) for t in times]
        grid_ask = [reference.ask_spread(t, q[0], option=option) for t in times]
        ax.plot(times, grid_bid, "-", color="C0", label="grid bid")
        ax.plot(times, grid_ask, "-", color="C3", label="grid ask")
    ax.set_xlabel("time t (days)")
    ax.set_ylabel("mean spread (price units)")
    which = f"\nof option {option}; the other options' inventories at 0" if model.n_options > 1 else ""
    ax.set_title(f"spreads over time at a long inventory q = {inventory} lots{which}",
                 fontsize=10 if which else None)
    ax.legend(fontsize=7)
    return ax


def plot_inventory_paths(paths: dict, *, option: int = 0, label: str = "learned", ax=None):
    """Mean ± s.d. of the inventory of ``option`` over time, from ``compare_policies(..., record=...)``."""
    ax = _axes(ax)
    times, inventory = paths["times"], paths["inventory"][..., option]
    mean, sd = inventory.mean(axis=1), inventory.std(axis=1)
    ax.plot(times, mean, color="C0", label=f"{label}: mean")
    ax.fill_between(times, mean - sd, mean + sd, color="C0", alpha=0.25, label="± 1 s.d.")
    ax.set_xlabel("time t (days)")
    ax.set_ylabel(f"inventory of option {option} (lots)")
    ax.set_title(f"inventory paths ({inventory.shape[1]} paths)")
    ax.legend(fontsize=7)
    return ax


def plot_cross_inventory(learner, reference, *, t: float = 0.0, half_width: int | None = None, title: str = "",
                         ax=None):
    """Two options: both options' spreads as option 0's inventory varies (option 1 flat)."""
    ax = _axes(ax)
    model = learner.model
    if model.n_options < 2:
        raise ValueError("the cross-inventory figure needs at least two options")
    w = model.max_inventory // 2 if half_width is None else half_width
    q = np.zeros((2 * w + 1, model.n_options))
    q[:, 0] = np.arange(-w, w + 1)
    bid, ask = learner.mean_spreads(t, q)
    for j, color in ((0, "C0"), (1, "C2")):
        ax.plot(q[:, 0], bid[:, j], "o", ms=3, color=color, label=f"learned bid {j}")
        ax.plot(q[:, 0], ask[:, j], "s", ms=3, color=color, mfc="none", label=f"learned ask {j}")
        if reference is not None:
            ax.plot(q[:, 0], reference.bid_spread(t, q, option=j), "-", color=color, label=f"grid bid {j}")
            ax.plot(q[:, 0], reference.ask_spread(t, q, option=j), "--", color=color, label=f"grid ask {j}")
    ax.set_xlabel("inventory of option 0 (lots; option 1 flat)")
    ax.set_ylabel("mean spread (price units)")
    ax.set_title(title or f"cross-inventory effect at t = {t:g} days")
    ax.legend(fontsize=6, ncol=2)
    return ax


def cross_effect(learner, reference, *, t: float = 0.0, half_width: int | None = None) -> dict:
    """Slope of option 1's bid spread in option 0's inventory, learned and grid (least squares).

    SPEC section 5: with φ = 0 the n-option problem splits into independent single-option problems,
    so the grid slope is 0 and a learned non-zero slope is learning error; cross effects appear only
    with φ > 0 and correlated Σ. Returns ``learned_slope`` and, with a grid, ``grid_slope``.
    """
    model = learner.model
    w = model.max_inventory // 2 if half_width is None else half_width
    q = np.zeros((2 * w + 1, model.n_options))
    q[:, 0] = np.arange(-w, w + 1)
    bid, _ = learner.mean_spreads(t, q)
    out = {"learned_slope": float(np.polyfit(q[:, 0], bid[:, 1], 1)[0])}
    if reference is not None:
        out["grid_slope"] = float(np.polyfit(q[:, 0], reference.bid_spread(t, q, option=1), 1)[0])
    return out


def validate_run(learner, out_dir, *, n_paths: int = 2000, n_steps: int | None = None, seed: int = 12345,
                 reference=None) -> dict:
    """Write the figures and the P&L table of a trained learner into ``out_dir``; return the metrics.

    The paper's figures (section 5 of SPEC): spreads against inventory at t = 0 and t = 0.6 T, spreads
    over time at a fixed long inventory, inventory paths (mean ± s.d.), and for two or more options the
    cross-inventory figure with :func:`cross_effect`; plus ``mm_pnl_table.md`` and
    ``mm_validation.json``. Returns :func:`evaluate_run`'s dict with ``figures`` (file names),
    ``pnl_table_markdown`` and, for several options, ``cross_effect``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rl.runs import atomic_write_json, atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = learner.model
    if reference is None:
        reference = grid_reference(model)
    evaluation = evaluate_run(learner, n_paths=n_paths, n_steps=n_steps, seed=seed, reference=reference)
    figures = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, frac in zip(axes, (0.0, 0.6)):
        plot_spreads_vs_inventory(learner, reference, frac * model.horizon, ax=ax)
    fig.tight_layout()
    fig.savefig(out_dir / "mm_spreads_vs_inventory.png", dpi=110)
    figures.append("mm_spreads_vs_inventory.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_spreads_over_time(learner, reference, max(1, model.max_inventory // 5), ax=ax)
    fig.tight_layout()
    fig.savefig(out_dir / "mm_spreads_over_time.png", dpi=110)
    figures.append("mm_spreads_over_time.png")
    plt.close(fig)
    paths = compare_policies(model, {"learned": learner.policy(execution="sample")}, n_paths=min(n_paths, 500),
                             n_steps=n_steps, seed=seed, record="learned")["_paths"]
    fig, ax = plt.subplots(figsize=(6, 4))
    plot_inventory_paths(paths, ax=ax)
    fig.tight_layout()
    fig.savefig(out_dir / "mm_inventory_paths.png", dpi=110)
    figures.append("mm_inventory_paths.png")
    plt.close(fig)
    if model.n_options >= 2:
        fig, ax = plt.subplots(figsize=(6, 4))
        plot_cross_inventory(learner, reference, ax=ax)
        fig.tight_layout()
        fig.savefig(out_dir / "mm_cross_inventory.png", dpi=110)
        figures.append("mm_cross_inventory.png")
        plt.close(fig)
        evaluation["cross_effect"] = cross_effect(learner, reference)
    table_md = pnl_table_markdown(evaluation["table"])
    atomic_write_text(out_dir / "mm_pnl_table.md", table_md + "\n")
    atomic_write_json(out_dir / "mm_validation.json", {k: v for k, v in evaluation.items()})
    evaluation["figures"] = figures
    evaluation["pnl_table_markdown"] = table_md
    return evaluation
