"""The map of both source papers onto pderl: every figure, table and headline claim → status.

The map is data (``validation/data/paper_map.json``, described by its ``_about`` key) so that a reader
holding the papers can check it item by item and a new stage changes one file. Each item names the
paper's figure/table/claim, the pderl stage, figures and ``metrics.json`` keys that answer it, and a
status:

``reproduced``
    pderl computes the same quantity and agrees;
``corrected``
    pderl deliberately differs, with the reason (a ``[fix]`` of SPEC.md or the model's mathematics);
``partial``
    part of the item is reproduced, the reason names the rest;
``not_covered``
    no stage reproduces it yet; the reason says where it will come from.

:func:`resolve` joins the static map with one report's stage results: metric values are looked up,
``checks`` (a number against a bound, ``<=`` / ``>=``; its distance to the paper's value,
``abs_diff<=`` with ``target``; or an error's size, ``abs<=``) are evaluated, and a stage may override an item's
status at run time through the reserved metrics key ``"paper_map"`` (``{item_id: {"status", "note"}}``),
e.g. when the verdict depends on a number the stage computed. Items whose stage did not run are marked
so, never reported as reproduced by this run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

STATUSES = ("reproduced", "corrected", "partial", "not_covered")
STATUS_LABELS = {"reproduced": "reproduced", "corrected": "corrected", "partial": "partly reproduced",
                 "not_covered": "not covered"}
#: Metrics key under which a stage attaches run-time statuses (``{item_id: {"status": ..., "note": ...}}``).
STAGE_STATUS_KEY = "paper_map"
_ITEM_KEYS = {"id", "paper", "item", "claim", "status", "stage", "figures", "metrics", "checks", "reason"}
_OPS = ("<=", ">=", "abs<=", "abs_diff<=")


def load_paper_map(path=None) -> dict:
    """Read and check the paper map (the packaged ``data/paper_map.json`` unless ``path`` is given).

    Raises
    ------
    ValueError
        One line naming the item and the field: unknown paper or status, missing or extra keys, a
        duplicate id, a figure path outside ``figures/``, an unknown check operator.
    """
    if path is None:
        text = resources.files("validation").joinpath("data", "paper_map.json").read_text(encoding="utf-8")
        where = "validation/data/paper_map.json"
    else:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        where = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"paper map {where!r} is not valid JSON ({error})") from None
    papers, items = data.get("papers"), data.get("items")
    if not isinstance(papers, dict) or not isinstance(items, list):
        raise ValueError(f"paper map {where!r} needs a 'papers' mapping and an 'items' list")
    seen = set()
    for index, item in enumerate(items):
        name = item.get("id", f"#{index}") if isinstance(item, dict) else f"#{index}"
        if not isinstance(item, dict) or set(item) != _ITEM_KEYS:
            found = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise ValueError(f"paper map item {name!r} has keys {found}, expected {sorted(_ITEM_KEYS)}")
        if name in seen:
            raise ValueError(f"paper map item id {name!r} appears twice; ids must be unique")
        seen.add(name)
        if item["paper"] not in papers:
            raise ValueError(f"paper map item {name!r}: paper {item['paper']!r} is not one of {sorted(papers)}")
        if item["status"] not in STATUSES:
            raise ValueError(f"paper map item {name!r}: status {item['status']!r} is not one of {STATUSES}")
        bad = [f for f in item["figures"] if not (f.startswith("figures/") and f.endswith(".png"))]
        if bad:
            raise ValueError(f"paper map item {name!r}: figures {bad} must be figures/<name>.png")
        for check in item["checks"]:
            if check.get("op") not in _OPS or "key" not in check or "value" not in check or \
                    (check["op"] == "abs_diff<=") != ("target" in check):
                raise ValueError(f"paper map item {name!r}: check {check} needs key, op in {_OPS}, value "
                                 "(and target exactly for abs_diff<=)")
        if item["status"] in ("corrected", "partial", "not_covered") and not item["reason"].strip():
            raise ValueError(f"paper map item {name!r}: status {item['status']!r} needs a reason")
    return data


def lookup(metrics: dict, key: str) -> Any:
    """Value at a dotted ``key`` of ``metrics.json`` (``stage.name.0.value``; list indices as numbers),
    or ``None`` when any part is missing."""
    node: Any = metrics
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def format_value(value: Any, spec: str = "") -> str:
    """Human text for a metric: numbers by ``spec`` (a format spec such as ``.4f`` or ``.2%``), lists
    and mappings as comma-separated text ("ml: 1000, td0: 5000"), booleans as yes/no; never a repr."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if spec == "d":
            return f"{int(value):,}"
        try:
            return format(value, spec) if spec else f"{value:g}"
        except (TypeError, ValueError):
            return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v, spec)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v, spec) for v in value)
    return str(value)


