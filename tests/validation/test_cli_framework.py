"""The ``pderl`` command line as a whole: every command has --help, errors become exit code 2,
``reproduce`` follows the run-folder policy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from validation.cli import VERBS, build_parser, main


def _all_commands():
    parser = build_parser()
    commands = []
    for verb, sub in parser._subparsers._group_actions[0].choices.items():
        nouns = [a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction"]
        if nouns:
            commands += [[verb, noun] for noun in nouns[0].choices]
        else:
            commands.append([verb])
    return commands


def test_every_verb_is_registered():
    assert {c[0] for c in _all_commands()} == set(VERBS)


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: " ".join(c))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0
    assert "usage: pderl" in capsys.readouterr().out


def test_missing_noun_prints_help_and_returns_2(capsys):
    assert main(["price"]) == 2
    assert "usage" in capsys.readouterr().err


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "validation.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "pderl" in result.stdout


def test_reproduce_lists_stages(capsys):
    assert main(["reproduce", "--list"]) == 0
    assert capsys.readouterr().out.strip() != ""


def test_reproduce_refuses_unknown_stage_and_existing_folder(tmp_path, capsys):
    assert main(["reproduce", "--out", str(tmp_path / "r"), "--only", "no-such-stage"]) == 2
    assert "unknown stage" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    assert main(["reproduce", "--out", str(tmp_path / "full")]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "full" / "x").read_text() == "keep me"


@pytest.mark.parametrize("target", [".", ".."])
def test_reproduce_force_never_empties_the_working_directory_or_its_parent(tmp_path, monkeypatch, capsys, target):
    work = tmp_path / "work"
    work.mkdir()
    (work / "paper.tex").write_text("keep me")
    (tmp_path / "other.txt").write_text("keep me too")
    monkeypatch.chdir(work)
    assert main(["reproduce", "--out", target, "--force", "--only", "merton"]) == 2
    err = capsys.readouterr().err
    assert "--force refuses" in err and err.count("\n") == 1
    assert (work / "paper.tex").exists() and (tmp_path / "other.txt").exists()


def test_ctrl_c_is_exit_130_with_one_line(monkeypatch, capsys):
    import signal

    import validation.cli.cmd_reproduce as reproduce_command

    def interrupted(args):
        raise KeyboardInterrupt

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(reproduce_command, "_run", interrupted)
    assert main(["reproduce"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err
    assert signal.getsignal(signal.SIGINT) is before  # in-process callers keep their handler


_THREE_CTRL_C = r"""
import sys, time
RUN = sys.argv[1]
sys.path.insert(0, ".")
import torch
from rl.trainer import Trainer
from tests.rl.test_trainer import ToyRegression
import validation.cli.cmd_reproduce as reproduce_command

class Slow(ToyRegression):
    def train_step(self, batch):
        print("stepping", flush=True)
        time.sleep(0.3)
        return super().train_step(batch)

def train(args):
    Trainer(Slow(), RUN, total_steps=1000, eval_every=0, checkpoint_every=0, seed=0, progress=False).fit()

reproduce_command._run = train
sys.argv = ["pderl", "reproduce"]
from validation.cli import main
sys.exit(main())
"""


def test_three_quick_ctrl_c_exit_130_without_traceback(tmp_path):
    import os
    import signal
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", _THREE_CTRL_C, str(tmp_path / "run")], cwd=root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "stepping"
    for _ in range(3):
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "pderl: interrupted" in err
    summary = (tmp_path / "run" / "summary.json").read_text()
    assert '"interrupted"' in summary


_BOUNDARY = ["boundary", "american", "--strike", "40", "--rate", "0.06", "--volatility", "0.2", "--maturity", "1"]
_MERTON = ["solve", "merton"]


def _file_flag_cases(tmp_path):
    folder = tmp_path / "figs"
    folder.mkdir()
    existing = tmp_path / "old.png"
    existing.write_bytes(b"png")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    return [
        (_BOUNDARY + ["--csv", str(folder)], "--csv", "is a folder"),
        (_BOUNDARY + ["--csv", "/nonexistent/x.csv"], "--csv", "does not exist"),
        (_BOUNDARY + ["--plot", str(tmp_path / "x.xyz")], "--plot", "suffix '.xyz'"),
        (_BOUNDARY + ["--plot", str(folder)], "--plot", "is a folder"),
        (_BOUNDARY + ["--plot", str(tmp_path / "figure")], "--plot", "no suffix"),
        (_BOUNDARY + ["--plot", str(existing)], "--plot", "already exists"),
        (_MERTON + ["--plot", str(tmp_path / "x.xyz")], "--plot", "suffix '.xyz'"),
        (_MERTON + ["--plot", str(existing)], "--plot", "already exists"),
        (["solve", "mm", "--config", str(folder)], "--config", "is not a file"),
        (["solve", "mm", "--config", str(tmp_path / "missing.toml")], "--config", "does not exist"),
        (["solve", "mm", "--config", str(binary)], "--config", "not UTF-8 text"),
        (["solve", "mm", "--config", "examples/mm_one_option.toml", "--plot", str(existing)], "--plot", "is a file"),
        (["reproduce", "--out", str(existing)], "", "is not a folder"),
    ]


def test_bad_file_flags_are_one_line_errors_naming_flag_and_path(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    for argv, flag, message in _file_flag_cases(tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and flag in err and message in err, (argv, err)
        path = argv[argv.index(flag) + 1] if flag else argv[-1]
        assert path in err, (argv, err)
    assert not (tmp_path / "figure.png").exists() and (tmp_path / "old.png").read_bytes() == b"png"
