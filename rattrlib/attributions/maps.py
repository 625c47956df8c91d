"""From an attribution tensor to the H×W map that rattr's metrics and attacks use."""

from __future__ import annotations

from torch import Tensor


def attribution_map(attr: Tensor) -> Tensor:
    """Per-pixel map ``M[n, h, w] = Σ_c |A[n, c, h, w]|`` (N×C×H×W → N×H×W, ≥ 0).

    The Ghorbani et al. 2019 / RAR (Chen et al. 2019) convention fixed in rattr's protocols. ART's evaluation
    code uses the channel mean of ``|A|`` instead: C times smaller, same ranking. Differentiable (use it on a
    ``create_graph=True`` attribution inside an attack loss).
    """
    if not isinstance(attr, Tensor) or attr.ndim != 4:
        shape = tuple(attr.shape) if isinstance(attr, Tensor) else type(attr).__name__
        raise ValueError(f"attr must be an N×C×H×W tensor, got {shape}")
    return attr.abs().sum(dim=1)
