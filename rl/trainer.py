"""The training loop shared by every learner of the project (stopping, market making, Dynkin).

The trainer is deliberately thin (Stable-Baselines3 keeps the loop apart from ``train()``; CleanRL keeps
it in one readable function): it owns seeding, the progress bar, periodic evaluation, run folders,
checkpoints, resume and Ctrl-C. Everything about the mathematics lives in the learner.

Learner contract
----------------
A learner is any object with these methods (see :class:`Learner`):

``sample_batch(step: int) -> batch``
    Draw the training data of step ``step`` (0-based) with the learner's *own* ``torch.Generator``
    (never the global RNG), so that a restored generator state reproduces the same batches.
``train_step(batch) -> dict[str, float]``
    One optimisation step on ``batch``; returns scalar diagnostics with namespaced keys
    (``"losses/martingale"``, ``"charts/sigma"``).
``evaluate() -> dict[str, float]``
    Evaluation on the learner's fixed test data. It must not advance the training generator and must
    leave the networks in training mode (or whatever mode they were in): evaluation is then invisible to
    training, and a run evaluated every step ends with the same weights as one never evaluated.
``state_dict() -> dict`` / ``load_state_dict(d)``
    Everything needed to continue bit-exactly: networks (with batch-norm buffers), optimisers and the
    generator state(s). The trainer adds its own counters next to it in the checkpoint.
``config_dict() -> dict``
    JSON-serializable configuration (written to ``config.json``; compared on ``resume``).
``to(device)`` (optional)
    Move networks and generators to a device; called by :class:`Trainer` when present.

Run folder
----------
``config.json`` (learner config, trainer settings, seed, :func:`rl.runs.environment_record`; a resume
appends to its ``resumes`` list), ``metrics.jsonl`` (one record per evaluation: ``step``, the last
training diagnostics, the evaluation, ``time/elapsed_s``), ``checkpoint.pt`` (atomic, weights-only
loadable by :func:`rl.runs.load_checkpoint`: ``{"format", "step", "learner", "trainer", "config"}``)
and ``summary.json`` (``status`` = ``"completed"`` or ``"interrupted"``, ``step`` done, the
``checkpoint_step`` a resume starts from, last evaluation). The policy for existing folders is
:func:`rl.runs.claim_run_dir`: refused unless ``force`` (start over; only a folder pderl wrote) or
``resume`` (continue from ``checkpoint.pt``, to the ``total_steps`` recorded in ``config.json`` unless
a larger value is given); the folder is locked while :meth:`Trainer.fit` runs.

Interruption
------------
A checkpoint only ever holds a step boundary. Ctrl-C lets the current step finish and saves that
boundary; a second Ctrl-C, or an exception raised inside a step, saves nothing and leaves the newest
checkpoint (one is written at step 0) as the resume point. See :meth:`Trainer.fit`.

Determinism
-----------
On CPU, the same seed gives the same weights: :func:`seed_everything` seeds Python, NumPy and torch,
and the learner draws from its own generator. A resumed run ends bit-exactly where an uninterrupted
run ends because the checkpoint holds the generator and optimiser states, and ``metrics.jsonl`` is cut
back to the checkpoint's step (records written after the last checkpoint of a crashed run are
dropped, then recomputed).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pdecore.checks import check_choice, check_int
from rl.runs import (append_jsonl, atomic_torch_save, atomic_write_json, atomic_write_text, environment_record,
                     InterruptDeferral, claim_run_dir, load_checkpoint, read_json, read_jsonl, to_json)

CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.jsonl"
SUMMARY_NAME = "summary.json"
#: 2: weights-only loadable (Python RNG state as a list, learner config as JSON text); 1: pickled tuples.
CHECKPOINT_FORMAT = 2


@runtime_checkable
class Learner(Protocol):
    """What :class:`Trainer` needs from a learner (see the module docstring)."""

    def sample_batch(self, step: int) -> Any: ...

    def train_step(self, batch: Any) -> dict[str, float]: ...

    def evaluate(self) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def config_dict(self) -> dict: ...


def seed_everything(seed: int, *, deterministic: bool = True) -> int:
    """Seed Python's, NumPy's and torch's global generators (and CUDA's, if present).

    Parameters
    ----------
    seed : int
        Non-negative seed.
    deterministic : bool, default True
        Ask torch for deterministic kernels where it has a choice (``warn_only``: an op without a
        deterministic variant warns instead of failing). On CPU with a fixed thread count torch is
        already deterministic for the ops the learners use.

    Returns
    -------
    int
        The seed, validated.
    """
    import numpy as np
    import torch

    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1, fix="pass a non-negative integer seed such as 0")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


def reduce_allocation_overhead() -> bool:
    """Keep large tensor buffers in glibc's heap instead of fresh ``mmap`` pages.

    The learners allocate many ~1–4 MB temporaries per step; by default glibc serves each with a new
    ``mmap`` whose pages fault in on first touch, which costs as much as the arithmetic on small CPUs
    (measured: ~2× on a full stopping step). Raising ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``
    (``mallopt``) lets freed buffers be reused. Process-wide and harmless (memory is reused, not
    leaked); a no-op returning False where glibc is not available.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok_mmap = mallopt(m_mmap_threshold, 512 * 1024 * 1024)
    ok_trim = mallopt(m_trim_threshold, 1024 * 1024 * 1024)
    return bool(ok_mmap and ok_trim)


