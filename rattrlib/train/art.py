"""Attributional Robustness Training (ART; Singh, Kumari, Mangla, Sinha, Balasubramanian & Krishnamurthy,
ECCV 2020, "Attributional Robustness Training using Input-Gradient Spatial Alignment", eq. 5–6, Algorithm 1).

Also home of the pieces the second-order trainers share (:mod:`rattrlib.train.rar`, :mod:`~.ssr`,
:mod:`~.gali` import them): hyperparameter checks, the ℓ∞ projection, the signed-gradient inner maximisation,
the attack mode (eval mode, frozen parameters) and the cached softplus surrogate.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rattrlib.attributions import smooth_copy
from rattrlib.config import check_eps, check_int, check_nonnegative, check_positive
from rattrlib.train.base import Batch, Progress, TrainingMethod


# ----------------------------------------------------------------------------------------------------------
# hyperparameter checks (constructors; ValueError naming the parameter and its value, before any compute)
# ----------------------------------------------------------------------------------------------------------
def check_beta(value, *, allow_none: bool) -> Optional[float]:
    """Softplus β > 0, or None (= use the ReLU network itself) where ``allow_none``."""
    if value is None and allow_none:
        return None
    return check_positive("beta", value)


# ----------------------------------------------------------------------------------------------------------
# shared machinery of the inner maximisations
# ----------------------------------------------------------------------------------------------------------
def project_linf(x_adv: Tensor, x: Tensor, eps: float) -> Tensor:
    """Projection onto the ℓ∞ ε-ball around ``x``, then clamped to [0, 1] (rattr protocol; clamping never
    leaves the ball since x ∈ [0, 1])."""
    return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp(0.0, 1.0)


def random_start(x: Tensor, eps: float) -> Tensor:
    """``x + U(−ε, ε)`` per entry (torch's global RNG, saved in training checkpoints), clamped to [0, 1]."""
    return (x + eps * (2.0 * torch.rand_like(x) - 1.0)).clamp(0.0, 1.0)


@contextmanager
def attack_mode(model: nn.Module) -> Iterator[None]:
    """Inside: every module of ``model`` in eval mode and every parameter frozen (no parameter graph is built
    and no ``.grad`` is written); both restored on exit. A softplus copy made by :func:`smooth_copy` follows
    (it shares the parameters and copies the modules' mode before each forward)."""
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)


def sign_ascent(objective: Callable[[Tensor], Tensor], x: Tensor, eps: float, alpha: float, steps: int,
                start: Optional[Tensor] = None) -> Tensor:
    """ℓ∞ projected signed-gradient ascent: ``x' ← Π(x' + α·sign(∇_{x'} objective(x')))``, ``steps`` times.

    ``objective(x')`` returns a scalar (the batch sum of the per-image objectives, so every image moves by its
    own gradient). ``start`` defaults to :func:`random_start`. Returns the detached final iterate (in the
    ε-ball around ``x`` and in [0, 1]). Call it under :func:`attack_mode`.
    """
    x = x.detach()
    x_adv = random_start(x, eps) if start is None else start.detach()
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(objective(x_adv), x_adv)
        x_adv = project_linf(x_adv.detach() + alpha * grad.sign(), x, eps)
    return x_adv.detach()


class SmoothSurrogate:
    """Mixin: ``self.surrogate(model)`` is the softplus(``self.beta``) copy of ``model`` (made once per model,
    sharing its parameters; rattr protocol "Smooth surrogate for second-order terms"), or ``model`` itself when
    ``self.beta`` is None."""

    beta: Optional[float] = None

    def surrogate(self, model: nn.Module) -> nn.Module:
        if self.beta is None:
            return model
        cached = getattr(self, "_surrogate_pair", None)
        if cached is None or cached[0] is not model:
            cached = (model, smooth_copy(model, self.beta))
            self._surrogate_pair = cached
        return cached[1]


# ----------------------------------------------------------------------------------------------------------
# ART's loss (eq. 5)
# ----------------------------------------------------------------------------------------------------------
def runner_up(logits: Tensor, y: Tensor) -> Tensor:
    """``i* = argmax_{i ≠ y} logits_i`` per row (N,); logits N×K, y (N,)."""
    masked = logits.detach().clone()
    masked.scatter_(1, y[:, None], float("-inf"))
    return masked.argmax(1)


