"""pderl sweep / validation.sweeps: the spec, the run folders, resume, failures, a killed worker.

The cluster tests share one LocalCluster of two one-thread worker processes (module fixture, reached
through its scheduler address, the path of ``--scheduler``), so torch is imported once per worker;
one test lets run_sweep start its own LocalCluster. The sweeps are examples/sweep_smoke.toml (four
five-step runs) or smaller.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
import warnings as warnings_module
from pathlib import Path

import pytest

from validation import sweeps
from validation.sweeps import load_sweep, run_name, run_sweep

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "examples" / "sweep_smoke.toml"
BASE = str(ROOT / "examples" / "stopping_paper.toml")

#: Smallest stopping run: one training step, one evaluation on 128 paths, no PDE reference.
TINY = {"steps": 1, "batch_size": 32, "volatility_warmup": 0, "eval_every": 1, "checkpoint_every": 1,
        "eval_at_start": False, "threads": 1}


def tiny_sweep(grid, **options):
    return {"base": BASE, "train": dict(TINY), "evaluate": {"eval_paths": 128, "reference": "none"},
            "grid": grid, "sweep": options}


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ====================================================================== spec (no cluster)
def test_smoke_spec_resolves_four_named_points():
    sweep = load_sweep(SMOKE)
    assert [p.name for p in sweep.points] == ["penalty=5,seed=0", "penalty=5,seed=1",
                                              "penalty=10,seed=0", "penalty=10,seed=1"]
    assert sweep.points[0].overrides == {"train.penalty": 5.0, "train.seed": 0}
    assert sweep.points[3].spec["train"]["penalty"] == 10.0 and sweep.points[3].spec["train"]["steps"] == 5
    assert sweep.group == ["train.penalty"]
    # the base file's values the sweep file does not change are kept
    assert sweep.points[0].spec["train"]["hidden"] == 21 and sweep.base["model"]["strike"] == 40.0


@pytest.mark.parametrize("data, words", [
    ({"grid": {"train.penalty": [1]}, "sweeps": {}}, ["unknown table or key 'sweeps'"]),
    ({"grid": {"train.penalty": [1]}, "sweep": {"evaluation": True}}, ["unknown key 'evaluation' in [sweep]"]),
    ({"grid": {"train.penalty": 5}}, ["[grid] 'train.penalty'", "non-empty list"]),
    ({"grid": {"train.penalty": []}}, ["non-empty list"]),
    ({"grid": {"train.penalti": [1, 2]}}, ["grid point", "unknown override 'train.penalti'"]),
    ({"grid": {"train.steps": [0]}}, ["grid point", "steps"]),
    ({"grid": {"train.penalty": [5, 5.0]}}, ["same experiment", "repeated value"]),
    ({"grid": {"train.penalty": [5]}, "sweep": {"x": "train.seed"}}, ["x must be a key of [grid]"]),
    ({"grid": {"train.penalty": [5]}, "sweep": {"group": ["train.seed"]}}, ["group names 'train.seed'"]),
    ({"grid": {"train.penalty": [5]}, "sweep": {"evaluate": "yes"}}, ["evaluate must be a boolean"]),
    ({"grid": {"train.penalty": [5]}, "sweep": {"title": 4}}, ["title must be a string"]),
    ({"base": "missing.toml"}, ["base 'missing.toml'", "not found"]),
])
def test_bad_specs_are_refused_by_name(data, words):
    data = {"base": BASE, **data}
    with pytest.raises(ValueError) as info:
        load_sweep(data)
    for word in words:
        assert word in str(info.value)


def test_base_is_relative_to_the_sweep_file_and_inline_tables_merge(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "exp.toml").write_text('kind = "stopping"\n[train]\nsteps = 7\nhidden = 5\n')
    (tmp_path / "sub" / "sw.toml").write_text('base = "exp.toml"\n[train]\nhidden = 9\n[grid]\n"train.seed" = [3]\n')
    point = load_sweep(tmp_path / "sub" / "sw.toml").points[0]
    assert (point.name, point.spec["train"]["steps"], point.spec["train"]["hidden"]) == ("seed=3", 7, 9)


def test_run_names_are_filesystem_safe_and_distinct():
    assert run_name({}) == "base"
    assert run_name({"train.penalty": 0.1, "train.algorithm": "td0"}) == "penalty=0.1,algorithm=td0"
    # the same last component in two tables: the full key keeps them apart
    assert run_name({"train.seed": 1, "evaluate.seed": 2}) == "train.seed=1,evaluate.seed=2"
    unsafe = run_name({"train.algorithm": "a/b c"})
    assert "/" not in unsafe and " " not in unsafe and unsafe.startswith("algorithm=a_b_c-")
    assert unsafe != run_name({"train.algorithm": "a b/c"})
    long = run_name({f"train.k{i}": "x" * 30 for i in range(10)})
    assert len(long) <= sweeps.MAX_NAME + 9


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="retries must be a non-negative integer"):
        run_sweep(SMOKE, out=tmp_path / "a", retries=-1)
    with pytest.raises(ValueError, match="workers and scheduler are exclusive"):
        run_sweep(SMOKE, out=tmp_path / "a", workers=2, scheduler="tcp://127.0.0.1:1")
    assert not (tmp_path / "a").exists()


def test_aggregates_keep_failed_rows_and_average_completed_ones(tmp_path):
    """results.csv has every run; summary.csv's n, mean and s.d. (ddof=1) use the completed ones only;
    one figure line per algorithm over the penalty axis."""
    sweep = load_sweep({"base": BASE, "grid": {"train.algorithm": ["ml", "td0"], "train.penalty": [1, 10],
                                               "train.seed": [0, 1, 2]}})
    runs = []
    for index, point in enumerate(sweep.points):
        error = {"eval/rel_error_stopping": 0.01 * index, "eval/min_accuracy": 0.9}
        runs.append({"name": point.name, "overrides": point.overrides, "status": "completed", "computed": True,
                     "attempts": 1, "errors": [], "summary": {"step": 5, "seconds": 1.0, "evaluation": error},
                     "evaluation": None})
    runs[-1].update(status="failed", errors=["RuntimeError: boom"], summary=None, attempts=2)
    result = sweeps.SweepResult(out=tmp_path, runs=runs, failures=[], seconds=0.0, scheduler="-", workers=0)
    files, warnings = sweeps.write_outputs(sweep, result)
    assert warnings == [] and files["figure"].stat().st_size > 10_000
    rows = read_csv(files["results"])
    assert len(rows) == 12 and rows[-1]["status"] == "failed" and rows[-1]["error"] == "RuntimeError: boom"
    assert rows[-1]["eval/rel_error_stopping"] == "" and rows[-1]["attempts"] == "2"
    summary = {(r["train.algorithm"], r["train.penalty"]): r for r in read_csv(files["summary"])}
    assert summary[("ml", "1.0")]["n"] == "3" and summary[("td0", "10.0")]["n"] == "2"
    assert float(summary[("ml", "1.0")]["eval/rel_error_stopping_mean"]) == pytest.approx(0.01)
    assert float(summary[("ml", "1.0")]["eval/rel_error_stopping_sd"]) == pytest.approx(0.01)
    assert float(summary[("td0", "10.0")]["eval/rel_error_stopping_mean"]) == pytest.approx(0.095)


def test_coupled_grid_keys_vary_together_with_readable_names():
    """``"train.algorithm,train.steps" = [["ml", 3], ["td0", 5]]``: two settings, not four; each key its column."""
    sweep = load_sweep({"base": BASE, "grid": {"train.algorithm,train.steps": [["ml", 3], ["td0", 5]],
                                               "train.seed": [0, 1]}, "sweep": {"group": ["train.algorithm"]}})
    assert [p.name for p in sweep.points] == ["algorithm=ml,steps=3,seed=0", "algorithm=ml,steps=3,seed=1",
                                              "algorithm=td0,steps=5,seed=0", "algorithm=td0,steps=5,seed=1"]
    assert [(p.spec["train"]["algorithm"], p.spec["train"]["steps"]) for p in sweep.points] == \
        [("ml", 3), ("ml", 3), ("td0", 5), ("td0", 5)]
    assert sweep.keys == ["train.algorithm", "train.steps", "train.seed"]
    assert load_sweep({"base": BASE, "grid": sweep.grid}).group == ["train.algorithm", "train.steps"]


@pytest.mark.parametrize("grid, words", [
    ({"train.algorithm,train.steps": [["ml", 3], "td0"]}, ["couples 2 keys", "list of 2 values", "'td0'"]),
    ({"train.algorithm,train.steps": [["ml", 3, 4]]}, ["couples 2 keys"]),
    ({"train.steps": [3], "train.algorithm,train.steps": [["ml", 3]]}, ["'train.steps' is varied twice"]),
    ({"train.algorithm,": [["ml", 3]]}, ["empty key"]),
    ({"train.algorithm,train.steps": [["ml", 3], ["ml", 3]]}, ["same experiment"]),
])
def test_bad_coupled_keys_are_refused_by_name(grid, words):
    with pytest.raises(ValueError) as info:
        load_sweep({"base": BASE, "grid": grid})
    for word in words:
        assert word in str(info.value)


def fake_runs(sweep, out, curve=None):
    """Completed runs of ``sweep`` as run_sweep records them; ``curve(index, step)`` fills metrics.jsonl."""
    runs = []
    for index, point in enumerate(sweep.points):
        evaluation = {"p_stopping_error": 0.01 + 0.001 * index, "oracle_floor_stopping": 0.002 * point.spec["train"]["penalty"]}
        runs.append({"name": point.name, "overrides": point.overrides, "status": "completed", "computed": True,
                     "attempts": 1, "errors": [], "summary": {"step": 200, "seconds": 1.0, "evaluation": {}},
                     "evaluation": evaluation})
        if curve is not None:
            folder = out / "runs" / point.name
            folder.mkdir(parents=True)
            folder.joinpath("metrics.jsonl").write_text("".join(
                json.dumps({"step": step, "eval/rel_error_stopping": curve(index, step), "time/elapsed_s": 1.0}) + "\n"
                for step in (0, 100, 200)))
    return runs


def test_floors_are_aggregated_and_drawn_once_when_shared(tmp_path):
    """[sweep] floors: the floor column is averaged into summary.csv and drawn dashed on its metric's
    panel; a floor the learners share (the oracle's, same κ and λ) is one grey line with the label."""
    sweep = load_sweep({"base": BASE, "grid": {"train.algorithm,train.steps": [["ml", 3], ["td0", 5]],
                                               "train.penalty": [1, 10], "train.seed": [0, 1]},
                        "sweep": {"x": "train.penalty", "metrics": ["evaluate/p_stopping_error"],
                                  "floors": {"evaluate/p_stopping_error": "evaluate/oracle_floor_stopping",
                                             "evaluate/missing": "evaluate/oracle_floor_stopping"}}})
    result = sweeps.SweepResult(out=tmp_path, runs=fake_runs(sweep, tmp_path), failures=[], seconds=0.0,
                                scheduler="-", workers=0)
    files, warnings = sweeps.write_outputs(sweep, result)
    assert len(warnings) == 1 and "'evaluate/missing'" in warnings[0]
    summary = {(r["train.algorithm"], r["train.penalty"]): r for r in read_csv(files["summary"])}
    assert float(summary[("td0", "10.0")]["evaluate/oracle_floor_stopping_mean"]) == pytest.approx(0.02)
    assert float(summary[("ml", "1.0")]["evaluate/p_stopping_error_mean"]) == pytest.approx(0.0105)
    assert files["figure"].stat().st_size > 10_000 and "curves" not in files

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    sweeps._draw_floors(ax, [([(1.0, 0.002), (10.0, 0.02)], "C0", "ml"), ([(1.0, 0.002), (10.0, 0.02)], "C1", "td0")])
    assert [line.get_label() for line in ax.lines] == [sweeps.FLOOR_LABEL]
    assert ax.lines[0].get_linestyle() == "--"
    sweeps._draw_floors(ax, [([(1.0, 0.002)], "C0", "ml"), ([(1.0, 0.003)], "C1", "td0")])
    assert [line.get_label() for line in ax.lines[1:]] == [f"ml: {sweeps.FLOOR_LABEL}", f"td0: {sweeps.FLOOR_LABEL}"]
    plt.close(fig)


def test_floors_shared_by_some_lines_are_drawn_once_and_the_legend_sits_below_the_panels(tmp_path, monkeypatch):
    """Figure 6: Dong's and TD(0)'s floors at the same λ are one oracle's, drawn once per λ in grey and
    labelled with what the lines share; one legend for the figure, none inside a panel (it hid the data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    low, high = [(0.01, 0.002), (0.1, 0.002)], [(0.01, 0.004), (0.1, 0.004)]
    sweeps._draw_floors(ax, [(low, "C0", "algorithm=dong, temperature=1.0"), (high, "C1", "algorithm=dong, temperature=0.001"),
                             (low, "C2", "algorithm=td0, temperature=1.0"), (high, "C3", "algorithm=td0, temperature=0.001")])
    assert [line.get_label() for line in ax.lines] == [f"temperature=1.0: {sweeps.FLOOR_LABEL}",
                                                       f"temperature=0.001: {sweeps.FLOOR_LABEL}"]
    assert all(line.get_linestyle() == "--" and line.get_color() not in ("C0", "C1") for line in ax.lines)
    plt.close(fig)

    sweep = load_sweep({"base": BASE, "grid": {"train.algorithm,train.steps": [["ml", 3], ["td0", 5]],
                                               "train.penalty": [1, 10], "train.seed": [0, 1]},
                        "sweep": {"x": "train.penalty", "metrics": ["evaluate/p_stopping_error"],
                                  "floors": {"evaluate/p_stopping_error": "evaluate/oracle_floor_stopping"}}})
    result = sweeps.SweepResult(out=tmp_path, runs=fake_runs(sweep, tmp_path), failures=[], seconds=0.0,
                                scheduler="-", workers=0)
    figures = []
    real_savefig = matplotlib.figure.Figure.savefig

    def keep(figure, *args, **kwargs):
        figures.append(figure)
        return real_savefig(figure, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    sweeps.write_outputs(sweep, result)
    (figure,) = figures
    assert all(ax.get_legend() is None for ax in figure.axes) and len(figure.legends) == 1
    assert [t.get_text() for t in figure.legends[0].get_texts()] == [
        sweeps.FLOOR_LABEL, "algorithm=ml, steps=3", "algorithm=td0, steps=5"]


def test_learning_curves_average_metrics_jsonl_over_seeds(tmp_path):
    """[sweep] curves: mean and s.d. (ddof=1) per grid point and step from each run's metrics.jsonl."""
    sweep = load_sweep({"base": BASE, "grid": {"train.algorithm": ["dong", "td0"], "train.seed": [0, 1, 2]},
                        "sweep": {"curves": ["eval/rel_error_stopping", "eval/never_logged"]}})
    runs = fake_runs(sweep, tmp_path, curve=lambda index, step: 1.0 / (1 + step) + 0.001 * index)
    runs[2].update(status="failed", summary=None, evaluation=None)  # dong seed 2: not averaged
    result = sweeps.SweepResult(out=tmp_path, runs=runs, failures=[], seconds=0.0, scheduler="-", workers=0)
    files, warnings = sweeps.write_outputs(sweep, result)
    assert len(warnings) == 1 and "'eval/never_logged'" in warnings[0] and "eval_every" in warnings[0]
    rows = {(r["train.algorithm"], r["step"]): r for r in read_csv(files["curves"])}
    assert len(rows) == 6
    dong, td0 = rows[("dong", "100")], rows[("td0", "200")]
    assert dong["eval/rel_error_stopping_n"] == "2" and td0["eval/rel_error_stopping_n"] == "3"
    assert float(dong["eval/rel_error_stopping_mean"]) == pytest.approx(1 / 101 + 0.0005)
    assert float(td0["eval/rel_error_stopping_sd"]) == pytest.approx(0.001)
    assert files["curves_figure"].name == "curves.png" and files["curves_figure"].stat().st_size > 10_000


def test_a_runs_warnings_come_back_with_it_and_are_reported_once_per_message(tmp_path):
    """λ = 5 makes the ½-rule unable to exercise (ExerciseWarning): the worker's function returns the
    warning with the run instead of printing it, and the sweep reports each message once with its count."""
    from rl.stopping.config import ExerciseWarning

    sweep = load_sweep(tiny_sweep({"train.temperature": [1.0, 5.0]}))
    outcomes = {}
    for point in sweep.points:
        with warnings_module.catch_warnings():
            warnings_module.simplefilter("error", ExerciseWarning)  # nothing may escape run_point
            outcomes[point.overrides["train.temperature"]] = sweeps.run_point(point.spec, str(tmp_path / point.name))
    assert all(outcome["ok"] for outcome in outcomes.values())
    assert not any("ExerciseWarning" in text for text in outcomes[1.0]["warnings"])
    exercise = [text for text in outcomes[5.0]["warnings"] if text.startswith("ExerciseWarning: temperature λ=5")]
    assert len(exercise) == 1  # raised several times in the run (spec, config, learner): kept once
    runs = [{"computed": True, "status": "completed", "warnings": outcomes[1.0]["warnings"]},
            {"computed": True, "status": "completed", "warnings": outcomes[5.0]["warnings"]},
            {"computed": True, "status": "completed", "warnings": [exercise[0]]},
            {"computed": False, "status": "completed", "warnings": [exercise[0]]}]  # reused: not counted
    assert f"2 of 3 runs: {exercise[0]}" in sweeps.run_warnings(runs)
    many = [warnings_module.WarningMessage(f"message {i}", UserWarning, "f.py", 1) for i in range(50)]
    assert sweeps.distinct_warnings(many + many) == [f"UserWarning: message {i}" for i in range(sweeps.MAX_RUN_WARNINGS)]


# ====================================================================== on a cluster
@pytest.fixture(scope="module")
def cluster():
    import logging

    distributed = pytest.importorskip("distributed")
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     silence_logs=logging.ERROR)
    yield local
    local.close()


