"""Smoke run of the reproduce stage 70 (high-dimensional stopping, issue 17) with shrunken settings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")


def test_stage_runs_reports_and_flags(tmp_path, monkeypatch):
    from validation.stages import stage_70_high_dim_stopping as stage
    from validation.stages._types import StageContext

    monkeypatch.setattr(stage, "QUICK", {"dimensions": (40,), "basket_steps": 3, "basket_test_paths": 512,
                                         "basket_execution_substeps": 2,
                                         "hursts": (0.3,), "fbm_steps": 3, "fbm_test_paths": 512, "eval_paths": 256,
                                         "decision_paths": 40, "fbm_dual_paths": 64})
    ctx = StageContext(out_dir=tmp_path, quick=True, seed=0, progress=False, log=lambda message: None)
    output = stage.run(ctx)
    assert output.figures == ["figures/high_dim_basket_prices.png", "figures/high_dim_basket_decisions.png",
                              "figures/high_dim_fbm_values.png"]
    for figure in output.figures:
        assert (tmp_path / figure).stat().st_size > 0, figure
    metrics = output.metrics
    json.dumps(metrics, allow_nan=False)
    basket = metrics["basket"]["d40"]
    assert basket["reference_price"] == pytest.approx(6.545213, abs=2e-5)  # SPEC / QuantLib QD+
    assert basket["bermudan"] == pytest.approx(6.5149, abs=2e-4)
    assert basket["tolerance"] == 0.005
    assert basket["execution_substeps"] == 2 and basket["antithetic_test_paths"] is True  # quick grid, spec pairs
    assert basket["bermudan_execution_grid"] == pytest.approx(6.5300, abs=2e-4)  # 201 dates
    # the decision-date premium interpolated on the 201 dates: between the two Bermudan prices
    assert basket["bermudan"] < basket["interpolated_oracle_value"] < basket["bermudan_execution_grid"]
    fbm = metrics["fbm"]["h030"]
    assert fbm["becker_value"] == 0.370 and fbm["paper_value"] == 0.360
    assert fbm["dual_gap"] >= 0.0 and fbm["dual_upper"] == pytest.approx(fbm["dual_lower"] + fbm["dual_gap"])
    assert basket["p_stopping_oracle_cv"] == pytest.approx(basket["oracle_p_stopping"]
                                                           + basket["p_stopping_minus_oracle_rule"])
    acceptance = metrics["acceptance"]
    assert acceptance["paper_setting"] is False
    assert acceptance["expected_price_failed"] == ([] if basket["within_tolerance_oracle_cv"] else ["d = 40"])
    assert acceptance["passed"] == (basket["within_tolerance"] and fbm["within_tolerance"])
    assert 0.0 <= metrics["basket_decisions"]["mean_agreement"] <= 1.0
    assert "quick mode, not the acceptance setting" in output.report
    assert "| 40 |" in output.report and "| 0.3 |" in output.report
    assert "64 inner draws per date on 64 fresh outer paths" in output.report
    assert (tmp_path / "data" / "high_dim_stopping.csv").read_text().count("\n") == 3


@pytest.mark.parametrize("name", ["BASKET_SPEC", "FBM_SPEC"])
def test_spec_fallbacks_equal_the_shipped_files(name):
    """Without examples/ the stage trains from mappings: they must be the shipped specs."""
    from validation.experiments import load_spec
    from validation.stages import stage_70_high_dim_stopping as stage

    path = getattr(stage, name)
    assert load_spec(path) == load_spec(stage.SPEC_FALLBACKS[path])
