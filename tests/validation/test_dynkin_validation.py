"""validation.dynkin (issue 13): reference, evaluation keys, common-random-number backtest, figures."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from rl.dynkin import DynkinConfig, DynkinLearner  # noqa: E402
from validation.dynkin import (band_strategy, build_reference, evaluate, figure_boundaries,  # noqa: E402
                               figure_log_returns)

KEYS = {"sell_boundary_t0", "buy_boundary_t0", "oracle_sell_boundary_t0", "oracle_buy_boundary_t0",
        "vi_sell_boundary_t0", "vi_buy_boundary_t0", "mean_log_return", "mean_log_return_stderr",
        "oracle_mean_log_return", "buy_and_hold_mean_log_return"}


@pytest.fixture(scope="module")
def reference():
    return build_reference(DynkinConfig(), vi=False)


def test_reference_is_the_oracle_at_the_run_setting(reference):
    assert reference.oracle_band == pytest.approx((-0.44782, -0.35140), abs=2e-4)
    assert all(math.isnan(v) for v in reference.vi_band)


def test_evaluate_keys_and_common_random_numbers(reference):
    learner = DynkinLearner(DynkinConfig(batch_size=64, eval_paths=256, hidden=8, eval_grid=101))
    result = evaluate(learner, reference, years=2.0, paths=400, band=reference.oracle_band)
    assert KEYS <= set(result)
    # the oracle band evaluated as the "learned" one: identical paths, identical returns
    assert result["mean_log_return"] == result["oracle_mean_log_return"]
    assert result["mean_log_return_minus_oracle"] == 0.0
    assert result["mean_log_return_stderr"] > 0
    assert result["merton_growth"] == pytest.approx(2.0 * DynkinConfig().model().merton_growth_rate)
    untrained = evaluate(learner, reference, years=2.0, paths=400)  # whatever the untrained networks give
    assert KEYS <= set(untrained)


def test_band_strategy_edge_cases():
    assert band_strategy("a", math.nan, -0.3, 0.005) is None
    assert band_strategy("a", -0.2, -0.3, 0.005) is None
    assert band_strategy("a", -0.999, -0.3, 0.005) is None  # beyond insolvency
    assert band_strategy("a", -math.inf, math.inf, 0.005) is None
    one_sided = band_strategy("a", -0.45, math.inf, 0.005)
    assert one_sided.start == -0.45
    assert band_strategy("a", -0.45, -0.35, 0.005).start == -0.35


def test_figures_from_records(tmp_path, reference):
    runs = [[{"step": s, "sell_boundary_t0": -0.46 + 0.001 * k + s * 1e-5, "buy_boundary_t0": -0.34 - s * 1e-5}
             for s in (0, 100, 200)] for k in range(2)]
    figure_boundaries({"DSXZ": runs}, reference, out=tmp_path / "fig7a.png")
    figure_log_returns({"DSXZ": runs}, DynkinConfig(), reference, out=tmp_path / "fig7b.png", years=1.0, paths=50)
    assert (tmp_path / "fig7a.png").stat().st_size > 0 and (tmp_path / "fig7b.png").stat().st_size > 0


def test_example_spec_is_the_paper_setting():
    from pathlib import Path

    from validation.configs import read_toml
    from validation.dynkin import config_from_spec

    spec = read_toml(Path(__file__).resolve().parents[2] / "examples" / "dynkin_paper.toml")
    config, trainer, numerics, backtest = config_from_spec(spec)
    assert spec["kind"] == "dynkin"
    assert (config.n_steps, config.penalty, config.temperature) == (10, 5.0, 0.01)
    assert config == DynkinConfig()  # the example writes out the defaults
    assert trainer["steps"] == 15000 and backtest["backtest_years"] == 20.0 and numerics["nodes_per_std"] == 16.0
    with pytest.raises(ValueError, match="unknown keys"):
        config_from_spec({**spec, "train": {**spec["train"], "alpha": 1}})


def test_evaluate_bands_is_evaluate_per_band_on_one_backtest(reference):
    """Several bands in one backtest give exactly what one evaluate() per band gives (same paths)."""
    from validation.dynkin import evaluate_bands

    config = DynkinConfig(batch_size=64, eval_paths=256, hidden=8, eval_grid=101)
    learner = DynkinLearner(config)
    bands = {"a": (-0.46, -0.34), "b": (-0.50, -0.30), "none": (math.nan, math.nan)}
    together = evaluate_bands(config, reference, bands, years=2.0, paths=300)
    for name, band in bands.items():
        alone = evaluate(learner, reference, years=2.0, paths=300, band=band)
        assert together[name].keys() == alone.keys()
        for key, value in alone.items():
            assert (value == together[name][key]) or (value != value and together[name][key] != together[name][key]), key
    with pytest.raises(ValueError, match="oracle"):
        evaluate_bands(config, reference, {"oracle": (-0.4, -0.3)}, years=1.0, paths=10)


def test_figure_7a_shades_the_acceptance_tolerance(tmp_path, reference):
    runs = [[{"step": s, "sell_boundary_t0": -0.46, "buy_boundary_t0": -0.34} for s in (0, 100)]]
    ax = figure_boundaries({"DSXZ": runs}, reference, tolerance=0.02)
    assert ax.get_ylabel().startswith("t = 0 boundary") and "training step" in ax.get_xlabel()
    assert any(text.get_text() == "oracle ± 0.02" for text in ax.get_legend().get_texts())


def test_study_grid_sweep_file_is_the_papers_table():
    """examples/study_dynkin_grid.toml: 3 λ × 4 lr × 2 algorithms × 10 seeds at the paper setting."""
    from pathlib import Path

    from validation.sweeps import load_sweep

    sweep = load_sweep(Path(__file__).resolve().parents[2] / "examples" / "study_dynkin_grid.toml")
    assert len(sweep.points) == 240
    seen = {(p.spec["train"]["algorithm"], p.spec["train"]["temperature"], p.spec["train"]["learning_rate"])
            for p in sweep.points}
    assert seen == {(a, t, lr) for a in ("ml", "dai_dong") for t in (1e-2, 1e-4, 1e-6)
                    for lr in (0.1, 0.05, 0.01, 0.005)}
    point = sweep.points[0].spec
    assert (point["train"]["steps"], point["train"]["n_steps"], point["train"]["penalty"]) == (15000, 10, 5.0)
    assert point["evaluate"]["backtest_paths"] == 10000 and sweep.options["evaluate"] is True
    assert "evaluate/max_abs_boundary_error" in sweep.options["metrics"]
