"""An interactive ε / β explorer of the IFIA attack: pick a model and a test image, move the attack's ℓ∞ budget ε
and the softplus β of its smooth surrogate, and see the image, the perturbed image, both attribution maps and
the top-k ∩ / Kendall τ between them (Ghorbani et al. 2019's attack as the protocol fixes it).

>>> explorer = IFIAExplorer({"natural": nat, "ART": art}, test.images[:20], test.labels[:20], eps=0.1)
>>> explorer.widget          # in a live Jupyter kernel: sliders, dropdowns and the figure
>>> explorer.run()           # one attack with the current settings → metrics dict (also what the widgets call)

Every change of a control reruns the attack on the one image (``continuous_update=False``: on release). A run
with the defaults (30 steps, IG with 5 points, 28×28 image) takes well under a second on 2 CPU cores.

Without a kernel (the rendered book), :func:`ifia_grid` precomputes the same attack over a grid of ε × β for a
few images and models (an :class:`IFIAGrid`), which :mod:`rattrlib.static_explorer` turns into a self-contained
plotly page:

>>> grid = ifia_grid({"natural": nat}, test.images[:3], eps=(0.02, 0.05, 0.1), betas=(1.0, 10.0, 100.0))
>>> grid.table()              # one row per (model, ε, β, image): top-k ∩, Kendall τ, label kept, random baseline
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display
from torch import Tensor, nn
from tqdm import tqdm  # text on stderr: a widget bar would make Jupyter Book load require.js from a CDN

from rattrlib.attacks import IFIA, RandomSignNoise
from rattrlib.config import check_choice, check_eps, check_int, check_positive, check_range, check_real
from rattrlib.metrics import kendall_tau, topk_intersection
from rattrlib.plots import _as_image, hide_ticks
from rattrlib.precision import PRECISIONS


class IFIAExplorer:
    """ipywidgets panel around :class:`~rattrlib.attacks.IFIA` (top-k objective) on one image at a time.

    Args:
        models: name → ReLU classifier (N×C×H×W in [0, 1] → logits), all on one device.
        images: N×C×H×W test images in [0, 1]; labels: (N,) their labels. class_names: names for the labels.
        eps: initial ε; eps_max: the slider's upper end (≤ 1). beta: initial softplus β; beta_range: slider ends.
        attribution / attribution_kwargs: the attacked map (default IG with 5 right-Riemann points).
        steps, alpha, k: IFIA settings; alpha None: 2.5·ε/steps (Madry et al.'s rule), so the attack can cross
            the ball at any ε.
    """

    def __init__(self, models: Mapping[str, nn.Module], images: Tensor, labels: Tensor, *,
                 class_names: Optional[Sequence[str]] = None, eps: float = 0.1, eps_max: float = 0.3,
                 beta: float = 10.0, beta_range: tuple = (1.0, 100.0), attribution: str = "integrated_gradients",
                 attribution_kwargs: Optional[dict] = None, steps: int = 30, alpha: Optional[float] = None,
                 k: int = 100):
        import ipywidgets as w

        if not models:
            raise ValueError("models must name at least one model")
        if images.ndim != 4 or len(images) != len(labels) or len(images) == 0:
            raise ValueError(f"images must be N×C×H×W with one label each, got {tuple(images.shape)} and "
                             f"{len(labels)} labels")
        check_eps(eps_max)
        check_range("eps", eps, 0, eps_max)
        low, high = beta_range
        check_range("beta", beta, low, high)
        self.models = dict(models)
        self.images, self.labels = images, labels
        self.class_names = list(class_names) if class_names is not None else None
        self.attribution = attribution
        self.attribution_kwargs = (attribution_kwargs if attribution_kwargs is not None
                                   else {"n_steps": 5} if attribution == "integrated_gradients" else {})
        self.steps = check_int("steps", steps, 1)
        self.alpha = alpha
        self.k = check_int("k", k, 1)
        self.last: Optional[dict] = None

        style = {"description_width": "initial"}
        self.eps = w.FloatSlider(value=eps, min=0.0, max=eps_max, step=eps_max / 60, description="ε (ℓ∞)",
                                 continuous_update=False, readout_format=".3f", style=style)
        self.beta = w.FloatLogSlider(value=beta, base=10, min=float(torch.log10(torch.tensor(low))),
                                     max=float(torch.log10(torch.tensor(high))), step=0.05,
                                     description="softplus β", continuous_update=False, style=style)
        self.model = w.Dropdown(options=list(self.models), description="model", style=style)
        self.image = w.Dropdown(options=[(self._image_label(i), i) for i in range(len(images))],
                                description="image", style=style)
        self.status = w.HTML()
        self.output = w.Output()
        for control in (self.eps, self.beta, self.model, self.image):
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.model, self.image]), w.HBox([self.eps, self.beta]), self.status,
                              self.output])

    def _image_label(self, i: int) -> str:
        label = int(self.labels[i])
        return f"#{i} ({self.class_names[label] if self.class_names else label})"

    def _on_change(self, _change) -> None:
        self.run()

    def run(self) -> dict:
        """Attack the selected image with the current controls; redraw the panel's figure; return the metrics:
        ``{"model", "image", "eps", "beta", "label kept", "top-k ∩ (%)", "Kendall τ", "seconds"}``."""
        model = self.models[self.model.value]
        device = next(model.parameters()).device
        i, eps, beta = int(self.image.value), float(self.eps.value), float(self.beta.value)
        x = self.images[i:i + 1].to(device)
        start = time.perf_counter()
        alpha = self.alpha if self.alpha is not None else explorer_alpha(eps, self.steps)
        attack = IFIA(model, self.attribution, self.attribution_kwargs, eps=eps, alpha=alpha, steps=self.steps,
                      k=self.k, beta=beta)
        result = attack.perturb(x)
        seconds = time.perf_counter() - start
        clean, adv = result.clean_map.cpu(), result.adv_map.cpu()
        self.last = {"model": self.model.value, "image": i, "eps": eps, "beta": beta,
                     "label kept": bool(result.success[0]),
                     "top-k ∩ (%)": 100 * float(topk_intersection(clean, adv, self.k)[0]),
                     "Kendall τ": float(kendall_tau(clean, adv)[0]), "seconds": seconds,
                     "x": x[0].cpu(), "x_adv": result.x_adv[0].cpu(), "clean_map": clean[0], "adv_map": adv[0]}
        verdict = "" if self.last["label kept"] else " — no label-preserving step: clean image kept"
        self.status.value = (f"top-k ∩ = {self.last['top-k ∩ (%)']:.1f} %, Kendall τ = {self.last['Kendall τ']:.3f}"
                             f" ({seconds:.2f} s){verdict}")
        self.output.clear_output(wait=True)
        with self.output:
            fig = self.figure()
            display(fig)
            plt.close(fig)
        return {key: value for key, value in self.last.items() if not isinstance(value, Tensor)}

    def figure(self):
        """The last run as a 1×4 figure: image, perturbed image, clean map, attacked map (titled with the
        metrics). Runs the attack first if it never ran."""
        if self.last is None:
            self.run()
        r = self.last
        fig, axes = plt.subplots(1, 4, figsize=(9, 2.6))
        axes[0].imshow(_as_image(r["x"]), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title(f"{r['model']}: image {self._image_label(r['image'])}", fontsize=8)
        axes[1].imshow(_as_image(r["x_adv"]), cmap="gray", vmin=0, vmax=1)
        axes[1].set_title(f"IFIA top-k, ε = {r['eps']:.3f}, β = {r['beta']:.1f}", fontsize=8)
        axes[2].imshow(r["clean_map"].numpy(), cmap="inferno")
        axes[2].set_title(f"{self.attribution} map (clean)", fontsize=8)
        axes[3].imshow(r["adv_map"].numpy(), cmap="inferno")
        axes[3].set_title(f"attacked: top-k ∩ {r['top-k ∩ (%)']:.0f} %, τ {r['Kendall τ']:.2f}", fontsize=8)
        hide_ticks(axes)
        fig.tight_layout()
        return fig


def explorer_alpha(eps: float, steps: int) -> float:
    """The IFIA step of the explorers: α = 2.5·ε/steps (Madry et al.'s rule; ε floored at 1e-3 so that ε = 0 is
    a valid, motionless attack), so the attack can cross the ball at every ε of a grid."""
    return 2.5 * max(eps, 1e-3) / steps


@dataclasses.dataclass
class IFIAGrid:
    """The IFIA top-k attack precomputed over models × ε × β × images (M, E, B, I below), for an explorer that
    needs no kernel. Maps are the ReLU models' ``Σ_c |A|`` (:class:`~rattrlib.attacks.AttackResult`).

    Attributes:
        models: M display names. eps: E budgets. betas: B softplus β of the attack's surrogate.
        images: I×C×H×W clean images; labels: (I,) their labels; classes: class names (may be empty).
        predicted: M×I the label each model keeps (its prediction on the clean image).
        clean_map: M×I×H×W float32. adv_map: M×E×B×I×H×W float16; x_adv: M×E×B×I×C×H×W float16 — the kept
            iterate (the clean image where no label-preserving step existed).
        topk, kendall: M×E×B×I top-k ∩ (fraction) and Kendall τ of (clean map, attacked map); success:
            M×E×B×I bool, a label-preserving iterate existed.
        random_topk, random_kendall, random_success: M×E×I, random sign noise of the same ε (independent of β).
        settings: the attack's other settings (attribution, its kwargs, steps, k, precision, seed).
    """

    models: tuple
    eps: tuple
    betas: tuple
    images: Tensor
    labels: Tensor
    classes: tuple
    predicted: Tensor
    clean_map: Tensor
    adv_map: Tensor
    x_adv: Tensor
    topk: Tensor
    kendall: Tensor
    success: Tensor
    random_topk: Tensor
    random_kendall: Tensor
    random_success: Tensor
    settings: dict

    @property
    def shape(self) -> tuple:
        """(M, E, B, I): models, ε, β, images."""
        return len(self.models), len(self.eps), len(self.betas), len(self.images)

    def table(self) -> pd.DataFrame:
        """One row per cell (model, ε, β, image): top-k ∩ (%), Kendall τ, label kept, and the random-sign
        baseline of the same ε."""
        rows = []
        for m, e, b, i in ((m, e, b, i) for m in range(self.shape[0]) for e in range(self.shape[1])
                           for b in range(self.shape[2]) for i in range(self.shape[3])):
            rows.append({"model": self.models[m], "eps": self.eps[e], "beta": self.betas[b], "image": i,
                         "top-k ∩ (%)": 100 * float(self.topk[m, e, b, i]),
                         "Kendall τ": float(self.kendall[m, e, b, i]), "label kept": bool(self.success[m, e, b, i]),
                         "random top-k ∩ (%)": 100 * float(self.random_topk[m, e, i]),
                         "random Kendall τ": float(self.random_kendall[m, e, i])})
        return pd.DataFrame(rows)

    def nearest_beta(self, beta: float = 10.0) -> int:
        """Index of the grid's β closest to ``beta`` on a log scale (default 10, the RAR/GALI protocol's)."""
        return min(range(len(self.betas)), key=lambda b: abs(math.log(self.betas[b] / beta)))

    def summary(self, beta: Optional[float] = None) -> pd.DataFrame:
        """Mean over the images of top-k ∩ (%) at softplus ``beta`` (one of :attr:`betas`; None: the one nearest
        10): models × ε, the random baseline beside each value as "IFIA / random"."""
        if beta is not None and beta not in self.betas:
            raise ValueError(f"beta={beta!r} is not in the grid's betas {list(self.betas)}")
        b = self.betas.index(beta) if beta is not None else self.nearest_beta()
        beta = self.betas[b]
        ifia = 100 * self.topk[:, :, b].float().mean(-1)
        rand = 100 * self.random_topk.float().mean(-1)
        frame = pd.DataFrame([[f"{ifia[m, e]:.0f} / {rand[m, e]:.0f}" for e in range(len(self.eps))]
                              for m in range(len(self.models))], index=list(self.models),
                             columns=[f"ε = {e:g}" for e in self.eps])
        frame.index.name = f"top-k ∩ (%), IFIA / random, β = {beta:g}"
        return frame

    @staticmethod
    def concat(grids: Sequence["IFIAGrid"]) -> "IFIAGrid":
        """The grids of different models (same ε, β, images and settings) as one grid."""
        first = grids[0]
        for g in grids[1:]:
            if (g.eps, g.betas, g.settings) != (first.eps, first.betas, first.settings) or \
                    not torch.equal(g.images, first.images):
                raise ValueError("grids to concatenate must share ε, β, images and attack settings")
        cat = {f.name: torch.cat([getattr(g, f.name) for g in grids]) for f in dataclasses.fields(IFIAGrid)
               if f.name in ("predicted", "clean_map", "adv_map", "x_adv", "topk", "kendall", "success",
                             "random_topk", "random_kendall", "random_success")}
        return dataclasses.replace(first, models=tuple(m for g in grids for m in g.models), **cat)


def _check_grid(name: str, values, check) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name}={values!r} must be a non-empty list")
    return tuple(float(check(f"{name}[{i}]", v)) for i, v in enumerate(values))


def check_eps_grid(eps, name: str = "eps") -> tuple:
    """ε values: a non-empty list, each in [0, 1] (ℓ∞ on the [0, 1] scale); errors name ``name``."""
    return _check_grid(name, eps, lambda entry, value: check_range(entry, check_real(entry, value), 0.0, 1.0))


def check_betas(betas, name: str = "betas") -> tuple:
    """softplus β values: a non-empty list, each > 0; errors name ``name``."""
    return _check_grid(name, betas, check_positive)


def ifia_grid(models: Mapping[str, nn.Module], images: Tensor, labels: Optional[Tensor] = None, *, eps,
              betas, classes: Sequence[str] = (), attribution: str = "integrated_gradients",
              attribution_kwargs: Optional[dict] = None, steps: int = 30, k: int = 100, precision: str = "fp32",
              seed: int = 0, progress: bool = True) -> IFIAGrid:
    """Run :class:`~rattrlib.attacks.IFIA` (Ghorbani et al. 2019, top-k objective) once per (model, ε, β), all
    images of ``images`` in one batch, with α = :func:`explorer_alpha` (ε, steps), plus the random-sign baseline
    (:class:`~rattrlib.attacks.RandomSignNoise`, seeded by ``seed``, the same signs at every ε) once per
    (model, ε). Every argument is checked before any attack runs. ``attribution_kwargs`` default: IG with 5
    points. Returns an :class:`IFIAGrid`."""
    if not models:
        raise ValueError("models must name at least one model")
    if not isinstance(images, Tensor) or images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty N×C×H×W tensor, got {getattr(images, 'shape', images)}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels: {len(labels)} labels for {len(images)} images")
    eps, betas = check_eps_grid(eps), check_betas(betas)
    steps = check_int("steps", steps, 1)
    k = check_int("k", k, 1)
    if k > images.shape[2] * images.shape[3]:
        raise ValueError(f"k={k} exceeds the {images.shape[2] * images.shape[3]} pixels of an image")
    check_choice("precision", precision, PRECISIONS)
    kwargs = (dict(attribution_kwargs) if attribution_kwargs is not None
              else {"n_steps": 5} if attribution == "integrated_gradients" else {})
    n_m, n_e, n_b, n_i = len(models), len(eps), len(betas), len(images)
    _, c, h, w = images.shape
    out = {"clean_map": torch.zeros(n_m, n_i, h, w), "adv_map": torch.zeros(n_m, n_e, n_b, n_i, h, w, dtype=torch.half),
           "x_adv": torch.zeros(n_m, n_e, n_b, n_i, c, h, w, dtype=torch.half),
           "topk": torch.zeros(n_m, n_e, n_b, n_i), "kendall": torch.zeros(n_m, n_e, n_b, n_i),
           "success": torch.zeros(n_m, n_e, n_b, n_i, dtype=torch.bool), "predicted": torch.zeros(n_m, n_i, dtype=torch.long),
           "random_topk": torch.zeros(n_m, n_e, n_i), "random_kendall": torch.zeros(n_m, n_e, n_i),
           "random_success": torch.zeros(n_m, n_e, n_i, dtype=torch.bool)}
    bar = tqdm(total=n_m * n_e * (n_b + 1), desc="IFIA grid", disable=not progress)
    for m, model in enumerate(models.values()):
        device = next(model.parameters()).device
        x = images.to(device)
        for e, eps_value in enumerate(eps):
            noise = RandomSignNoise(model, eps_value, torch.Generator(device=device).manual_seed(seed),
                                    attribution=attribution, attribution_kwargs=kwargs, k=k).perturb(x)
            out["random_topk"][m, e] = noise.topk_intersection.cpu()
            out["random_kendall"][m, e] = noise.kendall_tau.cpu()
            out["random_success"][m, e] = noise.success.cpu()
            bar.update()
            for b, beta in enumerate(betas):
                r = IFIA(model, attribution, kwargs, eps=eps_value, alpha=explorer_alpha(eps_value, steps),
                         steps=steps, k=k, beta=beta, precision=precision).perturb(x)
                out["adv_map"][m, e, b] = r.adv_map.cpu().half()
                out["x_adv"][m, e, b] = r.x_adv.cpu().half()
                out["topk"][m, e, b] = r.topk_intersection.cpu()
                out["kendall"][m, e, b] = r.kendall_tau.cpu()
                out["success"][m, e, b] = r.success.cpu()
                out["clean_map"][m], out["predicted"][m] = r.clean_map.cpu(), r.label.cpu()
                bar.update()
    bar.close()
    return IFIAGrid(models=tuple(models), eps=eps, betas=betas, images=images.cpu(),
                    labels=(labels if labels is not None else torch.full((n_i,), -1)).cpu(), classes=tuple(classes),
                    settings={"attribution": attribution, "attribution_kwargs": kwargs, "steps": steps,
                              "alpha": "2.5·ε/steps", "k": k, "precision": precision, "seed": seed}, **out)


__all__ = ["IFIAExplorer", "IFIAGrid", "check_betas", "check_eps_grid", "explorer_alpha", "ifia_grid"]
