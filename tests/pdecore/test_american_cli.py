"""Smoke tests of ``pderl price american`` and ``pderl boundary american``."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from validation.cli import main
from validation.reference_data import spec_value

SPEC_ARGS = ["--strike", "40", "--rate", "0.06", "--volatility", "0.4", "--maturity", "1"]
SMALL = ["--n-space", "161", "--n-time", "60"]


def test_price_json_has_the_documented_keys(capsys):
    code = main(["price", "american", "--kind", "put", "--spot", "40", *SPEC_ARGS, "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"price", "delta", "gamma", "boundary_t0", "stats"}
    assert abs(payload["price"] - spec_value("american.put.price")) <= 1e-4
    assert -0.5 < payload["delta"] < -0.3 and payload["gamma"] > 0
    assert abs(payload["boundary_t0"] - spec_value("american.put.boundary")[0.0]) <= 0.05
    assert payload["stats"]["mode"] == "hard" and payload["stats"]["max_newton_iterations"] >= 1
    assert payload["stats"]["solver"] == "projected"


@pytest.mark.parametrize("extra,solver", [(["--penalty", "10"], "finite penalty iteration"),
                                          (["--penalty", "10", "--temperature", "1"], "softplus penalty iteration"),
                                          (["--premium", "--dividend", "0.02"], "projected LCP solve")])
def test_price_variants_text(capsys, extra, solver):
    """The solver line names what ran: the penalty iteration of the penalized problems, the certified
    projected solve of the variational inequality (premium form included)."""
    code = main(["price", "american", "--spot", "40", *SPEC_ARGS, *SMALL, *extra])
    assert code == 0
    out = capsys.readouterr().out
    assert "price:" in out and "boundary_t0" in out and solver in out


def test_call_without_dividend_has_no_boundary(capsys):
    code = main(["price", "american", "--kind", "call", "--spot", "40", *SPEC_ARGS, *SMALL, "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["boundary_t0"] is None  # never exercised early without dividends


def test_boundary_writes_csv_and_plot(tmp_path, capsys):
    csv_path, png_path = tmp_path / "boundary.csv", tmp_path / "boundary.png"
    code = main(["boundary", "american", *SPEC_ARGS, *SMALL, "--csv", str(csv_path), "--plot", str(png_path)])
    assert code == 0
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 61 and float(rows[0]["t"]) == 0.0 and float(rows[-1]["t"]) == 1.0
    boundary = [float(r["boundary"]) for r in rows]
    assert abs(boundary[0] - 24.2) < 0.2 and all(b <= 40.0 for b in boundary)
    assert png_path.stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


def test_boundary_json(capsys):
    assert main(["boundary", "american", *SPEC_ARGS, *SMALL, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["times"]) == len(payload["boundary"]) == 61


@pytest.mark.parametrize("argv,needle", [
    (["--volatility", "-0.4"], "volatility"),
    (["--temperature", "1"], "temperature"),
    (["--n-space", "5"], "n_space"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, needle):
    args = ["price", "american", "--spot", "40", "--strike", "40", "--rate", "0.06", "--maturity", "1",
            "--volatility", "0.4", *argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pderl: error:") and needle in err and "\n" not in err


def test_console_script_subprocess():
    """One real process through the installed ``pderl`` console script (``python -m validation.cli``
    where the script is not on PATH)."""
    script = shutil.which("pderl")
    command = [script] if script else [sys.executable, "-m", "validation.cli"]
    completed = subprocess.run([*command, "price", "american", "--spot", "40", *SPEC_ARGS, *SMALL, "--json"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert abs(payload["price"] - spec_value("american.put.price")) < 5e-3
