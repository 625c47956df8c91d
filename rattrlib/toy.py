"""A two-dimensional ReLU network: SSR's "theory in one figure" (Wang et al. 2020, Example 1 and Fig. 1).

Fig. 1 of the SSR paper draws the score surface of a 2-D ReLU network as contours, its two prediction regions,
and, at points of three neighbourhoods A, B, C, the Saliency Map, Integrated Gradients and SmoothGrad vectors
normalised to unit length. In a neighbourhood inside one linear piece the vectors agree (robust, A); in one
that straddles a ridge of the piecewise-linear surface they disagree (B, C) — Theorem 1: the saliency map is
only as stable as the network is locally smooth; Prop. 1 / Theorem 2: SmoothGrad is the saliency of the
Gaussian-blurred surface, hence stable across the ridge.

>>> net = make_toy_network(seed=0)                       # 2 → 32 → 32 → 2 ReLU MLP on two moons, < 1 s
>>> centres = pick_neighbourhoods(net, radius=0.05)       # A (one linear piece), B, C (largest local spread)
>>> fig = plot_toy_geometry(net, centres)

Points are (N, 2) tensors in the domain [−1, 1]². rattrlib's attributions take N×C×H×W batches, so the toy
network is seen through :class:`PointsAsImages`, which reads a point as a 1×1×2 "image" (C = 1, H = 1, W = 2);
the attribution's output N×1×1×2 is read back as (N, 2). The attributed quantity is by default the score the
figure contours, the logit difference ``f_1 − f_0`` (one output, target 0); ``quantity="logit"`` attributes the
logit of the predicted class instead (rattr's evaluation convention).
"""

from __future__ import annotations

import inspect
import math
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rattrlib.attributions import ATTRIBUTIONS, get_attribution
from rattrlib.config import check_choice, check_int, check_positive

#: the square the toy data, the network's figure and the neighbourhood search live in
DOMAIN = (-1.0, 1.0)
TOY_DATASETS = ("moons", "spirals")
QUANTITIES = ("difference", "logit")

#: default hyperparameters of each attribution on the toy domain (side 2, so σ and r are 5 % of it); the IG
#: baseline is the bottom-left corner, as in SSR's Example 1 ("the baseline (left bottom corner)", §3.2)
TOY_ATTRIBUTION_DEFAULTS: dict[str, dict] = {
    "saliency": {},
    "input_x_gradient": {},
    "integrated_gradients": {"n_steps": 128, "baseline": (-1.0, -1.0)},
    "smoothgrad": {"sigma": 0.1, "n_samples": 256},
    "uniform_gradient": {"radius": 0.1, "n_samples": 256},
    "gradient_shap": {"n_samples": 256},
}

#: arrow colours of Fig. 1 (saliency black, IG red, SmoothGrad blue), others from matplotlib's cycle
ARROW_COLOURS = {"saliency": "black", "integrated_gradients": "tab:red", "smoothgrad": "tab:blue",
                 "uniform_gradient": "tab:green", "input_x_gradient": "tab:orange", "gradient_shap": "tab:purple"}


# ----------------------------------------------------------------------------------------------------------
# data and network
# ----------------------------------------------------------------------------------------------------------
def toy_data(n: int = 512, *, dataset: str = "moons", noise: float = 0.08, seed: int = 0):
    """A two-class 2-D data set inside [−1, 1]²: ``(points (n, 2) float32, labels (n,) long)``.

    ``"moons"``: the two interleaved half circles of scikit-learn's ``make_moons``, mapped affinely onto
    [−0.9, 0.9]² before the Gaussian ``noise``. ``"spirals"``: two interleaved arms of radius ≤ 0.9 (a surface
    with more ridges). Drawn with a torch generator seeded by ``seed``; classes alternate (balanced).
    """
    check_choice("dataset", dataset, TOY_DATASETS)
    n = check_int("n", n, 2)
    noise = float(noise)
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise={noise!r} must be a finite number >= 0")
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    t = torch.rand(n, generator=g)
    if dataset == "moons":
        theta = math.pi * t
        x0 = torch.where(y == 0, torch.cos(theta), 1 - torch.cos(theta))
        x1 = torch.where(y == 0, torch.sin(theta), 0.5 - torch.sin(theta))
        pts = torch.stack([(x0 - 0.5) * 0.6, (x1 - 0.25) * 1.2], dim=1)  # [-1, 2]×[-0.5, 1] → [-0.9, 0.9]²
    else:
        theta = 1.5 * math.pi * t.sqrt() + 0.5  # sqrt: even density along the arm
        radius = 0.9 * theta / (1.5 * math.pi + 0.5)
        angle = theta + math.pi * y.float()
        pts = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    pts = pts + noise * torch.randn(n, 2, generator=g)
    return pts.float(), y


