"""Several stopping learners of one shape (e.g. ten seeds) trained as *one* batched model.

Why. A sensitivity study repeats every configuration over ten seeds (Dai, Sun, Xu & Zhou, figures
4–6 and 9). The L per-date networks of one learner are already one batched module
(:class:`rl.networks.BatchedValueNetwork`); here the replicas add a leading axis to it
(:func:`rl.networks.stack_networks`: replica ``r``'s date ``l`` is net ``r·L + l``), so one training
step of ``R`` replicas is one forward/backward pass of ``R·L`` small networks instead of ``R`` passes
of ``L``, and the per-operation overhead of PyTorch is paid once.

What stays exactly per replica. Each replica keeps its own :class:`~rl.stopping.learner.StoppingLearner`
(its config and seed, its training generator, its initial weights, its ϕ): the batched step draws
each replica's paths from that replica's generator, and the loss is the *sum* over replicas of each
replica's own loss (a mean over its own paths), so the gradient of replica ``r``'s parameters is
its own loss's gradient. Adam and SGD are elementwise, so one optimizer over the stacked
parameters takes every replica's own steps (Adam's moments are per element). The step sizes'
schedules depend only on the update counts, which all replicas share. After training,
:meth:`ReplicatedStoppingLearner.replica` copies the weights and ϕ back into the replica's own
learner, which then evaluates, saves and reports exactly as a single run does.

Exactness. Every operation is rowwise or per network, so the replicated run computes the same
numbers as separate runs up to the floating-point reduction order of batched kernels; measured
(tests/rl/stopping/test_stopping_replicas.py) the weights agree with separate runs to float32
rounding after several steps (``rtol`` 1e-5), not guaranteed bit-for-bit.

Scope. Replicas must share everything but the seed (``seed`` is the only field that may differ):
κ, λ, the learning rates and the shapes enter the batched computation as scalars.
"""

from __future__ import annotations

import torch

from rl.losses import (dong_intensity, dong_td_errors, loss_scalars, martingale_increments,
                       restarted_martingale_residuals, td0_errors, volatility_martingale_residuals)
from rl.networks import stack_networks, unstack_network
from rl.stopping.config import StoppingConfig
from rl.stopping.evaluation import StoppingReference, payoff_torch
from rl.stopping.learner import StoppingLearner


def _replica_mean(squares: torch.Tensor) -> torch.Tensor:
    """``Σ_r mean_b Σ_l squares[r, b, l]``: each replica's loss reduced exactly as a single learner's."""
    return squares.sum(dim=2).mean(dim=1).sum()


