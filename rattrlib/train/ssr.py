"""Smooth Surface Regularization (SSR; Wang, Wang, Ramkumar, Fredrikson, Mardziel & Datta, NeurIPS 2020,
"Smoothed Geometry for Robust Attribution", Prop. 3 and Def. 7 / eq. 2)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rattrlib.train.art import SmoothSurrogate, check_beta, check_nonnegative, check_positive
from rattrlib.train.base import Batch, Progress, TrainingMethod


def logits_and_input_jacobian(model: nn.Module, x: Tensor, *, create_graph: bool,
                              channel_mean: bool = True) -> tuple[Tensor, Tensor]:
    """``(logits N×K, W N×P×K)`` with ``W[n, :, c] = ∇_x f_c(x_n)`` flattened: P = H·W with ``channel_mean``
    (the gradient averaged over the colour channels, as the SSR authors' ``compute_W``), else P = C·H·W.

    K backward passes (one per class; a plain loop was as fast as batched-gradient tricks on CPU, see
    cpu-performance.md). With ``create_graph`` both outputs are differentiable w.r.t. the parameters.
    """
    z = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(z)
        columns = []
        for c in range(logits.shape[1]):
            (g,) = torch.autograd.grad(logits[:, c].sum(), z, create_graph=create_graph, retain_graph=True)
            columns.append((g.mean(1) if channel_mean else g).flatten(1))
    return logits, torch.stack(columns, dim=-1)


def softmax_hessian_factor(logits: Tensor) -> Tensor:
    """L (N×K×K) with ``L Lᵀ = A = diag(p) − p pᵀ``, p = softmax(logits): ``L = (I − p 1ᵀ) diag(√p)``.

    Exact and closed-form (check: ``(I − p1ᵀ) diag(p) (I − 1pᵀ) = diag(p) − 2ppᵀ + p(1ᵀp)pᵀ = A`` since
    Σp = 1), so no eigendecomposition of A and no jitter are needed (the authors' code used ``eigh`` of
    ``A + 1e-12·I``, whose gradient blows up where p is nearly uniform, e.g. at initialisation). ``√p`` is
    ``exp(½ log_softmax)``, so its derivative has no ``1/√p`` factor.
    """
    sqrt_p = torch.exp(0.5 * F.log_softmax(logits, dim=1))
    p = sqrt_p * sqrt_p
    eye = torch.eye(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (eye - p[:, :, None]) * sqrt_p[:, None, :]


def hessian_top_eigenvalue(W: Tensor, logits: Tensor) -> Tensor:
    """λ_max of Singla et al.'s closed-form input Hessian of the CE ``H̃ = W (diag(p) − ppᵀ) Wᵀ`` (SSR Prop. 3),
    per image (N,), without forming the P×P matrix H̃.

    With A = L Lᵀ (:func:`softmax_hessian_factor`), ``H̃ = (WL)(WL)ᵀ`` and ``M = Lᵀ (WᵀW) L = (WL)ᵀ(WL)``
    (K×K) have the same nonzero eigenvalues; both are PSD, so λ_max(H̃) = λ_max(M) = ``eigvalsh(M)[-1]``.
    Differentiable (eigenvalue-only backward: ``∂λ = vᵀ ∂M v``, no eigenvector-gap terms).
    """
    L = softmax_hessian_factor(logits)
    gram = W.transpose(1, 2) @ W
    M = L.transpose(1, 2) @ gram @ L
    M = 0.5 * (M + M.transpose(1, 2))
    return torch.linalg.eigvalsh(M)[:, -1]


class SSR(SmoothSurrogate, TrainingMethod):
    """Smooth Surface Regularization, Wang et al. 2020, Def. 7 (eq. 2):

        min_θ E[ CE(f(x), y) + β_s · s · λ_max(H̃_x) ],   H̃_x = W (diag(p) − ppᵀ) Wᵀ     (Prop. 3)

    W = the input Jacobian of the logits (P×K, channel-averaged as in the authors' ``compute_W``; rattr
    protocol), p = softmax of the same logits. λ_max comes from the K×K route of :func:`hessian_top_eigenvalue`;
    the batch mean is taken (the authors' ``reduce_mean``).

    Which network: the ReLU model itself by default (``beta=None``), as the paper and its code do — SSR is
    meant for ReLU nets: H̃ is the Gauss–Newton part of the input Hessian of the CE (the exact Hessian of a
    piecewise-linear net, almost everywhere), and its parameter gradient needs only the mixed derivatives
    ``∂W/∂θ``, which are nonzero for ReLU nets (W is piecewise constant in x but depends on θ). ``beta=b``
    evaluates W and p on a softplus(b) copy instead; the CE always uses the ReLU model.

    Args:
        beta_s: β, the penalty level (paper 0.3).
        scale_s: s, "ensures the scale of the regularization term is comparable to regular loss" (paper
            1e6 on CIFAR-10 / ResNet-20). rattr's default 10 is measured on the 28×28 MNIST CNN (Adam 1e-3,
            batch 128, 4k MNIST images, β_s = 0.3): λ_max ≈ 3e-4 at initialisation and ≈ 0.3–0.5 after two
            epochs of natural training (CE 0.35–0.7). SSR with s = 10 ended two epochs at CE 0.41, λ_max 0.14
            (s·λ_max ≈ 1.5, the CE's order) and 94.7 % training accuracy; s = 1 left λ_max at 0.30 (a weak
            term); s = 100 pushed λ_max to 0.011 but held CE at 1.5 and accuracy at 80 % (the term dominates).
        beta: None (ReLU model) or the softplus β of the surrogate for W and p.
        channel_mean: average W over the colour channels (authors' code; default) or keep P = C·H·W.
        convex: False: ``CE + β_s·s·λ`` (paper eq. 2, rattr protocol); True: the authors' code's
            ``(1 − β_s)·CE + β_s·s·λ``.

    Logged terms per batch: ``ce``, ``lambda_max`` (batch mean, unscaled) and ``reg`` (= s·lambda_max).
    """

    name = "ssr"

    def __init__(self, beta_s: float = 0.3, scale_s: float = 10.0, beta: Optional[float] = None,
                 channel_mean: bool = True, convex: bool = False):
        self.beta_s = check_nonnegative("beta_s", beta_s)
        self.scale_s = check_positive("scale_s", scale_s)
        self.beta = check_beta(beta, allow_none=True)
        for name, value in (("channel_mean", channel_mean), ("convex", convex)):
            if not isinstance(value, bool):
                raise ValueError(f"{name}={value!r} must be a bool")
        if convex and self.beta_s > 1:
            raise ValueError(f"beta_s={beta_s!r} must be in [0, 1] with convex=True")
        self.channel_mean, self.convex = channel_mean, convex

    def hyperparameters(self) -> dict:
        return {"beta_s": self.beta_s, "scale_s": self.scale_s, "beta": self.beta,
                "channel_mean": self.channel_mean, "convex": self.convex}

    def top_eigenvalue(self, model: nn.Module, x: Tensor, *, create_graph: bool = True) -> tuple[Tensor, Tensor]:
        """``(λ_max per image (N,), logits of the network W was computed on)``."""
        logits, W = logits_and_input_jacobian(self.surrogate(model), x, create_graph=create_graph,
                                              channel_mean=self.channel_mean)
        return hessian_top_eigenvalue(W, logits), logits

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x, y = batch.x, batch.y
        lam_max, logits = self.top_eigenvalue(model, x)
        if self.beta is not None:
            logits = model(x)
        ce = F.cross_entropy(logits, y)
        lam_mean = lam_max.mean()
        reg = self.scale_s * lam_mean
        weight = (1.0 - self.beta_s) if self.convex else 1.0
        loss = weight * ce + self.beta_s * reg
        return loss, {"ce": ce.item(), "lambda_max": lam_mean.item(), "reg": reg.item()}


__all__ = ["SSR", "hessian_top_eigenvalue", "logits_and_input_jacobian", "softmax_hessian_factor"]
