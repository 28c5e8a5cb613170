"""Benchmark and acceptance check of the Dynkin-game learners (issue 13; paper section 4.7, figure 7).

Usage::

    python benchmarks/bench_dynkin.py oracle                           # t = 0 bands of the discrete oracle
    python benchmarks/bench_dynkin.py timing [--steps 300] [--variant eager|compiled|both] [--threads 1]
    python benchmarks/bench_dynkin.py acceptance [--seeds 0 1 2] [--steps 15000] [--algo ml] [--temperature 0.01]
                                                 [--band SELL BUY]  # backtest a given band instead of training

``oracle`` prints the discrete oracle's t = 0 band at the paper setting (L = 10, κ = 5) for λ ∈ {1e-2,
1e-4, 1e-6}, its sensitivity to the insolvency margin, and the VI band. ``timing`` measures the wall time
of training steps at the paper setting (batch 1024, L = 10) and extrapolates to 15000 steps (target
≤ 3 min on 2 CPU cores). ``acceptance`` trains one learner per seed and evaluates it with
:func:`validation.dynkin.evaluate` (learned vs oracle t = 0 band; 20-year daily backtest of 10 000
paths with common random numbers). Acceptance: boundaries within 0.02 of the oracle's and mean log
return within 0.05 of the oracle band's, on each of 3 seeds.

Measured (2-core VM shared with about 7 other jobs, torch 2.13 CPU, 1 thread; timings inflated by the
load, the lead re-measures on a quiet machine)
---------------------------------------------------------------------------------------------------
Oracle (paper setting, λ = 1e-2, 1e-4, 1e-6): (−0.4478, −0.3514), (−0.4425, −0.3669), (−0.4425, −0.3669);
insolvency margin 0.2 instead of 0.05 at λ = 1e-2: (−0.4539, −0.3525). VI: (−0.4982, −0.3492). As L grows
(κ = 5, λ = 1e-2): L = 40 (−0.4375, −0.3570), L = 320 (−0.4348, −0.3580), towards the continuous penalized band
(−0.4312, −0.3575) with the truncation at the same place. κ = 50, λ = 1e-4, L = 200: (−0.4829, −0.3581)
(continuous κ = 50: (−0.4820, −0.3585)). About 0.01–0.3 s per oracle.

See the numbers of the last ``timing`` and ``acceptance`` runs in the module's ``RESULTS`` below.
"""

from __future__ import annotations

import argparse
import json
import os
import time

RESULTS = """
timing (300 steps after warm-up, batch 1024, L = 10, 1 thread; load average 7-8 on 2 cores, i.e. the
  step shares a core with ~3 other jobs):
  eager    : 16.5 ms/step (min of 50-step blocks), median 23.5 ms -> 15000 steps in 4-6 min under this load;
             at load 1.4 (start of the session) 2000 steps took 19 s incl. evaluations (~8 ms/step, 2 min)
  compiled : 12.7 ms/step min, 13.0 median -> 3.2 min under this load; compilation 46 s once
acceptance (ML, 15000 steps, paper setting, lr 0.01 cosine to 1e-4, gap weights p = 2, batch 1024;
  20-year daily backtest, 10 000 common paths; oracle band 2.8860 +- 0.0224, buy-and-hold 2.4252,
  frictionless Merton 3.0044):
  seed 0 : band (-0.4483, -0.3559), errors 0.0005 / 0.0045; log return 2.8857, minus oracle -0.0003 (s.e. 0.0001)
  seed 1 : band (-0.4406, -0.3581), errors 0.0072 / 0.0067; log return 2.8828, minus oracle -0.0032 (s.e. 0.0003)
  seed 2 : band (-0.4490, -0.3538), errors 0.0012 / 0.0024; log return 2.8861, minus oracle +0.0001 (s.e. 0.0001)
  (15000 steps took 530-590 s per seed under load 7-8, two seeds at a time)
  td0 (Adam), seed 0: band (-0.4470, -0.3481), errors 0.0008 / 0.0033; log return minus oracle -0.0001
  dai_dong, λ = 1e-4, seed 0: band (-0.4587, -0.3636) (DSXZ oracle at λ = 1e-4: (-0.4425, -0.3669)); log
    return 2.8869 vs that oracle band's 2.8808 (its wider band, nearer the VI's, earns a little more)
  (these two: 731 s each under load 14-18)
short runs, 3000 steps, seed 0 (same cosine decay over 3000 steps):
  ml, λ = 1e-4   : band (-0.4502, -0.3660) vs oracle (-0.4425, -0.3669): errors 0.0077 / 0.0009
  ml, λ = 1e-6   : band (-0.4513, -0.3651) vs oracle (-0.4425, -0.3669): errors 0.0088 / 0.0017
  td0 (Adam)     : band (-0.4495, -0.3586) vs oracle (-0.4478, -0.3514): errors 0.0017 / 0.0072
  td0 (plain SGD at 0.01, the stopping learner's TD(0) update): (-0.7799, -0.5666), does not move
  dai_dong, λ = 1e-4: (-0.4719, -0.3657) with the gap weights (its own fixed point: intensities capped at
                   1/Δt = 10, a wider band than the κ = 5 oracle's); without them it never buys
  ml without the gap weights (p = 0): buy boundary -0.196 vs -0.351 (errors in the narrow gap near x = 0
                   are cheap in the unweighted loss)
"""


