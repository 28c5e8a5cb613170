"""Merton's problem with proportional costs as a two-player Dynkin game, learned by continuous-time RL
(Dai, Sun, Xu & Zhou, section 4.7 and appendix D; Dai & Dong 2024; SPEC section 4).

One module per concept, over the shared :mod:`rl.losses`, :mod:`rl.networks` and :mod:`rl.trainer`:

* :mod:`rl.dynkin.config` — :class:`DynkinConfig` (market, game, learning settings; validated, frozen);
* :mod:`rl.dynkin.simulator` — the ratio ``x = B/S`` from exact GBM stock paths under the physical
  measure, and the clamped obstacles (the same as :func:`pdecore.dynkin_oracle.clamped_obstacles`);
* :mod:`rl.dynkin.policies` — the two players' Bernoulli stopping probabilities and execution rule;
* :mod:`rl.dynkin.learner` — the martingale-loss, TD(0) and Dai–Dong (2024) learners (trainer contract).

References (the discrete oracle a perfect learner reaches, the VI band, the 20-year backtest) are built
by :mod:`validation.dynkin` and handed in: a learner never solves a PDE.
"""

import importlib

# public name -> module; loaded on first use (PEP 562) so that ``rl.dynkin.config`` — what the experiment
# registry reads — is importable without torch
_EXPORTS = {"DynkinConfig": "rl.dynkin.config", "DynkinLearner": "rl.dynkin.learner",
            "RatioSimulator": "rl.dynkin.simulator"}


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'rl.dynkin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = ["DynkinConfig", "DynkinLearner", "RatioSimulator"]
