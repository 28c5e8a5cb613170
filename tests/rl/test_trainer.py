"""The shared trainer: determinism, resume equality, Ctrl-C, run-folder policy (with a toy learner)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from rl.runs import read_jsonl  # noqa: E402
from rl.trainer import Trainer, seed_everything  # noqa: E402


class ToyRegression:
    """Linear regression y = 2x + 1 + noise by Adam: the smallest learner satisfying the contract."""

    def __init__(self, seed: int = 0, interrupt_at: int | None = None):
        self.seed = seed
        self.interrupt_at = interrupt_at
        self.generator = torch.Generator().manual_seed(seed)
        init = torch.Generator().manual_seed(seed + 1)
        self.net = torch.nn.Linear(1, 1)
        with torch.no_grad():
            self.net.weight.copy_(torch.randn(1, 1, generator=init))
            self.net.bias.zero_()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=0.05)
        self.test_x = torch.linspace(-1, 1, 32).unsqueeze(1)

    def sample_batch(self, step):
        if self.interrupt_at is not None and step == self.interrupt_at:
            raise KeyboardInterrupt
        x = torch.randn(16, 1, generator=self.generator)
        return x, 2 * x + 1 + 0.1 * torch.randn(16, 1, generator=self.generator)

    def train_step(self, batch):
        x, y = batch
        loss = ((self.net(x) - y) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"losses/mse": loss.item()}

    def evaluate(self):
        with torch.no_grad():
            return {"eval/mse": ((self.net(self.test_x) - 2 * self.test_x - 1) ** 2).mean().item()}

    def state_dict(self):
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])

    def config_dict(self):
        return {"kind": "toy", "seed": self.seed}


def _weights(learner):
    return torch.cat([p.detach().flatten() for p in learner.net.parameters()])


def test_fit_writes_run_folder_and_learns(tmp_path):
    learner = ToyRegression()
    summary = Trainer(learner, tmp_path / "run", total_steps=60, eval_every=20, checkpoint_every=30, seed=3,
                      progress=False).fit()
    assert summary["status"] == "completed" and summary["step"] == 60
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["seed"] == 3 and config["learner"] == {"kind": "toy", "seed": 0}
    assert "torch" in config["environment"]["versions"]
    records = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [20, 40, 60]
    assert records[-1]["eval/mse"] < 0.1 * records[0]["eval/mse"] + 1e-3, records
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_same_seed_same_weights(tmp_path):
    a, b = ToyRegression(seed=5), ToyRegression(seed=5)
    for learner, name in ((a, "a"), (b, "b")):
        Trainer(learner, tmp_path / name, total_steps=25, eval_every=0, checkpoint_every=0, seed=1,
                progress=False).fit()
    assert torch.equal(_weights(a), _weights(b))


def test_interrupt_then_resume_equals_uninterrupted(tmp_path):
    reference = ToyRegression()
    Trainer(reference, tmp_path / "ref", total_steps=40, eval_every=10, checkpoint_every=10, seed=0,
            progress=False).fit()

    interrupted = ToyRegression(interrupt_at=23)
    with pytest.raises(KeyboardInterrupt):
        Trainer(interrupted, tmp_path / "run", total_steps=40, eval_every=10, checkpoint_every=10, seed=0,
                progress=False).fit()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["step"] == 23

    resumed = ToyRegression()
    Trainer(resumed, tmp_path / "run", total_steps=40, eval_every=10, checkpoint_every=10, seed=0,
            progress=False, resume=True).fit()
    assert torch.equal(_weights(resumed), _weights(reference))
    steps = [r["step"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    assert steps == [10, 20, 30, 40]
    ref_eval = [r["eval/mse"] for r in read_jsonl(tmp_path / "ref" / "metrics.jsonl")]
    run_eval = [r["eval/mse"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    assert ref_eval == run_eval


def test_existing_folder_refused_without_force(tmp_path):
    Trainer(ToyRegression(), tmp_path / "run", total_steps=2, eval_every=0, checkpoint_every=0, seed=0,
            progress=False).fit()
    with pytest.raises(ValueError, match="--force"):
        Trainer(ToyRegression(), tmp_path / "run", total_steps=2, eval_every=0, checkpoint_every=0, seed=0,
                progress=False).fit()
    Trainer(ToyRegression(), tmp_path / "run", total_steps=2, eval_every=0, checkpoint_every=0, seed=0,
            progress=False, force=True).fit()


def test_resume_refuses_other_config(tmp_path):
    Trainer(ToyRegression(seed=0), tmp_path / "run", total_steps=2, eval_every=0, checkpoint_every=1, seed=0,
            progress=False).fit()
    with pytest.raises(ValueError, match="configuration differs"):
        Trainer(ToyRegression(seed=9), tmp_path / "run", total_steps=4, eval_every=0, checkpoint_every=1,
                seed=0, progress=False, resume=True).fit()


@pytest.mark.parametrize("kwargs, match", [
    ({"total_steps": 0}, "total_steps"),
    ({"eval_every": -1}, "eval_every"),
    ({"device": "tpu"}, "device"),
])
def test_bad_trainer_arguments(tmp_path, kwargs, match):
    settings = {"total_steps": 2, "eval_every": 0, "checkpoint_every": 0, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        Trainer(ToyRegression(), tmp_path / "run", **settings)


def test_learner_contract_checked(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        Trainer(object(), tmp_path / "run", total_steps=1, eval_every=0, checkpoint_every=0, seed=0)


def test_seed_everything_repeats_global_draws():
    seed_everything(11)
    first = torch.rand(3)
    seed_everything(11)
    assert torch.equal(first, torch.rand(3))
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
