"""Smoke runs of `pderl train|evaluate|validate stopping` and their bad-input errors (tiny settings)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from validation.cli import main  # noqa: E402

TINY = ["--n-steps", "5", "--penalty", "4", "--batch", "32", "--eval-every", "2", "--eval-paths", "64",
        "--checkpoint-every", "2", "--no-progress"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("stopping") / "run"
    code = main(["train", "stopping", "--algo", "ml", "--steps", "3", "--seed", "1", "--out", str(run), *TINY,
                 "--json"])
    assert code == 0
    return run


def test_train_writes_a_run_folder(trained_run):
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "summary.json"):
        assert (trained_run / name).exists(), name
    config = json.loads((trained_run / "config.json").read_text())
    assert config["seed"] == 1 and config["learner"]["algorithm"] == "ml" and config["learner"]["n_steps"] == 5
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == 3


def test_resume_continues_to_more_steps(trained_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    assert main(["train", "stopping", "--steps", "5", "--out", str(run), "--resume", "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["step"] == 5


def test_evaluate_and_validate(trained_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["evaluate", "stopping", str(trained_run), "--test-paths", "512", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    for key in ("p_stopping", "p_control", "rel_error_stopping", "rel_error_control", "min_accuracy", "min_accuracy_vi",
                "sigma_learned"):
        assert key in payload and isinstance(payload[key], float), key
    assert 0.0 <= payload["min_accuracy"] <= 1.0 and 0.0 <= payload["min_accuracy_vi"] <= 1.0
    out = tmp_path / "figures"
    assert main(["validate", "stopping", str(trained_run), "--out", str(out), "--test-paths", "512"]) == 0
    for name in ("premium_curves.png", "decisions.png", "learning_curves.png", "volatility.png", "comparison.md"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.parametrize("extra, match", [
    (["--algo", "sarsa"], "--algo"),
    (["--batch", "0"], "--batch"),
    (["--steps", "0"], "--steps"),
    (["--penalty", "40"], "penalty"),      # κΔt = 40 · 0.2 > 1
])
def test_bad_input_is_a_clear_error(tmp_path, capsys, extra, match):
    args = ["train", "stopping", "--out", str(tmp_path / "bad"), *TINY, "--steps", "1", *extra]
    assert main(args) == 2
    assert match in capsys.readouterr().err


def test_existing_run_folder_needs_force(trained_run, capsys):
    assert main(["train", "stopping", "--steps", "1", "--out", str(trained_run), *TINY]) == 2
    assert "--force" in capsys.readouterr().err


def test_half_rule_warning_is_printed(tmp_path, capsys):
    assert main(["train", "stopping", "--steps", "1", "--temperature", "4", "--out", str(tmp_path / "warm"),
                 *TINY]) == 0
    assert "never exercise" in capsys.readouterr().err


def test_evaluate_refuses_a_folder_without_run(tmp_path, capsys):
    assert main(["evaluate", "stopping", str(tmp_path)]) == 2
    assert "not a finished" in capsys.readouterr().err
