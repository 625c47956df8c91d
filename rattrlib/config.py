"""Run-wide settings: where rattr keeps its files, which device to use, and parameter checks.

Chapters validate their papermill parameters with these helpers so a bad value fails before any compute,
with a message that lists the valid values.
"""

from __future__ import annotations


import math
import numbers
import os
import random
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

SCALES = ("smoke", "cpu", "paper")
DEVICES = ("auto", "cpu", "cuda")


def rattr_home() -> Path:
    """Root folder for data and cached results: ``$RATTR_HOME``, else ``~/.cache/rattr``."""
    return Path(os.environ.get("RATTR_HOME", Path.home() / ".cache" / "rattr")).expanduser()


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``; else raise ``ValueError`` listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of: {', '.join(map(repr, choices))}")
    return value


def check_range(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> float:
    """Return ``value`` if ``low <= value <= high`` (``low < value`` when ``low_open``); else raise."""
    below = value <= low if low_open else value < low
    if below or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name}={value!r} is outside {bracket}{low}, {high}]")
    return value


def check_real(name: str, value) -> float:
    """``value`` as a float if it is a finite real number (not a bool); else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite real number")
    return float(value)


def check_positive(name: str, value) -> float:
    """A finite real number > 0 (step sizes α, softplus β, learning rates)."""
    return check_range(name, check_real(name, value), 0.0, math.inf, low_open=True)


def check_nonnegative(name: str, value) -> float:
    """A finite real number ≥ 0 (λ weights, noise levels)."""
    return check_range(name, check_real(name, value), 0.0, math.inf)


def check_unit_interval(name: str, value) -> float:
    """A finite real number in [0, 1] (probabilities, thresholds on normalised maps)."""
    return check_range(name, check_real(name, value), 0.0, 1.0)


def check_int(name: str, value, low: int) -> int:
    """An int (not a bool) ≥ ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} must be an int >= {low}")
    if value < low:
        raise ValueError(f"{name}={value!r} must be >= {low}")
    return int(value)


def check_eps(eps, norm: str = "linf") -> float:
    """ε on the [0, 1] image scale (the papers' "ε = 8" is 8/255): in [0, 1] for ℓ∞; any finite ε ≥ 0 for ℓ2
    (an ℓ2 radius may exceed 1, e.g. Madry's MNIST ℓ2 ε = 2)."""
    eps = check_real("eps", eps)
    if norm == "linf" and not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps={eps!r} is outside [0, 1]: ε is on the [0, 1] image scale (use 8/255, not 8)")
    return check_nonnegative("eps", eps)


def check_generator(value) -> "torch.Generator | None":
    """None or a ``torch.Generator`` (seeds an attack's or attribution's random draws)."""
    if value is not None and not isinstance(value, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(value).__name__}")
    return value


def pick_scale(scale: str, presets: Mapping[str, Mapping[str, Any]]) -> dict:
    """Validate ``scale`` against :data:`SCALES` and return a copy of its preset."""
    check_choice("scale", scale, SCALES)
    missing = [s for s in SCALES if s not in presets]
    if missing:
        raise ValueError(f"presets lack the scales {missing}")
    return dict(presets[scale])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` picks CUDA when available, else CPU; ``'cuda'`` without a GPU raises a clear error."""
    if isinstance(device, torch.device):
        return device
    check_choice("device", str(device).split(":")[0], DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no GPU; use device='cpu' or 'auto'")
    return torch.device(device)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a ``torch.Generator`` seeded the same way."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)