@pytest.fixture(scope="module")
def smoke(cluster, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "smoke"
    result = run_sweep(SMOKE, out=out, scheduler=cluster.scheduler_address, progress=False)
    return out, result


def test_smoke_sweep_writes_every_run_and_the_aggregates(smoke):
    out, result = smoke
    assert result.ok and result.computed == 4 and result.reused == 0 and result.workers == 2
    assert json.loads((out / ".pderl-run").read_text())["kind"] == "sweep"
    for point in load_sweep(SMOKE).points:
        run_dir = out / "runs" / point.name
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
        assert json.loads((run_dir / "config.json").read_text())["spec"] == point.spec
        assert "rel_error_stopping" in json.loads((run_dir / "evaluation.json").read_text())
    rows = read_csv(out / "results.csv")
    assert len(rows) == 4 and {row["status"] for row in rows} == {"completed"}
    assert {(row["train.penalty"], row["train.seed"]) for row in rows} == {("5.0", "0"), ("5.0", "1"),
                                                                           ("10.0", "0"), ("10.0", "1")}
    assert all(row["steps"] == "5" and float(row["evaluate/rel_error_stopping"]) >= 0 for row in rows)
    summary = read_csv(out / "summary.csv")
    assert [(row["train.penalty"], row["n"]) for row in summary] == [("5.0", "2"), ("10.0", "2")]
    # the s.d. is the sample one (ddof=1) of the two seeds' results
    values = [float(r["evaluate/min_accuracy"]) for r in rows if r["train.penalty"] == "5.0"]
    assert float(summary[0]["evaluate/min_accuracy_sd"]) == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5,
                                                                          rel=1e-12)
    assert (out / "sweep.png").stat().st_size > 10_000
    # [sweep.floors] and [sweep] curves of the smoke file: the floor's mean, the curves at steps 0 and 5
    assert all(float(row["evaluate/oracle_floor_stopping_mean"]) >= 0 for row in summary)
    curves = read_csv(out / "curves.csv")
    assert [(row["train.penalty"], row["step"], row["eval/rel_error_stopping_n"]) for row in curves] == \
        [("5.0", "0", "2"), ("5.0", "5", "2"), ("10.0", "0", "2"), ("10.0", "5", "2")]
    assert (out / "curves.png").stat().st_size > 10_000
    record = json.loads((out / "sweep.json").read_text())
    assert record["status"] == "completed" and record["failures"] == [] and len(record["runs"]) == 4


