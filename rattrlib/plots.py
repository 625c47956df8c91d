"""Figures the chapters share: images above their attribution maps."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch


def _as_image(x: torch.Tensor):
    """C×H×W in [0, 1] → an array imshow draws (gray for one channel)."""
    x = x.detach().cpu()
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).clamp(0, 1).numpy()


def plot_attribution_grid(images: torch.Tensor, maps: Mapping[str, torch.Tensor],
                          titles: Sequence[str] | None = None, cmap: str = "inferno", size: float = 1.7):
    """One column per image: the image on top, then one row per named map (N×H×W, each normalised per image).

    ``images`` is N×C×H×W in [0, 1]; ``titles`` (one per image) label the columns; the map names label the rows.
    Returns the matplotlib figure.
    """
    n, rows = len(images), 1 + len(maps)
    fig, axes = plt.subplots(rows, n, figsize=(size * n, size * rows), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(_as_image(images[i]), cmap="gray", vmin=0, vmax=1)
        if titles:
            axes[0, i].set_title(titles[i], fontsize=8)
        for j, m in enumerate(maps.values(), start=1):
            axes[j, i].imshow(m[i].detach().cpu().numpy(), cmap=cmap)
    for j, name in enumerate(["image", *maps], start=0):
        axes[j, 0].set_ylabel(name, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
