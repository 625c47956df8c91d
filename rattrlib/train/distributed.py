"""Training on several processes (``torchrun``): the process group and who is who.

:func:`~rattrlib.train.fit` and :func:`~rattrlib.train.train_cached` switch to DistributedDataParallel by
themselves whenever a process group of more than one process is initialised — by :func:`init_from_env` or by any
other launcher. On a node with 8 GPUs::

    torchrun --nproc_per_node 8 -m rattrlib.torchrun --dataset cifar10 --method art --scale paper --seed 0

trains the zoo model once (rank 0 writes the checkpoints and the cache record) and exits (:mod:`rattrlib.torchrun`,
a layer above the zoo, holds that command).
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Sequence

import torch
import torch.distributed as dist

#: torchrun's variables that :func:`init_from_env` needs
ENV_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0, the process that writes checkpoints and cache records (and outside a process group)."""
    return rank() == 0


def backend_for(device: str | torch.device) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_from_env(device: str = "auto") -> str:
    """Join the process group that ``torchrun`` describes in its environment variables and return this rank's
    device: ``cuda:<LOCAL_RANK>`` (made the current CUDA device; backend nccl) when ``device`` is ``"auto"`` and
    a GPU is visible or ``device`` is ``"cuda"``, else ``"cpu"`` (backend gloo).

    Without torchrun's variables (a plain ``python`` run) nothing is initialised and ``device`` is returned
    resolved (one process); a group already initialised is kept.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device={device!r} must be 'auto', 'cpu' or 'cuda' (each rank takes cuda:LOCAL_RANK)")
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no GPU; use device='cpu' or 'auto'")
    missing = [name for name in ENV_VARIABLES if name not in os.environ]
    if missing:
        return "cuda" if cuda else "cpu"
    local = int(os.environ["LOCAL_RANK"])
    target = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        # rank 0 may wait for another job holding a model's cache lock while the others wait in a collective:
        # a day rather than the default 10 (nccl) / 30 (gloo) minutes
        dist.init_process_group(backend_for(target), init_method="env://", timeout=datetime.timedelta(days=1))
    return target


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src``, on every rank (a picklable object; keep tensors on the CPU). Identity outside
    a process group."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def global_sums(values: Sequence[float]) -> list[float]:
    """Element-wise sums of ``values`` over all ranks (every rank passes the same number of values)."""
    if not is_distributed():
        return list(values)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()
