"""rl: continuous-time reinforcement learners trained against the pdecore oracles.

* Optimal stopping (Dai, Sun, Xu & Zhou): martingale-loss and TD(0) learners of the penalized,
  entropy-regularized American option (SPEC section 3).
* Option market making (Fang & Xu): entropy-regularized policy iteration with a value network
  (SPEC section 5).

Sub-modules are imported on demand so that ``import rl`` does not import PyTorch.
"""

from __future__ import annotations

__version__ = "0.1.0"
