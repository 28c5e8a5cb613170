"""The L per-date value networks of the stopping learners as *one* batched module (SPEC section 3).

The paper (Dai, Sun, Xu & Zhou, section 4.1, following Dong 2024 and Becker et al. 2021) uses one
small fully connected network per decision date ``l = 0..L−1``::

    BN(in) → Linear(in, 21) → BN → ReLU → Linear(21, 21) → BN → ReLU → Linear(21, 1) → BN(1)

("after the input layer and the output layer and before every activation layer, we add a batch
normalization layer"). Fifty separate ``nn.Sequential`` modules cost fifty kernel launches per layer;
here the weights of all dates are stacked along a leading date axis and every layer is one batched
matmul (``torch.baddbmm``), and batch normalization is PyTorch's fused kernel applied to all
``L × features`` channels at once. Tensors are laid out *features-major*, ``(L, features, batch)``,
so that the batch axis is contiguous: the batch-norm reductions and the matmuls then run on long
contiguous rows (this layout is about twice as fast on CPU as ``(L, batch, features)``). The
module is numerically the same function as a loop of separate networks (tested against
``nn.BatchNorm1d``/``nn.Linear`` stacks, in training and in evaluation mode).

Training-mode passes on float32 CPU batches run instead as one Numba kernel per direction
(:mod:`rl._kernels.batched_mlp`, wrapped as a differentiable operator in :mod:`rl._fused_mlp`):
each date's whole network at once, its activations in the core's caches, with register-blocked
21 × 21 products. Evaluation-mode passes without gradient run as a third kernel (each batch norm
the affine map of its running statistics, the batch in tiles that stay in the L2 cache), and
:meth:`BatchedValueNetwork.calibrate` takes its statistics from the training kernel's forward pass.
The layer-by-layer path above is their twin (``fused=False``, :func:`use_fused_kernel`), and stays
the path for GPUs, float64, shared input layers and evaluation-mode passes that need a gradient.

Batch normalization at a point-mass date. At ``t_0`` every path starts at ``S_0``: the input has zero
variance, so in training mode the network's output at date 0 is the output layer's shift (a learned
scalar, which is all a value at a single point can be). Running statistics that trail the training
weights would then be divided by ``sqrt(eps)`` in evaluation mode, so evaluators should first call
:meth:`BatchedValueNetwork.calibrate` on a large batch of fresh paths: it sets the running statistics
to that batch's statistics under the *current* weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pdecore.checks import check_int
from rl._fused_mlp import fused_mlp_eval, fused_mlp_forward, fused_mlp_statistics


SMALL_FAN_IN = 2  # inner dimensions up to this are computed elementwise instead of by a batched matmul
# Largest activation (floats) computed in one piece. The nets are independent, so a large input runs
# through the layers in blocks of nets (one net at least), each block's activations about 1 MiB, which
# stay in the core's L2 cache. Measured at the paper's shapes (L = 50, hidden 21, batch 1024, compiled,
# 1 thread, glibc tuned as rl.trainer.reduce_allocation_overhead does for every run; three interleaved
# rounds, fresh processes): a training step 8.8 → 8.1 ms (TD(0)), 9.8 → 8.9 ms (ML); an evaluation on
# 2^14 test paths 0.27 → 0.20 s, on 2^18 2.0 → 1.45 s. Without that tuning glibc maps multi-MiB
# tensors afresh at many operations (a page fault per 4 KiB), and whole-tensor evaluation is 3× slower.
NET_BLOCK_FLOATS = 2**18
CONSTANT_CHANNEL_RTOL = 1e-10  # variance / (mean² + 1) below which a calibrated channel counts as constant


def check_training_batch(batch: int) -> None:
    """Refuse a training-mode batch norm over fewer than 2 paths (a batch variance needs two)."""
    if batch < 2:
        raise ValueError(f"batch normalization in training mode needs a batch of at least 2 paths, got "
                         f"{batch}; use a larger batch_size")


class BatchedBatchNorm(nn.Module):
    """Batch normalization of ``(n_nets, features, batch)`` tensors, one set of statistics per net.

    Equals ``nn.BatchNorm1d(features)`` applied to each slice ``x[l].T`` (biased variance to
    normalize, unbiased variance for the running estimate, ``momentum`` 0.1, ``eps`` 1e-5, affine
    weight 1 and bias 0 at start). Implemented with ``torch.nn.functional.batch_norm`` on the
    ``(1, n_nets·features, batch)`` view, whose channels are exactly the ``(date, feature)`` pairs.
    ``affine=False``: standardization only, no learned scale and shift (``weight`` and ``bias`` are None).
    """

    def __init__(self, n_nets: int, features: int, *, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.features = features
        self.affine = bool(affine)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(n_nets, features))
            self.bias = nn.Parameter(torch.zeros(n_nets, features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(n_nets, features))
        self.register_buffer("running_var", torch.ones(n_nets, features))

    def _apply_norm(self, x: torch.Tensor, training: bool, momentum: float, nets: slice) -> torch.Tensor:
        shape = x.shape
        # slices of the leading (net) axis of contiguous buffers are contiguous: the in-place running
        # statistics update of F.batch_norm writes through to the module's buffers
        out = F.batch_norm(x.reshape(1, shape[0] * shape[1], shape[2]), self.running_mean[nets].view(-1),
                           self.running_var[nets].view(-1),
                           self.weight[nets].reshape(-1) if self.affine else None,
                           self.bias[nets].reshape(-1) if self.affine else None, training, momentum, self.eps)
        return out.view(shape)

    def forward(self, x: torch.Tensor, nets: slice = slice(None)) -> torch.Tensor:
        """Normalize ``x`` of shape ``(n, features, batch)``, the nets ``nets`` of this layer (all by default)."""
        if self.training:
            check_training_batch(x.shape[-1])
        return self._apply_norm(x, self.training, self.momentum, nets)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, nets: slice = slice(None)) -> torch.Tensor:
        """Running statistics := this batch's mean and (biased) variance; returns the normalized batch.

        With the biased variance, evaluation mode then reproduces training mode on ``x`` exactly.
        ``nets`` selects the nets ``x`` belongs to (all by default); the others are left as they are.
        """
        out = self._apply_norm(x, True, 1.0, nets)  # momentum 1: running stats = batch stats (unbiased var)
        batch = x.shape[-1]
        running_mean, running_var = self.running_mean[nets], self.running_var[nets]
        running_var.mul_((batch - 1) / batch if batch > 1 else 1.0)
        _mark_constant_channels(running_mean, running_var)
        return out

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, var: torch.Tensor) -> None:
        """Running statistics := ``mean`` and the biased ``var`` (``(n_nets, features)``, a batch's, as
        :meth:`calibrate` sets them), constant channels marked as there."""
        self.running_mean.copy_(mean)
        self.running_var.copy_(var)
        _mark_constant_channels(self.running_mean, self.running_var)

    def affine_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Evaluation mode as an affine map ``α z + β'`` per channel: ``α = γ / sqrt(v + ε)``,
        ``β' = β − μ α`` from the running statistics (PyTorch's own evaluation formula; a marked
        constant channel, ``v = ∞``, gives ``α = 0``, ``β' = β``)."""
        weight = self.weight if self.affine else torch.ones_like(self.running_mean)
        bias = self.bias if self.affine else torch.zeros_like(self.running_mean)
        alpha = (1.0 / torch.sqrt(self.running_var + self.eps)) * weight
        return alpha, bias - self.running_mean * alpha