def test_resume_recomputes_nothing(smoke, tmp_path):
    out, _ = smoke
    files = sorted(p for p in (out / "runs").rglob("*") if p.is_file() and p.name != ".pderl-lock")
    before = {p: p.stat().st_mtime_ns for p in files}
    result = run_sweep(SMOKE, out=out, resume=True, progress=False)  # no cluster is even started
    assert result.ok and result.computed == 0 and result.reused == 4 and result.workers == 0
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert len(read_csv(out / "results.csv")) == 4
    with pytest.raises(ValueError, match="already exists"):
        run_sweep(SMOKE, out=out, progress=False)


def test_reuse_copies_the_runs_another_sweep_finished_and_trains_only_the_rest(smoke, cluster, tmp_path, capsys):
    """A second sweep sharing grid points with the smoke sweep (same resolved specs under other run names:
    penalty 10 is its base value here, a grid value there) copies them and trains only its new point."""
    from validation.cli import main

    source, _ = smoke
    from validation.experiments import read_toml

    smoke_file = read_toml(SMOKE)
    spec = {"base": BASE, "train": {**smoke_file["train"], "penalty": 10}, "evaluate": smoke_file["evaluate"],
            "grid": {"train.seed": [0, 1, 2]}, "sweep": {"evaluate": True}}
    out = tmp_path / "second"
    result = run_sweep(spec, out=out, scheduler=cluster.scheduler_address, progress=False, reuse=[source])
    assert result.ok and result.computed == 1 and result.reused == 2 and result.copied == 2
    shared = {"seed=0": "penalty=10,seed=0", "seed=1": "penalty=10,seed=1"}
    for name, other in shared.items():
        mine, theirs = out / "runs" / name, source / "runs" / other
        assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in theirs.iterdir() if p.name != ".pderl-lock")
        for file in ("summary.json", "evaluation.json", "checkpoint.pt", "metrics.jsonl"):
            assert (mine / file).read_bytes() == (theirs / file).read_bytes()
    assert {r["name"]: r.get("reused_from") for r in result.runs} == {
        "seed=0": str(source / "runs" / shared["seed=0"]), "seed=1": str(source / "runs" / shared["seed=1"]),
        "seed=2": None}
    rows = {row["train.seed"]: row for row in read_csv(out / "results.csv")}
    theirs = {row["train.seed"]: row for row in read_csv(source / "results.csv") if row["train.penalty"] == "10.0"}
    assert rows["0"]["evaluate/rel_error_stopping"] == theirs["0"]["evaluate/rel_error_stopping"]
    assert json.loads((out / "sweep.json").read_text())["reuse"] == [str(source)]
    assert "2 reused (2 copied from other sweeps)" in result.one_line()
    # the CLI flag; nothing left to copy or train in a --resume of the same folder
    assert main(["sweep", str(SMOKE), "--out", str(tmp_path / "third"), "--reuse", str(source), "--no-progress"]) == 0
    assert "4 runs, 0 computed, 4 reused (4 copied from other sweeps)" in capsys.readouterr().out


