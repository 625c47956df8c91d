"""What every benchmark records about the machine it ran on, and a counter of the matrix arithmetic it did.

Ratios measured on one machine do not carry over to another kind of CPU: the same step can be arithmetic-bound
on one and overhead-bound on another, and bf16 autocast is a speed-up only where the CPU has bf16 units. So each
JSON names the CPU model and its bf16 units, and where a target is a ratio of times, the benchmarks also give
the ratio of floating-point operations, the part of the ratio that no implementation can remove.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from rattrlib.precision import cpu_has_bf16_units


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Date, torch, threads, CPU model, whether it has bf16 units, and the 1-minute load average now."""
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": platform.machine(), "cpu": cpu_model(),
            "cpu_bf16_units": cpu_has_bf16_units(), "load_average_1min_start": os.getloadavg()[0]}


class FlopCounter(TorchDispatchMode):
    """Counts the floating-point operations of matrix products and convolutions (forward, backward and double
    backward alike) with PyTorch's own per-operator formulas (``torch.utils.flop_counter.flop_registry``).

    Unlike ``FlopCounterMode`` it installs no module hooks, so it works inside ``torch.autograd.grad``.
    Element-wise operations (activations, pooling) are not counted: they are a small share of these networks'
    arithmetic and none of it is a matrix unit's.
    """

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.flops += int(count(*args, **kwargs, out_val=out))
        return out
