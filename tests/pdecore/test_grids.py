"""pdecore.grids.concentrated_log_nodes: the kernel's roots against a bisection twin, the snapped node
and its parity (the nested companion grid of the American error estimate)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdecore.grids import concentrated_log_nodes


def _bisection_twin(lower, upper, centers, widths, n_points, background):
    """The nodes without snapping, by 200 bisections per node on the cumulative density F."""
    centers, widths = np.asarray(centers, float), np.asarray(widths, float)

    def peaks(z):
        return np.sum(np.arcsinh((np.asarray(z, float)[..., None] - centers) / widths), axis=-1)

    mass = float(peaks(upper) - peaks(lower)) if centers.size else 0.0
    slope = background / (1.0 - background) * mass / (upper - lower) if mass > 0 else 1.0
    f_lo, f_hi = slope * lower + peaks(lower), slope * upper + peaks(upper)
    target = f_lo + np.linspace(0.0, 1.0, n_points) * (f_hi - f_lo)
    low, high = np.full(n_points, float(lower)), np.full(n_points, float(upper))
    for _ in range(200):
        mid = 0.5 * (low + high)
        below = slope * mid + peaks(mid) < target
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return 0.5 * (low + high)


@settings(max_examples=30, deadline=None)
@given(lower=st.floats(-20.0, -0.01), span=st.floats(0.02, 40.0), n_points=st.integers(5, 400),
       peaks=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(1e-4, 2.0)), max_size=4),
       background=st.floats(0.0, 0.9))
def test_nodes_are_the_roots_of_the_cumulative_density(lower, span, n_points, peaks, background):
    upper = lower + span
    centers = [lower + fraction * span for fraction, _ in peaks]
    widths = [width for _, width in peaks]
    nodes = concentrated_log_nodes(lower, upper, centers, widths, n_points, background=background)
    twin = _bisection_twin(lower, upper, centers, widths, n_points, background)
    assert nodes[0] == lower and nodes[-1] == upper and np.all(np.diff(nodes) > 0)
    assert np.max(np.abs(nodes - twin)) <= 1e-9 * max(1.0, span)


@pytest.mark.parametrize("n_points", [40, 41, 320, 641])
@pytest.mark.parametrize("parity", [0, 1])
def test_snapped_node_has_the_requested_parity(n_points, parity):
    nodes = concentrated_log_nodes(-1.0, 2.2, [0.0, -0.4], [0.12, 0.4], n_points, snap=0.0, snap_parity=parity)
    (index,) = np.flatnonzero(nodes == 0.0)
    assert index % 2 == parity and np.all(np.diff(nodes) > 0)
    # the grid stays smooth across the snapped node (neighbouring spacings within a few per cent)
    ratio = np.diff(nodes)[1:] / np.diff(nodes)[:-1]
    assert np.all(np.abs(np.log(ratio)) < 0.2)
