"""Run folders: nothing is lost, nothing is silently overwritten, nothing in them runs code.

A run folder holds

* ``.pderl-run`` — the marker (:data:`MARKER_NAME`) saying pderl wrote the folder: ``--force`` replaces
  only such folders (:func:`check_replaceable`), never ``/``, the home folder, the working directory or
  one of their parents;
* ``.pderl-lock`` — the lock file (:class:`RunDirLock`): one process per folder at a time;
* ``config.json`` — the full configuration, the seed, package versions, the command line and host;
* ``metrics.jsonl`` — one JSON object per evaluation, appended as training goes;
* ``checkpoint.pt`` (or any artifact) — written atomically (write to a temporary file in the same
  folder, ``fsync``, then ``os.replace``; the mode follows the umask), so a crash never leaves a
  half-written file; read back with :func:`load_checkpoint`, as weights only;
* ``summary.json`` — final (or partial, after Ctrl-C) metrics.

:func:`claim_run_dir` enforces the policy shared by every long-running command: an existing,
non-empty folder is refused unless ``force`` (start over) or ``resume`` (continue) is given.
:class:`InterruptDeferral` moves Ctrl-C to safe points (step boundaries) and shields file writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import threading
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


def current_umask() -> int:
    """The process's file-creation mask (read from ``/proc`` where possible: ``os.umask`` can only be read
    by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, rename.

    The file gets the mode a plain ``open(path, "w")`` would give (``0o666 & ~umask``), not the
    ``0o600`` of :func:`tempfile.mkstemp`, so shared run folders stay readable as the user intends.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~current_umask())
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


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a ``checkpoint.pt`` of :class:`rl.trainer.Trainer` as weights only.

    ``torch.load(..., weights_only=True)`` unpickles tensors and plain containers (dict, list, tuple,
    str, numbers, None) and refuses every other object *before* constructing it, so a crafted file
    cannot run code (a full unpickling would call whatever its payload names). Everything pderl puts
    in a checkpoint is of those types (see :meth:`rl.trainer.Trainer.save_checkpoint`).

    Parameters
    ----------
    path : path-like
        The checkpoint file.

    Returns
    -------
    dict
        At least ``"step"`` (int) and ``"learner"`` (the learner's ``state_dict``), loaded on the CPU.

    Raises
    ------
    ValueError
        One line naming the file: missing, not a file, truncated or not a torch file, holding
        objects a weights-only load refuses, or not shaped like a pderl checkpoint.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist or is not a file; check the run folder, or "
                         "start a new run with --force")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"checkpoint {str(path)!r} refused: it holds objects other than tensors and plain data "
                         f"({_first_line(exc, 120)}); nothing in it was run. Use a checkpoint written by pderl") from None
    except Exception as exc:  # truncated zip, not a torch file, I/O error: torch raises many types
        raise ValueError(f"checkpoint {str(path)!r} is truncated or not a torch checkpoint ({_first_line(exc)}); "
                         "restore an intact copy, or start over with --force") from None
    if not (isinstance(state, dict) and isinstance(state.get("step"), int) and isinstance(state.get("learner"), dict)):
        raise ValueError(f"{str(path)!r} is not a pderl checkpoint (expected a dict with an integer 'step' and a "
                         "'learner' state); check the run folder")
    return state


