"""What every learner's frozen configuration shares: a record for ``config.json`` and a strict rebuild.

The learners' settings (:class:`rl.stopping.config.StoppingConfig`,
:class:`rl.market_making.config.MMTrainConfig`, :class:`rl.dynkin.config.DynkinConfig`,
:class:`rl.stopping.high_dim.HighDimStoppingConfig`) are frozen dataclasses validated in
``__post_init__``. They are written to a run's ``config.json`` and rebuilt from it on ``resume`` and
``evaluate``, so each needs the same three operations; they live here once:

* :meth:`ConfigRecord.to_dict` — the JSON-ready mapping (``dataclasses.asdict``);
* :meth:`ConfigRecord.from_dict` — the inverse, refusing unknown keys by name (a key the class does not
  know means the record was written by another version or edited by hand: silently dropping it would
  train or evaluate something else than what was recorded); a field *missing* from a record (written
  before the field existed) takes its ``LEGACY_DEFAULTS`` value, the behaviour of that older version,
  not the current default;
* :meth:`ConfigRecord.replace` — a copy with some fields changed, validated again like a new config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T", bound="ConfigRecord")


class ConfigRecord:
    """Mixin for frozen dataclass configurations (see the module docstring).

    ``RECORD_NAME`` names the settings in error messages (default: the class name). ``LEGACY_DEFAULTS``
    maps a field added after runs were already recorded to the value that reproduces what those runs
    did (a new default must not change what an old run's networks mean).
    """

    RECORD_NAME: str | None = None
    LEGACY_DEFAULTS: dict[str, Any] = {}

    def to_dict(self) -> dict[str, Any]:
        """The fields as a mapping of plain values (what ``config.json`` records)."""
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[T], data: dict) -> T:
        """Rebuild from :meth:`to_dict` output; unknown keys are refused by name."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.RECORD_NAME or cls.__name__} record must be a mapping, got "
                             f"{type(data).__name__}; restore the run's config.json")
        unknown = sorted(set(data) - cls.field_names())
        if unknown:
            raise ValueError(f"unknown {cls.RECORD_NAME or cls.__name__} fields {unknown}; the run was written by "
                             f"another version (allowed: {sorted(cls.field_names())})")
        missing = {name: value for name, value in cls.LEGACY_DEFAULTS.items() if name not in data}
        return cls(**{**missing, **data})

    def replace(self: T, **changes) -> T:
        """A copy with ``changes`` applied, validated again (``__post_init__`` runs)."""
        unknown = sorted(set(changes) - self.field_names())
        if unknown:
            raise ValueError(f"unknown {self.RECORD_NAME or type(self).__name__} fields {unknown}")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


__all__ = ["ConfigRecord"]
