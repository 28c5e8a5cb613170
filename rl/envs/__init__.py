"""Gymnasium environments of pderl's problems, registered under the ``pderl/`` namespace on import.

``import rl.envs`` (or ``gymnasium.make("pderl/AmericanPut-v0")`` after it) gives environments built on
the project's own simulators and parameter objects (one source of truth with the learners and the
oracles); ``docs/envs.md`` describes spaces, rewards and seeding, and
:func:`validation.policies.validate_policy` holds any policy against the oracles.

========================================  ==================================================  ============
id                                        problem                                             module
========================================  ==================================================  ============
``pderl/AmericanPut-v0``                  stopping an American put (paper settings)           stopping
``pderl/AmericanCall-v0``                 stopping an American call                           stopping
``pderl/MarketMaking-v0``                 n-option market maker (SPEC section 5)              market_making
``pderl/MertonCosts-v0``                  Merton's portfolio with proportional costs          merton
========================================  ==================================================  ============

Each id also has a vector entry point (``gymnasium.make_vec(id, num_envs=M,
vectorization_mode="vector_entry_point")``): one batched simulator step for all ``M`` environments
(:mod:`rl.envs.vector`).
"""

from __future__ import annotations

import gymnasium

ENVIRONMENTS = {
    "pderl/AmericanPut-v0": ("rl.envs.stopping:american_put", "rl.envs.stopping:american_put_vector"),
    "pderl/AmericanCall-v0": ("rl.envs.stopping:american_call", "rl.envs.stopping:american_call_vector"),
    "pderl/MarketMaking-v0": ("rl.envs.market_making:MarketMakingEnv",
                              "rl.envs.market_making:MarketMakingVectorEnv"),
    "pderl/MertonCosts-v0": ("rl.envs.merton:MertonCostsEnv", "rl.envs.merton:MertonCostsVectorEnv"),
}


def register_all() -> None:
    """Register every id of :data:`ENVIRONMENTS` (idempotent: ids already registered are left alone)."""
    for env_id, (entry_point, vector_entry_point) in ENVIRONMENTS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=entry_point, vector_entry_point=vector_entry_point,
                               disable_env_checker=False)


register_all()

__all__ = ["ENVIRONMENTS", "register_all"]
