"""Run-folder policy: atomic writes, never overwrite without force, resume, torn JSONL lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rl.runs import (MARKER_NAME, append_jsonl, atomic_write_json, check_replaceable, package_versions,
                     prepare_run_dir, read_jsonl, to_json)


def test_prepare_run_dir_refuses_existing_non_empty_folder(tmp_path):
    run = prepare_run_dir(tmp_path / "run")
    (run / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="--force"):
        prepare_run_dir(run)
    # --resume keeps the contents, --force wipes them
    assert (prepare_run_dir(run, resume=True) / "config.json").exists()
    assert not (prepare_run_dir(run, force=True) / "config.json").exists()


def test_prepare_run_dir_resume_needs_a_run(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        prepare_run_dir(tmp_path / "missing", resume=True)
    with pytest.raises(ValueError, match="exclusive"):
        prepare_run_dir(tmp_path / "x", force=True, resume=True)


def test_atomic_json_round_trip_with_numpy_and_inf(tmp_path):
    path = atomic_write_json(tmp_path / "m.json", {"a": np.float64(1.5), "b": np.arange(3), "c": float("inf")})
    data = json.loads(path.read_text())
    assert data == {"a": 1.5, "b": [0, 1, 2], "c": float("inf")}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_jsonl_append_and_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1, "loss": 0.5})
    append_jsonl(path, {"step": 2, "loss": 0.25})
    with open(path, "a") as handle:
        handle.write('{"step": 3, "lo')  # a crash in the middle of a write
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]


def test_versions_and_json_of_dataclass():
    from pdecore import BlackScholes

    versions = package_versions()
    assert versions["numpy"] == np.__version__
    assert json.loads(to_json(BlackScholes(0.2, 0.05))) == {"volatility": 0.2, "rate": 0.05, "dividend": 0.0}


# ---------------------------------------------------------------------------------------- --force safety
def test_force_refuses_a_folder_pderl_did_not_write(tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match=r"thesis.*did not write.*--out"):
        prepare_run_dir(thesis, force=True)
    assert (thesis / "thesis.tex").read_text() == "years of work"


def test_force_refuses_working_directory_its_parents_and_home(tmp_path, monkeypatch):
    work = tmp_path / "work"
    prepare_run_dir(work)  # even a folder with pderl's marker
    (work / "notes.txt").write_text("keep")
    inner = work / "inner"
    inner.mkdir()
    (inner / "draft.txt").write_text("keep")
    monkeypatch.chdir(inner)
    for target in (".", "..", str(work)):
        with pytest.raises(ValueError, match="working directory"):
            prepare_run_dir(target, force=True)
    monkeypatch.setenv("HOME", str(work))
    with pytest.raises(ValueError, match="home folder"):
        check_replaceable(work)
    assert (work / "notes.txt").exists() and (inner / "draft.txt").exists()


def test_force_replaces_marked_and_old_unmarked_pderl_folders(tmp_path):
    run = prepare_run_dir(tmp_path / "run")
    marker = json.loads((run / MARKER_NAME).read_text())
    assert marker["kind"] == "run" and "created" in marker
    (run / "anything.bin").write_bytes(b"x")
    assert not (prepare_run_dir(run, force=True) / "anything.bin").exists()
    assert (run / MARKER_NAME).exists()
    # a run folder of an older pderl (no marker): its config.json is pderl's record
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"learner": {}, "environment": {}}))
    (old / "metrics.jsonl").write_text("")
    assert not (prepare_run_dir(old, force=True) / "config.json").exists()
    # ... but not when a file pderl never writes sits next to it
    (old / "config.json").write_text(json.dumps({"learner": {}, "environment": {}}))
    (old / "thesis.tex").write_text("x")
    (old / MARKER_NAME).unlink()
    with pytest.raises(ValueError, match="thesis.tex"):
        prepare_run_dir(old, force=True)


def test_force_refuses_a_symbolic_link(tmp_path):
    run = prepare_run_dir(tmp_path / "run")
    (run / "config.json").write_text("{}")
    (tmp_path / "link").symlink_to(run)
    with pytest.raises(ValueError, match="symbolic link"):
        prepare_run_dir(tmp_path / "link", force=True)
    assert (run / "config.json").exists()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_get_the_umask_mode(tmp_path, umask):
    import os
    import stat

    previous = os.umask(umask)
    try:
        path = atomic_write_json(tmp_path / "m.json", {"a": 1})
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask == stat.S_IMODE(plain.stat().st_mode)


def test_unwritable_parent_is_a_one_line_error(tmp_path):
    import os

    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match=r"file\.txt/run.*cannot be created"):
        prepare_run_dir(tmp_path / "file.txt" / "run")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: nothing to test
            pytest.skip("running as root")
        with pytest.raises(ValueError, match="cannot be created"):
            prepare_run_dir(locked / "run")
    finally:
        locked.chmod(0o700)


def test_resume_needs_a_pderl_folder_of_the_same_kind(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="is not a pderl folder"):
        prepare_run_dir(foreign, resume=True)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]  # not even a lock file was left
    run = prepare_run_dir(tmp_path / "run")
    (run / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="holds a pderl 'run' folder, not a 'reproduce' one"):
        prepare_run_dir(run, resume=True, kind="reproduce")
