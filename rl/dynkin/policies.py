"""The two players of the exploratory Dynkin game and their execution rule (SPEC section 4).

The lower player (maximizer) stops with probability ``ν = sigmoid(κ(ℓ − w)/λ)``, the upper player
(minimizer) with ``μ = sigmoid(κ(w − u)/λ)`` (paper appendix D; the maximizers of
``κν(ℓ − w) − λℋ(ν)`` and minimizers of ``κμ(u − w) + λℋ(μ)``). In Merton's problem the sell obstacle
``s = x/(x+1−θ)`` is the lower one on ``x < 0`` and the upper one on ``x > 0`` (the buy obstacle the
reverse), so "the lower player stops" means *sell* on ``x < 0`` and *buy* on ``x > 0``. Execution does
not toss coins: a player acts iff its probability is at least ½, i.e. sell iff ``w`` is on the far side
of the sell obstacle and buy iff it is on the far side of the buy obstacle.
"""

from __future__ import annotations

import torch

from pdecore.checks import check_positive
from rl.losses import dynkin_probabilities, neg_entropy


class TwoPlayerPolicy:
    """``(ν, μ)`` from values and obstacles, their entropies, and the trading rule.

    Parameters
    ----------
    penalty, temperature : float
        κ > 0, λ > 0.
    detach : bool, default True
        Return probabilities without gradient (the paper's default).
    """

    def __init__(self, penalty: float, temperature: float, *, detach: bool = True) -> None:
        self.penalty = check_positive("penalty", penalty, fix="pass e.g. penalty=5")
        self.temperature = check_positive("temperature", temperature, fix="pass e.g. temperature=0.01")
        self.detach = bool(detach)

    def __call__(self, values: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor):
        """``(ν, μ)``, the lower and the upper player's stopping probabilities."""
        nu, mu = dynkin_probabilities(values, lower, upper, penalty=self.penalty, temperature=self.temperature)
        return (nu.detach(), mu.detach()) if self.detach else (nu, mu)

    def neg_entropies(self, values, lower, upper):
        """``(ℋ(ν), ℋ(μ))``."""
        nu, mu = self(values, lower, upper)
        return neg_entropy(nu), neg_entropy(mu)

    @staticmethod
    def trades(x: torch.Tensor, values: torch.Tensor, sell: torch.Tensor, buy: torch.Tensor):
        """Execution rule: ``(sell_now, buy_now)`` boolean tensors.

        Sell iff ``w ≤ s`` on ``x < 0`` (lower player, ``ν ≥ ½``) or ``w ≥ s`` on ``x > 0`` (upper player,
        ``μ ≥ ½``); buy is the mirror with the buy obstacle. At ``x = 0`` nobody trades.
        """
        negative, positive = x < 0, x > 0
        sell_now = (negative & (values <= sell)) | (positive & (values >= sell))
        buy_now = (negative & (values >= buy)) | (positive & (values <= buy))
        return sell_now, buy_now
