"""Learners of the Dynkin game of Merton's problem with costs: offline martingale loss (ML), online
TD(0) and the Dai & Dong (2024) baseline (paper section 4.7 and appendix D; SPEC section 4).

Value networks. One network per date ``l = 0..L−1`` (:class:`rl.networks.BatchedValueNetwork`, the
paper's 2×21 ReLU with batch norm) with inputs ``(x, s(x), b(x))`` — the ratio and the two (clamped)
obstacles, which the agent knows because it knows θ — and output ``z``; the value is

.. math::  w_l(x) = m(x) + g(x)\\, z_l(x), \\qquad m = (ℓ + u)/2,\\ g = (u − ℓ)/2,

so that ``z = −1`` is the lower obstacle and ``z = +1`` the upper one. This is model-free (only the
obstacles enter) and puts the quantity that decides the trades on the scale of the network: the
obstacles differ by about ``2θ|x|/(1 + x)²`` (≈ 0.01 at ``x ≈ −0.4``), about 1 % of ``w`` itself, and
the learned band is where ``−1 < z < 1``.

Algorithms (``config.algorithm``):

* ``ml``: one Adam step per batch on :func:`rl.losses.dynkin_martingale_loss` (the stopping learner's
  loss with the two players' joint survival ``1 − κ(ν + μ)Δt`` and reward);
* ``td0``: :func:`rl.losses.dynkin_td0_loss`, the paper's semi-gradient update of every date;
* ``dai_dong``: Dai & Dong's Cox intensities and unnormalized entropy, TD error
  (:func:`rl.losses.dai_dong_td_loss`). Its own discrete fixed point is not the DSXZ oracle's: each
  intensity is capped at ``1/Δt`` (an effective penalty of 10 at L = 10, against κ = 5), so its band is
  wider (measured at λ = 1e-4, 3000 steps: (−0.472, −0.366) against the DSXZ oracle's (−0.4425, −0.3669)).

All three weight the squared errors of each date by ``(θ/g(X_l))^p`` (config ``gap_weight_exponent``,
default 2), a state weight that leaves the minimizer unchanged (:func:`rl.losses.dynkin_martingale_loss`)
and measures errors in units of the obstacles' gap. Measured without it (ML, 3000 steps, seed 0): buy
boundary −0.196 against the oracle's −0.351 (the gap shrinks towards x = 0, where the buy boundary lies,
so its errors are cheap in the loss); with it: −0.3523 after 2500 steps.

Evaluation (:meth:`DynkinLearner.evaluate`): the learned no-trade band on every date, read off the
networks on a ratio grid over ``[initial_low, initial_high]`` by :func:`pdecore.dynkin_oracle.no_trade_band`
(the oracle's rule), after calibrating the batch-norm statistics on fresh evaluation paths. The
backtest and the comparison with the oracle live in :mod:`validation.dynkin`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from pdecore.dynkin_oracle import no_trade_band
from rl.dynkin.config import DynkinConfig
from rl.dynkin.policies import TwoPlayerPolicy
from rl.dynkin.simulator import RatioSimulator, clamped_obstacles_torch
from rl.losses import dai_dong_intensities, dai_dong_td_loss, dynkin_martingale_loss, dynkin_td0_loss
from rl.networks import BatchedValueNetwork
from rl.schedules import cosine_learning_rate
from rl.seeding import derive_seeds  # one seed -> independent training / initialisation seeds


class DynkinLearner:
    """ML / TD(0) / Dai–Dong learner of the no-trade band (implements :mod:`rl.trainer`'s contract).

    Parameters
    ----------
    config : DynkinConfig
    device : str or torch.device, optional
        Where the networks run (default ``config.device``). Paths are drawn on the CPU generator and
        moved, so a seed gives the same paths on every device.
    """

    def __init__(self, config: DynkinConfig, *, device: str | torch.device | None = None) -> None:
        if not isinstance(config, DynkinConfig):
            raise ValueError(f"config must be a DynkinConfig, got {type(config).__name__}")
        self.config = config
        self.device = torch.device(config.device if device is None else device)
        self.dtype = torch.float32
        self.simulator = RatioSimulator(config.model(), config.n_steps, config.initial_low, config.initial_high)
        self.policy = TwoPlayerPolicy(config.penalty, config.temperature, detach=config.detach_policy)
        train_seed, init_seed = derive_seeds(config.seed, 2)
        self.generator = torch.Generator().manual_seed(train_seed)
        init = torch.Generator().manual_seed(init_seed)
        self.net = BatchedValueNetwork(config.n_steps, in_features=3, hidden=config.hidden, n_hidden=config.n_hidden,
                                       batch_norm=config.batch_norm, generator=init).to(self.device)
        params = self.net.parameters()
        self.optimizer = (torch.optim.Adam(params, lr=config.learning_rate) if config.optimizer == "adam"
                          else torch.optim.SGD(params, lr=config.learning_rate))
        self.updates = 0
        self._loss = torch.compile(self._loss_eager) if config.compile else self._loss_eager
        self._eval_inputs: torch.Tensor | None = None

    # ------------------------------------------------------------------ contract
    def config_dict(self) -> dict:
        return {"learner": "dynkin", **self.config.to_dict()}

    def to(self, device) -> "DynkinLearner":
        self.device = torch.device(device)
        self.net.to(self.device)
        self._eval_inputs = None
        return self

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "updates": self.updates,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])

    def sample_batch(self, step: int) -> torch.Tensor:
        """``batch_size`` fresh ratio paths ``(M, L + 1)`` from the training generator."""
        return self.simulator.sample(self.config.batch_size, self.generator, dtype=self.dtype).to(self.device)

    # ------------------------------------------------------------------ features
    def features(self, paths: torch.Tensor):
        """Obstacles and network inputs of ratio paths ``(B, L + 1)``.

        Returns ``(inputs (L, 3, B), lower (B, L), upper (B, L), terminal (B,))``; ``terminal`` is the
        sell obstacle at ``t_L`` (liquidation).
        """
        c = self.config
        sell, buy = clamped_obstacles_torch(paths, c.cost, c.floor)
        n = c.n_steps
        lower, upper = torch.minimum(sell[:, :n], buy[:, :n]), torch.maximum(sell[:, :n], buy[:, :n])
        inputs = torch.stack([paths[:, :n].T, sell[:, :n].T, buy[:, :n].T], dim=1)
        return inputs, lower, upper, sell[:, n]

    @staticmethod
    def values_from_output(output: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """``w = m + g z`` with ``m = (ℓ + u)/2``, ``g = (u − ℓ)/2`` (module docstring)."""
        return 0.5 * (lower + upper) + 0.5 * (upper - lower) * output

    # ------------------------------------------------------------------ training
    def _loss_eager(self, inputs, lower, upper, terminal):
        c = self.config
        values = self.values_from_output(self.net(inputs).T, lower, upper)
        weights = self.gap_weights(lower, upper)
        if c.algorithm == "dai_dong":
            nu, mu = dai_dong_intensities(values.detach(), lower, upper, temperature=c.temperature, dt=c.dt)
            next_values = torch.cat([values[:, 1:], terminal.unsqueeze(1)], dim=1)
            return dai_dong_td_loss(values, next_values, lower, upper, nu, mu, temperature=c.temperature, dt=c.dt,
                                    weights=weights)
        nu, mu = self.policy(values, lower, upper)
        if c.algorithm == "ml":
            return dynkin_martingale_loss(values, lower, upper, terminal, nu, mu, penalty=c.penalty,
                                          temperature=c.temperature, dt=c.dt, weights=weights)
        next_values = torch.cat([values[:, 1:], terminal.unsqueeze(1)], dim=1)
        return dynkin_td0_loss(values, next_values, lower, upper, nu, mu, penalty=c.penalty,
                               temperature=c.temperature, dt=c.dt, weights=weights)

    def gap_weights(self, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor | None:
        """``ω = (θ/g)^p`` with ``g = (u − ℓ)/2`` (config ``gap_weight_exponent``; None when ``p = 0`` or θ = 0)."""
        c = self.config
        if c.gap_weight_exponent == 0.0 or c.cost == 0.0:
            return None
        half_gap = torch.clamp(0.5 * (upper - lower), min=1e-6 * c.cost)
        return (c.cost / half_gap) ** c.gap_weight_exponent

    def train_step(self, paths: torch.Tensor) -> dict[str, float]:
        self.net.train()
        inputs, lower, upper, terminal = self.features(paths)
        loss = self._loss(inputs, lower, upper, terminal)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        rate = self.learning_rate_at(self.updates)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.optimizer.step()
        self.updates += 1
        return {"losses/loss": loss.item(), "charts/learning_rate": rate}

    def learning_rate_at(self, update: int) -> float:
        """Step size of update number ``update`` (0-based): cosine decay from ``learning_rate`` to
        ``lr_final_fraction·learning_rate`` over ``lr_decay_updates`` updates, then constant
        (Loshchilov & Hutter 2017, without restarts); constant when ``lr_decay_updates`` is 0."""
        c = self.config
        return cosine_learning_rate(update, learning_rate=c.learning_rate, decay_updates=c.lr_decay_updates,
                                    final_fraction=c.lr_final_fraction)

    # ------------------------------------------------------------------ evaluation
    def _calibration_inputs(self) -> torch.Tensor:
        if self._eval_inputs is None:
            generator = torch.Generator().manual_seed(self.config.eval_seed)
            paths = self.simulator.sample(self.config.eval_paths, generator, dtype=self.dtype).to(self.device)
            self._eval_inputs = self.features(paths)[0]
        return self._eval_inputs

    @torch.no_grad()
    def evaluation_network(self) -> BatchedValueNetwork:
        """A copy of the networks with batch-norm statistics calibrated on the evaluation paths (see
        :mod:`rl.networks`); the training networks are untouched."""
        net = copy.deepcopy(self.net)
        net.calibrate(self._calibration_inputs())
        return net

    @torch.no_grad()
    def values_on_grid(self, x, *, net: BatchedValueNetwork | None = None) -> np.ndarray:
        """Learned ``w_l(x)`` at every date for the ratios ``x`` (1-D) → float64 ``(L, n)``."""
        c = self.config
        net = net or self.evaluation_network()
        points = torch.as_tensor(np.asarray(x, dtype=float), dtype=self.dtype, device=self.device)
        grid = points.unsqueeze(0).expand(c.n_steps + 1, -1).T  # same points on every date
        inputs, lower, upper, _ = self.features(grid)
        return self.values_from_output(net(inputs).T, lower, upper).T.double().cpu().numpy()

    def band_grid(self) -> np.ndarray:
        """The ratio grid on which the band is read off: ``eval_grid`` nodes on the initial interval."""
        c = self.config
        return np.linspace(c.initial_low, c.initial_high, c.eval_grid)

    def bands(self, *, net: BatchedValueNetwork | None = None) -> np.ndarray:
        """Learned ``(x_s, x_b)`` on every date → float64 ``(L, 2)`` (:func:`no_trade_band`)."""
        c = self.config
        x = self.band_grid()
        values = self.values_on_grid(x, net=net)
        return np.array([no_trade_band(x, values[level], c.cost, c.floor) for level in range(c.n_steps)])

    def evaluate(self) -> dict[str, float]:
        """The learned t = 0 band (``sell_boundary_t0``, ``buy_boundary_t0``; NaN where absent)."""
        bands = self.bands()
        return {"sell_boundary_t0": float(bands[0, 0]), "buy_boundary_t0": float(bands[0, 1])}
