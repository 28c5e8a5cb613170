"""The memory and work budgets of pdecore.budget: parsing, refusal messages, environment overrides."""

from __future__ import annotations

import pytest

from pdecore.budget import (DEFAULT_TIME_BUDGET, check_memory, check_work, format_bytes, memory_budget,
                            time_budget)


def test_memory_budget_from_environment(monkeypatch):
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "8G")
    assert memory_budget() == 8 * 1024**3
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "512MiB")
    assert memory_budget() == 512 * 1024**2
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "1000")
    assert memory_budget() == 1000


def test_memory_budget_default_is_half_the_machine(monkeypatch):
    monkeypatch.delenv("PDERL_MEMORY_BUDGET", raising=False)
    assert 0 < memory_budget() <= 2**50


@pytest.mark.parametrize("text", ["lots", "-1G", "nanG", "0", "8Q"])
def test_bad_budget_text_is_named(monkeypatch, text):
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", text)
    with pytest.raises(ValueError, match="PDERL_MEMORY_BUDGET"):
        memory_budget()


def test_time_budget(monkeypatch):
    monkeypatch.delenv("PDERL_TIME_BUDGET", raising=False)
    assert time_budget() == DEFAULT_TIME_BUDGET
    monkeypatch.setenv("PDERL_TIME_BUDGET", "2h")
    assert time_budget() == 7200.0
    monkeypatch.setenv("PDERL_TIME_BUDGET", "90m")
    assert time_budget() == 5400.0


def test_check_memory_refuses_with_estimate_and_fix(monkeypatch):
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "1G")
    assert check_memory("n=1", 1024.0, fix="x") == 1024.0
    with pytest.raises(ValueError) as info:
        check_memory("n_space=1000000000", 8e9 * 3, fix="pass a smaller n_space")
    message = str(info.value)
    assert "n_space=1000000000" in message and "22.4 GiB" in message and "pass a smaller n_space" in message
    assert "\n" not in message
    with pytest.raises(ValueError, match="unbounded"):
        check_memory("n=inf", float("inf"), fix="x")


def test_check_work_refuses_past_the_budget(monkeypatch):
    monkeypatch.setenv("PDERL_TIME_BUDGET", "10s")
    assert check_work("paths=10", 100.0, rate=1e3, fix="x") == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"years=1000000 would take at least 2\.78 h.*fewer years"):
        check_work("years=1000000", 1e7, rate=1e3, fix="pass fewer years")


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1.5 * 1024**3) == "1.5 GiB"
