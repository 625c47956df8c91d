"""Robust Attribution Regularization (RAR; Chen, Wu, Rastogi, Liang & Jha, NeurIPS 2019): IG-NORM and
IG-SUM-NORM, and the integrated gradients of the cross-entropy loss that they (and GALI) regularise."""

from __future__ import annotations

from typing import Callable, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from rattrlib.attributions._core import gradient_sum
from rattrlib.config import check_eps, check_int, check_nonnegative, check_positive, check_unit_interval
from rattrlib.train.art import SmoothSurrogate, attack_mode, check_beta, sign_ascent
from rattrlib.train.base import Batch, Progress, TrainingMethod, warmup_eps


def loss_integrated_gradients(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, m: int, *,
                              create_graph: bool = True, internal_batch_size: Optional[int] = None) -> Tensor:
    """IG of the cross-entropy loss along the straight path x → x' with baseline x (RAR's ``IG(x, x')``; GALI
    eq. 17 with x0 = x), m-step right Riemann sum (rattr protocol):

        IG_CE(x → x') = (x' − x) ⊙ (1/m) Σ_{k=1..m} ∇_z CE(f(z), y)|_{z = x + k/m (x' − x)}

    N×C×H×W. Completeness: ``Σ IG → CE(x') − CE(x)`` as m grows. With ``create_graph`` the result is
    differentiable w.r.t. the parameters (second order: the outer loss) and, if ``x_adv`` requires grad, w.r.t.
    x' (the inner maximisation). ``internal_batch_size``: rows per forward (at least N); None → one path point
    of all N images per forward (an ordinary batch, so a BatchNorm in train mode sees batches like the training
    ones).
    """
    n = x.shape[0]
    rows = n if internal_batch_size is None else max(int(internal_batch_size), n)
    x = x.detach()
    delta = x_adv - x

    def neg_log_softmax(z: Tensor) -> Tensor:  # its "logit" y is CE(f(z), y)
        return -F.log_softmax(model(z), dim=1)

    def term(k: int):
        return x + ((k + 1) / m) * delta, 1.0 / m

    mean_grad = gradient_sum(neg_log_softmax, y, m, term, create_graph=create_graph, internal_batch_size=rows)
    return delta * mean_grad


def has_batchnorm_in_training(model: nn.Module) -> bool:
    """True when a BatchNorm layer of ``model`` is in train mode (its output depends on the batch's rows)."""
    return any(isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.training for layer in model.modules())


def ig_l1(ig: Tensor) -> Tensor:
    """``‖IG‖₁`` per image (N,)."""
    return ig.abs().flatten(1).sum(1)


class _LossIGRegularised(SmoothSurrogate, TrainingMethod):
    """Shared constructor, inner maximisation and IG term of IG-NORM, IG-SUM-NORM and GALI."""

    def _init_common(self, eps, alpha, steps, m_inner, m_outer, beta, internal_batch_size, eps_warmup=0.0):
        self.eps = check_eps(eps)
        self.eps_warmup = check_unit_interval("eps_warmup", eps_warmup)
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        self.m_inner = check_int("m_inner", m_inner, 1)
        self.m_outer = check_int("m_outer", m_outer, 1)
        self.beta = check_beta(beta, allow_none=True)
        self.internal_batch_size = (None if internal_batch_size is None
                                    else check_int("internal_batch_size", internal_batch_size, 1))

    def _common_hyperparameters(self) -> dict:
        return {"eps": self.eps, "alpha": self.alpha, "steps": self.steps, "m_inner": self.m_inner,
                "m_outer": self.m_outer, "beta": self.beta, "internal_batch_size": self.internal_batch_size,
                "eps_warmup": self.eps_warmup}

    def ig(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, m: int, *,
           create_graph: bool = True) -> Tensor:
        """IG_CE(x → x') on the surrogate of ``model`` (softplus(β) copy, or the model when β is None).

        With ``internal_batch_size=None`` all m path points go through one forward of m·N rows — the same
        arithmetic as m forwards of N, 1.1–1.3× faster per training batch on 2 idle CPU cores
        (``benchmarks/results/train_methods.json``) — unless ``model`` has a BatchNorm in train mode, whose
        statistics must come from ordinary batches of N."""
        rows = self.internal_batch_size
        if rows is None and not has_batchnorm_in_training(model):
            rows = x.shape[0] * m
        return loss_integrated_gradients(self.surrogate(model), x, x_adv, y, m, create_graph=create_graph,
                                         internal_batch_size=rows)

    def _maximise_ce_plus_ig(self, model: nn.Module, x: Tensor, y: Tensor, weight: float,
                             eps: Optional[float] = None) -> Tensor:
        """x' maximising ``Σ_n CE(x'_n) + weight·‖IG_CE(x_n → x'_n)‖₁`` (m_inner points): the inner problem of
        IG-SUM-NORM (RAR) and of GALI eq. 8."""
        def objective(z: Tensor) -> Tensor:
            ce = F.cross_entropy(model(z), y, reduction="sum")
            return ce + weight * ig_l1(self.ig(model, x, z, y, self.m_inner)).sum()

        return self._maximise(model, x, objective, eps)

    def _maximise(self, model: nn.Module, x: Tensor, objective: Callable[[Tensor], Tensor],
                  eps: Optional[float] = None) -> Tensor:
        """Signed ascent of ``objective(x')`` (batch sum) from a uniform random start in the ``eps``-ball
        (default: the full ε), in eval mode."""
        eps = self.eps if eps is None else eps
        with attack_mode(model):
            return sign_ascent(objective, x, eps, self.alpha, self.steps)


