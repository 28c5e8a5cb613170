"""Throughput of the pderl/ Gymnasium environments (issue 16): path-steps per second.

Usage::

    python benchmarks/bench_envs.py [--seconds 3] [--sizes 1024 8192 65536] [--threads 1] [--json]

A path-step is one decision of one path: a vector environment with ``M`` paths makes ``M`` per call of
``step``. Measured: the batched vector environments of :mod:`rl.envs` (one simulator step for the whole
batch) for the stopping problem at several ``M`` under a threshold policy (stop the put below 32;
episodes end at different dates, so autoresets happen at every step), and for contrast Gymnasium's
``SyncVectorEnv`` over ``M`` copies of the single environment (a Python loop), plus the market-making
and Merton vector environments. The policy's own cost (one comparison) is included, as it would be in
training. Acceptance (issue 16): the vectorized stopping environment ≥ 1 M path-steps/s on 2 cores.

Measured (2-core VM shared with about 7 other helpers' jobs, torch 2.13 CPU, 1 thread; the lead
re-measures on a quiet machine): see ``RESULTS``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

RESULTS = """
threshold policy (stop the put below 32), 1 torch thread, load average 10 on the 2 shared cores:
  stopping vector env  M = 1024: 1.46 M path-steps/s;  M = 8192: 2.91 M/s;  M = 65536: 2.22 M/s
  (target >= 1 M/s: met, on one of the two cores, under load)
  stopping SyncVectorEnv of 64 single envs (Python loop): 0.008 M/s (about 350x slower)
  market-making vector env, 1 option, M = 1024: 0.45 M/s;  Merton vector env, M = 8192: 4.6 M/s
"""


def _rate(vec, act, seconds: float) -> float:
    obs, _ = vec.reset(seed=0)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        obs, *_ = vec.step(act(obs))
        count += vec.num_envs
    return count / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192, 65536], help="batch sizes M")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import gymnasium
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from rl.envs.market_making import MarketMakingVectorEnv
    from rl.envs.merton import HOLD, MertonCostsVectorEnv
    from rl.envs.stopping import AmericanStoppingEnv, AmericanStoppingVectorEnv

    def threshold(obs):
        return (obs[:, 1] <= 32.0).astype(np.int64)

    out = {"threads": args.threads, "load_average": os.getloadavg()[0], "stopping_vector": {}}
    for size in args.sizes:
        out["stopping_vector"][size] = _rate(AmericanStoppingVectorEnv(size), threshold, args.seconds)
    sync = gymnasium.vector.SyncVectorEnv([AmericanStoppingEnv for _ in range(64)],
                                          autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
    out["stopping_sync_vector_64"] = _rate(sync, threshold, args.seconds)
    mm = MarketMakingVectorEnv(1024)
    out["market_making_vector_1024"] = _rate(mm, lambda obs: np.full((obs.shape[0], 2), 1 / 1.5), args.seconds)
    merton = MertonCostsVectorEnv(8192)
    out["merton_vector_8192"] = _rate(merton, lambda obs: np.full(obs.shape[0], HOLD), args.seconds)
    out["stopping_target_met"] = max(out["stopping_vector"].values()) >= 1e6
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"load average {out['load_average']:.1f}, {args.threads} thread(s)")
        for size, rate in out["stopping_vector"].items():
            print(f"stopping vector env M={size:>6}: {rate / 1e6:6.2f} M path-steps/s")
        print(f"stopping SyncVectorEnv of 64 copies: {out['stopping_sync_vector_64'] / 1e6:6.3f} M path-steps/s")
        print(f"market-making vector env M=1024: {out['market_making_vector_1024'] / 1e6:6.3f} M path-steps/s")
        print(f"Merton vector env M=8192: {out['merton_vector_8192'] / 1e6:6.3f} M path-steps/s")
        print(f"target >= 1 M path-steps/s (stopping): {'met' if out['stopping_target_met'] else 'NOT met'}")
    return out


if __name__ == "__main__":
    main()
