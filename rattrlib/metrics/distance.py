"""Geometric distances between attribution maps (SSR, Wang et al. 2020, §5): centre-of-mass dislocation
(``cdl``) and cosine distance (``cosd``). Both are differentiable, so attacks can use them as losses."""

from __future__ import annotations

import torch

from rattrlib.metrics._common import check_batch, check_pair, metric, out_dtype


def center_of_mass(m) -> torch.Tensor:
    """Centre of mass of each nonnegative map in (row, col) float pixel coordinates.

    ``C(m) = Σ_p m_p · p / Σ_p m_p`` with p = (row, col) of pixel centres (0-based, so a single hot pixel at
    (r, c) gives exactly (r, c)). m: (N, H, W), entries ≥ 0 (the protocol's maps are |·| summed over
    channels; pass ``m.abs()`` otherwise — negative entries raise ValueError). Returns (N, 2) float, not
    rounded (Ghorbani's/SSR's code truncated to integers). An all-zero map has no centre: its row is NaN.
    Differentiable in ``m`` (IFIA's mass-centre attack maximises the shift of C).
    """
    m = check_batch(m, "m", ndims=(3,))
    if bool((m < 0).any()):
        raise ValueError("center_of_mass needs nonnegative maps (the protocol's |attribution| map); pass m.abs()")
    m = m.to(out_dtype(m))
    h, w = m.shape[1:]
    rows = torch.arange(h, dtype=m.dtype, device=m.device)
    cols = torch.arange(w, dtype=m.dtype, device=m.device)
    total = m.sum(dim=(1, 2))
    row = (m.sum(dim=2) * rows).sum(dim=1) / total
    col = (m.sum(dim=1) * cols).sum(dim=1) / total
    return torch.stack([row, col], dim=1)


@metric(higher_is_better=False, cite="Ghorbani et al. 2019 (AAAI), §3; Wang et al. 2020 (SSR), §5 'cdl'",
        bounds=(0.0, float("inf")))
def center_of_mass_dislocation(a, b) -> torch.Tensor:
    """Centre-of-mass dislocation ``‖C(a) − C(b)‖₂`` in pixels (SSR ``cdl``; Ghorbani et al. 2019).

    a, b: (N, H, W) nonnegative maps of the same shape. Returns (N,) ≥ 0 floats (not truncated), lower = more
    similar; NaN where either map is all zero. Invariant to rescaling either map.
    """
    check_pair(a, b, ndims=(3,))
    return torch.linalg.vector_norm(center_of_mass(a) - center_of_mass(b), dim=1)


@metric(higher_is_better=False, cite="Wang et al. 2020 (SSR), §5 'cosd'", bounds=(0.0, 2.0))
def cosine_distance(a, b) -> torch.Tensor:
    """Cosine distance ``1 − ⟨a, b⟩ / (‖a‖‖b‖)`` over the flattened maps (SSR ``cosd``).

    a, b: (N, H, W) or (N, D) of the same shape. Returns (N,) in [0, 2] ([0, 1] for nonnegative maps), lower =
    more similar; invariant to positive rescaling. NaN where either map is all zero (no direction).
    """
    a, b = check_pair(a, b)
    dtype = out_dtype(a, b)
    a, b = a.to(dtype), b.to(dtype)
    cos = (a * b).sum(dim=1) / (torch.linalg.vector_norm(a, dim=1) * torch.linalg.vector_norm(b, dim=1))
    return 1 - cos.clamp(-1.0, 1.0)