def _mark_constant_channels(running_mean: torch.Tensor, running_var: torch.Tensor) -> None:
    """A constant channel (every path at S_0 on date 0) normalizes to exactly 0 in training mode,
    whatever its level. In evaluation mode its rounding residue x − mean would be divided by
    sqrt(eps) at every layer (errors grow ~300× per layer), so map it to its shift β instead:
    an infinite variance gives scale 0, which is the training-mode function."""
    constant = running_var <= CONSTANT_CHANNEL_RTOL * (running_mean.square() + 1.0)
    running_var.masked_fill_(constant, math.inf)


class BatchedLinear(nn.Module):
    """``n_nets`` independent affine maps by one batched matmul: ``y[l] = W[l] @ x[l] (+ b[l])``.

    ``x`` has shape ``(n_nets, in_features, batch)``; ``W`` ``(n_nets, out_features, in_features)``
    (the ``nn.Linear`` convention) and ``b`` ``(n_nets, out_features, 1)``. Initialised like
    ``nn.Linear`` (uniform in ``±1/sqrt(in_features)``). ``bias=False`` where a batch normalization
    follows: it subtracts the batch mean, so a bias there is a redundant parameter and wasted work.
    Built with ``n_nets = 1`` it is one map applied to every net's slice of ``x`` (a shared layer).
    """

    def __init__(self, n_nets: int, in_features: int, out_features: int, *, bias: bool = True,
                 generator=None) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(n_nets, out_features, in_features).uniform_(
            -bound, bound, generator=generator))
        if bias:
            self.bias = nn.Parameter(torch.empty(n_nets, out_features, 1).uniform_(-bound, bound,
                                                                                    generator=generator))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor, nets: slice = slice(None)) -> torch.Tensor:
        """``y[l] = W[l] @ x[l] (+ b[l])`` for the nets ``nets`` (all by default; a shared layer's one
        map serves any selection)."""
        weight, bias = self.weight, self.bias
        if weight.shape[0] > 1:
            weight = weight[nets]
            bias = None if bias is None else bias[nets]
        if weight.shape[2] <= SMALL_FAN_IN:
            # A matmul with an inner dimension of 2 (the input layer: (x, h)) runs far below the BLAS
            # peak; as a sum of broadcast products it is a single pass over the output (0.47 → 0.18 ms
            # at L = 50, batch 1024, 1 thread) and fuses with the batch norm under torch.compile.
            out = weight[:, :, :1] * x[:, :1, :]
            for k in range(1, weight.shape[2]):
                out = torch.addcmul(out, weight[:, :, k:k + 1], x[:, k:k + 1, :])
            return out if bias is None else out + bias
        if weight.shape[0] != x.shape[0]:
            # One map shared by every net: an expanded view (no copy; its gradient sums over the nets).
            # bmm on the view is as fast as per-net weights; torch.matmul's broadcasting is 3× slower
            # forward + backward (L = 100, 201 inputs, batch 1024, 1 thread).
            weight = weight.expand(x.shape[0], -1, -1)
            bias = None if bias is None else bias.expand(x.shape[0], -1, -1)
        if bias is None:
            return torch.bmm(weight, x)
        return torch.baddbmm(bias, weight, x)


