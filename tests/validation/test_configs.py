"""Market-making TOML configs (validation.configs) and ``pderl solve mm``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from validation.configs import load_mm_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _write(tmp_path, text, name="mm.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name, n_options, method", [("mm_one_option.toml", 1, "grid"),
                                                     ("mm_two_options.toml", 2, "grid"),
                                                     ("mm_ten_options.toml", 10, "quadratic")])
def test_examples_load(name, n_options, method):
    model, numerics, extras = load_mm_config(EXAMPLES / name)
    assert model.n_options == n_options
    assert numerics["method"] == method
    assert extras == {}
    if n_options == 2:
        assert model.strikes == (100.0, 105.0)


def test_explicit_model_and_numerics(tmp_path):
    path = _write(tmp_path, """
[model]
strikes = [100.0, 110.0]
maturities = [20.0, 25.0]
intensity_bid = [50.0, 40.0]
max_inventory = 5
spread_bounds = [-inf, inf]
terminal_penalty = 0.2

[numerics]
n_time = 30
terminal_coeffs = [1.0, 2.0]
""")
    model, numerics, _ = load_mm_config(path)
    assert model.intensity_bid == (50.0, 40.0) and model.intensity_ask == 100.0
    assert model.spread_bounds == (-math.inf, math.inf)
    assert numerics == {"n_time": 30, "terminal_coeffs": [1.0, 2.0], "method": "grid"}


def test_extra_tables_are_returned(tmp_path):
    path = _write(tmp_path, """
[model]
preset = "paper"
n_options = 2
[train]
iterations = 3
learning_rate = 0.001
""")
    model, _, extras = load_mm_config(path, extra_tables=("train",))
    assert model.n_options == 2 and model.strikes == (100.0, 105.0)
    assert extras == {"train": {"iterations": 3, "learning_rate": 0.001}}
    with pytest.raises(ValueError, match="'train'"):
        load_mm_config(path)


@pytest.mark.parametrize("text, word", [
    ("[model]\npreset = 'paper'\nvolatilty = 0.1\n", "'volatilty'"),
    ("[model]\npreset = 'paper'\n[numerics]\nn_tim = 3\n", "'n_tim'"),
    ("[model]\npreset = 'paper'\n[solver]\nx = 1\n", "'solver'"),
    ("top = 1\n[model]\npreset = 'paper'\n", "'top'"),
    ("[numerics]\nn_time = 3\n", "[model]"),
    ("[model]\npreset = 'other'\n", "preset"),
    ("[model]\nstrikes = [100.0]\nmaturities = [30.0]\n", "max_inventory"),
    ("[model]\npreset = 'paper'\nmax_inventory = 0\n", "max_inventory"),
    ("[model]\npreset = 'paper'\n[numerics]\nmethod = 'magic'\n", "method"),
    ("[model\n", "not valid TOML"),
    ("[model]\npreset = 'paper'\nspread_bounds = 5\n", "spread_bounds"),
    ("[model]\npreset = 'paper'\nspread_bounds = 'wide'\n", "spread_bounds"),
])
def test_bad_configs_name_the_problem(tmp_path, text, word):
    with pytest.raises(ValueError, match=word.replace("[", r"\[").replace("]", r"\]")):
        load_mm_config(_write(tmp_path, text))


def test_cli_solve_mm_json_and_plots(tmp_path, capsys):
    from validation.cli import main

    path = _write(tmp_path, """
[model]
preset = "paper"
n_options = 2
max_inventory = 4
horizon = 1.0
temperature = 0.0
[numerics]
n_time = 10
""")
    code = main(["solve", "mm", "--config", str(path), "--json", "--plot", str(tmp_path / "figs")])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["n_options"] == 2 and payload["theta_0_0"] > 0
    option = payload["options"][1]
    assert option["inventory"] == list(range(-4, 5)) and option["strike"] == 105.0
    assert option["bid_spread"][-1] is None and option["ask_spread"][0] is None  # bounds not quoted
    assert option["bid_spread"][4] == pytest.approx(option["ask_spread"][4])
    assert (tmp_path / "figs" / "spreads_vs_inventory.png").exists()
    assert (tmp_path / "figs" / "spreads_vs_time.png").exists()


def test_cli_quadratic_text(capsys):
    from validation.cli import main

    assert main(["solve", "mm", "--config", str(EXAMPLES / "mm_ten_options.toml")]) == 0
    out = capsys.readouterr().out
    assert "quadratic" in out and "option 9" in out


def test_experiment_spec_header_is_accepted(tmp_path):
    """A training spec (kind = "market_making") also solves with `pderl solve mm`; another kind is refused."""
    model, _, _ = load_mm_config(_write(tmp_path, 'kind = "market_making"\n[model]\npreset = "paper"\n'))
    assert model.n_options == 1
    with pytest.raises(ValueError, match="'stopping' spec"):
        load_mm_config(_write(tmp_path, 'kind = "stopping"\n[model]\npreset = "paper"\n'))


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_mm_config(tmp_path / "nothing.toml")
    with pytest.raises(ValueError, match="is a directory"):
        load_mm_config(tmp_path)
