"""The one training loop every method uses: seeded shuffling, per-epoch logs, resumable checkpoints; on one
process or on several (DistributedDataParallel under ``torchrun``, :mod:`rattrlib.train.distributed`)."""

from __future__ import annotations

import hashlib
import time
from typing import Callable, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from rattrlib.config import check_choice
from rattrlib.data import ImageDataset
from rattrlib.models import accuracy
from rattrlib.precision import autocast, check_precision
from rattrlib.train import distributed
from rattrlib.train.base import Batch, Progress, TrainingMethod

OPTIMISERS = ("adam", "sgd")

#: training images whose accuracy each epoch's log reports (a seeded, class-stratified subset: on a 2-core CPU a
#: ResNet-20 spent ~6 s per epoch on 10k of them, a tenth of a fine-tuning epoch)
MONITOR_IMAGES = 2_000

#: ``save_checkpoint(state)`` after each finished epoch; ``load_checkpoint() -> state | None`` at the start.
SaveCheckpoint = Callable[[dict], None]
LoadCheckpoint = Callable[[], Optional[dict]]

#: methods that cannot train under DistributedDataParallel, and why
NOT_DISTRIBUTED = dict.fromkeys(
    ("sat", "pgd_sat", "trades_sat"),
    "its α_t schedule counts the images of the batches it is given, and each rank is given only its shard")


