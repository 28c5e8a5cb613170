"""The reproduce report (issue 14 item 5): the map of both papers and the self-contained report.html.

The figure and table lists below were enumerated by hand from the two papers' texts in
/work/shared/seeds/ (every "Figure N:" caption and every "Table N:" heading):

* Dai, Sun, Xu and Zhou (stopping, September 2024): Figures 1-9 (7 and 9 with sub-panels, counted once)
  and Table 1 (benchmark values); no other table.
* Fang and Xu (market making, March 2025): Figures 1-8 (1 with panels a and b, counted once); no table.
"""

from __future__ import annotations

import json
import re
import sys
import types

import pytest

import validation.reproduce as reproduce_module
from validation.cli import main
from validation.paper_map import (STATUSES, format_value, load_paper_map, lookup, resolve)
from validation.report import figure_anchor, markdown_to_html
from validation.reproduce import StageOutput, reproduce

STOPPING_FIGURES = [f"Figure {n}" for n in range(1, 10)]
STOPPING_TABLES = ["Table 1"]
MARKET_MAKING_FIGURES = [f"Figure {n}" for n in range(1, 9)]
MARKET_MAKING_TABLES: list[str] = []


def _quiet(**kwargs):
    return {"progress": False, "log": lambda message: None, **kwargs}


def test_map_lists_every_figure_and_table_of_both_papers():
    paper_map = load_paper_map()
    expected = {"stopping": STOPPING_FIGURES + STOPPING_TABLES,
                "market_making": MARKET_MAKING_FIGURES + MARKET_MAKING_TABLES}
    for paper, items in expected.items():
        declared = paper_map["papers"][paper]["figures"] + paper_map["papers"][paper]["tables"]
        assert declared == items
        mapped = {item["item"] for item in paper_map["items"] if item["paper"] == paper}
        assert set(items) <= mapped, f"{paper}: {sorted(set(items) - mapped)} missing from the map"


def test_map_states_both_spec_corrections_next_to_the_papers_claims():
    items = {item["id"]: item for item in load_paper_map()["items"]}
    direction = items["fx-claim-direction"]
    assert direction["status"] == "corrected" and "widening of the ask spread" in direction["claim"]
    assert "[fix]" in direction["reason"] and "ask spread narrows" in direction["reason"]
    for figure in ("fx-fig2", "fx-fig3", "fx-fig4", "fx-fig5"):
        assert items[figure]["status"] == "corrected" and "[fix]" in items[figure]["reason"]
    for figure in ("fx-fig7", "fx-fig8", "fx-claim-cross"):
        assert items[figure]["status"] == "corrected" and "φ = 0" in items[figure]["reason"]
    assert items["dsxz-alg2-td0"]["status"] == "corrected"  # the third [fix] of SPEC (TD(0) Δt)
    not_covered = {i["item"] for i in items.values() if i["status"] == "not_covered" and i["paper"] == "stopping"}
    assert {"Figure 4", "Figure 5", "Figure 6", "Figure 9"} <= not_covered
    assert all(item["status"] in STATUSES for item in items.values())


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["items"].append(dict(m["items"][0])), "appears twice"),
    (lambda m: m["items"][0].update(status="done"), "status 'done'"),
    (lambda m: m["items"][0].update(paper="other"), "paper 'other'"),
    (lambda m: m["items"][0].update(figures=["x.png"]), "figures/<name>.png"),
    (lambda m: m["items"][0].pop("reason"), "has keys"),
    (lambda m: m["items"][3].update(checks=[{"key": "a", "op": "==", "value": 1}]), "check"),
])
def test_a_broken_map_is_refused_by_item(tmp_path, edit, message):
    data = load_paper_map()
    edit(data)
    path = tmp_path / "map.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(message)):
        load_paper_map(path)


def test_resolve_looks_up_metrics_checks_targets_and_takes_stage_statuses():
    paper_map = load_paper_map()
    metrics = {"american": {"prices": [{"value": 5.3182}]},
               "market_making": {"paper_map": {"fx-claim-otm": {"status": "corrected", "note": "equal"}}}}
    items = {r.id: r for r in resolve(paper_map, metrics, {"figures/american_boundary.png"})}
    price = items["dsxz-claim-price"]
    assert price.stage_ran and price.values == [("pderl American price (variational inequality)",
                                                  "5.318200 (paper: 5.317000, tolerance 0.002: met)")]
    assert price.checks and price.checks[0][1] and price.figures == ["figures/american_boundary.png"]
    assert items["fx-claim-otm"].status == "corrected" and items["fx-claim-otm"].note == "equal"
    missed = resolve(paper_map, {"stopping_rl": {"ml": {"min_accuracy": 0.8224}}}, set())
    accuracy = next(r for r in missed if r.id == "dsxz-claim-accuracy")
    assert accuracy.values[0][1] == "82.24% (target ≥ 95.00%: NOT met in this run)"
    assert accuracy.checks == [("target ≥ 95.00%", False)]
    assert not items["dsxz-fig3"].stage_ran and items["dsxz-fig3"].values == []
    with pytest.raises(ValueError, match="unknown paper-map item 'nope'"):
        resolve(paper_map, {"merton": {"paper_map": {"nope": {"status": "reproduced"}}}}, set())


