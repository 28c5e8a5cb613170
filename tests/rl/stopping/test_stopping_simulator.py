"""GBM simulator: moments match the model, paths are reproducible, bad input is refused."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from pdecore.params import AmericanOption, BlackScholes  # noqa: E402
from rl.stopping.simulator import GBMSimulator  # noqa: E402

MODEL = BlackScholes(volatility=0.4, rate=0.06, dividend=0.01)
OPTION = AmericanOption("put", 40.0, 1.0)


@pytest.mark.parametrize("scheme", ["exact", "euler"])
def test_moments_match_gbm(scheme):
    sim = GBMSimulator(MODEL, OPTION, spot=40.0, n_steps=10, scheme=scheme)
    paths = sim.sample(200_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert paths.shape == (200_000, 11) and torch.all(paths[:, 0] == 40.0)
    times = sim.times(dtype=torch.float64)
    mean = paths.mean(dim=0)
    expected_mean = 40.0 * torch.exp(MODEL.carry * times)
    # E[X_t] = X_0 e^{(r−q)t} holds exactly for both schemes; 5 standard errors
    stderr = paths.std(dim=0) / math.sqrt(paths.shape[0])
    assert torch.all((mean - expected_mean).abs() <= 5 * stderr + 1e-12), (mean - expected_mean) / stderr
    if scheme == "exact":
        log_returns = torch.log(paths[:, 1:] / paths[:, :-1])
        dt = sim.dt
        assert log_returns.mean().item() == pytest.approx((MODEL.carry - 0.5 * 0.16) * dt, abs=3e-4)
        assert log_returns.var().item() == pytest.approx(0.16 * dt, rel=5e-3)
        # E[X_T²] = X_0² e^{(2(r−q) + σ²)T}
        second = paths[:, -1].square().mean().item()
        assert second == pytest.approx(1600.0 * math.exp(2 * MODEL.carry + 0.16), rel=1e-2)
    else:
        # Euler: Var of the one-step factor is σ²Δt exactly
        factors = paths[:, 1:] / paths[:, :-1]
        assert factors.var().item() == pytest.approx(0.16 * sim.dt, rel=5e-3)


def test_same_generator_same_paths_and_float32():
    sim = GBMSimulator(MODEL, OPTION, spot=40.0, n_steps=50)
    a = sim.sample(64, torch.Generator().manual_seed(5))
    b = sim.sample(64, torch.Generator().manual_seed(5))
    assert a.dtype == torch.float32 and torch.equal(a, b)


@pytest.mark.parametrize("kwargs, match", [
    ({"spot": -1.0}, "spot"),
    ({"n_steps": 0}, "n_steps"),
    ({"scheme": "milstein"}, "scheme"),
])
def test_bad_simulator_input(kwargs, match):
    settings = {"spot": 40.0, "n_steps": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        GBMSimulator(MODEL, OPTION, **settings)


def test_bad_model_type_and_path_count():
    with pytest.raises(ValueError, match="BlackScholes"):
        GBMSimulator("market", OPTION, spot=40.0, n_steps=5)
    sim = GBMSimulator(MODEL, OPTION, spot=40.0, n_steps=5)
    with pytest.raises(ValueError, match="n_paths"):
        sim.sample(0, torch.Generator())