def logit_gradients(model: nn.Module, x: Tensor, y: Tensor, *,
                    create_graph: bool) -> tuple[Tensor, Tensor, Tensor]:
    """``(g^y, g^{i*}, i*)`` for a batch: ``g^i = ∇_x f_i(x)`` (N×C×H×W each), ``i*`` the highest non-true logit
    of ``model`` at ``x`` (ART eq. 5). One forward, two backward passes.

    With ``create_graph`` the gradients are differentiable w.r.t. the parameters and, when ``x`` requires grad
    and is part of a graph, w.r.t. ``x`` (otherwise a detached leaf copy of ``x`` is differentiated).
    """
    z = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(z)
        istar = runner_up(logits, y)
        (g_y,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), z, create_graph=create_graph,
                                     retain_graph=True)
        (g_star,) = torch.autograd.grad(logits.gather(1, istar[:, None]).sum(), z, create_graph=create_graph)
    return g_y, g_star, istar


def cosine_distance(g: Tensor, x: Tensor) -> Tensor:
    """``d(g, x) = 1 − g·x / (‖g‖₂‖x‖₂)`` per row of the flattened tensors (N,) (ART eq. 5); a zero vector has
    cosine 0 (the denominator is clamped at 1e-12)."""
    g, x = g.flatten(1), x.flatten(1)
    denominator = (torch.linalg.vector_norm(g, dim=1) * torch.linalg.vector_norm(x, dim=1)).clamp_min(1e-12)
    return 1.0 - (g * x).sum(1) / denominator


def triplet_loss(g_pos: Tensor, g_neg: Tensor, anchor: Tensor) -> Tensor:
    """ART eq. 5, per image (N,): ``log(1 + exp(−(d(g^{i*}, x) − d(g^y, x)))) = softplus(d(g^y, x) − d(g^{i*}, x))``
    with the image as anchor, ``g^y`` positive and ``g^{i*}`` negative."""
    return F.softplus(cosine_distance(g_pos, anchor) - cosine_distance(g_neg, anchor))


def hardest_pair_triplet_loss(g_pos: Tensor, g_neg: Tensor, anchor: Tensor, groups: int) -> Tensor:
    """The authors' code variant of eq. 5 ("hard example mining"), per row (R,).

    The R = groups·N rows are ``groups`` stacked versions of one batch of N images (ART: clean and perturbed,
    groups = 2), so rows ``n, N + n, …`` show image n. For each anchor row r:
    ``softplus(max_s d(g^y_s, x_r) − min_s d(g^{i*}_s, x_r))`` over the rows s of the same image.
    """
    n = anchor.shape[0] // groups
    pos, neg = [], []
    for shift in range(groups):
        order = (torch.arange(anchor.shape[0], device=anchor.device) + shift * n) % anchor.shape[0]
        pos.append(cosine_distance(g_pos[order], anchor))
        neg.append(cosine_distance(g_neg[order], anchor))
    return F.softplus(torch.stack(pos).amax(0) - torch.stack(neg).amin(0))


