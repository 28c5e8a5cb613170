"""``pderl train|evaluate|validate dynkin`` through the experiment layer (kind = "dynkin"), at tiny sizes."""

from __future__ import annotations

import json

import pytest

from validation import experiments
from validation.cli import main

TINY = ["--steps", "3", "--batch", "64", "--no-progress"]


def test_spec_defaults_are_the_paper_setting():
    spec = experiments.load_spec({"kind": "dynkin"})
    assert spec["train"]["n_steps"] == 10 and spec["train"]["penalty"] == 5.0
    assert spec["train"]["temperature"] == 1e-2 and spec["train"]["steps"] == 15000
    assert spec["evaluate"]["backtest_years"] == 20.0
    shipped = experiments.load_spec("examples/dynkin_paper.toml")
    assert shipped["model"] == spec["model"] and shipped["train"]["algorithm"] == "ml"


@pytest.mark.parametrize("overrides, word", [({"train.penalty": 50.0}, "penalty"),
                                             ({"train.temperature": 0.0}, "temperature"),
                                             ({"model.cost": 1.0}, "cost"),
                                             ({"train.bogus": 1}, "bogus"),
                                             ({"numerics.n_std": -1.0}, "n_std")])
def test_bad_dynkin_specs_are_named(overrides, word):
    with pytest.raises(ValueError, match=word):
        experiments.load_spec({"kind": "dynkin"}, overrides)


def test_train_evaluate_validate(tmp_path, capsys, torch_one_thread):
    run = tmp_path / "run"
    assert main(["train", "dynkin", *TINY, "--seed", "1", "--out", str(run), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["status"] == "completed" and trained["steps"] == 3
    assert main(["evaluate", "dynkin", str(run), "--paths", "64", "--years", "1", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    for key in ("sell_boundary_t0", "buy_boundary_t0", "oracle_sell_boundary_t0", "oracle_buy_boundary_t0",
                "vi_sell_boundary_t0", "vi_buy_boundary_t0", "mean_log_return", "mean_log_return_stderr",
                "oracle_mean_log_return", "buy_and_hold_mean_log_return"):
        assert key in evaluation, key
    assert evaluation["sell_boundary_t0"] == trained["sell_boundary_t0"]
    assert evaluation["oracle_sell_boundary_t0"] < evaluation["oracle_buy_boundary_t0"]
    figures = tmp_path / "figures"
    assert main(["validate", "dynkin", str(run), "--out", str(figures), "--paths", "32", "--years", "1",
                 "--json"]) == 0
    assert (figures / "figure7a_boundaries.png").is_file() and (figures / "figure7b_log_returns.png").is_file()


def test_resume_is_bit_exact(tmp_path, capsys, torch_one_thread):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "dynkin", *TINY, "--out", str(straight)]) == 0
    assert main(["train", "dynkin", "--steps", "2", "--batch", "64", "--no-progress", "--out", str(split)]) == 0
    assert main(["train", "dynkin", "--steps", "3", "--no-progress", "--out", str(split), "--resume"]) == 0
    capsys.readouterr()
    a, _ = experiments.load_run(straight)
    b, _ = experiments.load_run(split)
    for (name, x), (_, y) in zip(a.state_dict()["net"].items(), b.state_dict()["net"].items()):
        assert (x == y).all(), name
