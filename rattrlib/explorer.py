"""An interactive ε / β explorer of the IFIA attack: pick a model and a test image, move the attack's ℓ∞ budget ε
and the softplus β of its smooth surrogate, and see the image, the perturbed image, both attribution maps and
the top-k ∩ / Kendall τ between them (Ghorbani et al. 2019's attack as the protocol fixes it).

>>> explorer = IFIAExplorer({"natural": nat, "ART": art}, test.images[:20], test.labels[:20], eps=0.1)
>>> explorer.widget          # in a live Jupyter kernel: sliders, dropdowns and the figure
>>> explorer.run()           # one attack with the current settings → metrics dict (also what the widgets call)

Every change of a control reruns the attack on the one image (``continuous_update=False``: on release). A run
with the defaults (30 steps, IG with 5 points, 28×28 image) takes well under a second on 2 CPU cores.
"""

from __future__ import annotations

import time
from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import torch
from IPython.display import display
from torch import Tensor, nn

from rattrlib.attacks import IFIA
from rattrlib.config import check_eps, check_int, check_range
from rattrlib.metrics import kendall_tau, topk_intersection
from rattrlib.plots import _as_image, hide_ticks


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
        alpha = self.alpha if self.alpha is not None else 2.5 * max(eps, 1e-3) / self.steps
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


__all__ = ["IFIAExplorer"]
