"""Integrated Gradients (Sundararajan, Taly & Yan 2017) with a right-Riemann or trapezoid rule."""

from __future__ import annotations

import numbers
from typing import Callable, Optional, Union

import torch
from torch import Tensor

from rattrlib.attributions._core import (GradientAttribution, check_batch_size, check_int, gradient_sum)
from rattrlib.config import check_choice

IG_RULES = ("riemann_right", "trapezoid")


class IntegratedGradients(GradientAttribution):
    """Integrated Gradients, Sundararajan et al. 2017 ("Axiomatic Attribution for Deep Networks"), eq. 1:
    ``IG_i(x) = (x_i − x0_i) ∫_0^1 ∂f_c(x0 + α(x − x0))/∂x_i dα``, approximated by the m-step Riemann sum of
    their §5 ("Computing Integrated Gradients"):

    - ``rule="riemann_right"`` (default, rattr protocol):
      ``IG(x) = (x − x0) ⊙ (1/m) Σ_{k=1..m} ∇f_c(x0 + k/m (x − x0))`` — m gradient evaluations per image;
    - ``rule="trapezoid"``: the trapezoid rule on the m intervals of [0, 1], points k/m for k = 0..m with
      weights 1/(2m) at both ends and 1/m inside — m + 1 evaluations. (Captum's "riemann_trapezoid" instead
      puts n points on [0, 1] with weights 1/n, halved at the ends, which sum to 1 − 1/n.)

    Completeness: ``Σ_i IG_i(x) → f_c(x) − f_c(x0)`` as m grows (the test oracle). ``f_c`` is the logit of
    class c.

    Args:
        model: maps N×C×H×W images to N×K logits.
        n_steps: m ≥ 1.
        rule: one of :data:`IG_RULES`.
        baseline: x0. None → black (all-zero) image; a float → constant image; a tensor broadcastable to x
            (e.g. C×H×W, 1×C×H×W or N×C×H×W). Treated as a constant (no gradient flows into it).
        internal_batch_size: at most this many images×path points per forward (None: all N·m in one). The
            result does not depend on it; it bounds memory.

    Output: N×C×H×W, same dtype as x, unbounded.
    """

    def __init__(self, model: Callable[[Tensor], Tensor], n_steps: int = 50, rule: str = "riemann_right",
                 baseline: Union[None, float, Tensor] = None, internal_batch_size: Optional[int] = None):
        super().__init__(model)
        self.n_steps = check_int("n_steps", n_steps, 1)
        self.rule = check_choice("rule", rule, IG_RULES)
        valid = baseline is None or isinstance(baseline, Tensor) or (
            isinstance(baseline, numbers.Real) and not isinstance(baseline, bool))
        if not valid:
            raise ValueError(f"baseline must be None, a float or a tensor broadcastable to x, got {baseline!r}")
        self.baseline = baseline
        self.internal_batch_size = check_batch_size(internal_batch_size)

    def _hyperparameters(self) -> dict:
        base = self.baseline if not isinstance(self.baseline, Tensor) else f"tensor{tuple(self.baseline.shape)}"
        return {"n_steps": self.n_steps, "rule": self.rule, "baseline": base,
                "internal_batch_size": self.internal_batch_size}

    def _baseline_for(self, x: Tensor) -> Tensor:
        if self.baseline is None:
            return torch.zeros_like(x)
        if isinstance(self.baseline, Tensor):
            base = self.baseline.detach().to(device=x.device, dtype=x.dtype)
            try:
                return base.expand_as(x)
            except RuntimeError:
                raise ValueError(f"baseline of shape {tuple(base.shape)} does not broadcast to x of shape "
                                 f"{tuple(x.shape)}") from None
        return torch.full_like(x, float(self.baseline))

    def _attribute(self, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:
        x0 = self._baseline_for(x)
        m = self.n_steps
        delta = x - x0
        if self.rule == "riemann_right":
            alphas = [k / m for k in range(1, m + 1)]
            weights = [1.0 / m] * m
        else:  # trapezoid on m intervals
            alphas = [k / m for k in range(m + 1)]
            weights = [1.0 / m] * (m + 1)
            weights[0] = weights[-1] = 0.5 / m

        def term(k: int):
            return x0 + alphas[k] * delta, weights[k]

        mean_grad = gradient_sum(self.model, target, len(alphas), term, create_graph=create_graph,
                                 internal_batch_size=self.internal_batch_size)
        return delta * mean_grad
