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
    # control: the payload is live, a full unpickling does create the file
    if container == "torch-zip":
        torch.load(checkpoint, weights_only=False)
    else:
        pickle.loads(checkpoint.read_bytes())
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
