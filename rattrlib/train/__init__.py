"""Training methods under one entry point, and cached training runs.

``train(model, data, method="natural", epochs=..., ...)`` trains in place and returns per-epoch logs;
``train_cached(TrainConfig(...))`` builds, trains and stores a model in the results cache, or loads it.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import torch
from torch import nn

from rattrlib.config import check_choice, resolve_device, seed_everything
from rattrlib.data import ImageDataset, load_dataset
from rattrlib.models import build_model
from rattrlib.results import ResultsCache
from rattrlib.train.loop import fit
from rattrlib.train.natural import natural_loss

METHODS = {"natural": natural_loss}


def train(model: nn.Module, data: ImageDataset, method: str = "natural", *, epochs: int = 1,
          batch_size: int = 128, lr: float = 1e-3, seed: int = 0, progress: bool = True) -> list[dict]:
    """Train ``model`` in place on ``data`` with ``method``; return one log dict per epoch."""
    check_choice("method", method, sorted(METHODS))
    return fit(model, data, METHODS[method], epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
               progress=progress)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model; its hash (with the seed) is the cache key."""

    dataset: str
    model: str = "mnist_cnn"
    method: str = "natural"
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    n_train: Optional[int] = None  # stratified subset of the training split; None = all of it

    def __post_init__(self):
        check_choice("method", self.method, sorted(METHODS))
        if self.n_train is not None and self.n_train < 1:
            raise ValueError(f"n_train must be positive or None, got {self.n_train}")


def train_cached(config: TrainConfig, *, seed: int = 0, device: str = "auto",
                 cache: ResultsCache | None = None, progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """The model trained by ``config`` with ``seed`` (in eval mode, on ``device``) and its per-epoch logs.

    Loads it from the results cache when it was trained before, else trains and stores it.
    """
    cache = cache or ResultsCache()
    data = load_dataset(config.dataset, "train").subset(config.n_train, seed=seed)
    target = resolve_device(device)

    def run() -> dict:
        seed_everything(seed)
        model = build_model(config.model, data.shape, len(data.classes)).to(target)
        logs = train(model, data, config.method, epochs=config.epochs, batch_size=config.batch_size,
                     lr=config.lr, seed=seed, progress=progress)
        return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "logs": logs}

    stored = cache.get_or_compute("model", config, run, seed=seed, dataset=config.dataset)
    model = build_model(config.model, data.shape, len(data.classes))
    model.load_state_dict(stored["state_dict"])
    return model.to(target).eval(), stored["logs"]


__all__ = ["METHODS", "TrainConfig", "fit", "train", "train_cached"]
