"""Smoke and error tests of `pderl train/evaluate/validate mm` (tiny trainings)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from validation.cli import main  # noqa: E402

TINY = """
[model]
preset = "paper"
n_options = 1
max_inventory = 10

[numerics]
n_time = 100

[train]
steps = 4
eval_every = 2
checkpoint_every = 2
hidden = 8
layers = 2
batch_paths = 8
paths_every = 2
paths_per_step = 4
n_steps = 10
"""


def _write(tmp_path, text, name="mm.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_train_evaluate_validate_resume(tmp_path, capsys):
    config = _write(tmp_path, TINY)
    run = tmp_path / "run"
    assert main(["train", "mm", "--config", str(config), "--out", str(run), "--no-progress", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["status"] == "completed" and trained["step"] == 4
    assert (run / "checkpoint.pt").exists() and (run / "metrics.jsonl").exists()
    # an existing run folder is refused without --force / --resume
    assert main(["train", "mm", "--config", str(config), "--out", str(run), "--no-progress"]) == 2
    capsys.readouterr()
    assert main(["evaluate", "mm", str(run), "--paths", "50", "--n-steps", "40", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    for key in ("max_spread_error", "pnl_mean", "pnl_std", "pnl_ratio_vs_grid"):
        assert isinstance(evaluation[key], float), key
    assert evaluation["reference"] == "grid"
    assert set(evaluation["table"]) == {"learned", "grid", "quadratic", "constant"}
    out = tmp_path / "figures"
    assert main(["validate", "mm", str(run), "--out", str(out), "--paths", "50", "--n-steps", "40"]) == 0
    capsys.readouterr()
    for name in ("mm_spreads_vs_inventory.png", "mm_spreads_over_time.png", "mm_inventory_paths.png",
                 "mm_pnl_table.md"):
        assert (out / name).exists(), name
    # resuming a finished run with its own config is a no-op that completes
    assert main(["train", "mm", "--config", str(config), "--out", str(run), "--resume", "--no-progress"]) == 0


@pytest.mark.parametrize("text, key", [
    (TINY.replace("hidden = 8", "hiden = 8"), "hiden"),
    (TINY.replace("steps = 4", "steps = -3"), "steps"),
    (TINY.replace("steps = 4", "total_steps = 4"), "total_steps"),
    (TINY.replace("hidden = 8", "hidden = 8.5"), "hidden"),
    (TINY.replace("eval_every = 2", "eval_every = -1"), "eval_every"),
    (TINY.replace("max_inventory = 10", "max_inventory = 10\nspot_price = 3"), "spot_price"),
    (TINY + "\n[training]\nx = 1\n", "training"),
    (TINY.replace("paths_per_step = 4", "paths_per_step = 40"), "paths_per_step"),
], ids=["unknown-train-key", "negative-steps", "old-steps-name", "wrong-type", "negative-eval-every", "unknown-model-key", "unknown-table",
        "inconsistent-batch"])
def test_bad_config_names_the_key(tmp_path, capsys, text, key):
    config = _write(tmp_path, text)
    assert main(["train", "mm", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert key in capsys.readouterr().err


def test_negative_seed_and_missing_run(tmp_path, capsys):
    config = _write(tmp_path, TINY)
    with pytest.raises(SystemExit):
        main(["train", "mm", "--config", str(config), "--out", str(tmp_path / "r"), "--seed", "-1"])
    capsys.readouterr()
    assert main(["evaluate", "mm", str(tmp_path / "nothing")]) == 2
    assert "pderl train mm" in capsys.readouterr().err


@pytest.mark.parametrize("name, baseline", [("mm_train_one_option.toml", "learned"),
                                            ("mm_train_two_options.toml", "learned"),
                                            ("mm_train_ten_options.toml", "riccati")])
def test_shipped_training_configs_load(name, baseline):
    """The example TOMLs are the documented entry points: they must parse into valid settings, and
    the one model-based warm start (ten options) must say so in its [train] table."""
    from pathlib import Path

    from validation.experiments import KINDS, load_spec

    path = Path(__file__).resolve().parents[2] / "examples" / name
    spec = load_spec(path, kind="market_making")
    train, model = KINDS["market_making"].config(spec), KINDS["market_making"].model(spec)
    assert train.baseline == baseline and train.total_steps == spec["train"]["steps"]
    assert model.n_options == {"mm_train_one_option.toml": 1, "mm_train_two_options.toml": 2,
                               "mm_train_ten_options.toml": 10}[name]


def test_reproduce_stage_runs_through_experiments(tmp_path, monkeypatch):
    """Stage 50 with shrunken settings: its run is an experiment spec that `pderl train mm` can replay."""
    from validation.reproduce import StageContext
    from validation.stages import stage_50_mm_rl as stage

    monkeypatch.setattr(stage, "QUICK", {"max_inventory": 10, "steps": 3, "reference_n_time": 50, "pnl_paths": 20,
                                         "pnl_steps": 20, "long_inventory": 5, "path_paths": 5, "two_options": False})
    ctx = StageContext(out_dir=tmp_path, quick=True, seed=0, progress=False, log=lambda message: None)
    output = stage.run(ctx)
    assert output.metrics["training_steps"] == 3 and output.metrics["value_baseline"] == "learned"
    for figure in output.figures:
        assert (tmp_path / figure).stat().st_size > 0, figure
    record = json.loads((tmp_path / "runs" / "mm_one_option" / "config.json").read_text())
    assert record["spec"]["model"] == {"preset": "paper", "n_options": 1, "max_inventory": 10}
    assert record["spec"]["train"]["steps"] == 3 and record["spec"]["train"]["eval_at_start"] is True