class IGNorm(_LossIGRegularised):
    """IG-NORM (Chen et al. 2019): ``min_θ E[ CE(f(x), y) + λ · max_{x' ∈ B∞(x, ε)} ‖IG_CE(x → x')‖₁ ]``.

    Inner: x' maximises ``‖IG_CE(x → x')‖₁`` with the cheaper ``m_inner`` (the authors' code: an approximate IG
    on every 5th of the m = 50 points, i.e. 10; rattr default 5), by ``steps`` signed steps of size ``alpha``
    from a uniform random start, projected onto the ε-ball and [0, 1] (eval mode, frozen parameters).
    Outer: ``CE(x) + λ‖IG_CE(x → x')‖₁`` with ``m_outer`` points, CE on the ReLU model; batch means of both
    terms (the authors sum both over the batch: the same ratio).

    Which network for the IG: the softplus(β) copy by default (rattr protocol: every attributional regulariser
    uses the smooth surrogate, so the inner ascent sees the curvature of the network, not only that of the
    softmax); ``beta=None`` uses the ReLU model as the authors' TensorFlow code does (its parameter gradient is
    still nonzero: ∂∇_x CE/∂θ ≠ 0 for ReLU nets).

    Defaults are RAR's MNIST setting (ε = 0.3, α = 0.01, 40 steps, m = 50, λ = 1); a CPU run needs fewer steps
    (see cpu-performance.md and the zoo presets). ``eps_warmup``: ramp the inner ε over this fraction of
    training (:func:`~rattrlib.train.base.warmup_eps`; 0, the default, is RAR's constant ε).

    Logged terms per batch: ``ce`` (CE at x) and ``ig`` (mean ‖IG‖₁, unweighted).
    """

    name = "ig_norm"

    def __init__(self, eps: float = 0.3, alpha: float = 0.01, steps: int = 40, lam: float = 1.0,
                 m_inner: int = 5, m_outer: int = 50, beta: Optional[float] = 50.0,
                 internal_batch_size: Optional[int] = None, eps_warmup: float = 0.0):
        self._init_common(eps, alpha, steps, m_inner, m_outer, beta, internal_batch_size, eps_warmup)
        self.lam = check_nonnegative("lam", lam)

    def hyperparameters(self) -> dict:
        return {**self._common_hyperparameters(), "lam": self.lam}

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, eps: Optional[float] = None) -> Tensor:
        """x' maximising ``Σ_n ‖IG_CE(x_n → x'_n)‖₁`` (m_inner points) in the ``eps``-ball (default ε)."""
        return self._maximise(model, x, lambda z: ig_l1(self.ig(model, x, z, y, self.m_inner)).sum(), eps)

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x, y = batch.x, batch.y
        x_adv = self.perturb(model, x, y, warmup_eps(self.eps, self.eps_warmup, progress))
        ce = F.cross_entropy(model(x), y)
        ig = ig_l1(self.ig(model, x, x_adv, y, self.m_outer)).mean()
        return ce + self.lam * ig, {"ce": ce.item(), "ig": ig.item()}


class IGSumNorm(_LossIGRegularised):
    """IG-SUM-NORM (Chen et al. 2019, size function ``s(a) = Σa + λ‖a‖₁``; by completeness
    ``CE(x) + Σ IG_CE(x → x') = CE(x')``):

        min_θ E[ max_{x' ∈ B∞(x, ε)} CE(f(x'), y) + λ‖IG_CE(x → x')‖₁ ]

    Inner: x' maximises ``CE(x') + λ‖IG_CE(x → x')‖₁`` (CE on the ReLU model, IG with m_inner on the surrogate;
    the authors' ``adv_ar_approx``), same ascent as :class:`IGNorm`. Outer: ``CE(x') + λ‖IG_CE(x → x')‖₁`` with
    m_outer points. Defaults: RAR's MNIST setting (λ = 0.1). Logged: ``ce`` (CE at x') and ``ig``.
    """

    name = "ig_sum_norm"

    def __init__(self, eps: float = 0.3, alpha: float = 0.01, steps: int = 40, lam: float = 0.1,
                 m_inner: int = 5, m_outer: int = 50, beta: Optional[float] = 50.0,
                 internal_batch_size: Optional[int] = None, eps_warmup: float = 0.0):
        self._init_common(eps, alpha, steps, m_inner, m_outer, beta, internal_batch_size, eps_warmup)
        self.lam = check_nonnegative("lam", lam)

    def hyperparameters(self) -> dict:
        return {**self._common_hyperparameters(), "lam": self.lam}

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor, eps: Optional[float] = None) -> Tensor:
        """x' maximising ``Σ_n CE(x'_n) + λ‖IG_CE(x_n → x'_n)‖₁`` (m_inner points) in the ``eps``-ball."""
        return self._maximise_ce_plus_ig(model, x, y, self.lam, eps)

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x, y = batch.x, batch.y
        x_adv = self.perturb(model, x, y, warmup_eps(self.eps, self.eps_warmup, progress))
        ce = F.cross_entropy(model(x_adv), y)
        ig = ig_l1(self.ig(model, x, x_adv, y, self.m_outer)).mean()
        return ce + self.lam * ig, {"ce": ce.item(), "ig": ig.item()}


__all__ = ["IGNorm", "IGSumNorm", "has_batchnorm_in_training", "ig_l1", "loss_integrated_gradients"]
