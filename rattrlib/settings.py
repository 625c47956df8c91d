"""A chapter's settings as one frozen, validated dataclass: ``ARTSettings.resolve(scale, **params)``.

The pattern of :class:`rattrlib.evaluation.IFIAProtocol`, extended to a whole chapter: every papermill parameter is
a field; ``None`` means "the scale's preset" (:attr:`ChapterSettings.PRESETS`, one dict per scale, the one place a
chapter's presets live); each field names its check in its metadata, so a bad value fails in :meth:`resolve`
before any compute, with the parameter's name and the valid values.

>>> s = RARSettings.resolve("cpu", seeds=[0, 1, 2], eps=0.1)
>>> s.seeds, s.eps
((0, 1, 2), 0.1)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar, Mapping

import pandas as pd

from rattrlib.config import DEVICES, SCALES, check_choice, check_int, check_positive, check_range, check_real


def is_int(name: str, value: Any, low: int = 1) -> int:
    """An int ≥ ``low`` (a float with an integral value, as papermill may pass, is accepted)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_int(name, value, low)


def int_check(low: int = 1, high: int | None = None) -> Callable:
    """An int in [low, high] (``high`` None: no upper bound)."""

    def run(name: str, value) -> int:
        value = is_int(name, value, low)
        if high is not None and value > high:
            raise ValueError(f"{name}={value!r} must be at most {high}")
        return value

    return run


def real_check(low: float = -math.inf, high: float = math.inf, *, low_open: bool = False) -> Callable:
    return lambda name, value: check_range(name, check_real(name, value), low, high, low_open=low_open)


def optional(check: Callable) -> Callable:
    """``check`` for a value that may be None ("all" / "not used")."""
    return lambda name, value: None if value is None else check(name, value)


def choice(*choices) -> Callable:
    return lambda name, value: check_choice(name, value, choices)


def sequence_of(check: Callable, *, min_length: int = 1, distinct: str | None = None) -> Callable:
    """A list or tuple (not a string) of values passing ``check``, returned as a tuple; with ``distinct`` (what an
    entry is called: "seed", "dataset") a repeated entry is refused."""

    def run(name: str, value):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{name}={value!r} must be a list, e.g. [{name}_1, {name}_2]")
        if len(value) < min_length:
            raise ValueError(f"{name}={value!r} needs at least {min_length} entries")
        values = tuple(check(f"{name}[{i}]", v) for i, v in enumerate(value))
        if distinct and len(set(values)) != len(values):
            raise ValueError(f"{name}={value!r} repeats a {distinct}")
        return values

    return run


def positive(name: str, value) -> float:
    return check_positive(name, value)


def setting(check: Callable, doc: str = "") -> Any:
    """A settings field: a value of the scale's preset unless given; ``check(name, value)`` validates (and may
    convert) it."""
    return dataclasses.field(default=None, metadata={"check": check, "doc": doc})


check_seeds = sequence_of(int_check(0), distinct="seed")


@dataclasses.dataclass(frozen=True)
class ChapterSettings:
    """Base of every chapter's settings: ``scale``, ``seeds`` (models of the claims are trained and evaluated
    once per seed), ``device``. Subclasses add fields made with :func:`setting` and a :attr:`PRESETS` table."""

    scale: str = dataclasses.field(default="cpu", metadata={"doc": "smoke (tests) | cpu (the book) | paper (GPU)"})
    seeds: tuple = setting(check_seeds, "training seeds of the models the claims rest on")
    device: str = dataclasses.field(default="auto", metadata={"doc": "auto | cpu | cuda"})

    #: per scale, the value of every field left None
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {s: {"seeds": (0,)} for s in SCALES}

    @classmethod
    def resolve(cls, scale: str = "cpu", **params) -> "ChapterSettings":
        """The settings at ``scale`` with ``params`` (None = the preset); unknown names and bad values raise
        ``ValueError`` naming the parameter, before any compute."""
        check_choice("scale", scale, SCALES)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for {cls.__name__}; valid: {names}")
        missing = [s for s in SCALES if s not in cls.PRESETS]
        if missing:
            raise ValueError(f"{cls.__name__}.PRESETS lacks the scales {missing}")
        values = {**cls.PRESETS[scale], **{k: v for k, v in params.items() if v is not None}}
        return cls(scale=scale, **{k: v for k, v in values.items() if k != "scale"})

    def __post_init__(self):
        check_choice("scale", self.scale, SCALES)
        check_choice("device", str(self.device).split(":")[0], DEVICES)
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is None:
                continue
            value = getattr(self, f.name)
            if value is None and f.name in self.PRESETS.get(self.scale, {}):
                value = self.PRESETS[self.scale][f.name]
            object.__setattr__(self, f.name, check(f.name, value))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def resolved(self) -> dict:
        """The values the chapter uses for fields left None (e.g. the dataset's ε), by field name, as text;
        :meth:`describe` shows them beside the None. Chapters whose None means a computed default override it."""
        return {}

    def describe(self) -> pd.DataFrame:
        """The settings as a table (parameter, value, meaning); a None that the chapter resolves shows what it
        resolves to ("None → 0.1")."""
        resolved = self.resolved()

        def shown(name: str, value):
            return f"None → {resolved[name]}" if value is None and name in resolved else value

        return pd.DataFrame([{"parameter": f.name, "value": shown(f.name, getattr(self, f.name)),
                              "meaning": f.metadata.get("doc", "")}
                             for f in dataclasses.fields(self)]).set_index("parameter")


__all__ = ["ChapterSettings", "check_seeds", "choice", "int_check", "is_int", "optional", "positive", "real_check",
           "sequence_of", "setting"]