class BatchedValueNetwork(nn.Module):
    """``n_nets`` value networks evaluated together on ``(n_nets, in_features, batch)`` inputs.

    Parameters
    ----------
    n_nets : int
        Number of decision dates ``L`` (one network per date ``l = 0..L−1``).
    in_features : int, default 2
        Inputs per point; the stopping learners use ``(x, h(t_l, x))`` (state and payoff,
        Becker et al. 2021).
    hidden : int, default 21
        Width of each hidden layer (paper: 21).
    n_hidden : int, default 2
        Number of hidden layers (paper: 2).
    batch_norm : bool, default True
        Batch normalization on the input, before every ReLU and on the output (paper, section 4.1);
        the linear layers then have no bias (each is followed by a normalization).
    generator : torch.Generator, optional
        Generator for the initial weights (reproducible initialisation without the global RNG).
    shared_input : bool, default False
        One input layer ``Linear(in_features, hidden)`` for all nets (weight ``(1, hidden, in_features)``),
        each net keeping its own batch norms and later layers. For inputs whose informative direction is
        the same at every date after each date's input batch norm (the basket's log-prices, whose
        standardized geometric mean has weights ``∝ σ_i`` at every date), the shared layer fits that
        direction from all L dates' paths at once instead of L times from one date's each
        (measured: ``docs/high_dim_stopping.md``).
    input_affine : bool, default True
        Learned per-net scale and shift after the input batch norm (``nn.BatchNorm1d``'s affine part).
        Before a per-net input layer they are redundant (that layer absorbs them exactly). Before a
        shared input layer they are not: the scales are ``L × in_features`` free per-date weights of the
        inputs, the per-date noise the shared layer exists to remove; ``False`` standardizes only
        (measured: ``docs/high_dim_stopping.md``). Needs ``batch_norm``.
    shared_hidden : bool, default False
        The hidden-to-hidden layers (``n_hidden − 1`` of them) also one for all nets, each net keeping
        its own batch norms (a per-date shift and scale of every hidden unit) and its output layer.
        Needs ``shared_input``: the features a shared layer combines are then the same at every date.
    fused : bool, default True
        Run training-mode passes on float32 CPU inputs as one Numba kernel per direction
        (:mod:`rl._kernels.batched_mlp`): each date's whole network at once, its activations in the
        core's caches, instead of each layer over all dates. The same function to float32 rounding
        (tested). Evaluation-mode passes under ``torch.no_grad`` and :meth:`calibrate` use kernels too
        (:func:`rl._fused_mlp.fused_mlp_eval`, :func:`rl._fused_mlp.fused_mlp_statistics`); GPUs,
        float64 and shared input layers always take the PyTorch path. ``False`` forces the PyTorch
        path everywhere.

    Shapes
    ------
    ``forward(x)``: ``x`` of shape ``(n_nets, in_features, batch)`` → ``(n_nets, batch)``; row ``l``
    is date ``l``'s network applied to the points ``x[l, :, j]``.
    """

    def __init__(self, n_nets: int, *, in_features: int = 2, hidden: int = 21, n_hidden: int = 2,
                 batch_norm: bool = True, generator: torch.Generator | None = None,
                 shared_input: bool = False, input_affine: bool = True, shared_hidden: bool = False,
                 fused: bool = True) -> None:
        super().__init__()
        self.n_nets = check_int("n_nets", n_nets, minimum=1, fix="pass the number of decision dates")
        self.in_features = check_int("in_features", in_features, minimum=1, fix="pass e.g. 2")
        self.hidden = check_int("hidden", hidden, minimum=1, fix="pass e.g. 21")
        self.n_hidden = check_int("n_hidden", n_hidden, minimum=1, fix="pass e.g. 2")
        self.batch_norm = bool(batch_norm)
        self.shared_input = bool(shared_input)
        self.input_affine = bool(input_affine)
        self.shared_hidden = bool(shared_hidden)
        self.fused = bool(fused)
        if self.shared_hidden and not self.shared_input:
            raise ValueError("shared_hidden=True shares the hidden layers of nets whose input layers differ; pass "
                             "shared_input=True as well (or shared_hidden=False)")
        if not self.input_affine and not self.batch_norm:
            raise ValueError("input_affine=False removes the input batch norm's scale and shift, but batch_norm=False "
                             "has no input batch norm; pass input_affine=True or batch_norm=True")
        widths = [in_features] + [hidden] * n_hidden
        self.linears = nn.ModuleList(
            [BatchedLinear(1 if (index == 0 and self.shared_input) or (index > 0 and self.shared_hidden) else n_nets,
                           a, b, bias=not batch_norm, generator=generator)
             for index, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
            + [BatchedLinear(n_nets, hidden, 1, bias=not batch_norm, generator=generator)])
        if self.batch_norm:
            self.norms = nn.ModuleList([BatchedBatchNorm(n_nets, in_features, affine=self.input_affine)]
                                       + [BatchedBatchNorm(n_nets, w) for w in widths[1:]]
                                       + [BatchedBatchNorm(n_nets, 1)])
        else:
            self.norms = nn.ModuleList()

    def _kernel_shape(self, x: torch.Tensor) -> bool:
        """Whether the Numba kernels (:mod:`rl._fused_mlp`) compute this network on ``x``: per-date layers
        with batch norms and their scales and shifts, float32 on the CPU, ``fused`` not switched off."""
        # getattr: a network pickled before the kernel existed has no ``fused`` attribute
        return (getattr(self, "fused", True) and self.batch_norm and self.input_affine and not self.shared_input
                and x.device.type == "cpu" and x.dtype == torch.float32
                and all(p.dtype == torch.float32 and p.device.type == "cpu" for p in self.parameters()))

    def _fused_applies(self, x: torch.Tensor) -> bool:
        """Whether this training-mode pass runs as the fused kernel: :meth:`_kernel_shape` and one ``eps``."""
        return self.training and self._kernel_shape(x) and len({norm.eps for norm in self.norms}) == 1

    def _eval_kernel_applies(self, x: torch.Tensor) -> bool:
        """Whether this evaluation-mode pass runs as the evaluation kernel: :meth:`_kernel_shape`, and no
        gradient asked for (the kernel has no backward; evaluation-mode training keeps PyTorch's path)."""
        return not self.training and not torch.is_grad_enabled() and x.shape[-1] > 0 and self._kernel_shape(x)

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The linear layers' weights as the kernels take them: input, stacked hidden ``(K, L, H, H)``, output."""
        linears = list(self.linears)
        hidden = linears[1:-1]
        w_hidden = (torch.stack([linear.weight for linear in hidden]) if hidden
                    else linears[0].weight.new_zeros(0, self.n_nets, self.hidden, self.hidden))
        return linears[0].weight, w_hidden, linears[-1].weight

    def _run_eval_kernel(self, x: torch.Tensor) -> torch.Tensor:
        terms = [norm.affine_terms() for norm in self.norms]
        hidden = terms[1:-1]
        return fused_mlp_eval(x.contiguous(), *self._weights(), *terms[0], torch.stack([a for a, _ in hidden]),
                              torch.stack([c for _, c in hidden]), *terms[-1])

    def _norm_parameters(self) -> tuple[torch.Tensor, ...]:
        """The batch norms' scales and shifts as the kernels take them: input ``(L, I)`` twice, stacked
        hidden ``(K + 1, L, H)`` twice, output ``(L, 1)`` twice."""
        norms = list(self.norms)
        hidden = norms[1:-1]
        return (norms[0].weight, norms[0].bias, torch.stack([norm.weight for norm in hidden]),
                torch.stack([norm.bias for norm in hidden]), norms[-1].weight, norms[-1].bias)

    def _per_norm(self, stats: tuple[torch.Tensor, ...]) -> list[tuple[BatchedBatchNorm, torch.Tensor, torch.Tensor]]:
        """``(norm, batch mean, biased batch variance)`` of every batch norm, from the kernels' ``stats``."""
        norms = list(self.norms)
        mean_in, var_in, mean_hidden, var_hidden, mean_out, var_out = stats
        return ([(norms[0], mean_in, var_in)]
                + [(norm, mean_hidden[k], var_hidden[k]) for k, norm in enumerate(norms[1:-1])]
                + [(norms[-1], mean_out, var_out)])

    def _calibrate_kernel(self, x: torch.Tensor) -> torch.Tensor:
        out, stats = fused_mlp_statistics(x.contiguous(), *self._weights(), *self._norm_parameters(),
                                          self.norms[0].eps)
        for norm, mean, var in self._per_norm(stats):
            norm.set_statistics(mean, var)
        return out

    def _run_fused(self, x: torch.Tensor) -> torch.Tensor:
        check_training_batch(x.shape[-1])
        out, stats = fused_mlp_forward(x, *self._weights(), *self._norm_parameters(), self.norms[0].eps)
        # running statistics as F.batch_norm updates them: r ← (1 − m) r + m μ, with the unbiased variance
        unbias = x.shape[-1] / (x.shape[-1] - 1)
        with torch.no_grad():
            for norm, mean, var in self._per_norm(stats):
                norm.running_mean.lerp_(mean, norm.momentum)
                norm.running_var.lerp_(var * unbias, norm.momentum)
        return out

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[0] != self.n_nets or x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (n_nets={self.n_nets}, in_features={self.in_features}, batch), "
                             f"got {tuple(x.shape)}")

    def _run(self, x: torch.Tensor, calibrate: bool) -> torch.Tensor:
        self._check(x)
        if not calibrate and self._fused_applies(x):
            return self._run_fused(x)
        if not calibrate and self._eval_kernel_applies(x):
            return self._run_eval_kernel(x)
        width = max(self.hidden, self.in_features)
        block = max(1, NET_BLOCK_FLOATS // max(1, width * x.shape[2]))
        if block >= self.n_nets:
            return self._run_nets(x, calibrate, slice(None))
        # blocks of nets, each computed as the whole would be (at the paper's shapes a training batch of
        # 1024 paths already makes 4 × 12 + 2 nets; an evaluation chunk of 2^15 paths one net per block)
        return torch.cat([self._run_nets(x[start:start + block], calibrate, slice(start, start + block))
                          for start in range(0, self.n_nets, block)])

    def _run_nets(self, x: torch.Tensor, calibrate: bool, nets: slice) -> torch.Tensor:
        """The nets ``nets`` on their inputs ``x`` (``(n, in_features, batch)`` → ``(n, batch)``)."""
        norms = list(self.norms) if self.batch_norm else [None] * (len(self.linears) + 1)

        def normalize(norm, value):
            if norm is None:
                return value
            return norm.calibrate(value, nets) if calibrate else norm(value, nets)

        x = normalize(norms[0], x)
        last = len(self.linears) - 1
        for index, linear in enumerate(self.linears):
            x = normalize(norms[index + 1], linear(x, nets))
            if index < last:
                x = torch.relu(x)
        return x.squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, calibrate=False)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> torch.Tensor:
        """Set every batch-norm layer's running statistics to those of ``x`` under the current weights.

        Afterwards evaluation-mode outputs equal training-mode outputs on ``x`` and are consistent on
        other points of the same distribution.
        Leaves the module in evaluation mode and returns the outputs on ``x``. Where the kernels apply
        (:meth:`_kernel_shape`, one ``eps``) the statistics come from the training kernel's pass over
        ``x`` (:func:`rl._fused_mlp.fused_mlp_statistics`), else from PyTorch's batch norms.
        """
        self._check(x)
        if self._kernel_shape(x) and len({norm.eps for norm in self.norms}) == 1:
            check_training_batch(x.shape[-1])
            out = self._calibrate_kernel(x)
            self.eval()
            return out
        out = self._run(x, calibrate=True)
        self.eval()
        return out


