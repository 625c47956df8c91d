"""What every training method is: hyperparameters in the constructor, a per-batch loss with logged terms."""

from __future__ import annotations

import dataclasses
import torch
from torch import nn

from rattrlib.data import ImageDataset


@dataclasses.dataclass
class Batch:
    """One training batch: images (N×C×H×W in [0, 1]), labels (N,), and their indices in the training set."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor


@dataclasses.dataclass
class Progress:
    """Where training is: ``epoch`` counts from 0, ``batch`` within the epoch from 0 (of ``batches``);
    ``fraction`` = finished epochs / all epochs, in [0, 1); ``step_fraction`` also counts finished batches."""

    epoch: int
    epochs: int
    batch: int = 0
    batches: int = 1

    @property
    def fraction(self) -> float:
        return self.epoch / self.epochs

    @property
    def step_fraction(self) -> float:
        return (self.epoch + self.batch / self.batches) / self.epochs


def warmup_eps(eps: float, warmup: float, progress: Progress) -> float:
    """ε ramped linearly from 0 over the first ``warmup`` fraction of training, then constant:
    ``ε · min(1, step_fraction / warmup)`` (``warmup = 0``: always ε). A common curriculum for MNIST's ε = 0.3,
    where short PGD training from a natural model collapses to chance accuracy; not in the papers."""
    if warmup <= 0:
        return eps
    return eps * min(1.0, (progress.step_fraction + 1.0 / (progress.batches * progress.epochs)) / warmup)


class TrainingMethod:
    """Base class of the training methods in :data:`rattrlib.train.METHODS`.

    A subclass validates its hyperparameters in ``__init__`` (clear ``ValueError`` before any compute), may
    precompute what it needs in :meth:`prepare` (a softplus copy, a teacher, weak saliency maps), and returns the
    batch loss with its named terms from :meth:`loss`. :meth:`hyperparameters` feeds the cache key.
    """

    name = "base"

    def hyperparameters(self) -> dict:
        """Every constructor argument that changes the trained model, JSON-serialisable."""
        return {}

    def prepare(self, model: nn.Module, data: ImageDataset) -> None:
        """Called once before training, with the model already on its device."""

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar loss to minimise for ``batch`` and its terms ``{name: float}`` for the epoch log."""
        raise NotImplementedError
