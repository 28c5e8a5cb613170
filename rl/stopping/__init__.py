"""Optimal stopping by continuous-time RL (Dai, Sun, Xu & Zhou; SPEC sections 2-3).

One module per concept, over the shared :mod:`rl.losses`, :mod:`rl.networks` and :mod:`rl.trainer`:

* :mod:`rl.stopping.config` — :class:`StoppingConfig` (the ``[model]``/``[train]`` settings, validated);
* :mod:`rl.stopping.simulator` — exact / Euler GBM paths from the pdecore parameter objects;
* :mod:`rl.stopping.policies` — the Bernoulli stopping policy ``π = sigmoid(κ(g − V)/λ)``;
* :mod:`rl.stopping.learner` — the martingale-loss, TD(0) and Dong (2024) learners (trainer contract);
* :mod:`rl.stopping.replicas` — several seeds of one shape trained as one batched model;
* :mod:`rl.stopping.evaluation` — the price achieved on test paths and per-date decision accuracy
  against references that :mod:`validation` builds and hands in (a learner never solves a PDE).
"""
