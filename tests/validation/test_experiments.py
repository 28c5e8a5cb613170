"""validation.experiments: one spec → learner → Trainer → run folder for every kind (tiny settings).

The CLI is a thin caller of :func:`validation.experiments.run`, so a run from ``pderl train KIND
--config FILE`` with flags and the same run from Python with dotted overrides must write the same
``metrics.jsonl`` (timing fields aside); bad specs are one-line errors naming the key or path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from validation import experiments  # noqa: E402
from tests.validation.test_mm_rl_cli import TINY as MM_CLI_TINY  # noqa: E402
from validation.cli import main  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

STOPPING_TINY = """
kind = "stopping"
[train]
n_steps = 5
penalty = 4.0
batch_size = 32
steps = 4
eval_every = 2
checkpoint_every = 2
threads = 1
[evaluate]
eval_paths = 64
test_paths = 256
"""

MM_TINY = 'kind = "market_making"\n' + MM_CLI_TINY  # the tiny market-making spec of the CLI tests


def _write(tmp_path, text, name="spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _metrics(run_dir) -> list[dict]:
    """metrics.jsonl without its timing fields (wall time differs between identical runs)."""
    records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line]
    return [{k: v for k, v in r.items() if not (k.startswith("time/") or "seconds" in k or "elapsed" in k)}
            for r in records]


# ---------------------------------------------------------------------------------------------- specs
def test_stopping_paper_example_is_the_cli_default():
    """examples/stopping_paper.toml writes out the paper's Table 1, i.e. `pderl train stopping`'s defaults."""
    assert experiments.load_spec(EXAMPLES / "stopping_paper.toml") == experiments.load_spec({"kind": "stopping"})
    spec = experiments.load_spec(EXAMPLES / "stopping_paper.toml")
    assert spec["train"]["steps"] == 1000 and spec["train"]["batch_size"] == 1024
    assert spec["model"] == {"kind": "put", "spot": 40.0, "strike": 40.0, "maturity": 1.0, "volatility": 0.4,
                             "rate": 0.06, "dividend": 0.0}


@pytest.mark.parametrize("name", ["mm_train_one_option.toml", "mm_train_two_options.toml",
                                  "mm_train_ten_options.toml"])
def test_market_making_examples_resolve(name):
    spec = experiments.load_spec(EXAMPLES / name)
    assert spec["kind"] == "market_making" and spec["train"]["steps"] > 0
    json.dumps(spec)  # the resolved spec goes to config.json as plain JSON


def test_overrides_replace_single_keys_and_ints_become_floats():
    spec = experiments.load_spec({"kind": "stopping"}, {"train.steps": 50, "train.seed": 3, "model.strike": 36})
    assert spec["train"]["steps"] == 50 and spec["train"]["seed"] == 3
    assert spec["model"]["strike"] == 36.0 and isinstance(spec["model"]["strike"], float)
    assert spec["train"]["batch_size"] == 1024  # untouched keys keep their defaults


@pytest.mark.parametrize("spec, words", [
    ({"kind": "stopping", "train": {"stepz": 3}}, ["'stepz'", "[train]"]),
    ({"kind": "stopping", "model": {"sigma": 0.3}}, ["'sigma'", "[model]"]),
    ({"kind": "stopping", "numerics": {"n_space": 10}}, ["'n_space'", "[numerics]"]),
    ({"kind": "stopping", "evaluation": {}}, ["'evaluation'"]),
    ({"kind": "market_making", "model": {"preset": "paper"}, "train": {"total_steps": 3}}, ["'total_steps'", "'steps'"]),
    ({"kind": "heston"}, ["'heston'", "kind"]),
    ({"train": {}}, ["kind"]),
], ids=["train", "model", "numerics", "table", "renamed", "unknown-kind", "no-kind"])
def test_unknown_keys_are_named(spec, words):
    with pytest.raises(ValueError) as info:
        experiments.load_spec(spec)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("table, key, value, expected", [
    ("train", "steps", "10", "integer"),
    ("train", "steps", 2.5, "integer"),
    ("train", "batch_norm", 1, "boolean"),
    ("train", "learning_rate", "fast", "number"),
    ("train", "steps", True, "integer"),
    ("model", "kind", 3, "string"),
    ("evaluate", "reference", "oracle", "one of"),
])
def test_wrong_types_are_named(table, key, value, expected):
    with pytest.raises(ValueError) as info:
        experiments.load_spec({"kind": "stopping", table: {key: value}})
    message = str(info.value)
    assert f"[{table}] {key}" in message and expected in message and "\n" not in message


def test_wrong_type_in_a_market_making_spec_is_named():
    with pytest.raises(ValueError, match=r"\[train\] hidden .*integer"):
        experiments.load_spec({"kind": "market_making", "model": {"preset": "paper"}, "train": {"hidden": 8.5}})


@pytest.mark.parametrize("dotted", ["train.stepz", "trian.steps", "steps", "train.steps.more", "model."])
def test_unknown_override_is_named(dotted):
    with pytest.raises(ValueError, match="override"):
        experiments.load_spec({"kind": "stopping"}, {dotted: 1})


def test_override_of_the_wrong_type_is_named():
    with pytest.raises(ValueError, match=r"\[train\] seed"):
        experiments.load_spec({"kind": "stopping"}, {"train.seed": "three"})


def test_bad_files_are_one_line_errors(tmp_path):
    cases = {tmp_path / "missing.toml": "does not exist", tmp_path: "is a directory",
             _write(tmp_path, "[train\nsteps = 3\n", "broken.toml"): "not valid TOML"}
    for path, words in cases.items():
        with pytest.raises(ValueError) as info:
            experiments.load_spec(path)
        assert words in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_kind_mismatch_is_refused():
    with pytest.raises(ValueError, match="market_making"):
        experiments.load_spec(EXAMPLES / "mm_train_one_option.toml", kind="stopping")


# ---------------------------------------------------------------------------------------------- CLI errors
@pytest.mark.parametrize("noun", ["stopping", "mm"])
@pytest.mark.parametrize("content, word", [
    (None, "does not exist"),
    ("directory", "is a directory"),
    ("[train\n", "not valid TOML"),
    ("[train]\nhiden = 3\n", "'hiden'"),
    ("[train]\nseed = 'x'\n", "[train] seed"),
], ids=["missing", "directory", "unparsable", "unknown-key", "wrong-type"])
def test_cli_bad_spec_exits_2_with_one_line(tmp_path, capsys, noun, content, word):
    if content is None:
        config = tmp_path / "nothing.toml"
    elif content == "directory":
        config = tmp_path
    else:
        config = _write(tmp_path, content)
    assert main(["train", noun, "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------- runs
def test_cli_and_python_give_identical_stopping_metrics(tmp_path):
    """`pderl train stopping --config F --steps 3 --seed 3` == experiments.run(F, overrides=...)."""
    spec = _write(tmp_path, STOPPING_TINY)
    assert main(["train", "stopping", "--config", str(spec), "--steps", "3", "--seed", "3", "--out",
                 str(tmp_path / "A"), "--no-progress"]) == 0
    summary = experiments.run(spec, out=tmp_path / "B", overrides={"train.steps": 3, "train.seed": 3})
    assert summary["status"] == "completed" and summary["step"] == 3 and summary["kind"] == "stopping"
    first, second = _metrics(tmp_path / "A"), _metrics(tmp_path / "B")
    assert first == second and [r["step"] for r in first] == [0, 2, 3]
    record = json.loads((tmp_path / "A" / "config.json").read_text())
    assert record["spec"]["train"]["seed"] == 3 and record["spec"]["train"]["batch_size"] == 32
    assert record["seed"] == 3 and record["trainer"]["total_steps"] == 3


def test_flags_not_given_leave_the_file(tmp_path):
    spec = _write(tmp_path, STOPPING_TINY.replace("steps = 4", "steps = 2\nseed = 5\nlearning_rate = 0.02"))
    assert main(["train", "stopping", "--config", str(spec), "--out", str(tmp_path / "run"), "--no-progress",
                 "--temperature", "0.5"]) == 0
    train = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]["train"]
    assert (train["seed"], train["learning_rate"], train["steps"], train["batch_size"]) == (5, 0.02, 2, 32)
    assert train["temperature"] == 0.5 and train["algorithm"] == "ml"


def test_resume_continues_to_the_recorded_total(tmp_path, monkeypatch):
    """An interrupted run resumed without a step count ends where the uninterrupted run ends."""
    from rl.stopping.learner import StoppingLearner

    spec = _write(tmp_path, STOPPING_TINY)
    experiments.run(spec, out=tmp_path / "whole")
    original, calls = StoppingLearner.train_step, []

    def interrupted(self, batch):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C during the third step: the trainer checkpoints step 2
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(StoppingLearner, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiments.run(spec, out=tmp_path / "cut")
    monkeypatch.setattr(StoppingLearner, "train_step", original)
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "interrupted"
    summary = experiments.run(None, out=tmp_path / "cut", resume=True)
    assert summary["status"] == "completed" and summary["step"] == 4
    assert _metrics(tmp_path / "cut") == _metrics(tmp_path / "whole")
    # the CLI: --resume without --steps continues to the recorded total; --steps raises it
    assert main(["train", "stopping", "--out", str(tmp_path / "cut"), "--resume", "--no-progress"]) == 0
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["step"] == 4
    assert main(["train", "stopping", "--out", str(tmp_path / "cut"), "--resume", "--steps", "6",
                 "--no-progress"]) == 0
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["step"] == 6
    # the extension is recorded: a later resume without --steps continues to 6, not to the spec's 4
    summary = experiments.run(None, out=tmp_path / "cut", resume=True)
    assert summary["step"] == 6 and summary["spec"]["train"]["steps"] == 6


def test_resume_refuses_a_changed_learner(tmp_path, capsys):
    spec = _write(tmp_path, STOPPING_TINY)
    experiments.run(spec, out=tmp_path / "run")
    assert main(["train", "stopping", "--out", str(tmp_path / "run"), "--resume", "--lr", "0.5",
                 "--no-progress"]) == 2
    assert "differs" in capsys.readouterr().err


def test_load_run_and_evaluate_stopping(tmp_path):
    spec = _write(tmp_path, STOPPING_TINY)
    experiments.run(spec, out=tmp_path / "run")
    learner, record = experiments.load_run(tmp_path / "run")
    assert record["kind"] == "stopping" and record["checkpoint_step"] == 4
    assert learner.config.batch_size == 32 and learner.config.n_steps == 5
    evaluation = experiments.evaluate(tmp_path / "run", test_paths=256)
    assert evaluation["step"] == 4 and evaluation["algorithm"] == "ml" and evaluation["test_paths"] == 256
    assert 0.0 <= evaluation["min_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="not a 'market_making' one"):
        experiments.load_run(tmp_path / "run", kind="market_making")


def test_cli_and_python_give_identical_market_making_metrics(tmp_path, capsys):
    spec = _write(tmp_path, MM_TINY)
    assert main(["train", "mm", "--config", str(spec), "--steps", "3", "--seed", "2", "--out", str(tmp_path / "A"),
                 "--no-progress"]) == 0
    experiments.run(spec, out=tmp_path / "B", overrides={"train.steps": 3, "train.seed": 2})
    assert _metrics(tmp_path / "A") == _metrics(tmp_path / "B")
    assert [r["step"] for r in _metrics(tmp_path / "A")] == [2, 3]
    learner, record = experiments.load_run(tmp_path / "A")
    assert record["kind"] == "market_making" and record["checkpoint_step"] == 3
    assert learner.config.total_steps == 3 and learner.config.seed == 2 and not learner.network.training
    evaluation = experiments.evaluate(tmp_path / "A", paths=20, n_steps=20)
    assert evaluation["reference"] == "grid" and set(evaluation["table"]) >= {"learned", "grid"}
    # --resume without --config reuses the recorded spec (a finished run: nothing left to do)
    capsys.readouterr()
    assert main(["train", "mm", "--out", str(tmp_path / "A"), "--resume", "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 3


def test_old_run_folders_still_load(tmp_path):
    """A run written before experiment specs (no "spec" in config.json) loads from its learner record."""
    spec = _write(tmp_path, STOPPING_TINY)
    experiments.run(spec, out=tmp_path / "run")
    path = tmp_path / "run" / "config.json"
    record = json.loads(path.read_text())
    del record["spec"]
    path.write_text(json.dumps(record))
    learner, loaded = experiments.load_run(tmp_path / "run", reference=None)
    assert loaded["kind"] == "stopping" and learner.config.batch_size == 32
    # resume rebuilds the spec from the learner record and the trainer settings
    summary = experiments.run(None, out=tmp_path / "run", resume=True, overrides={"train.steps": 5})
    assert summary["step"] == 5 and summary["spec"]["train"]["batch_size"] == 32
    assert summary["spec"]["evaluate"]["eval_paths"] == 64


def test_old_market_making_record_gives_its_spec(tmp_path):
    spec_path = _write(tmp_path, MM_TINY)
    experiments.run(spec_path, out=tmp_path / "run")
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    recorded = record.pop("spec")
    record["config_file"] = str(spec_path)
    rebuilt = experiments.load_spec(experiments.KINDS["market_making"].spec_from_record(record))
    assert rebuilt["train"] == recorded["train"] and rebuilt["numerics"] == recorded["numerics"]
    assert experiments.KINDS["market_making"].model(rebuilt) == experiments.KINDS["market_making"].model(recorded)


def test_hand_edited_config_that_no_longer_fits_the_weights_is_one_line(tmp_path, capsys, torch_one_thread):
    """Editing ``hidden`` in a run's config.json made ``evaluate`` crash with a torch size mismatch
    (issue 12): the loader names both files."""
    import json

    run_dir = tmp_path / "run"
    assert main(["train", "stopping", "--steps", "2", "--batch", "64", "--eval-paths", "256", "--out", str(run_dir),
                 "--no-progress"]) == 0
    record = json.loads((run_dir / "config.json").read_text())
    record["learner"]["hidden"] = 7
    record["spec"]["train"]["hidden"] = 7
    (run_dir / "config.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["evaluate", "stopping", str(run_dir), "--test-paths", "1024"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint.pt" in err and "config.json" in err, err
