"""Benchmark of the inventory-grid market-making HJB (issue 4 acceptance: warm timings).

Targets: n = 1 with Q̄ = 50 and n = 2 with Q̄ = 30, 1000 time steps, in 0.5 s or less each; n = 3 with
Q̄ = 15 in 5 s or less. "1000 time steps" is measured as 1000 RK4 steps (``n_time=1000``,
``n_substeps=1``). An RK4 step costs the same whatever the horizon, but it is only *stable* when
``Δτ · R ≤ 1.39`` (R the largest exit rate, ≈ 113/day per option on the paper-like defaults), so the
fixed-work runs use the paper-like order flow with a horizon of 4 days (Δτ = 0.004 day). A second table
solves the full 10-day paper-like problem with ``n_time=1000`` saved dates and the automatic,
stability-checked number of substeps. States × steps per second is printed for every run, and the NumPy
twin's throughput on a small grid gives the speed-up of the kernel. The "cpu s" column is the process
CPU time of the timed call: on a machine shared with other jobs it approximates the idle wall time.

Run: ``python benchmarks/bench_market_making.py`` (``--repeat N`` for best-of-N, default 3).
"""

from __future__ import annotations

import argparse
import time


def _best_of(function, repeat):
    """Best wall time of ``repeat`` calls, and the CPU time of that call (a proxy for the wall time on
    an idle machine when other processes share the cores)."""
    best = (float("inf"), float("inf"))
    result = None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = function()
        elapsed = (time.perf_counter() - started, time.process_time() - started_cpu)
        best = min(best, elapsed)
    _best_of.cpu = best[1]
    return best[0], result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from pdecore import MarketMakingModel, solve_market_making
    from pdecore._reference.market_making import solve_reference

    print("== fixed work: 1000 RK4 steps (paper-like order flow, horizon 4 days) ==")
    print(f"{'case':<28}{'states':>9}{'steps':>7}{'seconds':>10}{'cpu s':>8}{'states*steps/s':>16}"
          f"{'target s':>10}  max dt*R")
    cases = [(1, 50, 0.0, 0.5), (2, 30, 0.0, 0.5), (3, 15, 0.0, 5.0),
             (1, 50, 0.1, None), (2, 30, 0.1, None), (3, 15, 0.1, None)]
    for n, qbar, temperature, target in cases:
        model = MarketMakingModel.paper_defaults(n, max_inventory=qbar, horizon=4.0, temperature=temperature)
        solve_market_making(model, n_time=10)  # compile / warm the caches
        seconds, result = _best_of(lambda: solve_market_making(model, n_time=1000, n_substeps=1), args.repeat)
        states = result.stats["n_states"]
        steps = result.stats["rk4_steps"]
        label = f"n={n} Q̄={qbar} γ={temperature:g}"
        verdict = "" if target is None else (f"{target:>10.1f}" + ("  ok" if seconds <= target else "  SLOW"))
        print(f"{label:<28}{states:>9}{steps:>7}{seconds:>10.3f}{_best_of.cpu:>8.3f}"
              f"{states * steps / seconds:>16.3e}{verdict:>14}  {result.diagnostics['max_rate_dt']:.2f}")

    print()
    print("== paper-like defaults, horizon 10 days, n_time = 1000, automatic substeps ==")
    print(f"{'case':<28}{'states':>9}{'steps':>7}{'seconds':>10}{'cpu s':>8}{'states*steps/s':>16}  theta(0,0)")
    for n, qbar, temperature in ((1, 50, 0.1), (2, 30, 0.0), (2, 30, 0.1), (3, 15, 0.0)):
        model = MarketMakingModel.paper_defaults(n, max_inventory=qbar, temperature=temperature)
        seconds, result = _best_of(lambda: solve_market_making(model, n_time=1000), 1)
        states = result.stats["n_states"]
        steps = result.stats["rk4_steps"]
        label = f"n={n} Q̄={qbar} γ={temperature:g}"
        print(f"{label:<28}{states:>9}{steps:>7}{seconds:>10.3f}{_best_of.cpu:>8.3f}"
              f"{states * steps / seconds:>16.3e}  {result.theta(0.0, (0,) * n):.6f}")

    print()
    print("== NumPy twin vs Numba kernel (n = 2, Q̄ = 10, γ = 0, 200 RK4 steps of 0.004 day) ==")
    model = MarketMakingModel.paper_defaults(2, max_inventory=10, horizon=0.8, temperature=0.0)
    kernel_seconds, _ = _best_of(lambda: solve_market_making(model, n_time=200, n_substeps=1), args.repeat)
    twin_seconds, _ = _best_of(lambda: solve_reference(model, 200, 1), 1)
    print(f"numba {kernel_seconds:.4f} s, numpy {twin_seconds:.4f} s, "
          f"speed-up {twin_seconds / kernel_seconds:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
