"""Option market making by RL (Fang & Xu; SPEC section 5).

One module per concept, over the shared :mod:`rl.losses` (the continuous-time TD loss) and
:mod:`rl.trainer`:

* :mod:`rl.market_making.config` — :class:`MMTrainConfig`, the ``[train]`` table;
* :mod:`rl.market_making.policies` — market state, the Gibbs spread policy and its tables;
* :mod:`rl.market_making.simulator` — GBM underlying, Black–Scholes mids, Poisson fills;
* :mod:`rl.market_making.networks` — the value network ``V(t, Q[, P, S]; θ)``;
* :mod:`rl.market_making.learner` — policy iteration (paper Algorithm 1) on the trainer contract;
* :mod:`rl.market_making.evaluation` — spread errors against the grid HJB in units of 1/k.
"""