def test_reuse_refuses_a_folder_that_is_not_a_sweep_and_the_sweeps_own_folder(smoke, tmp_path):
    out, _ = smoke
    with pytest.raises(ValueError, match="is not a sweep folder"):
        run_sweep(SMOKE, out=tmp_path / "x", reuse=[tmp_path], progress=False)
    with pytest.raises(ValueError, match="own --out folder"):
        run_sweep(SMOKE, out=out, resume=True, reuse=[out], progress=False)
    assert not (tmp_path / "x").exists()


def test_reuse_skips_unfinished_runs_and_evaluates_a_copied_run_without_evaluation(cluster, tmp_path):
    """A reused folder's unfinished run is not copied (its point trains here), nor a hidden folder (a copy
    an interrupted sweep left); a finished run without an evaluation is copied and only evaluated (its
    training files unchanged)."""
    trained = tmp_path / "trained"
    first = run_sweep(tiny_sweep({"train.seed": [0, 1, 2]}), out=trained, scheduler=cluster.scheduler_address,
                      progress=False)
    assert first.ok and not (trained / "runs" / "seed=0" / "evaluation.json").exists()
    summary = trained / "runs" / "seed=1" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "status": "interrupted"}))
    (trained / "runs" / "seed=2").rename(trained / "runs" / ".seed=2.copy-999")
    out = tmp_path / "evaluated"
    result = run_sweep(tiny_sweep({"train.seed": [0, 1, 2]}, evaluate=True), out=out,
                       scheduler=cluster.scheduler_address, progress=False, reuse=[trained])
    assert result.ok and result.copied == 1 and result.computed == 2
    assert (out / "runs" / "seed=0" / "evaluation.json").is_file()
    assert (out / "runs" / "seed=0" / "checkpoint.pt").read_bytes() == \
        (trained / "runs" / "seed=0" / "checkpoint.pt").read_bytes()
    assert not any(p.name.startswith(".") and "copy" in p.name for p in (out / "runs").iterdir())