def sequential_copy(network: BatchedValueNetwork, index: int) -> nn.Sequential:
    """Date ``index``'s network as a plain ``nn.Sequential`` with copied weights and statistics.

    The copy maps ``(batch, in_features)`` to ``(batch, 1)``. Used by the tests (batched module ==
    loop of separate networks) and handy for inspection.
    """
    check_int("index", index, minimum=0, maximum=network.n_nets - 1,
              fix=f"pass a date index in [0, {network.n_nets - 1}]")
    layers: list[nn.Module] = []

    def _norm(batched: BatchedBatchNorm) -> nn.BatchNorm1d:
        norm = nn.BatchNorm1d(batched.features, eps=batched.eps, momentum=batched.momentum, affine=batched.affine)
        with torch.no_grad():
            if batched.affine:
                norm.weight.copy_(batched.weight[index])
                norm.bias.copy_(batched.bias[index])
            norm.running_mean.copy_(batched.running_mean[index])
            norm.running_var.copy_(batched.running_var[index])
        return norm

    norms = list(network.norms) if network.batch_norm else []
    if norms:
        layers.append(_norm(norms[0]))
    for position, batched in enumerate(network.linears):
        linear = nn.Linear(batched.weight.shape[2], batched.weight.shape[1], bias=batched.bias is not None)
        with torch.no_grad():
            row = index if batched.weight.shape[0] > 1 else 0  # a shared layer has one row for every net
            linear.weight.copy_(batched.weight[row])
            if batched.bias is not None:
                linear.bias.copy_(batched.bias[row, :, 0])
        layers.append(linear)
        if norms:
            layers.append(_norm(norms[position + 1]))
        if position < len(network.linears) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@torch.no_grad()
