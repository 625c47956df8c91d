"""The one training loop every method uses: seeded shuffling, per-batch loss terms, per-epoch logs."""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from rattrlib.data import ImageDataset
from rattrlib.models import accuracy

#: ``loss_fn(model, x, y) -> (loss, {term name: float})``; the terms are logged per epoch as batch means.
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def fit(model: nn.Module, data: ImageDataset, loss_fn: LossFn, *, epochs: int, batch_size: int = 128,
        lr: float = 1e-3, seed: int = 0, progress: bool = True) -> list[dict]:
    """Train ``model`` in place with Adam on ``data`` for ``epochs``; return one log dict per epoch.

    Each log holds the epoch number, the batch-mean of every loss term, the training accuracy measured after the
    epoch, and the seconds the epoch took. Batches are shuffled with a generator seeded by ``seed + epoch``, so a
    rerun on the same device gives the same weights.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs ≥ 1, batch_size ≥ 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    logs = []
    for epoch in range(epochs):
        start = time.perf_counter()
        sums: dict[str, float] = {}
        batches = data.loader(batch_size, shuffle=True, seed=seed + epoch)
        model.train()
        for x, y in tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, mininterval=2):
            loss, terms = loss_fn(model, x.to(device), y.to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value
        seconds = time.perf_counter() - start
        model.eval()
        logs.append({"epoch": epoch + 1, **{k: v / len(batches) for k, v in sums.items()},
                     "train_accuracy": accuracy(model, data.images, data.labels), "seconds": seconds})
    return logs
