"""One switch for arithmetic precision: ``"fp32"`` (the reference) or ``"bf16"`` (``torch.autocast`` with
bfloat16: oneDNN's AMX-BF16 / AVX512-BF16 kernels on CPUs that have them, tensor cores on CUDA).

Where it reaches: the training loss of every method (:func:`rattrlib.train.loop.fit`, through
``TrainConfig.precision``) and the gradient step of the attacks on attributions (``precision`` of
:class:`~rattrlib.attacks.IFIA` / :class:`~rattrlib.attacks.Manipulate`). What it does not reach, by design: the
label checks, the maps and the metrics an evaluation reports stay in fp32, so bf16 changes which iterate an attack
finds, never how it is scored. ``benchmarks/bench_precision.py`` measures where bf16 changes results.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from rattrlib.config import check_choice

PRECISIONS = ("fp32", "bf16")


@functools.lru_cache(maxsize=None)
def cpu_has_bf16_units() -> bool:
    """True when the CPU advertises bfloat16 matrix or vector units (``amx_bf16`` or ``avx512_bf16`` in
    /proc/cpuinfo); without them CPU autocast to bfloat16 is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def check_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``precision`` if it is one of :data:`PRECISIONS` and the device computes it natively; else ``ValueError``."""
    check_choice("precision", precision, PRECISIONS)
    kind = torch.device(device).type
    if precision == "bf16":
        if kind == "cpu" and not cpu_has_bf16_units():
            raise ValueError("precision='bf16' needs a CPU with AMX-BF16 or AVX512-BF16 units (lscpu flags "
                             "amx_bf16 / avx512_bf16); this one has neither — use precision='fp32'")
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision='bf16' needs a GPU with bfloat16 support; use precision='fp32'")
    return precision


def fastest_precision(device: torch.device | str = "cpu") -> str:
    """"bf16" where ``device`` computes it natively (:func:`check_precision` accepts it), else "fp32"."""
    try:
        return check_precision("bf16", device)
    except ValueError:
        return "fp32"


def autocast(precision: str, device: torch.device | str):
    """A context in which ``precision`` applies on ``device``: nothing for fp32, bfloat16 autocast for bf16."""
    check_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


__all__ = ["PRECISIONS", "autocast", "check_precision", "cpu_has_bf16_units", "fastest_precision"]
