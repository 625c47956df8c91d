"""Models, by name: ``build_model(name, dataset_shape, num_classes)``; evaluation helpers."""

from __future__ import annotations

import torch
from torch import nn

from rattrlib.config import check_choice
from rattrlib.models.cnn import MnistCNN

MODELS = {"mnist_cnn": MnistCNN}


def build_model(name: str, shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A fresh model ``name`` for images of ``shape`` = (C, H, W) and ``num_classes`` classes."""
    check_choice("model", name, sorted(MODELS))
    channels, height, width = shape
    if height != width:
        raise ValueError(f"square images expected, got {height}×{width}")
    return MODELS[name](in_channels=channels, num_classes=num_classes, image_size=height)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels (N,) of ``images`` (N×C×H×W in [0, 1]), computed in batches on the model's device."""
    device = next(model.parameters()).device
    return torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, len(images), batch_size)])


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``images`` whose predicted label equals ``labels``."""
    was_training = model.training
    model.eval()
    try:
        return (predict(model, images, batch_size) == labels.cpu()).float().mean().item()
    finally:
        model.train(was_training)


__all__ = ["MODELS", "MnistCNN", "build_model", "predict", "accuracy"]
