"""Issue 12: nothing lost, nothing run that should not be — checkpoints load as weights only, run
folders are locked, Ctrl-C checkpoints only at step boundaries, resume continues the recorded run."""

from __future__ import annotations

import json
import pickle

import pytest

torch = pytest.importorskip("torch")

from rl.runs import load_checkpoint  # noqa: E402
from rl.trainer import Trainer  # noqa: E402
from tests.rl.test_trainer import ToyRegression, _weights  # noqa: E402


class _CreatesFile:
    """Unpickling this object would call ``open(path, "w")``: a stand-in for any code a payload runs."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _settings(**kwargs):
    return {"total_steps": 4, "eval_every": 2, "checkpoint_every": 2, "seed": 0, "progress": False, **kwargs}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle"])
def test_crafted_checkpoint_is_refused_without_running_code(tmp_path, container):
    Trainer(ToyRegression(), tmp_path / "run", **_settings()).fit()
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    created = tmp_path / "pwned"
    payload = {"step": 2, "learner": {"net": _CreatesFile(created)}}
    if container == "torch-zip":
        torch.save(payload, checkpoint)
    else:
        checkpoint.write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match=r"checkpoint\.pt.*refused") as info:
        load_checkpoint(checkpoint)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"checkpoint\.pt"):
        Trainer(ToyRegression(), tmp_path / "run", resume=True, **_settings(total_steps=6)).fit()
    assert not created.exists()
    # control: the payload is live (unpickled from memory, never from the crafted file): it creates the file
    pickle.loads(pickle.dumps(payload))
    assert created.exists()


def test_truncated_missing_and_foreign_checkpoints_name_the_file(tmp_path):
    Trainer(ToyRegression(), tmp_path / "run", **_settings()).fit()
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"checkpoint\.pt.*truncated") as info:
        load_checkpoint(checkpoint)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"missing\.pt.*does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, checkpoint)
    with pytest.raises(ValueError, match=r"checkpoint\.pt.*not a pderl checkpoint"):
        load_checkpoint(checkpoint)


def test_checkpoint_holds_only_weights_only_types(tmp_path):
    Trainer(ToyRegression(), tmp_path / "run", **_settings()).fit()
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 4 and state["format"] == 2
    assert json.loads(state["config"]) == {"kind": "toy", "seed": 0}


# ---------------------------------------------------------------------------------------- Ctrl-C
class _HalfStep(ToyRegression):
    """Interrupts *inside* ``train_step`` after the optimiser has moved and the generator advanced:
    saving this state under any step counter would break bit-exact resume.

    ``signals`` > 0 delivers that many real SIGINTs mid-step (what Ctrl-C does) instead of raising.
    """

    def __init__(self, at_step: int, signals: int = 0):
        super().__init__()
        self.at_step, self.signals, self.calls = at_step, signals, 0

    def train_step(self, batch):
        import os
        import signal

        diagnostics = super().train_step(batch)
        self.calls += 1
        if self.calls == self.at_step + 1:
            if not self.signals:
                torch.randn(3, generator=self.generator)  # more half-done work
                raise KeyboardInterrupt
            # the optimiser has moved but the trainer's counter has not: from the second SIGINT on,
            # the interrupt lands in a half-done step
            for _ in range(self.signals):
                os.kill(os.getpid(), signal.SIGINT)
        return diagnostics


def _metrics(folder):
    from rl.runs import read_jsonl

    return read_jsonl(folder / "metrics.jsonl")


def _strip_time(records):
    return [{k: v for k, v in r.items() if k != "time/elapsed_s"} for r in records]


@pytest.mark.parametrize("signals, resume_point", [(0, 5), (1, 8), (2, 5), (3, 5)])
def test_interrupt_mid_step_then_resume_is_bit_exact(tmp_path, signals, resume_point):
    settings = _settings(total_steps=12, eval_every=1, checkpoint_every=5)
    reference = ToyRegression()
    Trainer(reference, tmp_path / "ref", **settings).fit()

    with pytest.raises(KeyboardInterrupt):
        Trainer(_HalfStep(at_step=7, signals=signals), tmp_path / "run", **settings).fit()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    # one Ctrl-C: step 8 finishes and is saved; a raise or a second Ctrl-C: step 5's checkpoint stays
    assert summary["status"] == "interrupted" and summary["checkpoint_step"] == resume_point
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == resume_point

    resumed = ToyRegression()
    Trainer(resumed, tmp_path / "run", resume=True, **settings).fit()
    assert torch.equal(_weights(resumed), _weights(reference))
    assert torch.equal(resumed.generator.get_state(), reference.generator.get_state())
    assert _strip_time(_metrics(tmp_path / "run")) == _strip_time(_metrics(tmp_path / "ref"))


def test_interrupt_before_the_first_checkpoint_resumes_from_step_zero(tmp_path):
    settings = _settings(total_steps=6, eval_every=0, checkpoint_every=0)
    reference = ToyRegression()
    Trainer(reference, tmp_path / "ref", **settings).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(_HalfStep(at_step=3), tmp_path / "run", **settings).fit()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["checkpoint_step"] == 0
    resumed = ToyRegression()
    Trainer(resumed, tmp_path / "run", resume=True, **settings).fit()
    assert torch.equal(_weights(resumed), _weights(reference))


def test_real_stopping_learner_interrupted_mid_step_resumes_bit_exactly(tmp_path):
    import numpy as np

    from rl.stopping.config import StoppingConfig
    from rl.stopping.learner import StoppingLearner
    from rl.stopping.evaluation import StoppingReference

    reference_values = StoppingReference(price=5.318294, boundary=np.linspace(26.0, 36.0, 5), european=5.059623,
                                         target_boundary=np.linspace(27.0, 37.0, 5))
    config = StoppingConfig(algorithm="ml", seed=2, volatility_warmup=1, n_steps=5, penalty=4.0, batch_size=64,
                            eval_paths=256, test_paths=512, hidden=8)

    class HalfStepStopping(StoppingLearner):
        calls = 0

        def train_step(self, batch):
            diagnostics = super().train_step(batch)
            self.calls += 1
            if self.calls == 4:
                raise KeyboardInterrupt  # the optimisers have moved: a half-done fourth step
            return diagnostics

    settings = _settings(total_steps=6, eval_every=1, checkpoint_every=2)
    straight = StoppingLearner(config, reference=reference_values)
    Trainer(straight, tmp_path / "ref", **settings).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(HalfStepStopping(config, reference=reference_values), tmp_path / "run", **settings).fit()
    resumed = StoppingLearner(config, reference=reference_values)
    Trainer(resumed, tmp_path / "run", resume=True, **settings).fit()
    for a, b in zip(straight.net.parameters(), resumed.net.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(straight.volatility, resumed.volatility)
    assert _strip_time(_metrics(tmp_path / "run")) == _strip_time(_metrics(tmp_path / "ref"))


# ---------------------------------------------------------------------------------------- resume = the recorded run
def test_resume_continues_to_the_recorded_total_steps(tmp_path):
    settings = _settings(total_steps=10, eval_every=5, checkpoint_every=5)
    reference = ToyRegression()
    Trainer(reference, tmp_path / "ref", **settings).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(_HalfStep(at_step=6), tmp_path / "run", **settings).fit()
    resumed = ToyRegression()
    summary = Trainer(resumed, tmp_path / "run", total_steps=None, eval_every=None, checkpoint_every=None, seed=0,
                      progress=False, resume=True).fit()
    assert summary["step"] == 10 and summary["total_steps"] == 10
    assert torch.equal(_weights(resumed), _weights(reference))


def test_resume_extends_with_a_larger_total_and_refuses_a_smaller_one(tmp_path):
    Trainer(ToyRegression(), tmp_path / "run", **_settings(total_steps=4)).fit()
    with pytest.raises(ValueError, match=r"total_steps=3 is below the 4 steps recorded in .*config\.json"):
        Trainer(ToyRegression(), tmp_path / "run", resume=True, **_settings(total_steps=3)).fit()
    summary = Trainer(ToyRegression(), tmp_path / "run", resume=True, **_settings(total_steps=6)).fit()
    assert summary["step"] == 6
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["trainer"]["total_steps"] == 6
    assert record["resumes"][-1]["at_step"] == 4 and record["resumes"][-1]["changed"] == {"total_steps": 6}


def test_new_run_needs_its_settings(tmp_path):
    with pytest.raises(ValueError, match="total_steps is required for a new run"):
        Trainer(ToyRegression(), tmp_path / "run", total_steps=None, eval_every=1, checkpoint_every=1, seed=0)


def test_non_json_config_on_resume_names_the_file(tmp_path):
    Trainer(ToyRegression(), tmp_path / "run", **_settings()).fit()
    (tmp_path / "run" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json.*not valid JSON") as info:
        Trainer(ToyRegression(), tmp_path / "run", resume=True, **_settings(total_steps=None)).fit()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------- one process per folder
class _Intruder(ToyRegression):
    """At step 2, tries to resume the very folder it is being trained in."""

    def __init__(self, folder):
        super().__init__()
        self.folder, self.refusal = folder, None

    def train_step(self, batch):
        if self.refusal is None and self.optimizer.state:
            try:
                Trainer(ToyRegression(), self.folder, resume=True, **_settings(total_steps=None)).fit()
            except ValueError as exc:
                self.refusal = str(exc)
        return super().train_step(batch)


def test_a_second_trainer_on_a_busy_folder_is_refused(tmp_path):
    learner = _Intruder(tmp_path / "run")
    Trainer(learner, tmp_path / "run", **_settings()).fit()
    assert learner.refusal is not None and "in use by another pderl process" in learner.refusal
    assert str(tmp_path / "run") in learner.refusal
    steps = [r["step"] for r in _metrics(tmp_path / "run")]
    assert steps == [2, 4]  # nothing interleaved
    # the lock dies with its holder: the folder can be resumed afterwards
    Trainer(ToyRegression(), tmp_path / "run", resume=True, **_settings(total_steps=6)).fit()


def test_lock_held_by_another_process(tmp_path):
    import subprocess
    import sys

    from rl.runs import prepare_run_dir

    run = prepare_run_dir(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from rl.runs import RunDirLock; lock = RunDirLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); time.sleep(30)"), str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match="in use by another pderl process"):
            Trainer(ToyRegression(), run, **_settings(total_steps=2), force=True).fit()
    finally:
        holder.kill()
        holder.wait()
    Trainer(ToyRegression(), run, **_settings(total_steps=2), force=True).fit()


def test_real_market_making_learner_interrupted_mid_step_resumes_bit_exactly(tmp_path):
    from pdecore import MarketMakingModel
    from rl.market_making.config import MMTrainConfig
    from rl.market_making.learner import MarketMakingLearner

    model = MarketMakingModel.paper_defaults(max_inventory=10)
    config = MMTrainConfig(hidden=8, layers=2, total_steps=6, batch_paths=8, paths_every=2, paths_per_step=4,
                           n_steps=10, seed=3)

    class HalfStepMM(MarketMakingLearner):
        calls = 0

        def train_step(self, batch):
            diagnostics = super().train_step(batch)
            self.calls += 1
            if self.calls == 4:
                raise KeyboardInterrupt  # optimiser, scheduler and path buffer have moved
            return diagnostics

    settings = _settings(total_steps=6, eval_every=0, checkpoint_every=3)
    straight = MarketMakingLearner(model, config)
    Trainer(straight, tmp_path / "ref", **settings).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(HalfStepMM(model, config), tmp_path / "run", **settings).fit()
    resumed = MarketMakingLearner(model, config)
    Trainer(resumed, tmp_path / "run", resume=True, **settings).fit()
    for key, value in straight.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), key


_KILLED = r"""
import sys, time
sys.path.insert(0, ".")
from rl.trainer import Trainer
from tests.rl.test_trainer import ToyRegression