def test_a_copied_run_replaces_a_leftover_attempt_and_an_interrupted_copy(tmp_path):
    source, runs = tmp_path / "source", tmp_path / "runs"
    source.mkdir()
    (source / "summary.json").write_text("{}")
    (runs / "a[1]").mkdir(parents=True)
    (runs / "a[1]" / "checkpoint.pt").write_text("an unfinished attempt")
    (runs / ".a[1].copy-12345").mkdir()  # what a copy interrupted by a crash leaves
    sweeps._copy_run(source, runs / "a[1]")
    assert sorted(p.name for p in runs.iterdir()) == ["a[1]"]
    assert sorted(p.name for p in (runs / "a[1]").iterdir()) == ["summary.json"]


def test_resume_refuses_a_sweep_of_another_base(smoke):
    out, _ = smoke
    other = {"base": BASE, "train": {"steps": 6}, "grid": {"train.seed": [0]}}
    with pytest.raises(ValueError, match="another base experiment spec"):
        run_sweep(other, out=out, resume=True, progress=False)


def test_a_failing_run_is_retried_then_reported_and_the_command_exits_1(cluster, tmp_path, capsys):
    from validation.cli import main

    # "cuda:99" passes the spec's check (cpu or cuda[:N]) and fails in the worker at train time
    spec = tmp_path / "fail.toml"
    spec.write_text(f'base = "{BASE}"\n[train]\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items())
                    + '[evaluate]\neval_paths = 128\nreference = "none"\n'
                    + '[grid]\n"train.device" = ["cpu", "cuda:99"]\n')
    out = tmp_path / "out"
    code = main(["sweep", str(spec), "--out", str(out), "--scheduler", cluster.scheduler_address, "--retries", "2",
                 "--json"])
    assert code == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["computed"] == 1 and payload["failed"] == 1
    failure = payload["failures"][0]
    name = failure["name"]  # ":" is not filesystem-safe everywhere: replaced, and a hash keeps the name unique
    assert name.startswith("device=cuda_99-") and failure["attempts"] == 3 and len(failure["errors"]) == 3
    assert "cuda:99" in failure["error"] and failure["overrides"] == {"train.device": "cuda:99"}
    assert json.loads((out / "sweep.json").read_text())["failures"][0]["attempts"] == 3
    rows = {row["run"]: row for row in read_csv(out / "results.csv")}
    assert rows[name]["status"] == "failed" and "cuda:99" in rows[name]["error"]
    assert rows["device=cpu"]["status"] == "completed"
    # text mode: one line on stderr naming the failure
    assert main(["sweep", str(spec), "--out", str(out), "--resume", "--retries", "0", "--no-progress",
                 "--scheduler", cluster.scheduler_address]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 reused, 1 failed" in err[0] and name in err[0]


def test_run_sweep_starts_its_own_local_cluster(tmp_path):
    result = run_sweep(tiny_sweep({"train.seed": [0]}), out=tmp_path / "own", workers=1, progress=False)
    assert result.ok and result.computed == 1 and result.workers == 1
    assert result.scheduler.startswith(("tcp://", "inproc://"))


def test_an_unreachable_or_empty_scheduler_is_refused_and_leaves_no_folder(tmp_path, monkeypatch):
    import logging

    from distributed import LocalCluster

    monkeypatch.setattr(sweeps, "CONNECT_TIMEOUT", 1)
    monkeypatch.setattr(sweeps, "WORKER_WAIT", 1)
    with pytest.raises(ValueError, match="cannot reach the dask scheduler"):
        run_sweep(SMOKE, out=tmp_path / "a", scheduler="tcp://127.0.0.1:1", progress=False)
    assert not (tmp_path / "a").exists()
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0", silence_logs=logging.ERROR) as empty:
        with pytest.raises(ValueError, match="no dask worker is connected"):
            run_sweep(SMOKE, out=tmp_path / "b", scheduler=empty.scheduler_address, progress=False)
    assert not (tmp_path / "b").exists()


def test_killing_a_worker_mid_sweep_loses_no_finished_run(cluster, tmp_path):
    """A worker killed with SIGKILL while the sweep runs: dask reschedules its run on the other
    worker (the nanny restarts the killed one); the runs already finished are not touched."""
    from distributed import Client

    # enough work that runs are still going when the first one has finished (the learners' steps got
    # faster with the fused network kernel, and five 10-step runs could all finish before the kill)
    spec = tiny_sweep({"train.seed": list(range(8))})
    spec["train"]["steps"] = 40
    out = tmp_path / "killed"
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run_sweep(
        spec, out=out, scheduler=cluster.scheduler_address, progress=False)))
    thread.start()
    deadline = time.monotonic() + 120
    finished = []
    while not finished and time.monotonic() < deadline:
        finished = [p for p in (out / "runs").glob("*/summary.json")
                    if json.loads(p.read_text() or "{}").get("status") == "completed"] if (out / "runs").is_dir() else []
        time.sleep(0.1)
    assert finished, "no run finished within 120 s"
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    with Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)
        busy = [worker for worker, keys in client.processing().items() if keys]
    assert busy, "every run finished before a worker could be killed"
    os.kill(pids[busy[0]], signal.SIGKILL)  # a worker in the middle of a run
    thread.join(timeout=300)
    assert not thread.is_alive()
    result = outcome["result"]
    assert result.ok, result.failures  # the errors and attempts of any failed run, should this ever fail again
    assert len(result.runs) == 8 and all(run["status"] == "completed" for run in result.runs)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert len(read_csv(out / "results.csv")) == 8