def resolve_device(device: str):
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` as a ``torch.device``, refusing CUDA when it is absent."""
    import torch

    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}; pass --device cpu or --device cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no CUDA device; pass --device cpu")
    return torch.device(device)


def _finite_or_none(value):
    """JSON-friendly scalar: floats stay floats (inf/nan kept), tensors become Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    return value


class Trainer:
    """Run a learner for ``total_steps`` steps with evaluation, checkpoints and resume.

    Parameters
    ----------
    learner : Learner
        The object being trained (see the module docstring for the contract).
    run_dir : path-like
        Run folder (``config.json``, ``metrics.jsonl``, ``checkpoint.pt``, ``summary.json``).
    total_steps : int or None
        Number of training steps of the whole run. Required for a new run. On ``resume``, ``None``
        continues the *recorded* run to the ``total_steps`` of its ``config.json``; a larger value
        extends it (recorded in ``config.json``), a smaller one is refused (the run would end early
        under a record that says otherwise).
    eval_every : int or None
        Evaluate every this many steps (and always after the last step). ``0`` evaluates only at the
        end. ``None`` on ``resume``: as recorded.
    checkpoint_every : int or None
        Save ``checkpoint.pt`` every this many steps (and always at step 0, after the last step and at
        a Ctrl-C). ``0`` saves only then. ``None`` on ``resume``: as recorded.
    seed : int
        Recorded in ``config.json`` and passed to :func:`seed_everything` (the learner seeds its own
        generator from its config; the global seed only covers code that uses the global RNG).
    device : str, default "cpu"
        ``"cpu"`` or ``"cuda"``; the learner's ``to(device)`` is called when it has one.
    progress : bool, default True
        Show a tqdm progress bar.
    resume : bool, default False
        Continue from ``run_dir/checkpoint.pt``.
    force : bool, default False
        Overwrite an existing non-empty run folder.
    eval_at_start : bool, default False
        Also evaluate before the first step (step 0), for learning curves that start at the random
        initialisation.
    extra_config : dict, optional
        More JSON-serializable entries for ``config.json`` (e.g. the command line's algorithm name).

    Examples
    --------
    >>> trainer = Trainer(learner, "runs/ml-seed0", total_steps=1000, eval_every=10,
    ...                   checkpoint_every=100, seed=0)                      # doctest: +SKIP
    >>> summary = trainer.fit()                                              # doctest: +SKIP
    """

    def __init__(self, learner: Learner, run_dir, *, total_steps: int | None, eval_every: int | None,
                 checkpoint_every: int | None, seed: int, device: str = "cpu", progress: bool = True, resume: bool = False,
                 force: bool = False, eval_at_start: bool = False, extra_config: dict | None = None) -> None:
        missing = [name for name in ("sample_batch", "train_step", "evaluate", "state_dict", "load_state_dict",
                                     "config_dict") if not callable(getattr(learner, name, None))]
        if missing:
            raise ValueError(f"learner of type {type(learner).__name__} lacks {missing}; implement the learner "
                             "contract documented in rl.trainer")
        self.learner = learner
        self.run_dir = Path(run_dir)
        self.resume = bool(resume)
        settings = {"total_steps": (total_steps, 1, "pass a positive number of steps"),
                    "eval_every": (eval_every, 0, "pass 0 (end only) or a positive period"),
                    "checkpoint_every": (checkpoint_every, 0, "pass 0 (end only) or a positive period")}
        for name, (value, minimum, fix) in settings.items():
            if value is None and not self.resume:
                raise ValueError(f"{name} is required for a new run (None means 'as recorded' on resume only); "
                                 f"{fix}")
            setattr(self, name, None if value is None else check_int(name, value, minimum=minimum, fix=fix))
        # what the caller asked for explicitly (None: as recorded), resolved against config.json on resume
        self._requested = {name: getattr(self, name) for name in settings}
        self.seed = check_int("seed", seed, minimum=0, fix="pass a non-negative integer seed")
        check_choice("progress", progress, (True, False), fix="pass True or False")
        self.device = resolve_device(device)
        self.progress = progress
        self.force = bool(force)
        self.eval_at_start = bool(eval_at_start)
        self.extra_config = dict(extra_config or {})
        self.step = 0
        self.last_train: dict[str, float] = {}
        self.last_eval: dict[str, float] = {}
        self._elapsed_before = 0.0  # seconds spent in earlier sessions of a resumed run
        self.checkpoint_step: int | None = None  # step of the newest checkpoint on disk (the resume point)
        self._interrupts = None

    # ------------------------------------------------------------------ paths
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_NAME

    @property
    def summary_path(self) -> Path:
        return self.run_dir / SUMMARY_NAME

    # ------------------------------------------------------------------ config / checkpoints
    def config_record(self) -> dict:
        """What ``config.json`` holds: learner config, trainer settings, seed and environment."""
        return {
            "learner": self.learner.config_dict(),
            "trainer": {"total_steps": self.total_steps, "eval_every": self.eval_every,
                        "checkpoint_every": self.checkpoint_every, "device": str(self.device),
                        "eval_at_start": self.eval_at_start},
            "seed": self.seed,
            **self.extra_config,
            "environment": environment_record(),
        }

    def save_checkpoint(self) -> Path:
        """Atomically write ``checkpoint.pt`` for the current step.

        Everything in it is a tensor or a plain container/number/string, so :func:`rl.runs.load_checkpoint`
        reads it back with ``weights_only=True`` (no code runs while loading): Python's RNG state is a
        list, the learner configuration its JSON text. One file holds all of the state, so a crash
        can never pair weights of one step with counters of another.
        """
        import torch

        version, internal, gauss = random.getstate()
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "learner": self.learner.state_dict(),
            "trainer": {"torch_rng": torch.get_rng_state(), "python_rng": [version, list(internal), gauss],
                        "elapsed_s": self._elapsed(), "last_train": dict(self.last_train),
                        "last_eval": dict(self.last_eval)},
            "config": to_json(self.learner.config_dict()),
        }
        with self._interrupts.shielded() if self._interrupts else contextlib.nullcontext():
            path = atomic_torch_save(state, self.checkpoint_path)
        self.checkpoint_step = self.step
        return path

    def _resolve_recorded_settings(self) -> None:
        """On resume: ``None`` settings take the recorded values; a larger ``total_steps`` extends the
        run and is written into ``config.json`` (with a ``resumes`` history)."""
        config_path = self.run_dir / CONFIG_NAME
        record = read_json(config_path, what="run configuration")
        recorded = record.get("trainer") if isinstance(record, dict) else None
        if not isinstance(recorded, dict) or not all(isinstance(recorded.get(name), int) for name in self._requested):
            raise ValueError(f"run configuration {str(config_path)!r} lacks the trainer settings (total_steps, "
                             "eval_every, checkpoint_every); restore it or start over with --force")
        requested_total = self._requested["total_steps"]
        if requested_total is not None and requested_total < recorded["total_steps"]:
            raise ValueError(f"total_steps={requested_total} is below the {recorded['total_steps']} steps recorded in "
                             f"{str(config_path)!r}; omit --steps to continue the recorded run, or pass a larger "
                             "value to extend it")
        for name, value in self._requested.items():
            setattr(self, name, recorded[name] if value is None else value)
        changed = {name: getattr(self, name) for name in self._requested if getattr(self, name) != recorded[name]}
        record.setdefault("resumes", []).append({"at_step": self.step, "changed": changed,
                                                 **environment_record()})
        record["trainer"].update(changed)
        with self._interrupts.shielded() if self._interrupts else contextlib.nullcontext():
            atomic_write_json(config_path, record)

    def _load_checkpoint(self) -> None:
        import torch

        if not self.checkpoint_path.exists():
            raise ValueError(f"--resume given but {str(self.checkpoint_path)!r} does not exist; start a new run "
                             "with --force instead")
        # weights only (no code in the file runs); on the CPU first: generator states must stay CPU tensors
        state = load_checkpoint(self.checkpoint_path)
        saved = state.get("config")
        saved = saved if isinstance(saved, str) else to_json(saved)  # format 1 stored the dict itself
        if saved != to_json(self.learner.config_dict()):
            raise ValueError(f"the learner configuration differs from the checkpoint's in {str(self.run_dir)!r}; "
                             "resume with the run's own config.json, or start a new run with --force")
        try:
            self.learner.load_state_dict(state["learner"])
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint {str(self.checkpoint_path)!r} does not fit this learner "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                             "resume with the run's own configuration") from None
        self.step = self.checkpoint_step = int(state["step"])
        trainer_state = state.get("trainer", {})
        if "torch_rng" in trainer_state:
            torch.set_rng_state(trainer_state["torch_rng"])
        if "python_rng" in trainer_state:
            version, internal, gauss = trainer_state["python_rng"]
            random.setstate((version, tuple(internal), gauss))
        self._elapsed_before = float(trainer_state.get("elapsed_s", 0.0))
        self.last_train = dict(trainer_state.get("last_train", {}))
        self.last_eval = dict(trainer_state.get("last_eval", {}))
        # metrics written after the checkpoint (a crash between evaluation and checkpoint) are recomputed
        records = [r for r in read_jsonl(self.metrics_path) if int(r.get("step", 0)) <= self.step]
        with self._interrupts.shielded() if self._interrupts else contextlib.nullcontext():
            atomic_write_text(self.metrics_path, "".join(to_json(r, indent=None) + "\n" for r in records))

    def _elapsed(self) -> float:
        return self._elapsed_before + (time.perf_counter() - self._start if hasattr(self, "_start") else 0.0)

    def _write_summary(self, status: str) -> dict:
        summary = {"status": status, "step": self.step, "checkpoint_step": self.checkpoint_step,
                   "total_steps": self.total_steps, "seconds": self._elapsed(), "train": self.last_train,
                   "evaluation": self.last_eval, "run_dir": str(self.run_dir)}
        with self._interrupts.shielded() if self._interrupts else contextlib.nullcontext():
            atomic_write_json(self.summary_path, summary)
        return summary

    def _evaluate(self) -> None:
        evaluation = {key: _finite_or_none(value) for key, value in self.learner.evaluate().items()}
        self.last_eval = evaluation
        record = {"step": self.step, **self.last_train, **evaluation, "time/elapsed_s": self._elapsed()}
        append_jsonl(self.metrics_path, record)

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        """Train to ``total_steps``; returns the summary (also written to ``summary.json``).

        The run folder is locked for the whole call (:class:`rl.runs.RunDirLock`): a second trainer on
        the same folder is refused. Ctrl-C is honoured at step boundaries only
        (:class:`rl.runs.InterruptDeferral`): the first one lets the current step finish, then
        ``checkpoint.pt`` is saved for that boundary, a partial summary (``status="interrupted"``) is
        written and ``KeyboardInterrupt`` propagates. A second Ctrl-C (or any ``KeyboardInterrupt``
        raised inside ``sample_batch``/``train_step``/``evaluate``) stops at once *without* saving the
        half-done step: the newest checkpoint on disk (``summary["checkpoint_step"]``; one is always
        written at step 0) stays the resume point, and ``metrics.jsonl`` records past it are dropped
        on resume, so the resumed run ends bit-identical to an uninterrupted one.
        """
        from tqdm.auto import tqdm

        message = ("pderl: Ctrl-C: finishing the current step, then saving a checkpoint; press Ctrl-C again to "
                   "stop at once (the last checkpoint is kept)")
        with claim_run_dir(self.run_dir, force=self.force, resume=self.resume, kind="run") as lock, \
                InterruptDeferral(message) as interrupts:
            self.run_dir, self._interrupts = lock.path, interrupts
            try:
                return self._fit_locked(tqdm)
            finally:
                self._interrupts = None

    def _fit_locked(self, tqdm) -> dict:
        seed_everything(self.seed)  # under the lock: a refused second trainer leaves the global RNGs alone
        if hasattr(self.learner, "to"):
            self.learner.to(self.device)
        self._start = time.perf_counter()
        if self.resume:
            self._load_checkpoint()
            self._resolve_recorded_settings()
            if self.step > self.total_steps:
                raise ValueError(f"the checkpoint is at step {self.step}, beyond total_steps={self.total_steps}; "
                                 "pass a larger --steps to continue")
        else:
            with self._interrupts.shielded():
                atomic_write_json(self.run_dir / CONFIG_NAME, self.config_record())
            if self.eval_at_start:
                self._evaluate()
            self.save_checkpoint()  # step 0: a resume point even if the first step is interrupted
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.progress, dynamic_ncols=True,
                   desc=self.run_dir.name, leave=False)
        try:
            while self.step < self.total_steps:
                if self._interrupts.requested:  # Ctrl-C during the previous step: stop at this boundary
                    if self.checkpoint_step != self.step:
                        self.save_checkpoint()
                    raise KeyboardInterrupt
                batch = self.learner.sample_batch(self.step)
                diagnostics = self.learner.train_step(batch)
                self.step += 1
                self.last_train = {key: _finite_or_none(value) for key, value in diagnostics.items()}
                last = self.step == self.total_steps
                if last or (self.eval_every and self.step % self.eval_every == 0):
                    self._evaluate()
                if last or (self.checkpoint_every and self.step % self.checkpoint_every == 0):
                    self.save_checkpoint()
                bar.update(1)
                if self.progress:
                    shown = {k.split("/")[-1]: v for k, v in {**self.last_train, **self.last_eval}.items()
                             if isinstance(v, float) and math.isfinite(v)}
                    bar.set_postfix({k: f"{v:.4g}" for k, v in list(shown.items())[:4]}, refresh=False)
        except KeyboardInterrupt:
            with self._interrupts.shielded():
                bar.close()
                self._write_summary("interrupted")
            raise
        bar.close()
        return self._write_summary("completed")
