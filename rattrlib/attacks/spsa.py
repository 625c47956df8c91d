"""SPSA, the gradient-free attack of Uesato et al. 2018 ("Adversarial Risk and the Dangers of Evaluating Against
Weak Attacks", ICML, Alg. 1), which ART §5 uses to rule out gradient masking."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from rattrlib.attacks._common import (check_eps, check_generator, check_images, check_int, check_labels,
                                      check_model, check_positive, eval_mode, project, random_in_ball,
                                      random_sign)

_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """``z_y − max_{j≠y} z_j`` per image (N,): negative exactly where the image is misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return true - other


class SPSA:
    """Uesato et al. SPSA in the ℓ∞ ε-ball: minimise the margin ``f(x') = z_y(x') − max_{j≠y} z_j(x')`` using
    only forward passes.

    Each step estimates ∇f by simultaneous-perturbation finite differences with ``samples`` Rademacher vectors
    ``v ∈ {−1, +1}^d`` (Spall 1992; Uesato et al. Alg. 1):

        ``ĝ = (1/samples) Σ_v v · (f(x' + δv) − f(x' − δv)) / (2δ)``,

    then takes an Adam step (β = (0.9, 0.999)) of learning rate ``alpha`` on the perturbation and projects onto
    the ε-ball around x and [0, 1]. The start is uniform in the ball, U(−ε, ε) per entry, as in CleverHans'
    ``spsa``, whose defaults (α = δ = 0.01, 128 samples) are these. The points ``x' ± δv`` are not clamped.

    Batched: every image has its own Adam moments (Adam is element-wise). An image stops, and keeps its iterate,
    as soon as it is misclassified (f < 0) — the per-image form of CleverHans' early stop at loss threshold 0 —
    so the result is misclassified wherever any iterate was.

    Args:
        model: N×C×H×W in [0, 1] → N×K logits, K ≥ 2. Run in eval mode (restored after) under ``no_grad``.
        eps: ε ∈ [0, 1] on the [0, 1] scale (ART CIFAR-10: 8/255). ``eps = 0`` returns x.
        alpha: Adam learning rate > 0.
        steps: Adam steps ≥ 1.
        samples: Rademacher vectors per step ≥ 1 (each costs two forward passes per image).
        delta: finite-difference size δ > 0.
        generator: seeds the start and the Rademacher draws.
        internal_batch_size: at most this many perturbed images per forward pass (None: all
            ``2·samples·N`` of a step at once).

    ``perturb(x, y) -> x_adv``: x N×C×H×W in [0, 1], y (N,) labels → N×C×H×W in the ball and in [0, 1].
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float = 0.01, steps: int = 100, samples: int = 128,
                 delta: float = 0.01, generator: Optional[torch.Generator] = None,
                 internal_batch_size: Optional[int] = None):
        self.model = check_model(model)
        self.eps = check_eps(eps, "linf")
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        self.samples = check_int("samples", samples, 1)
        self.delta = check_positive("delta", delta)
        self.generator = check_generator(generator)
        self.internal_batch_size = (None if internal_batch_size is None
                                    else check_int("internal_batch_size", internal_batch_size, 1))

    def __repr__(self) -> str:
        return (f"SPSA(eps={self.eps!r}, alpha={self.alpha!r}, steps={self.steps}, samples={self.samples}, "
                f"delta={self.delta!r})")

    def _margins(self, x: Tensor, y: Tensor) -> Tensor:
        chunk = self.internal_batch_size or x.shape[0]
        return torch.cat([margin(self.model(xb), yb) for xb, yb in zip(x.split(chunk), y.split(chunk))])

    @torch.no_grad()
    def estimate_gradient(self, x: Tensor, y) -> Tensor:
        """The SPSA estimate ĝ of ∇ₓ f (f = the margin above) at each image: N×C×H×W. Uses ``samples``
        Rademacher vectors per image, drawn one N×C×H×W batch per sample (so the draws do not depend on
        ``internal_batch_size``)."""
        x = check_images(x).detach()
        y = check_labels(y, x.shape[0], x.device)
        with eval_mode(self.model):
            return self._estimate(x, y)

    def _estimate(self, x: Tensor, y: Tensor) -> Tensor:
        n = x.shape[0]
        per_forward = max(1, (self.internal_batch_size or 2 * self.samples * n) // (2 * n))
        grad = torch.zeros_like(x)
        done = 0
        while done < self.samples:
            k = min(per_forward, self.samples - done)
            v = torch.stack([random_sign(x, self.generator) for _ in range(k)])          # k×N×C×H×W
            points = torch.cat([x + self.delta * v, x - self.delta * v]).flatten(0, 1)  # 2k·N×C×H×W
            f = self._margins(points, y.repeat(2 * k)).view(2, k, n)
            slope = (f[0] - f[1]) / (2 * self.delta)                                    # k×N
            grad += (slope.view(k, n, 1, 1, 1) * v).sum(0)
            done += k
        return grad / self.samples

    @torch.no_grad()
    def perturb(self, x: Tensor, y) -> Tensor:
        x = check_images(x).detach()
        y = check_labels(y, x.shape[0], x.device)
        if self.eps == 0:
            return x.clone()
        b1, b2 = _ADAM_BETAS
        with eval_mode(self.model):
            x_adv = random_in_ball(x, self.eps, "linf", self.generator)
            m, v = torch.zeros_like(x), torch.zeros_like(x)
            active = self._margins(x_adv, y) >= 0
            for t in range(1, self.steps + 1):
                idx = active.nonzero().squeeze(1)
                if idx.numel() == 0:
                    break
                g = self._estimate(x_adv[idx], y[idx])
                m[idx] = b1 * m[idx] + (1 - b1) * g
                v[idx] = b2 * v[idx] + (1 - b2) * g * g
                step = (m[idx] / (1 - b1 ** t)) / ((v[idx] / (1 - b2 ** t)).sqrt() + _ADAM_EPS)
                x_adv[idx] = project(x_adv[idx] - self.alpha * step, x[idx], self.eps, "linf")
                active[idx] = self._margins(x_adv[idx], y[idx]) >= 0
        return x_adv

    __call__ = perturb
