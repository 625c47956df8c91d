"""Alignment of an image with its input gradient (Etmann et al. 2019; ART, Singh et al. 2020, Fig. 6)."""

from __future__ import annotations

import torch

from rattrlib.metrics._common import check_pair, metric, out_dtype


@metric(higher_is_better=True, cite="Etmann et al. 2019 (ICML), §3; Singh et al. 2020 (ART), §3.3 and Fig. 6",
        bounds=(-1.0, 1.0))
def alignment(x, grad) -> torch.Tensor:
    """Cosine between each image and its input gradient, ``cos(x, ∇x f_y(x))`` over the flattened image.

    x, grad: (N, C, H, W) (or (N, D), (N, H, W)) of the same shape; ``grad`` is the gradient of the logit of
    class y (true label or prediction, as the caller chose) w.r.t. x. Returns (N,) in [−1, 1]; higher = more
    aligned, which Etmann et al. tie to adversarial robustness and ART to attributional robustness. NaN
    where x or grad is all zero. Differentiable.
    """
    x, grad = check_pair(x, grad, names=("x", "grad"), ndims=(2, 3, 4))
    dtype = out_dtype(x, grad)
    x, grad = x.to(dtype), grad.to(dtype)
    cos = (x * grad).sum(dim=1) / (torch.linalg.vector_norm(x, dim=1) * torch.linalg.vector_norm(grad, dim=1))
    return cos.clamp(-1.0, 1.0)