def read_json(path: str | os.PathLike, *, what: str = "file") -> Any:
    """``json.loads`` of a file with one-line errors naming it (missing, unreadable, not JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{what} {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {str(path)!r} cannot be read as UTF-8 text ({_first_line(exc)})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}); restore it or start over with --force") from None


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


#: Marker file pderl writes into every folder it creates (run folders, reproduce folders): JSON
#: ``{"kind", "created", "pderl"}``. ``--force`` deletes only folders that hold it (or, for folders
#: written before the marker existed, only pderl's own record files); see :func:`check_replaceable`.
MARKER_NAME = ".pderl-run"

# What an unmarked folder written by an older pderl holds, by the record that identifies it: a run folder
# of rl.trainer (config.json) or a reproduce folder (run.json). Anything else means a user's file is there.
_LEGACY_RECORDS = {
    "config.json": (("learner", "environment"),
                    frozenset({"config.json", "metrics.jsonl", "checkpoint.pt", "summary.json"})),
    "run.json": (("config", "versions"),
                 frozenset({"run.json", "report.md", "metrics.json", "stages", "figures", "data", "runs"})),
}


def _read_marker(path: Path) -> dict | None:
    try:
        marker = json.loads((path / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return marker if isinstance(marker, dict) and isinstance(marker.get("kind"), str) else None


def _legacy_record(path: Path) -> str | None:
    """The name of the pderl record of an unmarked folder (``config.json`` of a trainer run with its
    ``learner`` and ``environment`` entries, ``run.json`` of a reproduce folder), or None."""
    for name, (keys, _) in _LEGACY_RECORDS.items():
        try:
            record = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(record, dict) and all(key in record for key in keys):
            return name
    return None


def _protected_folders() -> set[Path]:
    """Folders ``--force`` never deletes: ``/``, the home folder and its parents, the working
    directory and its parents (``.``, ``..``)."""
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    return {Path("/"), home, *home.parents, cwd, *cwd.parents}


def check_replaceable(path: str | os.PathLike) -> Path:
    """Refuse to delete ``path`` with ``--force`` unless pderl wrote it.

    A folder is pderl's when it holds :data:`MARKER_NAME` (written by :func:`claim_run_dir` into every
    folder it creates) or, for folders of older versions, when it holds pderl's ``config.json`` /
    ``run.json`` record and nothing but the names pderl writes. ``/``, the home folder, the working
    directory and any of their parents are refused whatever they hold, and so is a symbolic link (the
    deletion would act on its target).

    Returns
    -------
    Path
        ``path``, resolved.

    Raises
    ------
    ValueError
        One line naming the folder and the fix.
    """
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"--force refuses to replace {str(path)!r}: it is a symbolic link; "
                         "pass the folder itself or choose a new --out")
    resolved = path.resolve()
    if resolved in _protected_folders():
        raise ValueError(f"--force refuses to replace {str(path)!r} ({resolved}): it is the root, the home folder, "
                         "the working directory or one of their parents; choose a new folder for --out")
    if _read_marker(resolved) is not None:
        return resolved
    record = _legacy_record(resolved)
    if record is not None:
        known = _LEGACY_RECORDS[record][1] | {MARKER_NAME, LOCK_NAME}
        foreign = sorted(entry.name for entry in resolved.iterdir()
                         if entry.name not in known and not (entry.name.startswith(".") and entry.name.endswith(".tmp")))
        if not foreign:
            return resolved
        raise ValueError(f"--force refuses to replace {str(path)!r}: it holds files pderl did not write "
                         f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); move them away or "
                         "choose a new --out")
    raise ValueError(f"--force refuses to replace {str(path)!r}: pderl did not write it (no {MARKER_NAME} marker); "
                     "choose a new --out, or delete the folder yourself if you are sure")


def _has_content(path: Path) -> bool:
    """Whether a folder holds anything besides pderl's own marker and lock files."""
    return any(entry.name not in (MARKER_NAME, LOCK_NAME) for entry in path.iterdir())


def _clear_folder(path: Path) -> None:
    """Delete everything in ``path`` except its lock file (held by the caller during the deletion)."""
    for entry in path.iterdir():
        if entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def claim_run_dir(path: str | os.PathLike, *, force: bool = False, resume: bool = False,
                  kind: str = "run") -> "RunDirLock":
    """Create, replace or re-open a run folder and hold its lock.

    The never-overwrite policy of every long-running command: a folder that holds anything is
    refused unless ``force`` (start over: only a folder pderl wrote, see :func:`check_replaceable`)
    or ``resume`` (continue it: it must be a pderl folder of the same ``kind``). A new or replaced
    folder gets the :data:`MARKER_NAME` marker. The folder is locked (:class:`RunDirLock`) before
    anything in it is deleted or read, so a second process on the same folder is refused instead of
    interleaving its files.

    Parameters
    ----------
    path : path-like
        The run folder.
    force : bool
        Delete an existing folder's contents and start over.
    resume : bool
        Re-open an existing folder to continue it (the caller restores its checkpoint).
    kind : str, default "run"
        What the folder holds (``"run"`` for :class:`rl.trainer.Trainer`, ``"reproduce"`` for
        :func:`validation.reproduce.reproduce`); recorded in the marker, checked on ``resume``.

    Returns
    -------
    RunDirLock
        The held lock (``.path`` is the folder); release it with ``release()`` or a ``with`` block.

    Raises
    ------
    ValueError
        One line naming the folder: exists without ``force``/``resume``, both given, ``resume`` of a
        missing or foreign folder, ``force`` on a folder pderl did not write, folder in use, or the
        system refusing to create, read or lock it (permissions, read-only disk).
    """
    try:
        return _claim_run_dir(Path(path), force=force, resume=resume, kind=kind)
    except OSError as exc:
        raise ValueError(f"run folder {str(path)!r} cannot be created, read or locked ({exc.strerror or exc}); "
                         "choose a writable --out") from None