def test_an_error_bound_reads_as_a_bound_not_as_a_paper_value():
    """A check ``|error| ≤ tol`` (op ``abs<=``, the high-dimensional errors) names no paper value ("paper: +0.0000")."""
    from validation.paper_map import _check_text

    assert _check_text({"op": "abs<=", "value": 0.008}, -0.01, "+.4f") == \
        ("target |error| ≤ 0.008", False)
    assert _check_text({"op": "abs_diff<=", "value": 0.002, "target": 5.317}, 5.3182, ".6f") == \
        ("paper: 5.317000, tolerance 0.002", True)


def test_values_are_human_text_not_python_reprs():
    assert format_value({"ml": 1000, "td0": 5000}) == "ml: 1000, td0: 5000"
    assert format_value([2.0, 2.01], ".2f") == "2.00, 2.01"
    assert format_value(True) == "yes" and format_value(262144, "d") == "262,144"
    assert lookup({"a": {"b": [1, {"c": 2}]}}, "a.b.1.c") == 2 and lookup({"a": 1}, "a.x") is None


def test_markdown_subset_renders_without_external_links(tmp_path):
    text = ("### Head\n\n| a | b |\n|---|---|\n| 1 | **2** |\n\n- one\n- two\n\n"
            "See [the site](https://example.org) and `code`, _slanted_ but x_s_b stays.")
    out = markdown_to_html(text, tmp_path, {}, set(), set())
    assert "<h4>Head</h4>" in out and "<th>a</th>" in out and "<td><strong>2</strong></td>" in out
    assert "<li>one</li>" in out and "<code>code</code>" in out and "<em>slanted</em>" in out
    assert "x_s_b" in out and "example.org" not in out


@pytest.fixture
def fake_stage_with_figure(monkeypatch):
    """One instant stage that writes a PNG and records whether progress bars were asked for."""
    state = {}
    module = types.ModuleType("validation.stages.stage_10_fake")
    module.TITLE = "Fake"

    def run(ctx):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        state["progress"] = ctx.progress
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        fig.savefig(ctx.figure_path("fake.png"), dpi=40)
        plt.close(fig)
        return StageOutput(title="Fake", metrics={"x": 1.0},
                           report="![a line](figures/fake.png)\n\nsee [it](figures/fake.png)",
                           figures=["figures/fake.png"])

    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(reproduce_module, "available_stages", lambda: ["stage_10_fake"])
    return state


def test_progress_bars_are_off_when_stderr_is_not_a_terminal(tmp_path, fake_stage_with_figure, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    reproduce(tmp_path / "R", progress=True, log=lambda message: None)
    assert fake_stage_with_figure["progress"] is False
    html = (tmp_path / "R" / "report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == 1 and 'alt="a line"' in html
    assert f'href="#{figure_anchor("figures/fake.png")}"' in html


def test_cli_full_and_quick_exclude_each_other(tmp_path, fake_stage_with_figure, capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--quick", "--full", "--out", str(tmp_path / "R")])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["reproduce", "--full", "--out", str(tmp_path / "F"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "F" / "run.json").read_text())["config"]["quick"] is False
    assert "report.html" in capsys.readouterr().out


def test_quick_reproduce_of_a_real_stage_writes_a_self_contained_html(tmp_path):
    out = tmp_path / "R"
    results = reproduce(out, quick=True, only=["merton"], **_quiet())
    html = (out / "report.html").read_text()
    figures = {f for r in results.values() for f in r.figures}
    assert figures and html.count('<img src="data:image/png;base64,') == len(figures)
    targets = re.findall(r'\b(?:src|href)="([^"]*)"', html)
    assert targets and all(t.startswith(("data:image/png;base64,", "#")) for t in targets), \
        [t[:40] for t in targets if not t.startswith(("data:", "#"))]
    assert not re.search(r"<(?:link|script)\b", html)
    paper_map = load_paper_map()
    assert all(f'id="map-{item["id"]}"' in html for item in paper_map["items"])
    markdown = (out / "report.md").read_text()
    assert "Map of both papers" in markdown
    assert not re.search(r"\(\d+,\)|\{'|\['|\$", markdown), "a Python repr or TeX markup in the report text"
    assert "DSXZ Figure 7" in html  # the caption of the Merton figure cites the paper's figure