class ReplicatedStoppingLearner:
    """``R`` stopping learners that differ only in their seed, trained by one batched model.

    Parameters
    ----------
    config : StoppingConfig
        The shared settings (its ``seed`` is ignored in favour of ``seeds``).
    seeds : sequence of int
        One seed per replica (``R = len(seeds)``, at least 1, all distinct).
    reference : StoppingReference, optional
        Handed to every replica's learner (for :meth:`replica`'s evaluation).
    compile : bool, default False
        ``torch.compile`` the networks' forward and the loss (see :class:`StoppingLearner`).

    Attributes
    ----------
    learners : list of StoppingLearner
        The replicas' own learners; their networks and ϕ are stale during training and refreshed by
        :meth:`replica` (or :meth:`sync`).
    """

    def __init__(self, config: StoppingConfig, seeds, *, reference: StoppingReference | None = None,
                 compile: bool = False) -> None:
        if not isinstance(config, StoppingConfig):
            raise ValueError(f"config must be a StoppingConfig, got {type(config).__name__}")
        seeds = [int(seed) for seed in seeds]
        if not seeds:
            raise ValueError("seeds must name at least one replica; pass e.g. seeds=range(10)")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}; repeated seeds would train identical replicas")
        self.config = config
        self.seeds = seeds
        self.learners = [StoppingLearner(config.replace(seed=seed), reference=reference) for seed in seeds]
        first = self.learners[0]
        self.n_replicas = len(seeds)
        self.net = stack_networks([learner.net for learner in self.learners])
        self.premium = first.premium
        self.learns_volatility = first.learns_volatility
        self.volatility = torch.nn.Parameter(torch.stack([learner.volatility.detach() for learner in self.learners]),
                                             requires_grad=self.learns_volatility)
        self.optimizer = first._make_optimizer(self.net.parameters(), config.learning_rate)
        self.volatility_optimizer = torch.optim.Adam([self.volatility], lr=config.volatility_learning_rate)
        self.value_updates = 0
        self.volatility_updates = 0
        # as StoppingLearner(compile=True): the networks and the loss as one inductor graph, its scalars
        # 0-d tensor inputs (one graph for every κ, λ), floats when eager
        self._loss_scalars = loss_scalars(penalty=config.penalty, temperature=config.temperature, rate=config.rate,
                                          dt=config.dt, tensors=bool(compile))
        self._value_loss = torch.compile(self._value_loss_eager) if compile else self._value_loss_eager

    # ------------------------------------------------------------------ layout
    def _to_networks(self, per_replica: torch.Tensor) -> torch.Tensor:
        """``(R, L, F, B)`` → ``(R·L, F, B)`` (replica-major, as :func:`stack_networks` orders nets)."""
        return per_replica.reshape(-1, *per_replica.shape[2:])

    def sample_batch(self, step: int) -> torch.Tensor:
        """Each replica's paths from its own generator: ``(R, M, L + 1)``."""
        return torch.stack([learner.sample_batch(step) for learner in self.learners])

    def _features(self, paths: torch.Tensor):
        """The single learner's features, with replica ``r``'s ϕ on replica ``r``'s paths."""
        first = self.learners[0]
        n_replicas, batch = paths.shape[:2]
        flat = paths.reshape(n_replicas * batch, -1)
        volatility = self.volatility.repeat_interleave(batch).unsqueeze(1)  # (R·M, 1): one ϕ per replica
        payoffs, terminal, inputs, european, terminal_gain = first.features(flat, volatility=volatility)
        n_dates = payoffs.shape[1]
        inputs = inputs.reshape(n_dates, inputs.shape[1], n_replicas, batch).permute(2, 0, 1, 3)
        shape = (n_replicas, batch, n_dates)
        return (payoffs.reshape(shape), terminal.reshape(n_replicas, batch), self._to_networks(inputs),
                None if european is None else european.reshape(shape), terminal_gain.reshape(n_replicas, batch))

    # ------------------------------------------------------------------ training
    def train_step(self, paths: torch.Tensor) -> dict[str, float]:
        """One step of every replica (the single learner's step, batched; see the module docstring)."""
        c = self.config
        first = self.learners[0]
        payoffs, terminal, inputs, european, terminal_gain = self._features(paths)
        diagnostics: dict[str, float] = {}
        if self.learns_volatility:
            residual = volatility_martingale_residuals(european, terminal_gain, rate=c.rate, dt=c.dt)
            vol_loss = 0.5 * c.dt * _replica_mean(residual.square())
            self.volatility_optimizer.zero_grad(set_to_none=True)
            vol_loss.backward()
            if self.volatility_updates >= c.volatility_coarse_steps:
                for group in self.volatility_optimizer.param_groups:
                    group["lr"] = first.volatility_learning_rate_at(self.volatility_updates)
            self.volatility_optimizer.step()
            with torch.no_grad():
                self.volatility.clamp_(min=1e-3)
            diagnostics["losses/volatility"] = vol_loss.item() / self.n_replicas
            self.volatility_updates += 1
        if self.volatility_updates <= c.volatility_warmup and self.learns_volatility:
            return diagnostics
        if self.value_updates == 0 and c.output_init == "european":
            self._init_output_shift(paths)
        self.net.train()
        loss = self._value_loss(inputs, payoffs, terminal)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.lr_decay_updates:
            for group in self.optimizer.param_groups:
                group["lr"] = first.learning_rate_at(self.value_updates)
        self.optimizer.step()
        self.value_updates += 1
        diagnostics["losses/loss"] = loss.item() / self.n_replicas
        return diagnostics

    def _value_loss_eager(self, inputs: torch.Tensor, payoffs: torch.Tensor, terminal: torch.Tensor) -> torch.Tensor:
        """Σ over replicas of the single learner's loss (same formulas, on ``(R, M, L)`` tensors)."""
        n_replicas, batch, n_dates = payoffs.shape
        premium_part = self.net(inputs).reshape(n_replicas, n_dates, batch).transpose(1, 2)  # (R, M, L)
        c, s = self.config, self._loss_scalars
        first = self.learners[0]
        values = payoffs + premium_part
        kwargs = dict(rate=s["rate"], dt=s["dt"])
        if c.algorithm != "dong":  # the single learner's _probability, with this model's scalars
            prob = first.policy.probability_of_gap(-premium_part, scale=s["logit_scale"])
        if c.algorithm == "ml":
            residuals = (restarted_martingale_residuals if c.martingale_weighting == "restarted"
                         else martingale_increments)
            increments = residuals(values, payoffs, terminal, prob, penalty=s["penalty"], temperature=s["temperature"],
                                   **kwargs)
            return 0.5 * s["dt"] * _replica_mean(increments.square())
        next_values = torch.cat([values[..., 1:], terminal.unsqueeze(-1)], dim=-1)
        if c.algorithm == "td0":
            errors = td0_errors(values, next_values, payoffs, prob, penalty=s["penalty"], temperature=s["temperature"],
                                **kwargs)
        else:
            intensity = dong_intensity(payoffs, values.detach(), temperature=s["temperature"], dt=s["dt"])
            errors = dong_td_errors(values, next_values, payoffs, intensity, temperature=s["temperature"], **kwargs)
        target = (errors + values).detach()  # semi-gradient, as rl.losses.td0_loss / dong_loss
        return 0.5 * _replica_mean((target - values).square())

    @torch.no_grad()
    def _init_output_shift(self, paths: torch.Tensor) -> None:
        """``output_init="european"`` per replica (its own ϕ and paths), as the single learner does."""
        c = self.config
        if not self.net.batch_norm:
            return
        first = self.learners[0]
        spots = paths[:, :, :c.n_steps]
        n_replicas, batch = spots.shape[:2]
        flat = spots.reshape(n_replicas * batch, -1)
        volatility = self.volatility.detach().repeat_interleave(batch).unsqueeze(1)
        european = first.european(flat, volatility).reshape(spots.shape)
        gains = payoff_torch(c.kind, spots, c.strike)
        self.net.norms[-1].bias.copy_((european - gains).mean(dim=1).reshape(-1, 1))

    # ------------------------------------------------------------------ the replicas as single learners
    @torch.no_grad()
    def sync(self) -> None:
        """Copy every replica's trained weights and ϕ into its own learner (update counts too)."""
        for index, learner in enumerate(self.learners):
            unstack_network(self.net, index, learner.net)
            learner.volatility.copy_(self.volatility[index])
            learner.value_updates = self.value_updates
            learner.volatility_updates = self.volatility_updates
            learner._eval_cache = None

    def replica(self, index: int) -> StoppingLearner:
        """Replica ``index``'s :class:`StoppingLearner` with the trained weights and ϕ (for
        ``evaluate``, :func:`validation.stopping.evaluate_learner`, plots). Its optimizer state is
        not copied: continue training through this object, not through the returned learner."""
        if not 0 <= int(index) < self.n_replicas:
            raise ValueError(f"index must be in [0, {self.n_replicas - 1}], got {index}")
        self.sync()
        return self.learners[int(index)]
