"""What a reproduce stage receives and returns (:class:`StageContext`, :class:`StageOutput`).

Kept apart from :mod:`validation.reproduce` so that stage modules depend only on these two types, not
on the runner that imports them (no import cycle; the runner can change freely).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class StageContext:
    """What a stage needs to know about the run it is part of."""

    out_dir: Path
    quick: bool = True
    seed: int = 0
    progress: bool = True
    log: Callable[[str], None] = print

    def figure_path(self, name: str) -> Path:
        """Path of a figure file inside the run's ``figures/`` folder (created on demand)."""
        folder = self.out_dir / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def save_figure(self, fig, name: str, *, dpi: int = 120) -> str:
        """Lay out, write and close ``fig`` as ``figures/name``; returns that report-relative path (what a
        stage lists in :attr:`StageOutput.figures` and links from its Markdown)."""
        import matplotlib.pyplot as plt

        fig.tight_layout()
        fig.savefig(self.figure_path(name), dpi=dpi)
        plt.close(fig)
        return f"figures/{name}"

    def data_path(self, name: str) -> Path:
        """Path of a data file (CSV, tables) inside the run's ``data/`` folder."""
        folder = self.out_dir / "data"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name


@dataclass
class StageOutput:
    """What a stage returns: metrics for ``metrics.json`` and a Markdown section for ``report.md``.

    ``report`` may refer to figures by their path relative to the run folder
    (``figures/<name>.png``).
    """

    title: str
    metrics: dict[str, Any]
    report: str
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0
