"""First-order adversarial training: PGD-AT (Madry et al. 2018) and TRADES (Zhang et al. 2019).

Both inner maximisations run with the model in eval mode (BatchNorm uses its running statistics, so the images
of a batch do not interact) and with its parameters frozen; the outer loss is computed in the caller's (train)
mode. All randomness (random starts, TRADES' Gaussian start) is drawn from torch's global RNG, which
:func:`rattrlib.train.fit` saves in every checkpoint, so a resumed CPU run is bit-identical to an uninterrupted
one. Every perturbed image lies in the ℓ∞ ε-ball around the clean image and in [0, 1].

Constructor defaults follow Madry's MNIST setting (ε = 0.3, α = 0.01, 40 steps); per-dataset values are the
zoo's job (:func:`rattrlib.zoo.zoo_config`).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rattrlib.attacks._common import eval_mode, frozen_parameters, project
from rattrlib.config import check_eps, check_int, check_positive, check_unit_interval
from rattrlib.attacks.pgd import PGD
from rattrlib.train.base import Batch, Progress, TrainingMethod, warmup_eps


# ----------------------------------------------------------------------------------------------------------
# inner maximisation from a given start
# ----------------------------------------------------------------------------------------------------------
def linf_ascent(model: nn.Module, x: Tensor, start: Tensor, objective: Callable[[Tensor], Tensor], *,
                eps: float, alpha: float, steps: int) -> Tensor:
    """``steps`` signed-gradient ascent steps on ``objective(model(x'))`` from ``start``:
    ``x' ← Π(x' + α·sign(∇_{x'} objective))``, Π = ℓ∞ ε-ball around ``x`` then [0, 1] (``start`` is projected
    first). ``objective`` maps the N×K logits to a scalar (a sum over the batch, so each image's step is its
    own). Runs in eval mode with frozen parameters; returns the detached N×C×H×W iterate."""
    with eval_mode(model), frozen_parameters(model):
        x_adv = project(start.detach(), x, eps)
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(objective(model(x_adv)), x_adv)
            x_adv = project(x_adv.detach() + alpha * grad.sign(), x, eps)
    return x_adv.detach()


def kl_divergence(logits_p: Tensor, logits_q: Tensor, reduction: str = "mean") -> Tensor:
    """``KL(p ‖ q) = Σ_k p_k (log p_k − log q_k)`` per image with ``p = softmax(logits_p)``, ``q =
    softmax(logits_q)``; ``"mean"`` over the batch (TRADES' ``(1/n)·KLDivLoss(sum)``) or ``"sum"``."""
    log_p = F.log_softmax(logits_p, dim=1)
    per_image = (log_p.exp() * (log_p - F.log_softmax(logits_q, dim=1))).sum(1)
    return per_image.mean() if reduction == "mean" else per_image.sum()


def trades_attack(model: nn.Module, x: Tensor, start: Tensor, *, eps: float, alpha: float, steps: int) -> Tensor:
    """TRADES' inner maximisation (Zhang et al. 2019, Alg. 1 line 5): ``x'`` maximising
    ``KL(f(x) ‖ f(x'))`` over the ε-ball by signed steps from ``start``; ``f(x)`` is computed once, in eval
    mode, without a graph."""
    with torch.no_grad(), eval_mode(model):
        clean_logits = model(x)
    return linf_ascent(model, x, start, lambda logits: kl_divergence(clean_logits, logits, "sum"),
                       eps=eps, alpha=alpha, steps=steps)


def trades_start(x: Tensor, sigma: float = 0.001) -> Tensor:
    """TRADES' start ``x + σ·N(0, I)`` (σ = 0.001), drawn from the global CPU RNG and moved to x's device."""
    return x + sigma * torch.randn(x.shape, dtype=x.dtype).to(x.device)


def trades_loss(model: nn.Module, x: Tensor, y: Tensor, x_adv: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(loss, ce, kl)`` with ``loss = CE(f(x), y) + β·KL(f(x) ‖ f(x'))`` (Zhang et al. 2019, eq. 5; batch
    means), both forwards in the caller's mode and both differentiable, as in the authors' code."""
    logits = model(x)
    ce = F.cross_entropy(logits, y)
    kl = kl_divergence(logits, model(x_adv))
    return ce + beta * kl, ce, kl


# ----------------------------------------------------------------------------------------------------------
# the methods
# ----------------------------------------------------------------------------------------------------------
class PGDAT(TrainingMethod):
    """PGD adversarial training (Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial
    Attacks", eq. 2.1): ``min_θ E[max_{‖δ‖∞ ≤ ε} CE(f(x + δ), y)]``, the inner max approximated by PGD-n
    (:class:`rattrlib.attacks.PGD`: uniform random start in the ball, ``steps`` steps of ``α·sign(∇CE)``,
    projection and [0, 1] clamp after each). The loss is the batch-mean CE on the PGD images only.

    Args: ``eps`` ∈ [0, 1] (default 0.3, MNIST), ``alpha`` > 0 (0.01), ``steps`` ≥ 1 (40),
    ``random_start`` (True), ``eps_warmup`` ∈ [0, 1]: ramp ε linearly over this fraction of training
    (:func:`~rattrlib.train.base.warmup_eps`; 0 = Madry's constant ε). Logged terms: ``ce_adv``, ``eps``.
    """

    name = "pgd_at"

    def __init__(self, eps: float = 0.3, alpha: float = 0.01, steps: int = 40, random_start: bool = True,
                 eps_warmup: float = 0.0):
        self.eps = check_eps(eps)
        self.eps_warmup = check_unit_interval("eps_warmup", eps_warmup)
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        if not isinstance(random_start, bool):
            raise ValueError(f"random_start must be a bool, got {random_start!r}")
        self.random_start = random_start

    def hyperparameters(self) -> dict:
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "random_start": self.random_start,
                "eps_warmup": self.eps_warmup}

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, eps: Optional[float] = None) -> Tensor:
        """The PGD images this method trains on, at ``eps`` (default: the full ε); torch's global RNG draws the
        random start."""
        eps = self.eps if eps is None else eps
        return PGD(model, eps, self.alpha, self.steps, random_start=self.random_start).perturb(x, y)

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        eps = warmup_eps(self.eps, self.eps_warmup, progress)
        x_adv = self.perturb(model, batch.x, batch.y, eps)
        loss = F.cross_entropy(model(x_adv), batch.y)
        return loss, {"ce_adv": loss.item(), "eps": eps}


class TRADES(TrainingMethod):
    """TRADES (Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness and Accuracy", eq. 5 and
    Alg. 1): ``CE(f(x), y) + β·KL(f(x) ‖ f(x'))``, ``x' = argmax_{x' ∈ B∞(x, ε)} KL(f(x) ‖ f(x'))``.

    Inner: start at ``x + 0.001·N(0, I)`` (projected into the ball and [0, 1] — the authors' code clamps only
    after the first step), ``steps`` signed steps of size α on the KL, eval mode. Outer: both forwards in train
    mode, the KL's gradient flows through f(x) and f(x') (authors' code). β = ``beta_trades``: 6 is Zhang et
    al.'s CIFAR-10 value and the brief's default (their MNIST script used 1); ε, α, steps default to MNIST's
    0.3, 0.01, 40. Logged terms: ``ce`` (clean CE), ``kl``.
    """

    name = "trades"

    def __init__(self, eps: float = 0.3, alpha: float = 0.01, steps: int = 40, beta_trades: float = 6.0):
        self.eps = check_eps(eps)
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        self.beta_trades = check_positive("beta_trades", beta_trades)

    def hyperparameters(self) -> dict:
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "beta_trades": self.beta_trades}

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """x' of the inner maximisation (the Gaussian start is drawn from torch's global CPU RNG)."""
        return trades_attack(model, x, trades_start(x), eps=self.eps, alpha=self.alpha, steps=self.steps)

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x_adv = self.perturb(model, batch.x, batch.y)
        loss, ce, kl = trades_loss(model, batch.x, batch.y, x_adv, self.beta_trades)
        return loss, {"ce": ce.item(), "kl": kl.item()}
