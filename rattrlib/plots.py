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


def plot_attack_examples(images: torch.Tensor, results: Mapping[str, "object"], indices: Sequence[int], *,
                         cmap: str = "inferno", size: float = 1.7):
    """Clean image and map above each attack's perturbed image and map, one column per image.

    ``images`` are the clean images (N×C×H×W in [0, 1]) the attacks ran on; ``results`` maps a row label (e.g. ``"IFIA top-k"``, ``"random sign"``) to an
    :class:`~rattrlib.attacks.AttackResult` of the same images; ``indices`` picks the columns. The attacked
    maps are titled with their top-k intersection (%) and Kendall τ against the clean map.
    Returns the matplotlib figure.
    """
    first = next(iter(results.values()))
    rows = [("image", None), ("map (clean)", None)]
    for name in results:
        rows += [(f"{name}: image", name), (f"{name}: map", name)]
    fig, axes = plt.subplots(len(rows), len(indices), figsize=(size * len(indices), size * len(rows)),
                             squeeze=False)
    for col, i in enumerate(indices):
        axes[0, col].imshow(_as_image(images[i]), cmap="gray", vmin=0, vmax=1)
        axes[1, col].imshow(first.clean_map[i].cpu().numpy(), cmap=cmap)
        for r, name in enumerate(results, start=1):
            res = results[name]
            axes[2 * r, col].imshow(_as_image(res.x_adv[i]), cmap="gray", vmin=0, vmax=1)
            axes[2 * r + 1, col].imshow(res.adv_map[i].cpu().numpy(), cmap=cmap)
            verdict = (f"top-k {100 * res.topk[i]:.0f}%, τ {res.kendall[i]:.2f}" if res.success[i]
                       else "attack failed")
            axes[2 * r + 1, col].set_title(verdict, fontsize=7)
    for r, (label, _) in enumerate(rows):
        axes[r, 0].set_ylabel(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_maps_before_after(evaluations: Mapping[str, "object"], n_show: int = 3, *, cmap: str = "inferno",
                           size: float = 1.5):
    """RAR's blog figure: one row per test image that every model classifies correctly; the image, then for
    each model its map of the clean image and of its own attacked image (titled with top-k ∩ and τ).

    ``evaluations`` maps a model name to a :class:`~rattrlib.evaluation.ModelEvaluation` of the same test
    images (same protocol and seed). Returns the matplotlib figure.
    """
    evs = list(evaluations.values())
    common = sorted(set.intersection(*(set(ev.attacked.tolist()) for ev in evs)))[:n_show]
    if not common:
        raise ValueError("no test image is classified correctly by every model")
    cols = 1 + 2 * len(evs)
    fig, axes = plt.subplots(len(common), cols, figsize=(size * cols, size * len(common) + 0.4), squeeze=False)
    for r, i in enumerate(common):
        axes[r, 0].imshow(_as_image(evs[0].images[i]), cmap="gray", vmin=0, vmax=1)
        for j, (name, ev) in enumerate(evaluations.items()):
            row = int((ev.attacked == i).nonzero()[0][0])
            res = ev.ifia.result
            axes[r, 1 + 2 * j].imshow(res.clean_map[row].numpy(), cmap=cmap)
            axes[r, 2 + 2 * j].imshow(res.adv_map[row].numpy(), cmap=cmap)
            verdict = (f"top-k {100 * res.topk[row]:.0f}%, τ {res.kendall[row]:.2f}" if res.success[row]
                       else "attack failed")
            axes[r, 2 + 2 * j].set_title(f"{name}: attacked\n{verdict}" if r == 0 else verdict, fontsize=7)
            if r == 0:
                axes[r, 1 + 2 * j].set_title(f"{name}: clean", fontsize=7)
    axes[0, 0].set_title("image", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