def _set_threads(threads: int) -> None:
    import torch

    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch.set_num_threads(threads)


def run_oracle() -> None:
    from pdecore.dynkin_oracle import dynkin_oracle
    from pdecore.merton import solve_merton_costs
    from rl.dynkin import DynkinConfig

    model = DynkinConfig().model()
    for temperature in (1e-2, 1e-4, 1e-6):
        started = time.perf_counter()
        oracle = dynkin_oracle(model, n_steps=10, penalty=5.0, temperature=temperature)
        print(f"oracle L=10 κ=5 λ={temperature:g}: band {oracle.band(0)}  ({time.perf_counter() - started:.2f} s)")
    print("margin 0.2:", dynkin_oracle(model, n_steps=10, penalty=5.0, temperature=1e-2, insolvency_margin=0.2).band(0))
    print("VI:", solve_merton_costs(model).band(0.0))


def run_timing(steps: int, variant: str) -> dict:
    import torch

    from rl.dynkin import DynkinConfig, DynkinLearner

    out = {}
    for compiled in ([False, True] if variant == "both" else [variant == "compiled"]):
        learner = DynkinLearner(DynkinConfig(compile=compiled))
        warm = 20 if compiled else 5
        started = time.perf_counter()
        for step in range(warm):
            learner.train_step(learner.sample_batch(step))
        warmup_s = time.perf_counter() - started
        blocks = []
        for block in range(max(1, steps // 50)):
            started = time.perf_counter()
            for step in range(50):
                learner.train_step(learner.sample_batch(step))
            blocks.append((time.perf_counter() - started) / 50)
        name = "compiled" if compiled else "eager"
        best, median = min(blocks), sorted(blocks)[len(blocks) // 2]
        out[name] = {"ms_per_step_min": 1e3 * best, "ms_per_step_median": 1e3 * median,
                     "extrapolated_15000_steps_s": 15000 * median, "warmup_s": warmup_s,
                     "load_average": os.getloadavg()[0], "threads": torch.get_num_threads()}
        print(name, json.dumps(out[name]))
    return out


def run_acceptance(seeds, steps: int, algorithm: str, band=None, temperature: float = 1e-2) -> list[dict]:
    from rl.dynkin import DynkinConfig, DynkinLearner
    from validation.dynkin import build_reference, evaluate

    rows = []
    for seed in seeds:
        config = DynkinConfig(seed=seed, algorithm=algorithm, lr_decay_updates=steps, temperature=temperature)
        reference = build_reference(config)
        learner = DynkinLearner(config)
        started = time.perf_counter()
        if band is None:
            for step in range(steps):
                learner.train_step(learner.sample_batch(step))
        train_s = time.perf_counter() - started
        result = evaluate(learner, reference, band=band)
        result.update(seed=seed, steps=steps, train_s=train_s, algorithm=algorithm,
                      sell_error=abs(result["sell_boundary_t0"] - result["oracle_sell_boundary_t0"]),
                      buy_error=abs(result["buy_boundary_t0"] - result["oracle_buy_boundary_t0"]),
                      log_return_error=abs(result["mean_log_return"] - result["oracle_mean_log_return"]))
        result["passed"] = bool(result["sell_error"] <= 0.02 and result["buy_error"] <= 0.02
                                and result["log_return_error"] <= 0.05)
        print(json.dumps(result), flush=True)
        rows.append(result)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("oracle")
    timing = sub.add_parser("timing")
    timing.add_argument("--steps", type=int, default=300)
    timing.add_argument("--variant", choices=("eager", "compiled", "both"), default="both")
    timing.add_argument("--threads", type=int, default=1)
    acceptance = sub.add_parser("acceptance")
    acceptance.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    acceptance.add_argument("--steps", type=int, default=15000)
    acceptance.add_argument("--algo", choices=("ml", "td0", "dai_dong"), default="ml")
    acceptance.add_argument("--band", type=float, nargs=2, default=None)
    acceptance.add_argument("--temperature", type=float, default=1e-2)
    acceptance.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    _set_threads(getattr(args, "threads", 1))
    if args.command == "oracle":
        run_oracle()
    elif args.command == "timing":
        run_timing(args.steps, args.variant)
    else:
        run_acceptance(args.seeds, args.steps, args.algo, band=tuple(args.band) if args.band else None,
                       temperature=args.temperature)


if __name__ == "__main__":
    main()