def make_toy_network(seed: int = 0, hidden: Sequence[int] = (32, 32), *, dataset: str = "moons",
                     n_samples: int = 512, steps: int = 300, lr: float = 1e-2, noise: float = 0.08) -> nn.Module:
    """A 2-D ReLU MLP ``2 → hidden… → 2`` trained on :func:`toy_data` (SSR Example 1's "two-dimensional ReLU
    network"): full-batch Adam, ``steps`` steps of cross-entropy, in eval mode on return.

    Piecewise linear by construction (``nn.Linear`` and ``nn.ReLU`` only), so its logit-difference surface is
    made of planar pieces meeting at ridges and valleys. Deterministic given ``seed`` (initialisation and data;
    the caller's RNG state is left as it was). About 0.3 s on one CPU thread at the defaults. Input: (N, 2)
    points; output: (N, 2) logits.
    """
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError("hidden must list at least one layer width (a ReLU network needs a hidden layer)")
    for width in hidden:
        check_int("hidden width", width, 1)
    steps = check_int("steps", steps, 0)
    check_positive("lr", lr)
    x, y = toy_data(n_samples, dataset=dataset, noise=noise, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        width_in = 2
        for width in hidden:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            width_in = width
        net = nn.Sequential(*layers, nn.Linear(width_in, 2))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    net.eval()
    for p in net.parameters():
        p.grad = None
    return net


# ----------------------------------------------------------------------------------------------------------
# attributions of 2-D points through rattrlib.attributions
# ----------------------------------------------------------------------------------------------------------
class PointsAsImages(nn.Module):
    """Adapter: a model of (N, 2) points seen as a model of N×1×1×2 "images", for rattrlib's attributions.

    ``quantity="difference"``: one output, the logit difference ``f_1 − f_0`` (the surface SSR Fig. 1
    contours; attribute it with target 0). ``quantity="logit"``: the model's logits unchanged (attribute the
    predicted class). The wrapped model's ReLU modules stay visible to :func:`~rattrlib.attributions.smooth_copy`.
    """

    def __init__(self, model: nn.Module, quantity: str = "difference"):
        super().__init__()
        self.model = model
        self.quantity = check_choice("quantity", quantity, QUANTITIES)

    def forward(self, x: Tensor) -> Tensor:
        logits = self.model(x.reshape(x.shape[0], 2))
        if self.quantity == "difference":
            return (logits[:, 1] - logits[:, 0]).unsqueeze(1)
        return logits


def _check_points(points) -> Tensor:
    points = torch.as_tensor(points, dtype=torch.float32) if not isinstance(points, Tensor) else points
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0 or not points.is_floating_point():
        raise ValueError(f"points must be a non-empty float (N, 2) tensor, got {tuple(points.shape)} {points.dtype}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("points has NaN or infinite entries")
    return points


def _check_methods(methods) -> tuple:
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods:
        raise ValueError("give at least one attribution method")
    for name in methods:
        check_choice("attribution", name, ATTRIBUTIONS)
    if len(set(methods)) != len(methods):
        raise ValueError(f"attribution methods repeat: {methods}")
    return methods


def _method_kwargs(name: str, overrides: Optional[Mapping[str, Mapping]], seed: int, like: Tensor) -> dict:
    kwargs = {**TOY_ATTRIBUTION_DEFAULTS.get(name, {}), **dict((overrides or {}).get(name, {}))}
    base = kwargs.get("baseline")
    if name == "integrated_gradients" and base is not None and not isinstance(base, (int, float)):
        kwargs["baseline"] = torch.as_tensor(base, dtype=like.dtype, device=like.device).reshape(1, 1, 1, 2)
    if "generator" in inspect.signature(ATTRIBUTIONS[name].__init__).parameters and "generator" not in kwargs:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    return kwargs


def toy_scores(model: nn.Module, points, quantity: str = "difference") -> Tensor:
    """The attributed quantity at each point, (N,): ``f_1 − f_0`` or the predicted class's logit."""
    points = _check_points(points)
    with torch.no_grad():
        logits = model(points)
    if quantity == "difference":
        return logits[:, 1] - logits[:, 0]
    check_choice("quantity", quantity, QUANTITIES)
    return logits.max(dim=1).values


def toy_attributions(model: nn.Module, points, methods: Sequence[str] = ("saliency", "integrated_gradients",
                                                                          "smoothgrad"), *,
                     quantity: str = "difference", method_kwargs: Optional[Mapping[str, Mapping]] = None,
                     seed: int = 0) -> dict[str, Tensor]:
    """Each method's attribution at each point: ``{name: (N, 2)}``, computed by ``rattrlib.attributions`` on
    :class:`PointsAsImages` (unnormalised; SSR Fig. 1 normalises to unit length for display).

    ``method_kwargs``: per method, hyperparameters that override :data:`TOY_ATTRIBUTION_DEFAULTS` (IG: 128
    right-Riemann steps from the corner (−1, −1); SmoothGrad σ = 0.1, Uniform Gradient r = 0.1, 256 draws,
    seeded by ``seed``). An IG ``baseline`` may be given as a point (x0, y0).
    """
    methods = _check_methods(methods)
    points = _check_points(points)
    check_choice("quantity", quantity, QUANTITIES)
    unknown = set(method_kwargs or {}) - set(methods)
    if unknown:
        raise ValueError(f"method_kwargs for methods not asked for: {sorted(unknown)} (methods: {list(methods)})")
    wrapped = PointsAsImages(model, quantity)
    x = points.reshape(-1, 1, 1, 2)
    if quantity == "difference":
        target = 0
    else:
        with torch.no_grad():
            target = model(points).argmax(dim=1)
    out = {}
    for name in methods:
        method = get_attribution(name, wrapped, **_method_kwargs(name, method_kwargs, seed, x))
        out[name] = method.attribute(x, target).reshape(-1, 2)
    return out


def _saliency(model: nn.Module, points: Tensor, quantity: str) -> Tensor:
    return toy_attributions(model, points, ("saliency",), quantity=quantity)["saliency"]


def _unit(v: Tensor) -> Tensor:
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-12)


def neighbourhood(centres, radius: float, n_per: int = 5) -> Tensor:
    """Each centre followed by ``n_per − 1`` points evenly spaced on the circle of ``radius`` around it
    (first angle 45°): (len(centres)·n_per, 2), the points of one neighbourhood consecutive."""
    centres = _check_points(centres)
    radius = check_positive("radius", radius)
    n_per = check_int("n_per", n_per, 1)
    angles = math.pi / 4 + 2 * math.pi * torch.arange(n_per - 1, dtype=centres.dtype) / max(n_per - 1, 1)
    ring = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    offsets = torch.cat([torch.zeros(1, 2, dtype=centres.dtype), ring])
    return (centres[:, None, :] + offsets[None]).reshape(-1, 2)


def local_saliency_spread(model: nn.Module, centres, radius: float, *, n_ring: int = 16,
                          quantity: str = "difference") -> Tensor:
    """How far the saliency direction turns within ``radius`` of each centre, (N,) in [0, 2]: the largest
    cosine distance ``1 − cos(∇f(c), ∇f(c + r·u))`` over ``n_ring`` directions u — the local robustness of the
    saliency map of SSR Def. 6 / Theorem 1 seen on a circle. 0 inside one linear piece of a ReLU network."""
    centres = _check_points(centres)
    n_ring = check_int("n_ring", n_ring, 1)
    pts = neighbourhood(centres, radius, n_ring + 1)
    grads = _unit(_saliency(model, pts, quantity)).reshape(centres.shape[0], n_ring + 1, 2)
    cos = (grads[:, :1] * grads[:, 1:]).sum(-1)
    return (1 - cos).max(dim=1).values


def pick_neighbourhoods(model: nn.Module, radius: float = 0.05, *, n_ridge: int = 2, grid: int = 41,
                        margin: float = 0.15, quantity: str = "difference") -> Tensor:
    """Centres for SSR Fig. 1's neighbourhoods: ``[A, B, C, …]`` as a (1 + n_ridge, 2) tensor.

    On a ``grid``×``grid`` lattice of [−1 + margin, 1 − margin]², :func:`local_saliency_spread` (radius
    ``radius``) is computed. A is the lattice point with zero spread (one linear piece) and the steepest score
    among those, so its arrows are well defined; B, C, … are the points of largest spread (a ridge between
    pieces whose gradients point apart), each at least 6·radius from the previously chosen ones. Deterministic.
    """
    n_ridge = check_int("n_ridge", n_ridge, 0)
    grid = check_int("grid", grid, 2)
    low, high = DOMAIN[0] + margin, DOMAIN[1] - margin
    if not low < high:
        raise ValueError(f"margin={margin!r} leaves no room inside {DOMAIN}")
    axis = torch.linspace(low, high, grid)
    lattice = torch.cartesian_prod(axis, axis)
    spread = local_saliency_spread(model, lattice, radius, quantity=quantity)
    steep = torch.linalg.vector_norm(_saliency(model, lattice, quantity), dim=1)
    flat = spread <= 1e-6
    if not bool(flat.any()):
        raise ValueError(f"no lattice point has a constant saliency within radius {radius}; use a smaller radius")
    a = int(torch.where(flat, steep, torch.full_like(steep, -1.0)).argmax())
    chosen = [a]
    for i in torch.argsort(spread, descending=True, stable=True).tolist():
        if len(chosen) == 1 + n_ridge:
            break
        if spread[i] <= 1e-6:
            break
        if all(float(torch.linalg.vector_norm(lattice[i] - lattice[j])) >= 6 * radius for j in chosen):
            chosen.append(i)
    if len(chosen) < 1 + n_ridge:
        raise ValueError(f"found only {len(chosen) - 1} separated ridge points; lower n_ridge or the radius")
    return lattice[chosen].clone()


# ----------------------------------------------------------------------------------------------------------
# the figure
# ----------------------------------------------------------------------------------------------------------
def _surface(model: nn.Module, xlim, ylim, grid: int, quantity: str):
    xs = np.linspace(*xlim, grid)
    ys = np.linspace(*ylim, grid)
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    with torch.no_grad():
        logits = model(pts)
    score = toy_scores(model, pts, quantity).reshape(grid, grid).numpy()
    pred = logits.argmax(1).reshape(grid, grid).numpy()
    return gx, gy, score, pred


def _draw_panel(ax, model, points, vectors, methods, xlim, ylim, grid, quantity, levels, arrow_length):
    from matplotlib.colors import ListedColormap

    gx, gy, score, pred = _surface(model, xlim, ylim, grid, quantity)
    ax.contourf(gx, gy, pred, levels=[-0.5, 0.5, 1.5], cmap=ListedColormap(["#b7e4c7", "#d8c4ec"]), alpha=0.8)
    ax.contour(gx, gy, score, levels=levels, colors="0.45", linewidths=0.6, negative_linestyles="solid")
    if score.min() < 0 < score.max():
        ax.contour(gx, gy, score, levels=[0.0], colors="black", linewidths=1.4)
    pts = points.numpy()
    for name in methods:
        u = _unit(vectors[name]).numpy() * arrow_length
        ax.quiver(pts[:, 0], pts[:, 1], u[:, 0], u[:, 1], angles="xy", scale_units="xy", scale=1.0,
                  color=ARROW_COLOURS.get(name, None), width=0.006, label=name, gid=f"arrows:{name}")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")


def plot_toy_geometry(model: nn.Module, points, attributions: Sequence[str] = ("saliency", "integrated_gradients",
                                                                              "smoothgrad"), *,
                      labels: Optional[Sequence[str]] = None, radius: float = 0.05, n_per: int = 5,
                      zoom: bool = True, quantity: str = "difference",
                      method_kwargs: Optional[Mapping[str, Mapping]] = None, grid: int = 241, levels: int = 20,
                      seed: int = 0, size: float = 3.2):
    """SSR Fig. 1: the toy network's score surface with each attribution's unit-length arrows at the points of
    a few neighbourhoods.

    ``points`` (M, 2) are the neighbourhood centres (e.g. :func:`pick_neighbourhoods`); each neighbourhood is
    drawn as its centre plus ``n_per − 1`` points on a circle of ``radius`` (:func:`neighbourhood`), labelled by
    ``labels`` (default "A", "B", "C", …). Left panel: [−1, 1]², green/purple = predicted class 0/1, grey
    contours of the attributed score (``f_1 − f_0`` by default; black = the decision boundary), arrows of every
    method in ``attributions`` (one ``Quiver`` per method, ``gid="arrows:<name>"``, M·n_per arrows each, unit
    length × a display length). ``zoom=True`` adds one close-up panel per neighbourhood (±4·radius) where the
    surface's pieces and the arrows' disagreement are visible. ``method_kwargs`` as in :func:`toy_attributions`.

    Returns the matplotlib figure (1 + M axes with zoom, 1 without).
    """
    import matplotlib.pyplot as plt

    methods = _check_methods(attributions)
    centres = _check_points(points)
    check_choice("quantity", quantity, QUANTITIES)
    m = centres.shape[0]
    labels = [chr(ord("A") + i) for i in range(m)] if labels is None else list(labels)
    if len(labels) != m:
        raise ValueError(f"{len(labels)} labels for {m} neighbourhoods")
    pts = neighbourhood(centres, radius, n_per)
    vectors = toy_attributions(model, pts, methods, quantity=quantity, method_kwargs=method_kwargs, seed=seed)

    ncols = 1 + (m if zoom else 0)
    main = 1.4 * size
    fig, axes = plt.subplots(1, ncols, figsize=(main + size * (ncols - 1), main),
                             gridspec_kw={"width_ratios": [1.4] + [1.0] * (ncols - 1)}, squeeze=False)
    axes = axes[0]
    _draw_panel(axes[0], model, pts, vectors, methods, DOMAIN, DOMAIN, grid, quantity, levels, 0.12)
    for i, (c, name) in enumerate(zip(centres.tolist(), labels)):
        axes[0].add_patch(plt.Circle(c, 2 * radius, fill=False, color="black", linewidth=0.8))
        axes[0].annotate(name, c, xytext=(6, 6), textcoords="offset points", fontsize=11, fontweight="bold")
    axes[0].set_title("score surface and attributions")
    axes[0].legend(loc="lower right", fontsize=7, framealpha=0.9)
    if zoom:
        for i, (c, name) in enumerate(zip(centres.tolist(), labels)):
            sl = slice(i * n_per, (i + 1) * n_per)
            half = 4 * radius
            _draw_panel(axes[1 + i], model, pts[sl], {k: v[sl] for k, v in vectors.items()}, methods,
                        (c[0] - half, c[0] + half), (c[1] - half, c[1] + half), 121, quantity, levels * 2,
                        1.5 * radius)
            axes[1 + i].set_title(f"neighbourhood {name}")
            axes[1 + i].set_xticks([])
            axes[1 + i].set_yticks([])
    fig.tight_layout()
    return fig


__all__ = ["ARROW_COLOURS", "DOMAIN", "PointsAsImages", "QUANTITIES", "TOY_ATTRIBUTION_DEFAULTS", "TOY_DATASETS",
           "local_saliency_spread", "make_toy_network", "neighbourhood", "pick_neighbourhoods", "plot_toy_geometry",
           "toy_attributions", "toy_data", "toy_scores"]
