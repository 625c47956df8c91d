"""Train one zoo model on every process ``torchrun`` starts (DistributedDataParallel; one process without it):

    torchrun --nproc_per_node 8 -m rattrlib.torchrun --dataset cifar10 --method art --scale paper --seed 0

The model is stored in the results cache like any other zoo model (:func:`rattrlib.train.train_cached`; rank 0
writes it), where :func:`rattrlib.zoo.get_model` then finds it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import torch.distributed as dist

from rattrlib.train import distributed
from rattrlib.train.cached import train_cached
from rattrlib.zoo import zoo_config


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rattrlib.torchrun",
                                     description="Train one zoo model; under torchrun, on every process given.")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--scale", default="paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Train (or load) the zoo model ``zoo_config(dataset, method, scale)`` with ``seed`` and report it."""
    args = parse_args(argv)
    try:
        config = zoo_config(args.dataset, args.method, args.scale, seed=args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = distributed.init_from_env(args.device)
    try:
        _, logs = train_cached(config, seed=args.seed, device=device, progress=distributed.is_main())
        if distributed.is_main():
            last = logs[-1] if logs else {}
            print(f"{args.dataset}/{args.method}/{args.scale} seed {args.seed}: {len(logs)} epochs on "
                  f"{distributed.world_size()} process(es); last epoch {last}")
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
