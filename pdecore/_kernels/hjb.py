"""Numba kernels of the multi-option market-making HJB on the inventory grid (SPEC section 5).

The value θ(t, q) on ``q ∈ {−Q̄..Q̄}^n`` solves the system of ODEs (one per inventory state)

.. math::

    θ_t − \\tfrac{φ}{2} q^\\top ΣΣ^\\top q
      + \\sum_i \\big[ 1_{q_i<Q̄}\\, H^b_i(θ(q+e_i) − θ(q))
                  + 1_{q_i>−Q̄}\\, H^a_i(θ(q−e_i) − θ(q)) \\big] = 0,
    \\qquad θ(T, q) = −\\sum_i c_i q_i^2 .

In time-to-go ``τ = T − t`` this is ``dθ/dτ = F(θ)`` with ``F`` the bracket minus the running penalty,
integrated here by the classical fourth-order Runge–Kutta method. The grid is stored flat in C order
(``index = Σ_i (q_i + Q̄) stride_i``), so the neighbour ``q ± e_i`` is ``index ± stride_i``: one loop
over flat states, no Python loop, no allocation in the time loop.

Hamiltonians (Δ is the value gain of the fill, ``λ = A e^{−kδ}`` the fill rate):

* deterministic (γ = 0): ``H(Δ) = max_{δ∈[δ_min, δ_max]} A e^{−kδ}(δ + Δ)``, attained at
  ``δ* = clip(1/k − Δ, δ_min, δ_max)``. Because ``e^{−k·clip(x)} = clip(e^{−kx})`` (monotone), one
  exponential ``z = e^{kΔ}`` per *edge* ``(q, q+e_i)`` serves the bid at q (gain Δ) and the ask at
  ``q+e_i`` (gain −Δ): ``e^{−kδ^b} = clip(z/e)``, ``e^{−kδ^a} = clip(1/(e z))``.
* exploratory (γ > 0): ``H_γ(Δ) = γ log ∫ exp(A e^{−kδ}(δ+Δ)/γ) dδ`` over the bounded interval, read
  from a table in the variable ``x = z/(1+|z|)``, ``z = (Δ − center)/width`` (fine near the active
  region, coarse in the nearly linear/flat tails) with cubic Hermite interpolation of ``H`` and
  ``dH/dΔ`` (the mean
  fill rate under the Gibbs policy). The tables are built in NumPy by :mod:`pdecore.market_making`.

Stability: the Jacobian of ``F`` is the generator of the controlled Markov chain, whose Gershgorin
disks are centered at ``−R(q)`` with radius ``R(q)`` (``R`` the total fill rate out of q). RK4 is
stable on the disk ``|z + r| ≤ r`` for ``r ≤ 1.39``, so the kernels report ``max Δτ·R`` over all states
and stages, and the facade enforces ``Δτ·R ≤ 1.39``.
"""

from __future__ import annotations

import math

import numpy as np

from pdecore._numba import STATUS_NOT_FINITE, STATUS_OK, njit_kernel

#: Δ outside the range of the exploratory Hamiltonian table (the facade widens the table and retries).
STATUS_TABLE_RANGE = -10

#: Largest r with the disk ``|z + r| ≤ r`` inside the RK4 stability region ``|1+z+z²/2+z³/6+z⁴/24| ≤ 1``.
RK4_DISK_LIMIT = 1.39


@njit_kernel
def hermite_table(delta, center, width, x_start, x_step, values, slopes, rates):
    """Cubic Hermite interpolation of ``H`` tabulated on ``x = z/(1 + |z|)``, ``z = (Δ − center)/width``.

    The rational map sends the whole real line to (−1, 1): uniform x nodes are dense near the active
    region ``|z| ≲ 1`` and spread out (spacing ∝ (1 + |z|)²) in the tails, where ``H`` is nearly
    linear or flat; it costs one division instead of a transcendental function.
    ``values[j] = H(Δ_j)`` at ``x_j = x_start + j·x_step``; ``slopes[j] = dH/dx(x_j)·x_step`` (the
    Δ-derivative times ``width/(1 − |x_j|)²·x_step``, precomputed);
    ``rates[j] = dH/dΔ(Δ_j)``, the mean fill rate. Returns ``(H, rate, ok)``; ``ok`` is False outside
    the table.
    """
    z = (delta - center) / width
    x = z / (1.0 + abs(z))
    position = (x - x_start) / x_step
    j = int(math.floor(position))
    if j < 0 or j >= values.shape[0] - 1:
        return 0.0, 0.0, False
    s = position - j
    s2 = s * s
    s3 = s2 * s
    value = ((2.0 * s3 - 3.0 * s2 + 1.0) * values[j] + (s3 - 2.0 * s2 + s) * slopes[j]
             + (3.0 * s2 - 2.0 * s3) * values[j + 1] + (s3 - s2) * slopes[j + 1])
    # the rate only feeds the stability monitor: linear interpolation is enough
    rate = (1.0 - s) * rates[j] + s * rates[j + 1]
    return value, rate, True


