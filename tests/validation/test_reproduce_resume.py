"""``pderl reproduce`` folders (issue 12): resumed runs report every stage of the folder, refuse other
settings, name broken records, survive Ctrl-C, are locked and replaced only when pderl wrote them.
Fake stages keep the tests instant."""

from __future__ import annotations

import json
import re
import sys
import types

import pytest

import validation.reproduce as reproduce_module
from rl.runs import RunDirLock
from validation.cli import main
from validation.reproduce import StageOutput, reproduce

FAKE = ["stage_10_alpha", "stage_20_beta", "stage_30_gamma"]


@pytest.fixture
def fake_stages(monkeypatch):
    """Three deterministic stages; ``state["interrupt"]`` names one that raises KeyboardInterrupt."""
    state = {"interrupt": None, "calls": []}
    for module_name in FAKE:
        name = module_name.split("_", 2)[-1]
        module = types.ModuleType(f"validation.stages.{module_name}")
        module.TITLE = f"Stage {name}"

        def run(ctx, name=name):
            state["calls"].append(name)
            if state["interrupt"] == name:
                raise KeyboardInterrupt
            value = (len(name) + ctx.seed) * (0.5 if ctx.quick else 1.0)
            return StageOutput(title=f"Stage {name}", metrics={"value": value}, report=f"{name} = {value}")

        module.run = run
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(reproduce_module, "available_stages", lambda: list(FAKE))
    return state


def _quiet(**kwargs):
    return {"progress": False, "log": lambda message: None, **kwargs}


def _report_without_times(path):
    return re.sub(r"took [0-9.]+ s", "took ? s", path.read_text())


def test_only_then_resume_reports_both_stages(tmp_path, fake_stages):
    out = tmp_path / "R"
    reproduce(out, only=["beta"], **_quiet())
    results = reproduce(out, only=["alpha", "beta"], resume=True, **_quiet())
    assert list(results) == ["alpha", "beta"] and fake_stages["calls"] == ["beta", "alpha"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == ["alpha", "beta"]
    report = (out / "report.md").read_text()
    assert "Mode: quick; seed 0; stages: alpha, beta." in report
    assert "## Stage alpha" in report and "## Stage beta" in report
    assert json.loads((out / "run.json").read_text())["config"]["stages"] == ["alpha", "beta"]


@pytest.mark.parametrize("given, shown", [({"quick": False}, "quick=True"), ({"seed": 5}, "seed=0")])
def test_resume_refuses_other_quick_or_seed(tmp_path, fake_stages, given, shown):
    reproduce(tmp_path / "R", only=["alpha"], **_quiet())
    with pytest.raises(ValueError, match=rf"run.json records .*{shown}") as info:
        reproduce(tmp_path / "R", only=["beta"], resume=True, **_quiet(**given))
    assert "\n" not in str(info.value)
    assert fake_stages["calls"] == ["alpha"]


def test_broken_records_name_their_file(tmp_path, fake_stages, capsys):
    out = tmp_path / "R"
    reproduce(out, only=["alpha"], **_quiet())
    record = out / "stages" / "alpha.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "extra": 1}))
    assert main(["reproduce", "--quick", "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "alpha.json" in err and "extra" in err and err.count("\n") == 1
    record.write_text("{torn")
    with pytest.raises(ValueError, match=r"alpha\.json.*not valid JSON"):
        reproduce(out, resume=True, **_quiet())
    (out / "run.json").write_text("not json")
    with pytest.raises(ValueError, match=r"run\.json.*not valid JSON"):
        reproduce(out, resume=True, **_quiet())


def test_interrupted_stage_reruns_and_the_report_matches_an_uninterrupted_run(tmp_path, fake_stages):
    reproduce(tmp_path / "straight", **_quiet())
    fake_stages["interrupt"] = "beta"
    with pytest.raises(KeyboardInterrupt):
        reproduce(tmp_path / "R", **_quiet())
    assert json.loads((tmp_path / "R" / "metrics.json").read_text()) == {"alpha": {"value": 2.5}}
    fake_stages["interrupt"] = None
    reproduce(tmp_path / "R", resume=True, **_quiet())
    for name in ("metrics.json",):
        assert (tmp_path / "R" / name).read_text() == (tmp_path / "straight" / name).read_text()
    assert _report_without_times(tmp_path / "R" / "report.md") == \
        _report_without_times(tmp_path / "straight" / "report.md")


def test_busy_folder_is_refused_and_force_replaces_only_pderl_folders(tmp_path, fake_stages):
    out = tmp_path / "R"
    reproduce(out, only=["alpha"], **_quiet())
    with RunDirLock(out).acquire():
        with pytest.raises(ValueError, match="in use by another pderl process"):
            reproduce(out, only=["beta"], resume=True, **_quiet())
    reproduce(out, only=["gamma"], force=True, **_quiet())
    assert list(json.loads((out / "metrics.json").read_text())) == ["gamma"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("keep")
    with pytest.raises(ValueError, match="did not write it"):
        reproduce(mine, force=True, **_quiet())
    assert (mine / "notes.md").exists()