def test_the_figure_is_titled_with_the_papers_figure_and_panels_with_what_they_show(tmp_path, monkeypatch):
    """[sweep] title names the paper's figure a study reproduces (issue 14: captions cite the paper's
    figure numbers); a known metric's panel says what it is, its y-label carries the formula."""
    import matplotlib

    matplotlib.use("Agg")
    title = "Dai, Sun, Xu & Zhou, figure 4: penalty κ"
    sweep = load_sweep({"base": BASE, "grid": {"train.penalty": [1, 10], "train.seed": [0, 1]},
                        "sweep": {"x": "train.penalty", "title": title,
                                  "metrics": ["evaluate/rel_error_stopping", "evaluate/p_stopping_error"]}})
    runs = fake_runs(sweep, tmp_path)
    for run in runs:
        run["evaluation"]["rel_error_stopping"] = run["evaluation"]["p_stopping_error"]
    result = sweeps.SweepResult(out=tmp_path, runs=runs, failures=[], seconds=0.0, scheduler="-", workers=0)
    figures = []
    real_savefig = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda figure, *a, **k: (figures.append(figure), real_savefig(figure, *a, **k))[1])
    sweeps.write_outputs(sweep, result)
    (figure,) = figures
    assert figure._suptitle.get_text().startswith(title + ": mean ± 1 s.d. over seeds")
    assert [ax.get_title() for ax in figure.axes] == ["P_stopping error", "evaluate/p_stopping_error"]
    assert load_sweep({"base": BASE, "grid": {"train.penalty": [1]}}).options["title"] is None


