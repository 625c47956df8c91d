"""Projected gradient descent on the cross-entropy (Madry et al. 2018, "Towards Deep Learning Models Resistant
to Adversarial Attacks", eq. 2 and §2.1): the label-flipping attack, and robust accuracy under it."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from rattrlib.attacks._common import (NORMS, check_eps, check_generator, check_images, check_int, check_labels,
                                      check_model, check_positive, eval_mode, frozen_parameters, project,
                                      random_in_ball)
from rattrlib.attacks.spsa import SPSA
from rattrlib.config import check_choice


class PGD:
    """Madry et al. PGD: maximise ``CE(f(x'), y)`` over the ε-ball by ``steps`` steps

    - ℓ∞: ``x' ← Π(x' + α·sign(∇ CE))``;  ℓ2: ``x' ← Π(x' + α·∇CE/‖∇CE‖₂)`` (per image);

    Π = projection onto the ε-ball around x, then clamped to [0, 1]. ``random_start``: x' starts uniform in the
    ball (ℓ∞: U(−ε, ε) per entry; ℓ2: uniform in the ℓ2 ball), as Madry et al. do.

    Args:
        model: N×C×H×W in [0, 1] → N×K logits. Run in eval mode during the attack (restored after); its
            parameters are frozen meanwhile, so no ``.grad`` is written.
        eps: ε on the [0, 1] scale, in [0, 1] for ℓ∞ (MNIST 0.3; CIFAR-10 8/255), ≥ 0 for ℓ2. ``eps = 0``
            returns x.
        alpha: step size > 0 (MNIST 0.01; CIFAR-10 2/255).
        steps: ≥ 1.
        norm: ``"linf"`` or ``"l2"``.
        random_start: bool (default True).
        generator: seeds the random start.

    ``perturb(x, y) -> x_adv``: x N×C×H×W in [0, 1], y (N,) labels → N×C×H×W in the ball and in [0, 1].
    """

    def __init__(self, model: nn.Module, eps: float, alpha: float, steps: int, norm: str = "linf",
                 random_start: bool = True, generator: Optional[torch.Generator] = None):
        self.model = check_model(model)
        self.norm = check_choice("norm", norm, NORMS)
        self.eps = check_eps(eps, self.norm)
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        self.random_start = bool(random_start)
        self.generator = check_generator(generator)

    def __repr__(self) -> str:
        return (f"PGD(eps={self.eps!r}, alpha={self.alpha!r}, steps={self.steps}, norm={self.norm!r}, "
                f"random_start={self.random_start})")

    def perturb(self, x: Tensor, y) -> Tensor:
        x = check_images(x).detach()
        y = check_labels(y, x.shape[0], x.device)
        with eval_mode(self.model), frozen_parameters(self.model):
            x_adv = random_in_ball(x, self.eps, self.norm, self.generator) if self.random_start else x.clone()
            for _ in range(self.steps):
                x_adv = x_adv.detach().requires_grad_(True)
                with torch.enable_grad():
                    loss = F.cross_entropy(self.model(x_adv), y, reduction="sum")
                    (grad,) = torch.autograd.grad(loss, x_adv)
                if self.norm == "linf":
                    step = grad.sign()
                else:
                    size = torch.linalg.vector_norm(grad.flatten(1), dim=1).view(-1, 1, 1, 1)
                    step = grad / size.clamp_min(1e-12)
                x_adv = project(x_adv.detach() + self.alpha * step, x, self.eps, self.norm)
        return x_adv.detach()

    __call__ = perturb


def adversarial_correct(model: nn.Module, images: Tensor, labels, attack: "PGD | SPSA", batch_size: int = 256,
                        progress: bool = False) -> Tensor:
    """Per image (N,) bool: is the adversarial example of ``images`` (N×C×H×W in [0, 1]) under ``attack`` (a
    :class:`PGD` or a gradient-free :class:`~rattrlib.attacks.SPSA`) still classified as ``labels`` (N,)? A
    misclassified clean image counts as an error (Madry et al.'s adversarial accuracy is the mean). Batches of
    ``batch_size`` move to the model's device; the result is on the CPU."""
    check_model(model)
    images = check_images(images, "images")
    labels = check_labels(labels, images.shape[0], images.device)
    batch_size = check_int("batch_size", batch_size, 1)
    if not isinstance(attack, (PGD, SPSA)):
        raise ValueError(f"attack must be a PGD or an SPSA, got {type(attack).__name__}")
    device = next(model.parameters()).device
    correct = []
    starts = range(0, images.shape[0], batch_size)
    for start in tqdm(starts, desc=type(attack).__name__, disable=not progress, mininterval=2):
        xb = images[start:start + batch_size].to(device)
        yb = labels[start:start + batch_size].to(device)
        x_adv = attack.perturb(xb, yb)
        with torch.no_grad(), eval_mode(model):
            correct.append((model(x_adv).argmax(1) == yb).cpu())
    return torch.cat(correct)


def pgd_accuracy(model: nn.Module, images: Tensor, labels, attack: "PGD | SPSA", batch_size: int = 256,
                 progress: bool = False) -> float:
    """Robust accuracy: the mean of :func:`adversarial_correct` (the fraction of ``images`` whose adversarial
    example is still classified as ``labels``)."""
    return float(adversarial_correct(model, images, labels, attack, batch_size, progress).double().mean())