def stack_networks(networks: list[BatchedValueNetwork]) -> BatchedValueNetwork:
    """Several batched networks of one shape as *one* module (an extra replica axis, flattened).

    Replica ``r``'s date ``l`` becomes net ``r · L + l`` of the result (``n_nets = R · L``): every
    parameter and batch-norm buffer is the concatenation along the leading axis. Each net is
    independent of the others (batched matmuls, per-channel batch norm), so the stacked module
    computes, on inputs laid out the same way, what each replica computes alone; an elementwise
    optimizer (Adam, SGD) on the stacked parameters with the replicas' losses *summed* takes each
    replica's own steps. Used by :mod:`rl.stopping.replicas` (several seeds trained as one model).
    """
    if not networks:
        raise ValueError("stack_networks needs at least one network; pass a non-empty list")
    first = networks[0]
    if any(network.shared_input for network in networks):
        raise ValueError("networks with a shared input layer cannot be stacked as replicas (their input layer "
                         "would be shared across replicas too); stack networks built with shared_input=False")
    def shape_of(network):
        return (network.n_nets, network.in_features, network.hidden, network.n_hidden, network.batch_norm,
                network.input_affine)

    shape = shape_of(first)
    for network in networks[1:]:
        other = shape_of(network)
        if other != shape:
            raise ValueError(f"networks of different shapes cannot be stacked: {other} vs {shape} "
                             "(n_nets, in_features, hidden, n_hidden, batch_norm, input_affine); stack replicas of "
                             "one shape")
    stacked = BatchedValueNetwork(first.n_nets * len(networks), in_features=first.in_features, hidden=first.hidden,
                                  n_hidden=first.n_hidden, batch_norm=first.batch_norm,
                                  input_affine=first.input_affine)
    stacked.to(next(first.parameters()).device)
    states = [network.state_dict() for network in networks]
    stacked.load_state_dict({key: torch.cat([state[key] for state in states], dim=0) for key in states[0]})
    return stacked


@torch.no_grad()
def unstack_network(stacked: BatchedValueNetwork, replica: int, into: BatchedValueNetwork) -> BatchedValueNetwork:
    """Copy replica ``replica``'s nets of a :func:`stack_networks` module into ``into`` (same shape as
    one replica) and return it."""
    n = into.n_nets
    count = stacked.n_nets // n
    check_int("replica", replica, minimum=0, maximum=count - 1, fix=f"pass a replica index in [0, {count - 1}]")
    into.load_state_dict({key: value[replica * n:(replica + 1) * n].clone()
                          for key, value in stacked.state_dict().items()})
    return into


def use_fused_kernel(module: nn.Module, fused: bool = True) -> nn.Module:
    """Switch every :class:`BatchedValueNetwork` inside ``module`` (a learner's networks, or one network)
    between the fused training kernel and the PyTorch path (``BatchedValueNetwork(fused=...)``); returns
    ``module``. For A/B timings and for debugging with PyTorch's own operators."""
    for sub in module.modules():
        if isinstance(sub, BatchedValueNetwork):
            sub.fused = bool(fused)
    return module
