"""GradientSHAP / expected gradients: IG averaged over random baselines and random path positions."""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

from rattrlib.attributions._core import (GradientAttribution, check_batch_size, check_generator, check_int,
                                         check_nonnegative, draw, draw_index, gradient_sum)


class GradientSHAP(GradientAttribution):
    """GradientSHAP (Lundberg & Lee 2017, "A Unified Approach to Interpreting Model Predictions", the SHAP
    ``GradientExplainer``) = expected gradients (Erion et al. 2021, "Improving performance of deep learning
    models with axiomatic attribution priors and expected gradients", Nat. Mach. Intell.):

        ``EG(x) = E_{x0 ~ D, α ~ U(0, 1)} (x − x0) ⊙ ∇f_c(x0 + α (x − x0))``,

    estimated with ``n_samples`` draws per image; each draw picks a baseline uniformly from ``baselines`` (the
    reference distribution D) and α ~ U(0, 1). With ``stdev > 0`` each draw first adds Gaussian noise to the
    input, x̃ = x + stdev·ε, and uses x̃ both on the path and in the multiplier ``(x̃ − x0)`` — the convention of
    the SHAP package's ``local_smoothing`` and of Captum's ``GradientShap``. ``stdev`` is absolute on the
    [0, 1] scale. Completeness holds in expectation: ``E Σ_i EG_i = E f_c(x̃) − E f_c(x0)`` (x̃ = x when
    stdev = 0).

    Args:
        model: maps N×C×H×W images to N×K logits.
        n_samples: n ≥ 1 draws per image.
        stdev: input-noise std ≥ 0 (default 0: pure expected gradients).
        baselines: B×C×H×W reference images (e.g. training images); None → one black image.
        generator: a seeded ``torch.Generator`` makes the result deterministic (per draw, in order: baseline
            indices, α, then the noise when stdev > 0); None uses torch's global RNG.
        internal_batch_size: at most this many images×draws per forward (None: all N·n in one); the draws and
            the result do not depend on it.

    Output: N×C×H×W, same dtype as x.
    """

    def __init__(self, model: Callable[[Tensor], Tensor], n_samples: int = 50, stdev: float = 0.0,
                 baselines: Optional[Tensor] = None, generator: Optional[object] = None,
                 internal_batch_size: Optional[int] = None):
        super().__init__(model)
        self.n_samples = check_int("n_samples", n_samples, 1)
        self.stdev = check_nonnegative("stdev", stdev)
        if baselines is not None:
            if not isinstance(baselines, Tensor) or baselines.ndim != 4 or baselines.shape[0] < 1:
                shape = tuple(baselines.shape) if isinstance(baselines, Tensor) else type(baselines).__name__
                raise ValueError(f"baselines must be a B×C×H×W tensor with B ≥ 1, got {shape}")
        self.baselines = baselines
        self.generator = check_generator(generator)
        self.internal_batch_size = check_batch_size(internal_batch_size)

    def _hyperparameters(self) -> dict:
        base = None if self.baselines is None else f"tensor{tuple(self.baselines.shape)}"
        return {"n_samples": self.n_samples, "stdev": self.stdev, "baselines": base,
                "internal_batch_size": self.internal_batch_size}

    def _attribute(self, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:
        n = x.shape[0]
        if self.baselines is None:
            baselines = torch.zeros_like(x[:1])
        else:
            if tuple(self.baselines.shape[1:]) != tuple(x.shape[1:]):
                raise ValueError(f"baselines are {tuple(self.baselines.shape)} but images are C×H×W = "
                                 f"{tuple(x.shape[1:])}")
            baselines = self.baselines.detach().to(device=x.device, dtype=x.dtype)
        weight = 1.0 / self.n_samples

        def term(k: int):
            x0 = baselines[draw_index(len(baselines), n, x, self.generator)]
            alpha = draw("uniform", (n, 1, 1, 1), x, self.generator)
            xk = x + self.stdev * draw("normal", x.shape, x, self.generator) if self.stdev > 0 else x
            delta = xk - x0
            return x0 + alpha * delta, weight * delta

        return gradient_sum(self.model, target, self.n_samples, term, create_graph=create_graph,
                            internal_batch_size=self.internal_batch_size)
