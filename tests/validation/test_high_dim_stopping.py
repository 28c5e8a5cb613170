"""validation.high_dim_stopping (issue 17): spec kind, references, evaluation keys and the paper table."""

from __future__ import annotations

import dataclasses

import json

import pytest

pytest.importorskip("torch")

from validation import experiments  # noqa: E402
from validation.cli import main  # noqa: E402
from validation.high_dim_stopping import (basket_paper_values, comparison_table, fbm_paper_values,  # noqa: E402
                                          paper_values)

TINY_BASKET = {"kind": "high_dim_stopping", "model": {"problem": "basket", "dimension": 5},
               "train": {"n_dates": 10, "penalty": 10.0, "batch_size": 64, "steps": 2, "eval_every": 2,
                         "checkpoint_every": 2, "threads": 1},
               "evaluate": {"eval_paths": 256, "test_paths": 512}}


def test_paper_tables_are_complete():
    table = paper_values()
    assert len(table["fbm"]["hurst"]) == len(table["fbm"]["becker"]) == len(table["fbm"]["dong"]) == 20
    assert fbm_paper_values(0.3) == {"paper": 0.360, "dong": 0.364, "becker": 0.370}
    assert fbm_paper_values(0.33) is None
    assert basket_paper_values(40, "main") == {"paper": 6.512, "becker": 6.512, "paper_runtime_s": 1838}
    assert basket_paper_values(200, "variant") == {"paper": 10.795}


def test_spec_schema_and_refusals():
    spec = experiments.load_spec(TINY_BASKET)
    assert spec["model"]["problem"] == "basket" and spec["evaluate"]["reference"] == "oracle"
    with pytest.raises(ValueError, match="unknown key 'sigma'"):
        experiments.load_spec({**TINY_BASKET, "model": {"sigma": 0.2}})
    with pytest.raises(ValueError, match="problem must be one of"):
        experiments.load_spec({**TINY_BASKET, "model": {"problem": "heston"}})
    with pytest.raises(ValueError, match="κΔt"):
        experiments.load_spec(TINY_BASKET, {"train.penalty": 50.0})


def test_shipped_specs_load():
    for name in ("basket_d40", "basket_d80", "basket_d120", "basket_d160", "basket_d200", "fbm"):
        spec = experiments.load_spec(f"examples/{name}.toml")
        assert spec["kind"] == "high_dim_stopping"
    assert experiments.load_spec("examples/basket_d200.toml")["model"]["dimension"] == 200


def _trained_run(tmp_path, spec_text: str, *flags: str):
    """``pderl train stopping`` on the spec ``spec_text`` (a tiny TOML) into ``tmp_path/run``."""
    config = tmp_path / "tiny.toml"
    config.write_text(spec_text)
    run = tmp_path / "run"
    assert main(["train", "stopping", "--config", str(config), *flags, "--out", str(run), "--no-progress",
                 "--json"]) == 0
    return run


