"""The one training loop every method uses: seeded shuffling, per-epoch logs, resumable checkpoints."""

from __future__ import annotations

import time
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from rattrlib.config import check_choice
from rattrlib.data import ImageDataset
from rattrlib.models import accuracy
from rattrlib.precision import autocast, check_precision
from rattrlib.train.base import Batch, Progress, TrainingMethod

OPTIMISERS = ("adam", "sgd")

#: training images whose accuracy each epoch's log reports (a seeded, class-stratified subset: on a 2-core CPU a
#: ResNet-20 spent ~6 s per epoch on 10k of them, a tenth of a fine-tuning epoch)
MONITOR_IMAGES = 2_000

#: ``save_checkpoint(state)`` after each finished epoch; ``load_checkpoint() -> state | None`` at the start.
SaveCheckpoint = Callable[[dict], None]
LoadCheckpoint = Callable[[], Optional[dict]]


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
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs ≥ 1, batch_size ≥ 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    device = next(model.parameters()).device
    check_precision(precision, device)
    opt = make_optimiser(optimiser, model, lr)
    method.prepare(model, data)
    logs: list[dict] = []
    state = load_checkpoint() if load_checkpoint else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["rng"])
        logs = list(state["logs"])
    monitor = data.subset(MONITOR_IMAGES, seed=seed)
    for epoch in range(len(logs), epochs):
        start = time.perf_counter()
        sums: dict[str, float] = {}
        batches = epoch_batches(data, batch_size, seed + epoch)
        model.train()
        for b, (x, y, index) in enumerate(tqdm(batches, desc=f"{method.name} epoch {epoch + 1}/{epochs}",
                                               disable=not progress, mininterval=2)):
            with autocast(precision, device):
                loss, terms = method.loss(model, Batch(x.to(device), y.to(device), index),
                                          Progress(epoch, epochs, b, len(batches)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for name, value in {"loss": loss.item(), **terms}.items():
                sums[name] = sums.get(name, 0.0) + value
        seconds = time.perf_counter() - start
        logs.append({"epoch": epoch + 1, **{k: v / len(batches) for k, v in sums.items()},
                     "train_accuracy": accuracy(model, monitor.images, monitor.labels), "seconds": seconds})
        if save_checkpoint:
            save_checkpoint({"model": model.state_dict(), "optimiser": opt.state_dict(),
                             "rng": torch.get_rng_state(), "logs": logs})
    model.eval()
    return logs
