"""Run folders: nothing is lost, nothing is silently overwritten.

A run folder holds

* ``config.json`` — the full configuration, the seed, package versions, the command line and host;
* ``metrics.jsonl`` — one JSON object per evaluation, appended as training goes;
* ``checkpoint.pt`` (or any artifact) — written atomically (write to a temporary file in the same
  folder, ``fsync``, then ``os.replace``), so a crash never leaves a half-written file;
* ``summary.json`` — final (or partial, after Ctrl-C) metrics.

:func:`prepare_run_dir` enforces the policy shared by every long-running command: an existing,
non-empty folder is refused unless ``force`` (start over) or ``resume`` (continue) is given.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

_TRACKED_PACKAGES = ("pderl", "numpy", "scipy", "numba", "torch", "matplotlib", "tqdm", "QuantLib")


def package_versions() -> dict[str, str | None]:
    """Versions of Python and of the packages that can change pderl's numbers."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment_record() -> dict[str, Any]:
    """Versions plus where and how the run was started."""
    return {
        "versions": package_versions(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "argv": list(sys.argv),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _json_default(value):
    import numpy as np

    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    raise TypeError(f"cannot serialize {type(value).__name__} to JSON")


def to_json(data: Any, *, indent: int | None = 2) -> str:
    """JSON text with NumPy scalars/arrays, paths and dataclasses converted; inf/nan kept as
    JSON's non-standard ``Infinity``/``NaN`` (Python's json reads them back)."""
    return json.dumps(data, indent=indent, default=_json_default, sort_keys=False)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomic text write (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Atomic JSON write (see :func:`to_json`)."""
    return atomic_write_text(path, to_json(data) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file and an atomic rename."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and flush it to disk (metrics survive a crash)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(to_json(record, indent=None) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All records of a ``.jsonl`` file (a torn last line from a crash is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def prepare_run_dir(path: str | os.PathLike, *, force: bool = False, resume: bool = False) -> Path:
    """Create (or re-open) a run folder following the never-overwrite policy.

    Parameters
    ----------
    path : path-like
        The run folder.
    force : bool
        Delete an existing folder's contents and start over.
    resume : bool
        Re-open an existing folder to continue it (the caller restores its checkpoint).

    Raises
    ------
    ValueError
        If the folder exists and is not empty and neither ``force`` nor ``resume`` is given, if both
        are given, or if ``resume`` is asked for a folder that does not exist.
    """
    path = Path(path)
    if force and resume:
        raise ValueError("force and resume are exclusive: --force starts over, --resume continues; "
                         "pass only one of them")
    exists = path.exists() and any(path.iterdir()) if path.is_dir() else path.exists()
    if path.exists() and not path.is_dir():
        raise ValueError(f"run folder {str(path)!r} exists and is not a folder; choose another --out")
    if resume:
        if not exists:
            raise ValueError(f"--resume given but run folder {str(path)!r} does not exist or is empty; "
                             "drop --resume to start a new run")
        return path
    if exists:
        if not force:
            raise ValueError(f"run folder {str(path)!r} already exists and is not empty; pass --force to "
                             "overwrite it or --resume to continue it")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
