"""Smoke run of the reproduce stage 60 (Dynkin game, paper figure 7) with shrunken settings."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")


def test_stage_runs_reports_and_flags(tmp_path, monkeypatch):
    from validation.stages import stage_60_dynkin as stage
    from validation.stages._types import StageContext

    monkeypatch.setattr(stage, "QUICK", {"algorithms": ("ml", "dai_dong"), "seeds": 1, "steps": 4, "eval_every": 2,
                                         "eval_paths": 128, "backtest_paths": 40, "figure_paths": 20})
    ctx = StageContext(out_dir=tmp_path, quick=True, seed=0, progress=False, log=lambda message: None)
    output = stage.run(ctx)
    assert output.figures == ["figures/dynkin_figure7a_boundaries.png", "figures/dynkin_figure7b_log_returns.png"]
    for figure in output.figures:
        assert (tmp_path / figure).stat().st_size > 0, figure
    assert "| DSXZ ML | 0 |" in output.report and "| Dai-Dong | 0 |" in output.report
    assert "quick mode, not the acceptance setting" in output.report
    metrics = output.metrics
    json.dumps(metrics, allow_nan=False)  # JSON-safe: missing edges are null, not inf/NaN
    assert metrics["oracle_sell_boundary_t0"] == pytest.approx(-0.44782, abs=2e-4)
    assert metrics["oracle_buy_boundary_t0"] == pytest.approx(-0.35140, abs=2e-4)
    acceptance = metrics["acceptance"]
    assert acceptance["boundary_tolerance"] == 0.02 and acceptance["log_return_tolerance"] == 0.05
    assert acceptance["paper_setting"] is False
    ml = metrics["ml"]
    assert set(ml) >= {"max_sell_boundary_error", "max_buy_boundary_error", "max_boundary_error",
                       "max_log_return_gap", "runs"}
    # the flags follow the errors: pass iff every error is finite and within its tolerance
    error = ml["max_boundary_error"]
    assert acceptance["boundaries_pass"] == (error is not None and error <= 0.02)
    gap = ml["max_log_return_gap"]
    assert acceptance["log_return_pass"] == (gap is not None and gap <= 0.05)
    assert acceptance["passed"] == (acceptance["boundaries_pass"] and acceptance["log_return_pass"])
    assert (tmp_path / "data" / "dynkin_bands.csv").read_text().count("\n") == 3


def test_error_of_a_missing_edge_is_infinite():
    from validation.stages.stage_60_dynkin import _errors

    row = {"sell_boundary_t0": -math.inf, "buy_boundary_t0": -0.35, "oracle_sell_boundary_t0": -0.45,
           "oracle_buy_boundary_t0": -0.35, "mean_log_return_minus_oracle": math.nan}
    assert _errors(row) == (math.inf, 0.0, math.inf)


def test_spec_file_equals_the_kind_defaults():
    """The stage falls back to the kind's defaults without examples/: they must be the paper setting."""
    from validation.experiments import load_spec
    from validation.stages.stage_60_dynkin import SPEC_FILE

    assert load_spec(SPEC_FILE) == load_spec({"kind": "dynkin"})
