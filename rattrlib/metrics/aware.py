"""Attribution-aware (AA) robustness metrics (GALI, eq. 10–12): goodness × similarity.

``AA = sim(R, A) × sim(A, B)`` where R is a reference "good" map (an adversarially trained teacher's map, or
the object mask), A the clean map and B the attacked map (the paper's A, B, C). A stable but meaningless
map (e.g. nearly all zero) scores high on the plain metric and low here. Inputs: (N, H, W) or (N, D) of the
same shape; outputs (N,), higher = better.
"""

from __future__ import annotations

import torch

from rattrlib.metrics._common import check_batch, check_k, check_pair, metric, out_dtype
from rattrlib.metrics.rank import kendall_tau, spearman_rho, topk_intersection, topk_mask

_CITE = "GALI (teacher-aligned attributions), eq. {}"


def _checked(ref, a, b):
    """ref, a, b as tensors after the shape checks (a bool ``ref`` stays bool)."""
    ref, a, b = check_batch(ref, "ref"), check_batch(a, "a"), check_batch(b, "b")
    check_pair(a, b)
    check_pair(ref, a, names=("ref", "a"))
    return ref, a, b


@metric(higher_is_better=True, cite=_CITE.format(10), bounds=(0.0, 1.0))
def aa_topk(ref, a, b, k: int) -> torch.Tensor:
    """AA-Top-K = ``TopK∩(R, A) × TopK∩(A, B)`` (GALI eq. 10), each factor a fraction in [0, 1].

    ref: float reference map R (ties in its top-k broken towards the lower pixel index, as in
    :func:`~rattrlib.metrics.topk_intersection`), or a **bool object mask**: then the goodness factor is the
    fraction of topk(A) inside the mask, ``|topk(A) ∩ M| / k`` (top-k of a binary map is ill-defined when
    k ≠ |M|). a, b: clean and attacked maps. Returns (N,) in [0, 1]; the book reports ×100.
    """
    ref, a, b = _checked(ref, a, b)
    if ref.dtype == torch.bool:
        a_flat = a.reshape(a.shape[0], -1)
        k = check_k(k, a_flat.shape[1])
        inside = (topk_mask(a_flat, k) & ref.reshape(ref.shape[0], -1)).sum(dim=1)
        goodness = inside.to(out_dtype(a, b)) / k
    else:
        goodness = topk_intersection(ref, a, k)
    return goodness * topk_intersection(a, b, k)


@metric(higher_is_better=True, cite=_CITE.format(11), bounds=(-1.0, 1.0))
def aa_kendall(ref, a, b, method: str = "auto") -> torch.Tensor:
    """AA-Kendall = ``τ_b(R, A) × τ_b(A, B)`` (GALI eq. 11). A bool mask R is used as 0/1 values (τ-b handles
    the ties). Returns (N,) in [−1, 1]; NaN if any map is constant. Note: the product of two negative
    correlations is positive — read it together with the two factors."""
    ref, a, b = _checked(ref, a, b)
    ref = ref.to(out_dtype(a)) if ref.dtype == torch.bool else ref
    return kendall_tau(ref, a, method=method) * kendall_tau(a, b, method=method)


@metric(higher_is_better=True, cite=_CITE.format(12), bounds=(-1.0, 1.0))
def aa_spearman(ref, a, b) -> torch.Tensor:
    """AA-Spearman = ``ρ(R, A) × ρ(A, B)`` (GALI eq. 12). A bool mask R is used as 0/1 values (average ranks
    for its ties). Returns (N,) in [−1, 1]; NaN if any map is constant."""
    ref, a, b = _checked(ref, a, b)
    ref = ref.to(out_dtype(a)) if ref.dtype == torch.bool else ref
    return spearman_rho(ref, a) * spearman_rho(a, b)
