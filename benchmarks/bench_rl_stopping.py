"""Benchmark and acceptance check of the RL stopping learners (issue 5, SPEC section 3).

Usage::

    python benchmarks/bench_rl_stopping.py timing [--threads 1 2] [--variant eager|compiled|both]
                                                  [--network fused|pytorch|both]
                                                                        # ms per ML / TD(0) step
    python benchmarks/bench_rl_stopping.py sigma [--steps 2000]          # appendix B: σ from 0.8
    python benchmarks/bench_rl_stopping.py acceptance [--seeds 5] [--steps 1000] [--algo ml]
                                                      [--weighting restarted|survival] [--out results.json]

``timing`` measures the time of one training step at the paper settings (L = 50, batch 2^10,
κ = 10, λ = 1), excluding evaluation, and the wall time of a 1000-step run (target: <= 10 ms per step
and <= 30 s per run on 2 CPU cores; the paper reports about 500 ms per step). ``acceptance`` trains
the learner for each seed, evaluates it on 2^18 common test paths against the PDE and the discrete
oracle (:mod:`validation.stopping`) and prints the per-seed numbers and their means, plus the number
of steps each seed needed to reach 0.5 % error (evaluated every 10 steps on the 2^14 evaluation paths
with the common-random-number estimate ``P_learned − P_oracle-rule + P_oracle``: plain Monte Carlo on
2^14 paths has a 0.8 % standard error, too coarse to see 0.5 %). Timings on a shared machine are
inflated by other processes: the script prints the load average next to them and reports the minimum
over repeated blocks.

Measured (2-core VM shared with other jobs, load average 2.1–2.5 during the runs, torch 2.13 CPU)
------------------------------------------------------------------------------------------------
Time per ML step at the paper settings, min of 7 blocks of 20 steps, 1 thread:

* before this round (eager): 21.0 ms (ML), 20.1 ms (TD(0)); the network's forward+backward is
  13.6 ms of it (two 21-unit batch norms ≈ 3.7 ms each, six batched matmuls ≈ 4 ms);
* eager now: the same (the elementwise input layer saves ~0.3 ms, inside the noise);
* ``compile=True`` (``--compile``): 10.7 ms (ML), 9.9–10.1 ms (TD(0)); 1000-step ML run 10.3 s
  (eager 19.3 s), both under the 30 s target; compilation 2–20 s once, then cached by inductor.
  On an idle machine the compiled step is expected below 10 ms; we could not get an idle one.
* 2 threads on a machine where another process holds a core: every parallel kernel waits for
  the descheduled OpenMP thread (ReLU of 1M floats 0.1 → 7.6 ms, batch norm 2 → 21 ms) and a step
  takes 100–900 ms. Use ``--threads 1`` on shared machines.

Acceptance (``acceptance``; 2^18 test paths; 5 seeds; paper settings):

* ML, 1000 steps (Adam 0.01, σ learned with the decaying fine step; compiled learner), seeds 0–4:
  P_stopping error 0.248, 0.175, 0.252, 0.192, 0.173 % (mean 0.21 % ≤ 0.3 %); P_control 0.982,
  0.988, 0.974, 1.009, 0.966 % (mean 0.98 % ≤ 1.2 %); |V_0 − oracle| / oracle 0.10, 0.16, 0.18,
  0.33, 0.25 % (all ≤ 0.5 %; with a constant fine σ step seed 4 was 0.75 %, σ = 0.40202);
  minimum over dates of the accuracy against the oracle's decisions 98.9, 98.8, 97.3, 90.0,
  99.4 % and against the VI boundary 94.2, 94.1, 93.0, 87.5, 95.0 % (the oracle itself: 95.0 %).
  Seed 3 fails at date 48: there 9 % of the test points lie below S ≈ 23, deep in the money,
  where every path has been exercising for many dates, so its survival weight R (and the
  martingale-loss gradient, ∝ R²) is ~0 and the network's extrapolation is unconstrained (learned
  V − oracle V = +0.98 at S = 20). The paper reports the same weakness at very low stock prices
  (its section 4.2). A cosine learning-rate decay does not change it (89.3 %); gradients through π and R
  diverge.
* ML, 1000 steps, ``martingale_weighting="restarted"`` (the default since issue 14: each ``G_l``
  divided by its survival weight ``R_l``, same minimizer; docs/stopping_studies.md), compiled,
  ``--eval-every 0``, seeds 0–9 (one per process, two at a time, load average 9–19):
  P_stopping error 0.199, 0.174, 0.235, 0.184, 0.159, 0.205, 0.194, 0.190, 0.160, 0.184 % (max 0.235 %
  ≤ 0.3 %); P_control 0.982, 1.011, 0.980, 1.033, 0.983, 1.010, 1.016, 1.015, 0.994, 1.004 % (max
  1.033 % ≤ 1.2 %); minimum over dates of the accuracy against the oracle's decisions 99.26, 98.87,
  99.08, 98.27, 99.09, 98.90, 98.33, 99.16, 98.89, 98.68 % (every seed ≥ 95 % at every date; seed 3:
  90.0 → 98.3 %); against the VI boundary 94.5–95.1 % (the oracle itself: 95.03 %). The numbers
  above this item are the paper's weighting (``--weighting survival``); rerun with it on seeds 5–9
  (this build): 98.9, 94.2, 89.2, 91.4, 89.7 % at dates 49, 47, 49, 49, 49 — five seeds in ten fail.
* TD(0), 5000 steps, plain SGD at 0.01 (the paper's update, the default ``optimizer="auto"``):
  P_stopping 0.198, 0.201, 0.212, 0.227, 0.211 % (seeds 0–4; mean 0.21 % ≤ 0.5 %), P_control
  1.00 %, accuracy against the oracle ≥ 98.3 %, |V_0 − oracle| ≤ 0.50 % (these TD runs still used
  the constant fine σ step; re-run with the decaying one, seeds 0 and 3: P_stopping 0.203 and
  0.225 %, accuracy against the oracle 99.3 and 98.3 %, V_0 0.49 and 0.05 %).
* σ from 0.8 (``sigma``): 0.40019, 0.40057, 0.40029 after 2000 steps (seeds 0–2), inside
  ±0.005 from step 61–92 on.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def _load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:  # pragma: no cover
        return "load average unavailable"


def timing(threads: list[int], steps: int, run_steps: int, repeats: int, compile_modes: list[bool],
           networks: tuple[str, ...] = ("fused", "pytorch")) -> dict:
    """Milliseconds per training step, min over ``repeats`` blocks of ``steps`` steps (the minimum is
    the least disturbed by other processes on a shared machine), for eager and compiled learners, with
    the networks' fused training kernel and with the PyTorch path as its peer (``networks``)."""
    import torch

    from rl.stopping.config import StoppingConfig
    from rl.stopping.learner import StoppingLearner
    from rl.networks import use_fused_kernel
    from rl.trainer import reduce_allocation_overhead

    reduce_allocation_overhead()
    results = {}
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for compiled, network in [(c, n) for c in compile_modes for n in networks]:
            tag = ("compiled" if compiled else "eager") + ("" if network == "fused" else "-pytorch")
            for algorithm in ("ml", "td0"):
                learner = StoppingLearner(StoppingConfig(algorithm=algorithm, volatility_warmup=0), reference=None,
                                          compile=compiled)
                use_fused_kernel(learner.net, network == "fused")
                tick = time.perf_counter()
                for step in range(10):  # warm-up (allocator, first-call overheads, compilation)
                    learner.train_step(learner.sample_batch(step))
                warmup = time.perf_counter() - tick
                blocks = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    for step in range(steps):
                        learner.train_step(learner.sample_batch(step))
                    blocks.append((time.perf_counter() - start) / steps * 1e3)
                per_step = min(blocks)
                results[f"{algorithm}_{tag}_ms_per_step_{n_threads}t"] = per_step
                results[f"{algorithm}_{tag}_median_ms_per_step_{n_threads}t"] = sorted(blocks)[len(blocks) // 2]
                print(f"{algorithm:>4} {tag:>16} {n_threads} thread(s): min {per_step:7.2f} ms/step, median "
                      f"{sorted(blocks)[len(blocks) // 2]:7.2f} (warm-up incl. compile {warmup:5.1f} s; {_load()})",
                      flush=True)
            if run_steps:
                start = time.perf_counter()
                learner = StoppingLearner(StoppingConfig(), reference=None, compile=compiled)
                use_fused_kernel(learner.net, network == "fused")
                for step in range(run_steps):
                    learner.train_step(learner.sample_batch(step))
                seconds = time.perf_counter() - start
                results[f"ml_{tag}_{run_steps}_step_run_s_{n_threads}t"] = seconds
                print(f"  ML {tag} {run_steps}-step run (100 σ warm-up steps and compilation included, no "
                      f"evaluation): {seconds:.1f} s ({_load()})", flush=True)
    return results


def sigma_curve(steps: int, seed: int) -> dict:
    """Appendix B: learn σ alone by the European martingale loss from ϕ = 0.8."""
    from rl.stopping.config import StoppingConfig
    from rl.stopping.learner import StoppingLearner

    learner = StoppingLearner(StoppingConfig(seed=seed, volatility_warmup=steps), reference=None)
    history = []
    for step in range(steps):
        history.append(learner.train_step(learner.sample_batch(step))["charts/volatility"])
    last = history[-1]
    within = next((i + 1 for i in range(len(history)) if all(abs(v - 0.4) <= 0.005 for v in history[i:])), None)
    print(f"σ after {steps} steps: {last:.5f} (true 0.4, paper 0.4006); inside ±0.005 from step {within} on")
    return {"sigma_final": last, "sigma_steps_to_within_0.005": within, "sigma_history_every_100": history[::100]}


def acceptance(seeds: list[int], steps: int, algorithm: str, out: str | None, eval_every: int,
               compiled: bool = False, weighting: str = "restarted") -> dict:
    import numpy as np
    import torch

    from rl.stopping.config import StoppingConfig
    from rl.stopping.learner import StoppingLearner
    from rl.trainer import reduce_allocation_overhead
    from validation.stopping import PDEReferences, evaluate_learner, public_evaluation

    reduce_allocation_overhead()
    torch.set_num_threads(1)
    references = PDEReferences.compute(StoppingConfig(algorithm=algorithm))
    rows = []
    for seed in seeds:
        config = StoppingConfig(algorithm=algorithm, seed=seed, martingale_weighting=weighting)
        learner = StoppingLearner(config, reference=references.stopping_reference(config), compile=compiled)
        start = time.perf_counter()
        reached = None
        train_seconds = 0.0
        for step in range(steps):
            tick = time.perf_counter()
            learner.train_step(learner.sample_batch(step))
            train_seconds += time.perf_counter() - tick
            if reached is None and eval_every > 0 and (step + 1) % eval_every == 0:
                metrics = learner.evaluate()
                if metrics.get("eval/rel_error_stopping_crn", 1.0) <= 0.005:
                    reached = step + 1
        evaluation = public_evaluation(evaluate_learner(learner, references=references))
        row = {"seed": seed, "steps_to_0.5pct": reached, "train_seconds": train_seconds,
               "wall_seconds": time.perf_counter() - start,
               **{k: evaluation[k] for k in ("p_stopping", "p_control", "rel_error_stopping", "rel_error_control",
                                             "rel_error_stopping_cv", "rel_error_control_cv", "min_accuracy",
                                             "min_accuracy_vi", "oracle_min_accuracy", "argmin_accuracy",
                                             "sigma_learned", "value0", "value0_rel_error_oracle",
                                             "value_max_abs_error_oracle", "value_rms_abs_error_oracle",
                                             "value_max_abs_error_pde")},
               "accuracy": evaluation["accuracy"], "accuracy_vi": evaluation["accuracy_vi"]}
        rows.append(row)
        print(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()
                          if not k.startswith("accuracy")}), flush=True)
    keys = [k for k in rows[0] if k != "seed" and all(isinstance(r[k], (int, float)) for r in rows)]
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    # the criterion is on the mean over seeds: per-date accuracy averaged over seeds, then its minimum
    for name in ("accuracy", "accuracy_vi"):
        per_date = np.mean([r[name] for r in rows], axis=0)
        means[f"seed_mean_{name}_min"] = float(per_date.min())
        means[f"seed_mean_{name}_argmin"] = int(per_date.argmin())
    print("MEAN", json.dumps({k: round(v, 6) for k, v in means.items()}))
    result = {"algorithm": algorithm, "steps": steps, "seeds": seeds, "rows": rows, "means": means,
              "oracle": {"value0": references.oracle.value0, "p_stopping": references.oracle.p_stopping,
                         "p_control": references.oracle.p_control}}
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return result


