"""The notebooks (jupytext percent-format ``.py`` files) run headless, top to bottom, in quick mode,
and write their figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(notebook, tmp_path):
    text = notebook.read_text()
    assert text.startswith("# ---") and "format_name: percent" in text, "not a jupytext percent-format file"
    env = {**os.environ, "MPLBACKEND": "Agg", "PDERL_NOTEBOOK_QUICK": "1"}
    result = subprocess.run([sys.executable, str(notebook)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{notebook.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert list(tmp_path.glob("*.png")), f"{notebook.name} wrote no figure"
