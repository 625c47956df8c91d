"""Figures the chapters share: images above their attribution maps."""

from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from adjustText import adjust_text
import torch


def _as_image(x: torch.Tensor):
    """C×H×W in [0, 1] → an array imshow draws (gray for one channel)."""
    x = x.detach().cpu()
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).clamp(0, 1).numpy()


def hide_ticks(axes) -> None:
    """Remove the ticks of every axis in ``axes`` (an array or sequence of matplotlib axes): image panels."""
    for ax in getattr(axes, "flat", axes):
        ax.set_xticks([])
        ax.set_yticks([])


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
    hide_ticks(axes)
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
            verdict = (f"top-k {100 * res.topk_intersection[i]:.0f}%, τ {res.kendall_tau[i]:.2f}" if res.success[i]
                       else "label not kept:\nscored as unmoved")
            axes[2 * r + 1, col].set_title(verdict, fontsize=7)
    for r, (label, _) in enumerate(rows):
        axes[r, 0].set_ylabel(label, fontsize=8)
    hide_ticks(axes)
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
            short = textwrap.fill(name, 20)  # long names ("RAR-start + Regularizer") on two lines, not over the next
            row = int((ev.attacked == i).nonzero()[0][0])
            res = ev.ifia.result
            axes[r, 1 + 2 * j].imshow(res.clean_map[row].numpy(), cmap=cmap)
            axes[r, 2 + 2 * j].imshow(res.adv_map[row].numpy(), cmap=cmap)
            verdict = (f"top-k {100 * res.topk_intersection[row]:.0f}%, τ {res.kendall_tau[row]:.2f}"
                       if res.success[row] else "label not kept:\nscored as unmoved")
            axes[r, 2 + 2 * j].set_title(f"{short}\nattacked\n{verdict}" if r == 0 else verdict, fontsize=7)
            if r == 0:
                axes[r, 1 + 2 * j].set_title(f"{short}\nclean", fontsize=7)
    axes[0, 0].set_title("image", fontsize=8)
    hide_ticks(axes)
    fig.tight_layout()
    return fig


def plot_distributions(values: Mapping[str, Sequence[float]], *, ylabel: str, title: str = "", size=(6, 3.2)):
    """ART Fig. 6: one violin (with its median and quartiles) per named set of per-image values."""
    import numpy as np

    names = list(values)
    data = [np.asarray(values[n], dtype=float) for n in names]
    data = [d[np.isfinite(d)] for d in data]
    fig, ax = plt.subplots(figsize=size)
    parts = ax.violinplot(data, showmedians=True, showextrema=False, quantiles=[[0.25, 0.75]] * len(data))
    for body in parts["bodies"]:
        body.set_alpha(0.5)
    ax.set_xticks(range(1, len(names) + 1), [f"{n}\n(n = {len(d)})" for n, d in zip(names, data)])
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig



def plot_pareto(table, x: str, y: str, *, size_column: str | None = None, highlight: Sequence[str] = (),
                xlabel: str | None = None, ylabel: str | None = None, scale: float = 100.0, figsize=(7.5, 5)):
    """The leaderboard's trade-off view: one marker per method at (``x``, ``y``) means with their 95 % intervals
    as error bars (``table``: :func:`rattrlib.leaderboard.table`'s numeric frame, columns ``<label>``,
    ``<label> · CI low``, ``<label> · CI high``), marker area proportional to ``size_column`` (e.g. the training
    cost), the methods no other method beats on both axes (the Pareto front) joined by a line, ``highlight``
    (e.g. a reader's model) in red, the names placed off each other (adjustText). ``scale`` converts both axes to
    display units."""
    import numpy as np

    fig, ax = plt.subplots(figsize=figsize)
    mx, my = scale * table[x].to_numpy(float), scale * table[y].to_numpy(float)
    ex = np.abs(np.stack([mx - scale * table[f"{x} · CI low"], scale * table[f"{x} · CI high"] - mx]))
    ey = np.abs(np.stack([my - scale * table[f"{y} · CI low"], scale * table[f"{y} · CI high"] - my]))
    sizes = np.full(len(table), 60.0)
    if size_column is not None:
        cost = table[size_column].to_numpy(float)
        sizes = np.where(np.isfinite(cost), 30 + 250 * cost / np.nanmax(cost), 60.0)
        for value in (np.nanmin(cost), np.nanmax(cost)):  # a key for the marker sizes
            ax.scatter([], [], s=30 + 250 * value / np.nanmax(cost), c="tab:blue", alpha=0.5, edgecolors="k",
                       label=f"{size_column} = {value:,.0f}")
    ax.errorbar(mx, my, xerr=np.nan_to_num(ex), yerr=np.nan_to_num(ey), fmt="none", ecolor="0.6", lw=1, zorder=1)
    colours = ["tab:red" if name in highlight else "tab:blue" for name in table.index]
    ax.scatter(mx, my, s=sizes, c=colours, alpha=0.5, edgecolors="k", zorder=2)  # see-through: markers overlap
    shown = np.isfinite(mx) & np.isfinite(my)
    labels = [ax.text(a, b, name, fontsize=8) for name, a, b, ok in zip(table.index, mx, my, shown) if ok]
    front = [i for i in range(len(mx)) if not any((mx[j] >= mx[i]) & (my[j] >= my[i]) & ((mx[j] > mx[i]) | (my[j] > my[i]))
                                                  for j in range(len(mx)))]
    front = sorted(front, key=lambda i: mx[i])
    ax.plot(mx[front], my[front], "--", color="tab:green", lw=1, label="Pareto front (means)", zorder=0)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    title = "each method: mean and 95 % interval (over seeds; over images for a one-seed row)"
    if size_column is not None:
        title += f"\nmarker area ∝ {size_column}"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    adjust_text(labels, x=mx[shown], y=my[shown], ax=ax, arrowprops=dict(arrowstyle="-", color="0.5", lw=0.5))
    return fig


