"""Smoke run of the reproduce stage 40 (RL stopping) with shrunken settings."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


def test_stage_runs_and_reports(tmp_path, monkeypatch):
    from validation.reproduce import StageContext
    from validation.stages import stage_40_stopping_rl as stage

    monkeypatch.setattr(stage, "QUICK", {"plan": {"ml": 3}, "eval_paths": 64, "test_paths": 256})
    ctx = StageContext(out_dir=tmp_path, quick=True, seed=0, progress=False, log=lambda message: None)
    output = stage.run(ctx)
    assert "P_stopping relative error" in output.report
    for figure in output.figures:
        assert (tmp_path / figure).stat().st_size > 0, figure
    assert set(output.metrics["ml"]) >= {"p_stopping", "p_control", "min_accuracy", "sigma_learned"}