@njit_kernel
def hjb_rhs(theta, strides, max_inventory, running, intensity, decay, spread_low, spread_high,
            exp_low, exp_high, exploratory, table_center, table_width, table_x_start, table_x_step,
            table_values, table_slopes, table_rates, out, rate_work, max_rate, track_rates=True):
    """Right-hand side ``F(θ) = dθ/dτ`` of the inventory-grid HJB (module docstring), in place.

    The loop runs over *edges* ``(q, q + e_i)``: the bid at q gains ``d = θ(q+e_i) − θ(q)`` and the
    ask at ``q + e_i`` gains ``−d``, so one exponential serves both quotes.

    Parameters
    ----------
    theta : (N,) float
        Values on the flat grid.
    strides : (n,) int64
        Flat-index strides of the inventory axes (C order, ``(2Q̄+1)^(n−1−i)``).
    max_inventory : int
        Q̄.
    running : (N,) float
        Running penalty ``(φ/2) qᵀΣΣᵀq``.
    intensity : (n, 2) float
        ``A`` per option; column 0 bid, column 1 ask.
    decay : (n,) float
        ``k`` per option.
    spread_low, spread_high : float
        Spread bounds ``δ_min < δ_max`` (may be ∓inf when not exploratory).
    exp_low, exp_high : (n,) float
        ``e^{−k δ_min}`` and ``e^{−k δ_max}`` (``inf``/``0`` for infinite bounds).
    exploratory : bool
        Use the γ > 0 tables instead of the closed form.
    table_center, table_width, table_x_start, table_x_step : float
        The rational-map grid of the tables (see :func:`hermite_table`).
    table_values, table_slopes, table_rates : (n, 2, M) float
        ``H_γ``, its scaled x-slope and ``dH_γ/dΔ`` per option and side (see :func:`hermite_table`;
        ignored when not exploratory).
    out : (N,) float
        Receives ``F(θ)``.
    rate_work : (N,) float
        Work array: total fill rate out of each state.
    max_rate : (1,) float
        Receives ``max_q`` of the total fill rate (the stability monitor).
    track_rates : bool, default True
        Accumulate the exit rates (False skips that work and leaves ``max_rate`` untouched).

    Returns
    -------
    int
        ``STATUS_OK``, ``STATUS_TABLE_RANGE`` or ``STATUS_NOT_FINITE``.
    """
    n_states = theta.shape[0]
    n_options = strides.shape[0]
    size = 2 * max_inventory + 1
    status = STATUS_OK
    for s in range(n_states):
        out[s] = -running[s]
    if track_rates:
        for s in range(n_states):
            rate_work[s] = 0.0
    for i in range(n_options):
        # the edges (s, s + stride) along axis i are the states whose i-th inventory is below Q̄:
        # blocks of `stride` consecutive flat indices, `size − 1` blocks per hyperplane sweep
        stride = strides[i]
        sweep = stride * size
        k = decay[i]
        inverse_k = 1.0 / k
        a_bid = intensity[i, 0]
        a_ask = intensity[i, 1]
        lower_factor = exp_high[i]
        upper_factor = exp_low[i]
        e2 = math.exp(-2.0)
        for outer in range(n_states // sweep):
            for level in range(size - 1):
                base = outer * sweep + level * stride
                for s in range(base, base + stride):
                    t = s + stride
                    d = theta[t] - theta[s]
                    if exploratory:
                        h_bid, r_bid, ok_bid = hermite_table(d, table_center, table_width, table_x_start,
                                                             table_x_step, table_values[i, 0],
                                                             table_slopes[i, 0], table_rates[i, 0])
                        h_ask, r_ask, ok_ask = hermite_table(-d, table_center, table_width, table_x_start,
                                                             table_x_step, table_values[i, 1],
                                                             table_slopes[i, 1], table_rates[i, 1])
                        if not (ok_bid and ok_ask):
                            status = STATUS_TABLE_RANGE
                        out[s] += h_bid
                        out[t] += h_ask
                        if track_rates:
                            rate_work[s] += r_bid
                            rate_work[t] += r_ask
                    else:
                        # z = e^{kd − 1} = e^{−k(1/k − d)}: the unclipped bid factor; the ask's is e^{−2}/z
                        z = math.exp(k * d - 1.0)
                        factor_bid = min(max(z, lower_factor), upper_factor)
                        factor_ask = min(max(e2 / z, lower_factor), upper_factor)
                        delta_bid = min(max(inverse_k - d, spread_low), spread_high)
                        delta_ask = min(max(inverse_k + d, spread_low), spread_high)
                        rate_bid = a_bid * factor_bid
                        rate_ask = a_ask * factor_ask
                        # δ is always finite (a clipped finite number), so a zero rate adds exactly 0
                        out[s] += rate_bid * (delta_bid + d)
                        out[t] += rate_ask * (delta_ask - d)
                        if track_rates:
                            rate_work[s] += rate_bid
                            rate_work[t] += rate_ask
    largest = 0.0
    for s in range(n_states):
        if track_rates and not (rate_work[s] <= largest):
            largest = rate_work[s]  # a NaN rate also lands here and fails the finiteness check
        if not math.isfinite(out[s]):
            status = STATUS_NOT_FINITE
    if not math.isfinite(largest):
        status = STATUS_NOT_FINITE
    if track_rates:
        max_rate[0] = largest
    return status


#: Δτ·(largest exit rate) exceeded the RK4 stability disk: the facade refines the step and retries.
STATUS_UNSTABLE = -11


@njit_kernel
def hjb_rk4(theta_terminal, strides, max_inventory, running, intensity, decay, spread_low,
            spread_high, exp_low, exp_high, exploratory, table_center, table_width, table_x_start,
            table_x_step, table_values, table_slopes, table_rates, n_time, n_substeps, dt,
            stability_limit, saved, work, monitor):
    """Integrate ``dθ/dτ = F(θ)`` from τ = 0 (θ = terminal) by classical RK4, saving every substep block.

    ``n_time·n_substeps`` steps of size ``dt``; ``saved[j]`` receives θ at ``τ = j·n_substeps·dt``
    (``saved[0]`` the terminal values). The scheme is fourth order in ``dt`` for smooth solutions and
    stable while ``dt·R ≤ stability_limit`` (module docstring), which is checked at every step (with the
    exit rates of its first stage).

    Parameters
    ----------
    (grid and Hamiltonian arguments as in :func:`hjb_rhs`)
    n_time, n_substeps : int
        Saved intervals and RK4 steps per interval.
    dt : float
        RK4 step in τ.
    stability_limit : float
        Largest admissible ``dt·R``; beyond it the kernel stops with ``STATUS_UNSTABLE``.
    saved : (n_time + 1, N) float
        Output.
    work : (7, N) float
        Work arrays (state, four stages, stage input, rates).
    monitor : (4,) float
        Receives ``[max dt·R, RK4 steps taken, saved index reached, largest rate]``.

    Returns
    -------
    int
        ``STATUS_OK`` or the failing status (``STATUS_UNSTABLE``, ``STATUS_TABLE_RANGE``,
        ``STATUS_NOT_FINITE``); ``monitor`` says where it stopped.
    """
    n_states = theta_terminal.shape[0]
    y = work[0]
    k1 = work[1]
    k2 = work[2]
    k3 = work[3]
    k4 = work[4]
    stage = work[5]
    rate_work = work[6]
    rate = np.zeros(1)
    for s in range(n_states):
        y[s] = theta_terminal[s]
        saved[0, s] = y[s]
    largest = 0.0
    steps = 0
    status = STATUS_OK
    monitor[2] = 0.0
    for j in range(n_time):
        for _ in range(n_substeps):
            for stage_index in range(4):
                # classical RK4 stages: k1 = F(y), k2 = F(y + dt/2 k1), k3 = F(y + dt/2 k2), k4 = F(y + dt k3)
                if stage_index == 0:
                    source = y
                    target = k1
                else:
                    previous = k1 if stage_index == 1 else (k2 if stage_index == 2 else k3)
                    weight = dt if stage_index == 3 else 0.5 * dt
                    for s in range(n_states):
                        stage[s] = y[s] + weight * previous[s]
                    source = stage
                    target = k2 if stage_index == 1 else (k3 if stage_index == 2 else k4)
                # the exit rates feed the stability monitor; the first stage's are enough (the
                # other stages are within O(dt) of it), which saves a quarter of the memory traffic
                first = stage_index == 0
                status = hjb_rhs(source, strides, max_inventory, running, intensity, decay,
                                 spread_low, spread_high, exp_low, exp_high, exploratory, table_center,
                                 table_width, table_x_start, table_x_step, table_values, table_slopes,
                                 table_rates, target, rate_work, rate, first)
                if first:
                    largest = max(largest, rate[0])
                    if status == STATUS_OK and dt * largest > stability_limit:
                        status = STATUS_UNSTABLE
                if status != STATUS_OK:
                    break
            if status != STATUS_OK:
                break
            for s in range(n_states):
                y[s] += dt / 6.0 * (k1[s] + 2.0 * k2[s] + 2.0 * k3[s] + k4[s])
            steps += 1
        if status != STATUS_OK:
            break
        for s in range(n_states):
            saved[j + 1, s] = y[s]
        monitor[2] = j + 1.0
    monitor[0] = dt * largest
    monitor[1] = steps
    monitor[3] = largest
    return status


@njit_kernel
def gibbs_moments_kernel(gains, nodes, rate_nodes, temperature, out_values, out_rates, out_spreads):
    """Exploratory Hamiltonian, mean rate and mean spread for each gain (twin:
    :func:`pdecore.market_making.gibbs_moments`).

    For each Δ the exponent ``u_j = λ_j (δ_j + Δ)/γ`` (``λ_j = A e^{−kδ_j}``) is interpolated linearly
    between the uniform nodes and ``e^u`` integrated exactly on each piece:
    ``∫_piece e^u = h e^{a} (e^{d} − 1)/d``, ``d = b − a``, in log-sum-exp form (``a, b ≤ 0`` after
    subtracting the maximum). ``out_rates`` is the exact Δ-derivative of the discrete ``H_γ``;
    ``out_spreads`` the mean of δ under the piecewise-exponential density.

    Returns
    -------
    int
        ``STATUS_OK`` (or ``STATUS_NOT_FINITE``).
    """
    n_nodes = nodes.shape[0]
    step = nodes[1] - nodes[0]
    u = np.empty(n_nodes)
    e = np.empty(n_nodes)
    status = STATUS_OK
    for g in range(gains.shape[0]):
        top = -np.inf
        for j in range(n_nodes):
            u[j] = rate_nodes[j] * (nodes[j] + gains[g]) / temperature
            if u[j] > top:
                top = u[j]
        for j in range(n_nodes):
            # nodes more than 80 below the peak weigh < e^{-80}: treated as 0 (far below rounding)
            e[j] = math.exp(u[j] - top) if u[j] - top > -80.0 else 0.0
        total = 0.0
        rate_sum = 0.0
        spread_sum = 0.0
        for j in range(n_nodes - 1):
            a = u[j] - top
            b = u[j + 1] - top
            if a < -40.0 and b < -40.0:
                # the piece weighs less than e^{-40} of the largest one: below double precision
                continue
            ea = e[j]
            eb = e[j + 1]
            d = b - a
            if abs(d) < 1e-3:
                whole = ea * (1.0 + d / 2.0 + d * d / 6.0 + d * d * d / 24.0)
                first = ea * (0.5 + d / 3.0 + d * d / 8.0 + d * d * d / 30.0)
            else:
                whole = (eb - ea) / d
                first = (eb * (d - 1.0) + ea) / (d * d)
            second = whole - first
            total += whole
            rate_sum += second * rate_nodes[j] + first * rate_nodes[j + 1]
            spread_sum += second * nodes[j] + first * nodes[j + 1]
        out_values[g] = temperature * (top + math.log(step * total))
        out_rates[g] = rate_sum / total
        out_spreads[g] = spread_sum / total
        if not math.isfinite(out_values[g]):
            status = STATUS_NOT_FINITE
    return status