def make_optimiser(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum 0.9 and weight decay 5e-4 (the ResNet papers' setting)."""
    check_choice("optimiser", name, OPTIMISERS)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)


def epoch_batches(data: ImageDataset, batch_size: int, seed: int) -> DataLoader:
    """``(images, labels, indices)`` batches in an order fixed by ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(data.images, data.labels, torch.arange(len(data)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


class MethodLoss(nn.Module):
    """``method.loss(model, batch, progress)`` as a module. DistributedDataParallel wraps this whole loss
    computation: inner attacks, input gradients and smooth surrogates run on the plain model inside its
    forward, and the parameter gradients of the loss it returns (double backward included) are averaged over
    the ranks by the following ``backward``."""

    def __init__(self, model: nn.Module, method: TrainingMethod):
        super().__init__()
        self.model = model
        self.method = method  # not a module: a teacher it holds is not trained

    def forward(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                progress: Progress) -> tuple[torch.Tensor, dict[str, float]]:
        return self.method.loss(self.model, Batch(x, y, index), progress)


def loss_module(model: nn.Module, method: TrainingMethod, device: torch.device) -> nn.Module:
    """:class:`MethodLoss`, wrapped in DistributedDataParallel inside a process group of several processes."""
    module = MethodLoss(model, method)
    if not distributed.is_distributed():
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def check_distributed(method: TrainingMethod, n_images: int, batch_size: int, world: int) -> None:
    """Raise ``ValueError`` unless ``method`` can train on ``world`` processes with the global ``batch_size``."""
    if method.name in NOT_DISTRIBUTED:
        raise ValueError(f"method={method.name!r} cannot train under DistributedDataParallel: "
                         f"{NOT_DISTRIBUTED[method.name]}; train it in one process")
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} (the global batch) must be divisible by the world size {world}")
    last = n_images % batch_size
    if 0 < last < world:
        raise ValueError(f"batch_size={batch_size} leaves a last batch of {last} of the {n_images} images, fewer "
                         f"than the {world} processes; choose a batch size or n_train that avoids it")


def shard(t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous part of a global batch (``world`` parts whose sizes differ by at most one)."""
    return torch.tensor_split(t, world)[rank] if world > 1 else t


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of ``rank`` in ``epoch`` under DistributedDataParallel: a different random stream per
    rank, fixed by (seed, epoch, rank) so a resumed run draws the same numbers."""
    digest = hashlib.sha256(f"rattrlib-ddp/{seed}/{epoch}/{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def fit(model: nn.Module, data: ImageDataset, method: TrainingMethod, *, epochs: int, batch_size: int = 128,
        lr: float = 1e-3, optimiser: str = "adam", seed: int = 0, progress: bool = True,
        save_checkpoint: SaveCheckpoint | None = None,
        load_checkpoint: LoadCheckpoint | None = None, precision: str = "fp32") -> list[dict]:
    """Train ``model`` in place with ``method`` on ``data`` for ``epochs``; return one log dict per epoch.

    Each log holds the epoch number, the batch mean of every loss term the method reports, the training
    accuracy after the epoch (on at most ``MONITOR_IMAGES`` training images), and the epoch's seconds. Batches
    are shuffled by a generator seeded with ``seed + epoch``; the torch RNG (random starts, noise) is saved with
    every checkpoint, so a run resumed from ``load_checkpoint()`` ends with the same weights as an uninterrupted
    one. ``precision`` (:mod:`rattrlib.precision`): the method's loss — forward passes, inner attacks,
    attributions — runs under it; the optimiser step and the logged accuracy stay in fp32.

    Several processes (a process group of world size W > 1, e.g. under ``torchrun``): the loss runs in
    DistributedDataParallel (:class:`MethodLoss`), ``batch_size`` stays the GLOBAL batch (divisible by W), and
    rank r trains on the r-th of W contiguous parts of every global batch of the same seeded order; a rank's
    loss is weighted by its share of the global batch, so the averaged gradient is the global batch mean. The
    run thus sees the same batches and, up to float rounding, takes the same steps as one process with batch
    ``batch_size`` — exactly so for methods that draw no random numbers and models without batch norm. Where
    they differ: each rank draws its own random numbers (random starts, noise; torch seeded per epoch by
    :func:`rank_seed`), and batch norm normalises by the statistics of each rank's part (its running statistics
    are rank 0's). Logged terms are global batch means, the logs are rank 0's, only rank 0 calls
    ``save_checkpoint`` and ``load_checkpoint`` (its checkpoint is sent to the other ranks). The SAT methods
    (:data:`NOT_DISTRIBUTED`) are refused.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs ≥ 1, batch_size ≥ 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    rank, world = distributed.rank(), distributed.world_size()
    if world > 1:
        check_distributed(method, len(data), batch_size, world)
    device = next(model.parameters()).device
    check_precision(precision, device)
    opt = make_optimiser(optimiser, model, lr)
    method.prepare(model, data)
    logs: list[dict] = []
    state = distributed.broadcast_object(load_checkpoint() if load_checkpoint and rank == 0 else None)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["rng"])
        logs = list(state["logs"])
    monitor = data.subset(MONITOR_IMAGES, seed=seed)
    loss_of = loss_module(model, method, device)
    for epoch in range(len(logs), epochs):
        if world > 1:
            torch.manual_seed(rank_seed(seed, epoch, rank))
        start = time.perf_counter()
        sums: dict[str, float] = {}
        batches = epoch_batches(data, batch_size, seed + epoch)
        loss_of.train()
        for b, (x, y, index) in enumerate(tqdm(batches, desc=f"{method.name} epoch {epoch + 1}/{epochs}",
                                               disable=not progress or rank > 0, mininterval=2)):
            share = 1.0
            if world > 1:
                n = len(y)
                x, y, index = (shard(t, rank, world) for t in (x, y, index))
                share = len(y) / n
            with autocast(precision, device):
                loss, terms = loss_of(x.to(device), y.to(device), index, Progress(epoch, epochs, b, len(batches)))
            opt.zero_grad(set_to_none=True)
            (loss if share * world == 1 else loss * (share * world)).backward()
            opt.step()
            for name, value in {"loss": loss.item(), **terms}.items():
                sums[name] = sums.get(name, 0.0) + value * share
        seconds = time.perf_counter() - start
        means = dict(zip(sums, (v / len(batches) for v in distributed.global_sums(list(sums.values())))))
        log = {"epoch": epoch + 1, **means, "train_accuracy": accuracy(model, monitor.images, monitor.labels),
               "seconds": seconds}
        logs.append(distributed.broadcast_object(log))
        if save_checkpoint and rank == 0:
            save_checkpoint({"model": model.state_dict(), "optimiser": opt.state_dict(),
                             "rng": torch.get_rng_state(), "logs": logs})
    model.eval()
    return logs
