"""Training on several processes (``torchrun``): the process group, who is who, and a command-line entry point.

:func:`~rattrlib.train.fit` and :func:`~rattrlib.train.train_cached` switch to DistributedDataParallel by
themselves whenever a process group of more than one process is initialised — by :func:`init_from_env` or by any
other launcher. On a node with 8 GPUs::

    torchrun --nproc_per_node 8 -m rattrlib.train.distributed --dataset cifar10 --method art --scale paper --seed 0

trains the zoo model once (rank 0 writes the checkpoints and the cache record) and exits.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from typing import Any, Optional, Sequence

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


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rattrlib.train.distributed",
                                     description="Train one zoo model; under torchrun, on every process given.")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--scale", default="paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Train (or load) the zoo model ``zoo_config(dataset, method, scale)`` with ``seed`` and report it."""
    from rattrlib.train.cached import train_cached
    from rattrlib.zoo import zoo_config

    args = parse_args(argv)
    try:
        config = zoo_config(args.dataset, args.method, args.scale, seed=args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = init_from_env(args.device)
    try:
        _, logs = train_cached(config, seed=args.seed, device=device, progress=is_main())
        if is_main():
            last = logs[-1] if logs else {}
            print(f"{args.dataset}/{args.method}/{args.scale} seed {args.seed}: {len(logs)} epochs on "
                  f"{world_size()} process(es); last epoch {last}")
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
