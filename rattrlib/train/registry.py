"""The training methods by name: :data:`METHODS` (filled by :mod:`rattrlib.train`, which imports every method)
and :func:`make_method`."""

from __future__ import annotations

from rattrlib.config import check_choice
from rattrlib.train.base import TrainingMethod

METHODS: dict[str, type[TrainingMethod]] = {}


def make_method(name: str, **hyperparameters) -> TrainingMethod:
    """The training method ``name`` with its hyperparameters (validated by its constructor)."""
    check_choice("method", name, sorted(METHODS))
    return METHODS[name](**hyperparameters)


__all__ = ["METHODS", "make_method"]
