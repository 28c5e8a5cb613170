"""Slow NumPy/SciPy twins of the market-making HJB kernels, and the linear closed form (SPEC section 5).

* :func:`gibbs_density_reference` — every moment of the Gibbs spread density at one Δ by a
  brute-force trapezoidal rule on a fine grid (twin of :mod:`pdecore.gibbs`: a different rule, so
  agreement checks the exponential-linear rule itself, not a copy of it).
* :func:`hamiltonian_reference` — the Hamiltonians written without the edge trick: the γ = 0 argmax
  by its closed form, the γ > 0 log-partition by the direct exponential-linear rule (no table).
* :func:`rhs_reference` — ``F(θ)`` on the n-dimensional array with NumPy slicing along each axis.
* :func:`solve_reference` — the same RK4 time stepping in NumPy (twin of ``hjb_rk4``).
* :func:`closed_form_values` — the exact solution for one common decay k, unbounded spreads and
  γ = 0: ``ω = e^{kθ}`` solves the *linear* system

  .. math::

      ω_t − \\tfrac{kφ}{2} q^\\top ΣΣ^\\top q\\, ω
        + \\sum_i \\big[1_{q_i<Q̄}\\tfrac{A^b_i}{e} ω(q+e_i)
                   + 1_{q_i>−Q̄}\\tfrac{A^a_i}{e} ω(q−e_i)\\big] = 0,

  because ``H(Δ) = (A/(ek)) e^{kΔ}`` when the argmax ``1/k − Δ`` is never clipped, so
  ``ω(T − τ) = expm(Mτ) ω(T)`` (``scipy.sparse.linalg.expm_multiply``) for any n
  (Guéant, Lehalle & Fernandez-Tapia 2013 for n = 1; SPEC section 5 for n options).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply

from pdecore.gibbs import deterministic_quotes, gibbs_moments
from pdecore.inventory_grid import inventory_mesh, inventory_strides
from pdecore.market_making_params import MarketMakingModel


def gibbs_density_reference(delta: float, intensity: float, decay: float, temperature: float,
                            bounds: tuple[float, float], *, n_quadrature: int = 20001) -> dict[str, float]:
    """Moments of the Gibbs density at one Δ by brute-force trapezoidal quadrature (slow twin).

    Computes ``π ∝ exp(A e^{−kδ}(δ + Δ)/γ)`` on ``[δ_min, δ_max]`` with ``n_quadrature`` nodes and the
    log-sum-exp trick, and returns ``mean_spread``, ``rate`` (``E λ``), ``income`` (``E λδ``),
    ``entropy`` (``−∫π log π``) and ``hamiltonian`` (``γ log ∫ exp(f/γ)``). Used by the tests to check
    :func:`pdecore.gibbs.gibbs_moments`, :func:`pdecore.gibbs.gibbs_policy_moments` and the RL table.
    """
    low, high = bounds
    spreads = np.linspace(low, high, n_quadrature)
    rate = intensity * np.exp(-decay * spreads)
    log_density = rate * (spreads + delta) / temperature
    shift = log_density.max()
    weights = np.full(n_quadrature, (high - low) / (n_quadrature - 1))
    weights[[0, -1]] *= 0.5
    unnormalized = np.exp(log_density - shift)
    mass = float(np.sum(weights * unnormalized))
    density = unnormalized / mass
    log_norm = math.log(mass) + shift
    mean = float(np.sum(weights * density * spreads))
    expected_rate = float(np.sum(weights * density * rate))
    income = float(np.sum(weights * density * rate * spreads))
    entropy = float(-np.sum(weights * density * (log_density - log_norm)))
    return {"mean_spread": mean, "rate": expected_rate, "income": income, "entropy": entropy,
            "hamiltonian": temperature * log_norm}


def hamiltonian_reference(gain, intensity, decay, temperature, low, high, n_quadrature=1024):
    """``H(Δ)`` (γ = 0, closed-form argmax) or ``H_γ(Δ)`` (direct exponential-linear rule)."""
    if temperature > 0.0:
        return gibbs_moments(gain, intensity, decay, temperature, low, high, n_quadrature)[0]
    return deterministic_quotes(gain, intensity, decay, low, high)[2]


def _inventory_axes(model: MarketMakingModel):
    return inventory_mesh(model.n_options, model.max_inventory)


def rhs_reference(theta, model: MarketMakingModel, n_quadrature=1024):
    """``F(θ) = dθ/dτ`` on the n-dimensional inventory array ``theta`` (shape ``(2Q̄+1,)*n``)."""
    inventories = _inventory_axes(model)
    q = np.stack(inventories, axis=-1).astype(float)
    cov = model.noise_cov_array()
    out = -0.5 * model.risk_aversion * np.einsum("...i,ij,...j->...", q, cov, q)
    bids, asks, decays = model.intensity_bid_array(), model.intensity_ask_array(), model.decay_array()
    low, high = model.spread_bounds
    for i in range(model.n_options):
        upper = [slice(None)] * theta.ndim
        lower = [slice(None)] * theta.ndim
        upper[i], lower[i] = slice(1, None), slice(None, -1)
        upper, lower = tuple(upper), tuple(lower)
        # bid at q (q_i < Q̄): gain θ(q + e_i) − θ(q); ask at q (q_i > −Q̄): gain θ(q − e_i) − θ(q)
        out[lower] += hamiltonian_reference(theta[upper] - theta[lower], bids[i], decays[i],
                                            model.temperature, low, high, n_quadrature)
        out[upper] += hamiltonian_reference(theta[lower] - theta[upper], asks[i], decays[i],
                                            model.temperature, low, high, n_quadrature)
    return out


def solve_reference(model: MarketMakingModel, n_time: int, n_substeps: int = 1, terminal_coeffs=None,
                    n_quadrature=1024):
    """Classical RK4 in τ = T − t with NumPy (twin of ``hjb_rk4``); values at calendar times, ascending.

    Returns ``(times, values)`` with ``values.shape == (n_time + 1,) + (2Q̄+1,)*n``.
    """
    coeffs = model.terminal_coefficients() if terminal_coeffs is None else np.asarray(terminal_coeffs, float)
    inventories = _inventory_axes(model)
    theta = -sum(c * q.astype(float) ** 2 for c, q in zip(coeffs, inventories))
    dt = model.horizon / (n_time * n_substeps)
    saved = [theta.copy()]
    for _ in range(n_time):
        for _ in range(n_substeps):
            k1 = rhs_reference(theta, model, n_quadrature)
            k2 = rhs_reference(theta + 0.5 * dt * k1, model, n_quadrature)
            k3 = rhs_reference(theta + 0.5 * dt * k2, model, n_quadrature)
            k4 = rhs_reference(theta + dt * k3, model, n_quadrature)
            theta = theta + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        saved.append(theta.copy())
    return np.linspace(0.0, model.horizon, n_time + 1), np.stack(saved[::-1])


def generator_matrix(model: MarketMakingModel) -> sp.csr_matrix:
    """Sparse ``M`` of ``dω/dτ = M ω`` (module docstring), on the flat C-order grid."""
    decay = model.decay_array()
    if not np.allclose(decay, decay[0], rtol=0, atol=0):
        raise ValueError(f"the closed form needs one common decay k, got {decay.tolist()}")
    k = float(decay[0])
    size = 2 * model.max_inventory + 1
    n = model.n_options
    inventories = [q.reshape(-1) for q in _inventory_axes(model)]
    q = np.stack(inventories, axis=1).astype(float)
    n_states = size**n
    diagonal = -0.5 * k * model.risk_aversion * np.einsum("si,ij,sj->s", q, model.noise_cov_array(), q)
    matrix = sp.diags(diagonal).tocsr()
    bids, asks = model.intensity_bid_array(), model.intensity_ask_array()
    index = np.arange(n_states)
    strides = inventory_strides(n, model.max_inventory)
    for i in range(n):
        stride = strides[i]
        up = inventories[i] < model.max_inventory
        down = inventories[i] > -model.max_inventory
        rows = np.concatenate([index[up], index[down]])
        cols = np.concatenate([index[up] + stride, index[down] - stride])
        vals = np.concatenate([np.full(up.sum(), bids[i] / math.e), np.full(down.sum(), asks[i] / math.e)])
        matrix = matrix + sp.csr_matrix((vals, (rows, cols)), shape=(n_states, n_states))
    return matrix.tocsr()


def closed_form_values(model: MarketMakingModel, times, terminal_coeffs=None) -> np.ndarray:
    """Exact θ(t, ·) at calendar ``times`` for a common k, unbounded spreads and γ = 0.

    Returns an array ``(len(times),) + (2Q̄+1,)*n``. Raises ``ValueError`` if the model is outside
    the closed form's assumptions.
    """
    low, high = model.spread_bounds
    if model.temperature != 0.0 or math.isfinite(low) or math.isfinite(high):
        raise ValueError("the closed form needs temperature=0 and spread_bounds=(-inf, inf)")
    coeffs = model.terminal_coefficients() if terminal_coeffs is None else np.asarray(terminal_coeffs, float)
    k = float(model.decay_array()[0])
    matrix = generator_matrix(model)
    inventories = [q.reshape(-1).astype(float) for q in _inventory_axes(model)]
    theta_terminal = -sum(c * q**2 for c, q in zip(coeffs, inventories))
    omega_terminal = np.exp(k * theta_terminal)
    shape = (2 * model.max_inventory + 1,) * model.n_options
    out = []
    for t in np.atleast_1d(times):
        omega = expm_multiply(matrix * (model.horizon - float(t)), omega_terminal)
        out.append(np.log(omega).reshape(shape) / k)
    return np.stack(out)
