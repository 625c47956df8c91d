"""Figures the chapters share: images beside their attribution maps."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch


def _as_image(x: torch.Tensor):
    """C×H×W in [0, 1] → an array imshow draws (gray for one channel)."""
    x = x.detach().cpu()
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).clamp(0, 1).numpy()


def plot_attribution_grid(images: torch.Tensor, maps: Mapping[str, torch.Tensor],
                          titles: Sequence[str] | None = None, cmap: str = "inferno", size: float = 1.9):
    """One row per image: the image, then each named map (N×H×W) normalised per image.

    ``images`` is N×C×H×W in [0, 1]; ``titles`` (one per image) label the image column.
    Returns the matplotlib figure.
    """
    n, cols = len(images), 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(size * cols, size * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(_as_image(images[i]), cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_title(titles[i] if titles else "image", fontsize=8)
        for j, (name, m) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(m[i].detach().cpu().numpy(), cmap=cmap)
            axes[i, j].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