def _claim_run_dir(path: Path, *, force: bool, resume: bool, kind: str) -> "RunDirLock":
    if force and resume:
        raise ValueError("force and resume are exclusive: --force starts over, --resume continues; "
                         "pass only one of them")
    if path.exists() and not path.is_dir():
        raise ValueError(f"run folder {str(path)!r} exists and is not a folder; choose another --out")
    has_content = path.is_dir() and _has_content(path)
    if resume:
        if not has_content:
            raise ValueError(f"--resume given but run folder {str(path)!r} does not exist or is empty; "
                             "drop --resume to start a new run")
        marker = _read_marker(path)
        if marker is None and _legacy_record(path) is None:
            raise ValueError(f"--resume given but {str(path)!r} is not a pderl folder (no {MARKER_NAME} marker, "
                             "no pderl config.json or run.json); check --out")
        if marker is not None and marker["kind"] != kind:
            raise ValueError(f"--resume given but {str(path)!r} holds a pderl {marker['kind']!r} folder, not a "
                             f"{kind!r} one; check --out")
        return RunDirLock(path).acquire()
    if has_content and not force:
        raise ValueError(f"run folder {str(path)!r} already exists and is not empty; pass --force to "
                         "overwrite it or --resume to continue it")
    if has_content:
        check_replaceable(path)
    path.mkdir(parents=True, exist_ok=True)
    lock = RunDirLock(path).acquire()
    try:
        if has_content:
            _clear_folder(path)
        from pdecore import __version__

        atomic_write_json(path / MARKER_NAME, {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                               "pderl": __version__})
    except BaseException:
        lock.release()
        raise
    return lock


def prepare_run_dir(path: str | os.PathLike, *, force: bool = False, resume: bool = False,
                    kind: str = "run") -> Path:
    """:func:`claim_run_dir` without keeping the lock (for callers that only need the folder ready).

    Returns
    -------
    Path
        The folder.
    """
    with claim_run_dir(path, force=force, resume=resume, kind=kind) as lock:
        return lock.path


LOCK_NAME = ".pderl-lock"


class RunDirLock:
    """An exclusive, non-blocking ``fcntl.flock`` on ``<folder>/.pderl-lock``.

    ``flock`` locks belong to an open file and vanish when the process ends (also on ``kill -9``), so a
    crashed run never leaves a stale lock. Where ``fcntl`` is absent (Windows) the lock is a no-op.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._handle = None

    def acquire(self) -> "RunDirLock":
        """Take the lock or raise ``ValueError`` naming the folder when another process holds it."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        handle = open(self.path / LOCK_NAME, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ValueError(f"run folder {str(self.path)!r} is in use by another pderl process (it holds "
                             f"{LOCK_NAME}); wait for it to finish or choose another --out") from None
        self._handle = handle
        return self

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None

    def __enter__(self) -> "RunDirLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


class InterruptDeferral:
    """Turn Ctrl-C into a request honoured at the next safe point (a step boundary).

    While active (``with InterruptDeferral() as interrupts:``), the first SIGINT only sets
    :attr:`requested` and prints ``message``; the loop checks the flag at its boundaries, saves there
    and raises ``KeyboardInterrupt`` itself, so no state of a half-done step is ever saved. A second
    SIGINT raises ``KeyboardInterrupt`` at once (the caller then keeps its last saved state), except
    inside :meth:`shielded` blocks (file writes), where every SIGINT is only recorded, so a quick
    series of Ctrl-C cannot tear a write or escape as a traceback. With ``defer=False`` every SIGINT
    outside a shield raises at once, and one met inside a shield raises when the shield ends. Outside the main thread (where
    Python cannot install signal handlers) it does nothing and Ctrl-C behaves as usual.
    """

    def __init__(self, message: str = "Ctrl-C: stopping at the next safe point; press Ctrl-C again to stop at once",
                 stream=None, *, defer: bool = True) -> None:
        self.message = message
        self.stream = stream
        self.defer = defer
        self.requested = False
        self._pending = False  # defer=False: a SIGINT met inside a shield, raised when the shield ends
        self._shield_depth = 0
        self._previous = None
        self._installed = False

    def _handle(self, signum, frame) -> None:
        if not self.defer:
            if self._shield_depth:
                self.requested = self._pending = True
                return
            raise KeyboardInterrupt
        if self._shield_depth or not self.requested:
            first = not self.requested
            self.requested = True
            if first and self.message:
                print(f"\n{self.message}", file=self.stream or sys.stderr, flush=True)
            return
        raise KeyboardInterrupt

    def __enter__(self) -> "InterruptDeferral":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
            self._installed = False

    @contextlib.contextmanager
    def shielded(self):
        """A block no SIGINT interrupts (it is recorded as a request instead)."""
        self._shield_depth += 1
        try:
            yield self
        finally:
            self._shield_depth -= 1
        if not self._shield_depth and self._pending:
            self._pending = False
            raise KeyboardInterrupt