def evaluation_timing(steps: int, repeats: int, final_paths: int) -> dict:
    """Seconds per evaluation of a trained learner (the periodic one on its 2^14 evaluation paths, the
    final one on ``final_paths``, with the PDE references and the discrete oracle), the networks'
    evaluation kernels against the PyTorch path as their peer, interleaved in one process (1 thread;
    the minimum over ``repeats``)."""
    import torch

    from rl.networks import use_fused_kernel
    from rl.stopping.config import StoppingConfig
    from rl.stopping.learner import StoppingLearner
    from rl.trainer import reduce_allocation_overhead
    from validation.stopping import PDEReferences, build_reference, evaluate_learner

    reduce_allocation_overhead()
    torch.set_num_threads(1)
    config = StoppingConfig(algorithm="td0")
    learner = StoppingLearner(config, reference=build_reference(config), compile=True)
    for step in range(steps):
        learner.train_step(learner.sample_batch(step))
    references = PDEReferences.compute(config)
    timings: dict[str, list[float]] = {}
    for _ in range(repeats):
        for network in ("fused", "pytorch"):
            use_fused_kernel(learner.net, network == "fused")
            for what, call in (("periodic", lambda: learner.evaluate()),
                               ("final", lambda: evaluate_learner(learner, references=references,
                                                                  test_paths=final_paths))):
                start = time.perf_counter()
                call()
                timings.setdefault(f"{what}_{network}_s", []).append(time.perf_counter() - start)
    use_fused_kernel(learner.net, True)
    results = {key: min(values) for key, values in timings.items()}
    for what in ("periodic", "final"):
        print(f"{what:>8} evaluation: kernels {results[f'{what}_fused_s']:.3f} s, PyTorch path "
              f"{results[f'{what}_pytorch_s']:.3f} s (min of {repeats}; {_load()})", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("timing")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=20, help="steps per timed block")
    p.add_argument("--repeats", type=int, default=7, help="timed blocks; the minimum is reported")
    p.add_argument("--run-steps", type=int, default=1000)
    p.add_argument("--variant", choices=["eager", "compiled", "both"], default="both",
                   help="time the eager learner, the torch.compile'd one, or both (default)")
    p.add_argument("--network", choices=["fused", "pytorch", "both"], default="both",
                   help="the networks' fused Numba training kernel, the PyTorch path (its peer), or both (default)")
    p = sub.add_parser("evaluation", help="periodic and final evaluations: evaluation kernels against the PyTorch path")
    p.add_argument("--steps", type=int, default=300, help="training steps before timing")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--final-paths", type=int, default=2**18)
    p = sub.add_parser("sigma")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("acceptance")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--algo", default="ml")
    p.add_argument("--eval-every", type=int, default=10,
                   help="steps between the checks of the 0.5 %% threshold (0 or more than --steps: none)")
    p.add_argument("--out", default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile the training loss")
    p.add_argument("--weighting", choices=["restarted", "survival"], default="restarted",
                   help="ML loss weighting: restarted (default, G_l / R_l) or survival (the paper's Algorithm 1)")
    args = parser.parse_args()
    if args.mode == "timing":
        modes = {"eager": [False], "compiled": [True], "both": [False, True]}[args.variant]
        networks = {"fused": ("fused",), "pytorch": ("pytorch",), "both": ("fused", "pytorch")}[args.network]
        timing(args.threads, args.steps, args.run_steps, args.repeats, modes, networks)
    elif args.mode == "evaluation":
        evaluation_timing(args.steps, args.repeats, args.final_paths)
    elif args.mode == "sigma":
        sigma_curve(args.steps, args.seed)
    else:
        acceptance(list(range(args.first_seed, args.first_seed + args.seeds)), args.steps, args.algo, args.out,
                   args.eval_every, args.compile, args.weighting)


if __name__ == "__main__":
    main()
