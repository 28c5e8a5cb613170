"""The exploratory Bernoulli stopping policy (SPEC sections 1 and 3).

The entropy-regularized penalized problem randomizes the stop/continue decision into a coin with
probability

.. math::  π(t, x) = \\operatorname{sigmoid}\\big(κ\\,(g(t, x) − V(t, x))/λ\\big)

(Dai, Sun, Xu & Zhou, eq. 2.23; the policy-improvement map of Theorem 3.1). Training uses ``π`` as a
weight (the survival ``R`` and the reward), never a sampled coin; *execution* does not toss a coin:
exercise iff ``π ≥ ½``, i.e. ``V ≤ g`` (paper section 4.3).
"""

from __future__ import annotations

import torch
from torch import nn

from pdecore.checks import check_positive
from rl.losses import neg_entropy


class BernoulliStoppingPolicy(nn.Module):
    """``π = sigmoid(κ (g − V)/λ)`` with its entropy, samples and execution rule.

    Parameters
    ----------
    penalty : float
        κ > 0.
    temperature : float
        λ > 0.
    detach : bool, default True
        Return ``π`` without gradient (the paper's default: only ``V_l`` is trained through the loss).
    """

    def __init__(self, penalty: float, temperature: float, *, detach: bool = True) -> None:
        super().__init__()
        self.penalty = check_positive("penalty", penalty, fix="pass e.g. penalty=10")
        self.temperature = check_positive("temperature", temperature, fix="pass e.g. temperature=1")
        self.detach = bool(detach)

    def logits_of_gap(self, gap: torch.Tensor, *, scale=None) -> torch.Tensor:
        """``κ (g − V)/λ`` from the exercise gap ``g − V`` (the one place the policy's formula is written).

        Learners that hold the gap itself (the stopping learner's networks output ``w = V − g``, so
        ``g − V = −w``) call this rather than :meth:`logits`, which would recompute ``g − V`` from
        ``g + w`` with a rounding error. ``scale`` is ``κ/λ`` given by the caller, e.g. as a 0-d tensor
        (compiled learners, :func:`rl.losses.loss_scalars`); default this policy's own, as a float.
        """
        logits = gap * (self.penalty / self.temperature if scale is None else scale)
        return logits.detach() if self.detach else logits

    def logits(self, payoff: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``κ (g − V)/λ`` (any matching shapes)."""
        return self.logits_of_gap(payoff - value)

    def probability_of_gap(self, gap: torch.Tensor, *, scale=None) -> torch.Tensor:
        """Stopping probability ``π = sigmoid(κ (g − V)/λ)`` from the gap ``g − V`` (``scale`` as
        :meth:`logits_of_gap`)."""
        return torch.sigmoid(self.logits_of_gap(gap, scale=scale))

    def forward(self, payoff: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Stopping probability ``π``."""
        return self.probability_of_gap(payoff - value)

    def neg_entropy(self, payoff: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``ℋ(π) = π log π + (1 − π) log(1 − π)``."""
        return neg_entropy(self(payoff, value))

    def sample(self, payoff: torch.Tensor, value: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Toss the coins: a boolean tensor, True = stop (exploration; not used by the martingale loss)."""
        prob = self(payoff, value).detach()
        return torch.rand(prob.shape, generator=generator, dtype=prob.dtype, device=prob.device) < prob

    @staticmethod
    def execute(payoff: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Execution rule: exercise iff ``π ≥ ½`` ⇔ ``V ≤ g`` (boolean tensor)."""
        return value <= payoff