class ART(SmoothSurrogate, TrainingMethod):
    """Attributional Robustness Training, Singh et al. 2020, eq. 6 / Algorithm 1:

        min_θ E[ CE(f(x̃), y) + λ·L_attr(x̃, y) ],   x̃ = argmax_{‖x̃ − x‖∞ ≤ ε} L_attr(x̃, y),
        L_attr(x, y) = softplus(d(g^y(x), x) − d(g^{i*}(x), x)),  d(g, x) = 1 − cos(g, x)        (eq. 5)

    ``g^i = ∇_x f_i`` is computed on the softplus(β) copy of the model (create_graph, so the outer loss reaches
    the parameters through the input gradient); ``i*`` = the highest non-true logit of that copy at the same
    point (the authors' code; the argmax is not differentiated). The CE uses the ReLU model (Alg. 1 line 12).

    Inner maximisation (Alg. 1 lines 4–8): ``x̃ = x + U(−ε, ε)``, then ``steps`` steps
    ``x̃ ← Π(x̃ + α·sign(∇ L_attr(x̃)))`` (Π: ε-ball and [0, 1]), run in eval mode with frozen parameters.

    Args:
        eps: ℓ∞ budget on the [0, 1] scale (paper 8/255; 2/255 for localisation data).
        alpha: inner step; None → ``2.5·ε/steps`` (Madry et al.'s rule, so the steps can cross the ball).
            The authors' CIFAR code used 5/255 for ε = 8/255, 3 steps (= 0.625 ε).
        steps: inner steps a (paper 3).
        beta: softplus β of the surrogate (paper 50).
        lam: λ, weight of L_attr in the outer loss (paper 0.5).
        topk: None (paper, Alg. 1) or k: the authors' code restricts the inner loss to the k entries of
            ``|g^y|`` largest at the random start (ReLU model; fixed during the attack; CIFAR 1000).
        hardest_pairs: False (paper) or True: the authors' outer loss on the clean and perturbed images
            together, each anchor against the farthest positive and nearest negative of its image.

    Logged terms per batch: ``ce`` (CE on x̃) and ``attr`` (L_attr, unweighted, batch mean).
    """

    name = "art"

    def __init__(self, eps: float = 8 / 255, alpha: Optional[float] = None, steps: int = 3, beta: float = 50.0,
                 lam: float = 0.5, topk: Optional[int] = None, hardest_pairs: bool = False):
        self.eps = check_eps(eps)
        self.steps = check_int("steps", steps, 1)
        self.alpha = 2.5 * self.eps / self.steps if alpha is None else check_positive("alpha", alpha)
        self.beta = check_beta(beta, allow_none=False)
        self.lam = check_nonnegative("lam", lam)
        self.topk = None if topk is None else check_int("topk", topk, 1)
        if not isinstance(hardest_pairs, bool):
            raise ValueError(f"hardest_pairs={hardest_pairs!r} must be a bool")
        self.hardest_pairs = hardest_pairs

    def hyperparameters(self) -> dict:
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "beta": self.beta, "lam": self.lam,
                "topk": self.topk, "hardest_pairs": self.hardest_pairs}

    def attr_loss(self, model: nn.Module, x: Tensor, y: Tensor, *, create_graph: bool = True) -> Tensor:
        """L_attr per image (N,) at ``x`` on the surrogate of ``model`` (eq. 5)."""
        g_y, g_star, _ = logit_gradients(self.surrogate(model), x, y, create_graph=create_graph)
        return triplet_loss(g_y, g_star, x)

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The inner maximiser x̃ (Alg. 1 lines 4–8): N×C×H×W, in the ε-ball around x and in [0, 1]."""
        smooth = self.surrogate(model)
        with attack_mode(model):
            start = random_start(x.detach(), self.eps)
            index = None
            if self.topk is not None and self.topk < x[0].numel():
                g_relu, _, _ = logit_gradients(model, start, y, create_graph=False)
                index = g_relu.flatten(1).abs().topk(self.topk, dim=1).indices

            def objective(z: Tensor) -> Tensor:
                g_y, g_star, _ = logit_gradients(smooth, z, y, create_graph=True)
                if index is None:
                    return triplet_loss(g_y, g_star, z).sum()
                pick = lambda t: t.flatten(1).gather(1, index)  # noqa: E731
                return triplet_loss(pick(g_y), pick(g_star), pick(z)).sum()

            return sign_ascent(objective, x, self.eps, self.alpha, self.steps, start=start)

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x, y = batch.x, batch.y
        x_adv = self.perturb(model, x, y)
        ce = F.cross_entropy(model(x_adv), y)
        if self.hardest_pairs:
            both = torch.cat([x.detach(), x_adv])
            g_y, g_star, _ = logit_gradients(self.surrogate(model), both, y.repeat(2), create_graph=True)
            attr = hardest_pair_triplet_loss(g_y, g_star, both, groups=2).mean()
        else:
            attr = self.attr_loss(model, x_adv, y).mean()
        return ce + self.lam * attr, {"ce": ce.item(), "attr": attr.item()}


__all__ = ["ART", "cosine_distance", "hardest_pair_triplet_loss", "logit_gradients", "runner_up",
           "triplet_loss"]
