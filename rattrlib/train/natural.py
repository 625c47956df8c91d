"""Natural training: cross-entropy on clean images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rattrlib.train.base import Batch, Progress, TrainingMethod


class Natural(TrainingMethod):
    """``CE(f(x), y)``, the batch mean."""

    name = "natural"

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(model(batch.x), batch.y)
        return loss, {"ce": loss.item()}