def test_errors_spanning_decades_get_a_log_axis_and_accuracies_never_do():
    """Figure 6: Dong at lr 0.1 is 50 % off while the others are a fraction of a percent (log axis), but
    a worst-date accuracy of 0.7 % beside 95 % stays on a linear axis, where its ± 1 s.d. band shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (errors, accuracy) = plt.subplots(1, 2)
    sweeps._log_scale_if_wide(errors, [0.5, 0.002], "evaluate/rel_error_stopping")
    sweeps._log_scale_if_wide(accuracy, [0.007, 0.95], "evaluate/min_accuracy_vi")
    assert errors.get_yscale() == "log" and accuracy.get_yscale() == "linear"
    assert sweeps._label("evaluate/min_accuracy_vi").endswith("(fraction)")
    plt.close(fig)


def _worker_malloc_arenas():
    import dask

    return os.environ.get("MALLOC_ARENA_MAX"), dask.config.get("distributed.worker.profile.enabled")


def test_local_cluster_workers_start_with_one_malloc_arena(monkeypatch):
    """MALLOC_ARENA_MAX=1 is in the environment the workers were spawned with (glibc reads it at start),
    and the workers run without dask's statistical profiler (QUIET_WORKER_CONFIG)."""
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert sweeps.worker_environment() == {"MALLOC_ARENA_MAX": "1"}
    client, cluster = sweeps._start_client(None, 1, 1)
    try:
        assert client.submit(_worker_malloc_arenas, pure=False).result() == ("1", False)
    finally:
        client.close()
        cluster.close()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # a user's own setting is kept
    assert sweeps.worker_environment() == {"MALLOC_ARENA_MAX": "4"}


def test_longer_runs_get_a_higher_dask_priority():
    """Runs are started longest first (the priority is the run's training steps), so a sweep ends on short runs."""
    sweep = load_sweep(SMOKE)
    spec = sweep.points[0].spec
    assert sweeps._expected_cost(spec) == spec["train"]["steps"]
    longer = {**spec, "train": {**spec["train"], "steps": 5000}}
    assert sweeps._expected_cost(longer) > sweeps._expected_cost(spec)
    assert sweeps._expected_cost({"kind": "stopping"}) == 0
