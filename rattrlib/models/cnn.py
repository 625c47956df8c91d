"""Small convolutional networks for 28×28 and 64×64 inputs."""

from __future__ import annotations

import torch
from torch import nn


class MnistCNN(nn.Module):
    """The MNIST network of Madry et al. (2018) used by RAR (Chen et al. 2019) and GALI.

    conv 5×5 (32) → ReLU → max-pool 2 → conv 5×5 (64) → ReLU → max-pool 2 → FC 1024 → ReLU → FC classes.
    Input N×C×H×W in [0, 1] (H, W divisible by 4); output logits N×classes. ReLUs are ``nn.ReLU`` modules so
    :func:`rattrlib.attributions.smooth_copy` can swap them for softplus.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * (image_size // 4) ** 2, 1024), nn.ReLU(), nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