def test_cli_train_and_evaluate_report_p_stopping(tmp_path, capsys):
    run = _trained_run(tmp_path, 'kind = "high_dim_stopping"\n[model]\nproblem = "basket"\ndimension = 5\n'
                       '[train]\nn_dates = 10\npenalty = 10.0\nbatch_size = 64\nsteps = 2\neval_every = 2\n'
                       'checkpoint_every = 2\nthreads = 1\n[evaluate]\neval_paths = 256\ntest_paths = 512\n',
                       "--seed", "1")
    capsys.readouterr()
    assert main(["evaluate", "stopping", str(run), "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    for key in ("p_stopping", "p_stopping_stderr", "p_stopping_cv", "reference_price", "bermudan",
                "p_oracle_rule", "p_stopping_minus_oracle_rule"):
        assert key in evaluation, key
    assert evaluation["test_paths"] == 512 and evaluation["step"] == 2
    # the oracle's rule on the same paths is (nearly) the Bermudan price: a 1-D check of the mapping
    assert abs(evaluation["p_oracle_rule"] - evaluation["oracle_p_stopping"]) < 4 * evaluation["p_oracle_rule_stderr"]
    # the learned rule's expected price: the oracle rule's exact value + the same-path difference
    assert evaluation["p_stopping_oracle_cv"] == pytest.approx(
        evaluation["oracle_p_stopping"] + evaluation["p_stopping_minus_oracle_rule"], rel=1e-12)
    assert evaluation["p_stopping_oracle_cv_stderr"] == evaluation["p_stopping_minus_oracle_rule_stderr"]
    assert evaluation["rel_error_stopping_oracle_cv"] == pytest.approx(
        evaluation["p_stopping_oracle_cv"] / evaluation["reference_price"] - 1.0, rel=1e-12)
    table = comparison_table([{**evaluation, "label": "tiny"}])
    assert "| tiny | basket |" in table
    # the same networks executed between the decision dates too: both prices on the same fine paths
    assert main(["evaluate", "stopping", str(run), "--execution-substeps", "3", "--json"]) == 0
    fine = json.loads(capsys.readouterr().out)
    assert fine["bermudan_execution_grid"] > fine["bermudan"] and "p_decision_dates" in fine
    assert abs(fine["p_oracle_rule"] - fine["oracle_p_stopping"]) < 4 * fine["p_oracle_rule_stderr"]
    assert main(["evaluate", "stopping", str(run), "--execution-substeps", "0"]) == 2
    assert "execution_substeps" in capsys.readouterr().err
    assert main(["evaluate", "stopping", str(run), "--antithetic", "--json"]) == 0
    paired = json.loads(capsys.readouterr().out)
    assert paired["test_paths"] == 512 and paired["p_stopping"] != evaluation["p_stopping"]
    # the continuity correction moves the fine grid's rule only; off, the plain interpolated rule
    assert fine["continuity_correction"] is True and evaluation["continuity_correction"] is False  # m = 1: nothing
    assert main(["evaluate", "stopping", str(run), "--execution-substeps", "3", "--no-continuity-correction",
                 "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["continuity_correction"] is False and plain["p_decision_dates"] == fine["p_decision_dates"]
    assert plain["interpolated_oracle_value"] != fine["interpolated_oracle_value"]


def test_evaluation_takes_the_runs_threads_unless_told(tmp_path, monkeypatch):
    import torch

    from validation import experiments

    run = _trained_run(tmp_path, 'kind = "high_dim_stopping"\n[model]\nproblem = "basket"\ndimension = 3\n'
                       '[train]\nn_dates = 4\npenalty = 4.0\nbatch_size = 16\nsteps = 1\neval_every = 0\n'
                       'checkpoint_every = 1\nthreads = 1\n[evaluate]\neval_paths = 32\ntest_paths = 32\n')
    asked = []
    monkeypatch.setattr(torch, "set_num_threads", asked.append)
    experiments.evaluate(run)
    experiments.evaluate(run, threads=2)
    assert asked == [1, 2]
    with pytest.raises(ValueError, match="threads"):
        experiments.evaluate(run, threads=-1)


def test_fbm_reference_is_becker():
    from rl.stopping.high_dim import HighDimStoppingConfig
    from validation.high_dim_stopping import build_reference

    reference = build_reference(HighDimStoppingConfig(problem="fbm", hurst=0.7))
    assert reference["price"] == 0.207 and reference["paper_values"]["dong"] == 0.192


def test_cli_evaluate_adds_the_dual_upper_bound_for_the_fbm_only(tmp_path, capsys):
    run = _trained_run(tmp_path, 'kind = "high_dim_stopping"\n[model]\nproblem = "fbm"\nhurst = 0.3\n'
                       '[train]\nn_dates = 8\npenalty = 8.0\ntemperature = 0.1\nbatch_size = 64\nsteps = 3\n'
                       'eval_every = 0\ncheckpoint_every = 3\nthreads = 1\n[evaluate]\neval_paths = 256\n'
                       'test_paths = 512\n')
    capsys.readouterr()
    assert main(["evaluate", "stopping", str(run), "--dual-paths", "256", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["dual_n_paths"] == 256 and evaluation["dual_inner"] == 64
    assert evaluation["dual_upper"] >= evaluation["dual_lower"]
    assert evaluation["dual_gap"] == pytest.approx(evaluation["dual_upper"] - evaluation["dual_lower"])
    assert main(["evaluate", "stopping", str(run), "--dual-paths", "1"]) == 2
    assert "--dual-paths" in capsys.readouterr().err
    basket = tmp_path / "basket"
    spec = {**TINY_BASKET, "train": {**TINY_BASKET["train"], "steps": 1, "eval_every": 0, "checkpoint_every": 1}}
    experiments.run(spec, out=basket)
    with pytest.raises(ValueError, match="dual_paths=16.*fBm.*basket"):
        experiments.evaluate(basket, dual_paths=16)


def test_interpolated_oracle_value_is_the_oracles_price_on_the_decision_dates_and_rises_with_a_finer_oracle():
    from rl.stopping.high_dim_config import HighDimStoppingConfig
    from validation.high_dim_stopping import basket_oracle, interpolated_oracle_value

    config = HighDimStoppingConfig(dimension=5, n_dates=10, penalty=10.0)
    # m = 1: the rule is the decision-date oracle's own, scored by the grid recursion
    assert interpolated_oracle_value(config) == pytest.approx(basket_oracle(config).p_stopping, abs=2e-4)
    fine = HighDimStoppingConfig(dimension=5, n_dates=10, penalty=10.0, execution_substeps=4,
                                 continuity_correction=False)
    executed = interpolated_oracle_value(fine)
    finer_premium = interpolated_oracle_value(fine, training_substeps=4)
    # executing between the dates gains; a premium of the finer grid gains more, but never beats that grid's oracle
    assert basket_oracle(config).p_stopping < executed < finer_premium <= basket_oracle(fine).p_stopping + 2e-4
    # the continuity correction moves the decision dates' premium to the finer grid's boundary (d = 40, where
    # σ_G = 0.46 makes the Bermudan gap large): it recovers most of the gap to that grid's oracle, and leaves a
    # premium already of the execution grid alone
    wide = HighDimStoppingConfig(dimension=40, n_dates=10, penalty=10.0, execution_substeps=4,
                                 continuity_correction=False)
    plain, oracle_fine = interpolated_oracle_value(wide), basket_oracle(wide).p_stopping  # 6.3948, 6.4700
    corrected = interpolated_oracle_value(dataclasses.replace(wide, continuity_correction=True))  # 6.4640
    assert plain + 0.8 * (oracle_fine - plain) < corrected <= oracle_fine + 2e-4
    assert interpolated_oracle_value(dataclasses.replace(fine, continuity_correction=True),
                                     training_substeps=4) == finer_premium
    with pytest.raises(ValueError, match="problem='basket'"):
        interpolated_oracle_value(HighDimStoppingConfig(problem="fbm"))
    with pytest.raises(ValueError, match="training_substeps"):
        interpolated_oracle_value(config, training_substeps=0)