@dataclass
class ResolvedItem:
    """One map item joined with a report's results (what :mod:`validation.report` prints)."""

    id: str
    paper: str
    item: str
    claim: str
    status: str
    reason: str
    stage: str | None
    stage_ran: bool
    figures: list[str] = field(default_factory=list)  # only those this report holds
    values: list[tuple[str, str]] = field(default_factory=list)  # (label, formatted value)
    checks: list[tuple[str, bool]] = field(default_factory=list)  # (text, passed), also folded into values
    note: str = ""


def _check_text(check: dict, value: float, spec: str) -> tuple[str, bool]:
    """Human text of one check (numbers in the metric's format ``spec``) and whether it passed."""
    shown = lambda number: format_value(float(number), spec)  # noqa: E731 - one-line formatter
    if check["op"] == "abs_diff<=":
        gap = abs(value - check["target"])
        passed = gap <= check["value"]
        return f"paper: {shown(check['target'])}, tolerance {check['value']:g}", passed
    if check["op"] == "abs<=":  # an error metric: no paper value to show, only the bound on |error|
        return f"target |error| ≤ {check['value']:g}", abs(value) <= check["value"]
    passed = value <= check["value"] if check["op"] == "<=" else value >= check["value"]
    return f"target {'≤' if check['op'] == '<=' else '≥'} {shown(check['value'])}", passed


def resolve(paper_map: dict, metrics: dict, figures: set[str] | list[str]) -> list[ResolvedItem]:
    """Join the map with one report: ``metrics`` is ``{stage: metrics}``, ``figures`` the figure paths
    (``figures/<name>.png``) the report holds. Run-time statuses from a stage's ``"paper_map"`` metrics
    key override the map's; unknown ids there are refused by name (a typo must not drop a status)."""
    figures = set(figures)
    ids = {item["id"] for item in paper_map["items"]}
    overrides: dict[str, dict] = {}
    for stage, stage_metrics in metrics.items():
        attached = stage_metrics.get(STAGE_STATUS_KEY, {}) if isinstance(stage_metrics, dict) else {}
        for item_id, value in attached.items():
            if item_id not in ids:
                raise ValueError(f"stage {stage!r} attaches a status to unknown paper-map item {item_id!r}; "
                                 f"use one of the ids in validation/data/paper_map.json")
            if value.get("status") not in STATUSES:
                raise ValueError(f"stage {stage!r}: status {value.get('status')!r} for {item_id!r} is not one "
                                 f"of {STATUSES}")
            overrides[item_id] = value
    resolved = []
    for item in paper_map["items"]:
        stage = item["stage"]
        ran = stage is not None and stage in metrics
        entry = ResolvedItem(id=item["id"], paper=item["paper"], item=item["item"], claim=item["claim"],
                             status=item["status"], reason=item["reason"], stage=stage, stage_ran=ran,
                             figures=[f for f in item["figures"] if f in figures])
        # metric keys name their stage, so an item also shows the numbers of another stage that ran
        # a check on a shown metric is written next to its value ("82.24% (target ≥ 95.00%: NOT met in
        # this run)"); a check on another key stands alone, named by its key
        results = {}
        for check in item["checks"]:
            value = lookup(metrics, check["key"])
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                spec = next((m["format"] for m in item["metrics"] if m["key"] == check["key"]), ".4g")
                text, passed = _check_text(check, float(value), spec)
                results.setdefault(check["key"], []).append((text, passed))
                entry.checks.append((text, passed))
        for metric in item["metrics"]:
            value = lookup(metrics, metric["key"])
            if value is not None:
                shown = format_value(value, metric["format"])
                for text, passed in results.pop(metric["key"], []):
                    shown += f" ({text}: {'met' if passed else 'NOT met in this run'})"
                entry.values.append((metric["label"], shown))
        for key, found in results.items():
            for text, passed in found:
                entry.values.append((key.split(".", 1)[-1], f"{text}: {'met' if passed else 'NOT met in this run'}"))
        if item["id"] in overrides:
            entry.status = overrides[item["id"]]["status"]
            entry.note = overrides[item["id"]].get("note", "")
        resolved.append(entry)
    return resolved


__all__ = ["STATUSES", "STATUS_LABELS", "STAGE_STATUS_KEY", "ResolvedItem", "format_value", "load_paper_map",
           "lookup", "resolve"]
