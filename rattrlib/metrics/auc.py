"""log-AUC: one number per metric over a sweep of attack budgets (SSR, Wang et al. 2020, Fig. 2a)."""

from __future__ import annotations

import torch

from rattrlib.metrics._common import as_tensor, metric


@metric(higher_is_better=None, cite="Wang et al. 2020 (SSR), §5 and Fig. 2a", bounds=None)
def log_auc(eps, values) -> torch.Tensor:
    """Area under a metric-vs-``log2 ε`` curve (trapezoid rule) divided by the ``log2 ε`` range.

    ``log_auc = (1 / (log2 ε_K − log2 ε_1)) · Σ_k (log2 ε_{k+1} − log2 ε_k)(v_k + v_{k+1}) / 2``, so it stays
    in the metric's units: a constant curve gives that constant. The protocol's sweep is ε ∈ {2, 4, 8, 16}/255
    (log2 range 3); the scale of ε does not matter, only ratios.

    eps: (K,) positive, strictly increasing, K ≥ 2. values: (K,) → 0-d tensor, or (K, N) → (N,) (e.g. one
    column per image or per model). Direction is that of the aggregated metric (``higher_is_better=None``).
    NaN values propagate.
    """
    eps = as_tensor(eps, "eps")
    values = as_tensor(values, "values")
    if eps.ndim != 1 or eps.numel() < 2:
        raise ValueError(f"eps must be 1-D with at least 2 budgets, got shape {tuple(eps.shape)}")
    if values.ndim not in (1, 2) or values.shape[0] != eps.numel():
        k = eps.numel()
        raise ValueError(f"values must be ({k},) or ({k}, N) to match eps, got {tuple(values.shape)}")
    eps = eps.to(torch.float64)
    if not bool((eps > 0).all()):
        raise ValueError(f"eps must be positive, got {eps.tolist()}")
    if not bool((eps[1:] > eps[:-1]).all()):
        raise ValueError(f"eps must be strictly increasing, got {eps.tolist()}")
    dtype = values.dtype if values.is_floating_point() else torch.float64
    x = torch.log2(eps).to(values.device)
    v = values.to(torch.float64)
    widths = (x[1:] - x[:-1]).reshape(-1, *([1] * (v.ndim - 1)))
    area = (widths * (v[1:] + v[:-1]) / 2).sum(dim=0)
    return (area / (x[-1] - x[0])).to(dtype)