class Slow(ToyRegression):
    def train_step(self, batch):
        if len(self.optimizer.state) and int(next(iter(self.optimizer.state.values()))["step"]) == 7:
            print("step 7", flush=True)
            time.sleep(30)  # killed here, in the middle of the eighth step
        return super().train_step(batch)

Trainer(Slow(), sys.argv[1], total_steps=12, eval_every=1, checkpoint_every=5, seed=0, progress=False).fit()
"""


def test_kill_9_mid_step_then_resume_is_bit_exact(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    settings = _settings(total_steps=12, eval_every=1, checkpoint_every=5)
    reference = ToyRegression()
    Trainer(reference, tmp_path / "ref", **settings).fit()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen([sys.executable, "-c", _KILLED, str(tmp_path / "run")], cwd=root,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "step 7"
    finally:
        process.kill()  # SIGKILL: no handler runs, the lock dies with the process
        process.wait()
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 5
    resumed = ToyRegression()
    Trainer(resumed, tmp_path / "run", resume=True,  # every setting as recorded
            **_settings(total_steps=None, eval_every=None, checkpoint_every=None)).fit()
    assert torch.equal(_weights(resumed), _weights(reference))
    assert _strip_time(_metrics(tmp_path / "run")) == _strip_time(_metrics(tmp_path / "ref"))
