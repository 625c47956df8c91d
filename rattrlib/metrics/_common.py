"""The metric decorator, the registry :data:`METRICS`, and the shape checks every metric runs first."""

from __future__ import annotations

from typing import Callable, Optional

import torch

METRICS: dict[str, Callable] = {}
"""Registered metrics by function name; each carries ``higher_is_better``, ``cite`` and ``bounds``."""


def metric(*, higher_is_better: Optional[bool], cite: str, bounds: tuple[float, float] | None = None):
    """Declare a metric's direction and source (Quantus-style) and register it in :data:`METRICS`.

    Sets ``fn.higher_is_better`` (``None`` when the direction is that of another metric, e.g. log-AUC),
    ``fn.cite`` (paper, section/equation) and ``fn.bounds`` (the value range, ``None`` when unbounded).
    """

    def wrap(fn: Callable) -> Callable:
        known = METRICS.get(fn.__name__)
        if known is not None and known.__module__ != fn.__module__:  # a module reload may re-register
            raise ValueError(f"metric {fn.__name__!r} is already registered by {known.__module__}")
        fn.higher_is_better = higher_is_better
        fn.cite = cite
        fn.bounds = bounds
        METRICS[fn.__name__] = fn
        return fn

    return wrap


def as_tensor(x, name: str) -> torch.Tensor:
    """``x`` as a tensor (NumPy arrays and nested lists are accepted)."""
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x)
    except Exception as err:  # noqa: BLE001 - re-raised with the argument's name
        raise ValueError(f"{name} must be a tensor or array, got {type(x).__name__}") from err


def check_batch(x, name: str, ndims: tuple[int, ...] = (2, 3)) -> torch.Tensor:
    """Check that ``x`` is a batch with one of ``ndims`` dimensions and at least one element per image."""
    x = as_tensor(x, name)
    if x.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want} (a batch of maps, images first), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    return x


def check_pair(a, b, names: tuple[str, str] = ("a", "b"), ndims: tuple[int, ...] = (2, 3)):
    """Check two batches of the same shape; return them flattened to (N, D)."""
    a = check_batch(a, names[0], ndims)
    b = check_batch(b, names[1], ndims)
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.device != b.device:
        raise ValueError(f"{names[0]} is on {a.device} but {names[1]} on {b.device}")
    return a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)


def check_finite(x: torch.Tensor, name: str) -> None:
    """Rank metrics are undefined with NaN/inf entries: refuse them."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has NaN or infinite entries")


def check_k(k, d: int) -> int:
    """``k`` must be an int in [1, D]."""
    if isinstance(k, bool) or not isinstance(k, int):
        try:
            if int(k) != k:
                raise TypeError
            k = int(k)
        except (TypeError, ValueError):
            raise ValueError(f"k={k!r} must be an integer") from None
    if not 1 <= k <= d:
        raise ValueError(f"k={k} is outside [1, {d}] (the number of pixels per map)")
    return k


def out_dtype(*xs: torch.Tensor) -> torch.dtype:
    """Floating dtype of the result: the inputs' promoted float dtype, else the torch default."""
    floats = [x.dtype for x in xs if x.is_floating_point()]
    if not floats:
        return torch.get_default_dtype()
    dtype = floats[0]
    for other in floats[1:]:
        dtype = torch.promote_types(dtype, other)
    return dtype