def plot_ablation(frame, *, attributional=("top-k ∩ (%)", "Kendall τ ×100"),
                  accuracy=("clean acc. (%)", "PGD acc. (%)"), size: float = 3.0):
    """ART Fig. 8: one column per ablated hyperparameter (``frame["parameter"]``), its values on the x axis;
    top row the attributional-robustness columns (each with its ``random …`` column dashed, where present), bottom
    row the accuracy columns. ``frame`` has one row per trained model with columns ``parameter``, ``value`` and the
    plotted metrics."""
    params = list(dict.fromkeys(frame["parameter"]))
    fig, axes = plt.subplots(2, len(params), figsize=(size * len(params), 2 * size * 0.8), squeeze=False)
    for col, param in enumerate(params):
        part = frame[frame["parameter"] == param].sort_values("value")
        for row, metrics in enumerate((attributional, accuracy)):
            ax = axes[row, col]
            for metric in metrics:
                line, = ax.plot(part["value"], part[metric], marker="o", label=metric)
                if f"random {metric}" in part:  # the random baseline of the same images, dashed
                    ax.plot(part["value"], part[f"random {metric}"], marker=".", linestyle="--",
                            color=line.get_color(), label=f"random {metric}")
            ax.set_xscale("log" if part["value"].max() / max(part["value"].min(), 1e-12) > 20 else "linear")
            ax.set_xticks(part["value"], [f"{v:g}" for v in part["value"]])
            ax.minorticks_off()
            ax.set_xlabel(param)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel("attributional robustness" if row == 0 else "accuracy (%)")
            if col == len(params) - 1:
                ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))  # beside the row, off the data
    fig.tight_layout()
    return fig


def plot_localisation(images: torch.Tensor, maps: Mapping[str, torch.Tensor], gt_boxes: torch.Tensor,
                      pred_boxes: Mapping[str, torch.Tensor], *, cmap: str = "jet", size: float = 1.6):
    """ART Fig. 5: one column per image; the image with its ground-truth box (red), then one row per model: its
    map over the image with the ground-truth box (red) and the box estimated from the map (green).
    Boxes are (x0, y0, x1, y1) in pixels, x1/y1 exclusive."""
    from matplotlib.patches import Rectangle

    def draw(ax, box, colour):
        x0, y0, x1, y1 = (float(v) for v in box)
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1.5))

    n, names = len(images), list(maps)
    fig, axes = plt.subplots(1 + len(names), n, figsize=(size * n, size * (1 + len(names))), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(_as_image(images[i]))
        draw(axes[0, i], gt_boxes[i], "red")
        for r, name in enumerate(names, start=1):
            axes[r, i].imshow(_as_image(images[i]), alpha=0.5)
            axes[r, i].imshow(maps[name][i].cpu().numpy(), cmap=cmap, alpha=0.6)
            draw(axes[r, i], gt_boxes[i], "red")
            draw(axes[r, i], pred_boxes[name][i], "lime")
    for r, name in enumerate(["image (red: true box)", *names]):
        axes[r, 0].set_ylabel(name, fontsize=8)
    hide_ticks(axes)
    fig.tight_layout()
    return fig


def plot_image_rows(rows: Mapping[str, torch.Tensor], column_titles: Sequence[str] | None = None,
                    size: float = 1.2):
    """A grid of images, one named row per N×C×H×W tensor in [0, 1] (e.g. ART Fig. 4's generated samples per
    model, one column per class)."""
    names = list(rows)
    n = max(len(t) for t in rows.values())
    fig, axes = plt.subplots(len(names), n, figsize=(size * n, size * len(names) + 0.3), squeeze=False)
    for r, name in enumerate(names):
        for i in range(n):
            ax = axes[r, i]
            if i < len(rows[name]):
                ax.imshow(_as_image(rows[name][i]), cmap="gray", vmin=0, vmax=1)
            if r == 0 and column_titles:
                ax.set_title(column_titles[i], fontsize=7)
        axes[r, 0].set_ylabel(name, fontsize=8)
    hide_ticks(axes)
    fig.tight_layout()
    return fig
