"""Natural training: cross-entropy on clean images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def natural_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """``CE(f(x), y)``, batch mean. Returns the loss and its logged terms."""
    loss = F.cross_entropy(model(x), y)
    return loss, {"ce": loss.item()}
