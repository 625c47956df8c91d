"""The batched signed-gradient loop shared by the IFIA and Manipulate attacks, with per-image bookkeeping.

Every image of the batch advances together. Per step (rattr protocol, "Attacks"):

1. loss gradient on the softplus(β) copy, attribution with ``create_graph=True``, in image chunks so that at
   most ``internal_batch_size`` images×path points carry a graph at once;
2. ``x' ← Π(x' − α·sign(∇ loss))``: ℓ∞ ε-ball around x, clamped to [0, 1];
3. bookkeeping on the ReLU model: its label on x' and its map of x'; an image keeps x' when the label is the
   clean prediction and x' beats its best criterion so far (ties broken by a second criterion).

An image with no label-preserving iterate is a failure: the clean image is returned (``best_step = −1``).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from rattrlib.attacks._common import (AttackResult, AttributionAttack, build_attribution_pair, check_eps,
                                      check_generator, check_images, check_int, check_k, check_model,
                                      check_positive, check_target_map, eval_mode, finish, frozen_parameters,
                                      image_chunk, maps_of, noise_seed, predict, project, random_in_ball)
from rattrlib.attributions import attribution_map
from rattrlib.precision import autocast, check_precision


class IterativeMapAttack(AttributionAttack):
    """Base of the signed-step attacks on attribution maps; subclasses define the loss and the criterion.

    Subclass hooks (all batched, ``sl`` selects the chunk's images in the batch):

    - ``_setup(x, label, clean_map, target_map, k) -> ctx``: per-batch constants (dict);
    - ``_loss(maps, xc, ctx, sl) -> scalar``: the sum over the chunk of the per-image loss to **minimise**,
      from the softplus maps ``maps`` (n×H×W, differentiable) and the chunk's images ``xc``;
    - ``_criterion(maps, ctx) -> (crit, tie)``: (N,) each, lower is better, on ReLU maps;
    - ``_report(crit) -> objective``: the reported objective value from a criterion.
    """

    def __init__(self, model: nn.Module, *, attribution: str, attribution_kwargs: Optional[dict], eps: float,
                 alpha: float, steps: int, k: int, beta: float, random_start: bool,
                 internal_batch_size: Optional[int], generator: Optional[torch.Generator],
                 precision: str = "fp32"):
        self.model = check_model(model)
        self.precision = check_precision(precision, next(model.parameters()).device)
        self.eps = check_eps(eps)
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        self.k = check_int("k", k, 1)
        self.beta = check_positive("beta", beta)
        self.random_start = bool(random_start)
        self.internal_batch_size = (None if internal_batch_size is None
                                    else check_int("internal_batch_size", internal_batch_size, 1))
        self.generator = check_generator(generator)
        self.attribution = attribution
        self.attribution_kwargs = dict(attribution_kwargs or {})
        self._relu_attr, self._smooth_attr, self._points = build_attribution_pair(
            model, attribution, attribution_kwargs, beta, self.internal_batch_size)
        self._smooth_model = self._smooth_attr.model

    # -- hooks -------------------------------------------------------------------------------------------
    def _setup(self, x: Tensor, label: Tensor, clean_map: Tensor, target_map: Optional[Tensor], k: int) -> dict:
        return {}

    def _loss(self, maps: Tensor, xc: Tensor, ctx: dict, sl: slice) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _criterion(self, maps: Tensor, ctx: dict) -> Tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _report(self, crit: Tensor) -> Tensor:
        return crit

    # -- the loop ----------------------------------------------------------------------------------------
    def _gradient(self, x_adv: Tensor, label: Tensor, ctx: dict) -> Tensor:
        """∇ of the loss w.r.t. x' (N×C×H×W), computed chunk by chunk of images (no graph survives a chunk)."""
        n = x_adv.shape[0]
        chunk = image_chunk(self.internal_batch_size, self._points, n)
        grads = []
        for start in range(0, n, chunk):
            sl = slice(start, min(start + chunk, n))
            xc = x_adv[sl].detach().requires_grad_(True)
            with torch.enable_grad():
                with autocast(self.precision, xc.device):
                    attr = self._smooth_attr.attribute(xc, label[sl], create_graph=True)
                    loss = self._loss(attribution_map(attr).float(), xc, ctx, sl)
                (g,) = torch.autograd.grad(loss, xc, allow_unused=True)
            grads.append(torch.zeros_like(xc) if g is None else torch.nan_to_num(g, nan=0.0, posinf=0.0,
                                                                                 neginf=0.0))
        return torch.cat(grads) if len(grads) > 1 else grads[0]

    def perturb(self, x: Tensor, target_map: Optional[Tensor] = None) -> AttackResult:
        """Attack the attribution maps of a batch ``x`` (N×C×H×W in [0, 1]); see the class docstring.

        ``target_map``: N×H×W nonnegative maps, required by the targeted objectives, ignored otherwise.
        Returns an :class:`~rattrlib.attacks.AttackResult`. The model runs in eval mode (restored after) with
        its parameters frozen (no ``.grad`` is written).
        """
        x = check_images(x).detach()
        n, _, h, w = x.shape
        k = check_k(self.k, h * w)
        if self.needs_target_map:
            target_map = check_target_map(target_map, n, (h, w)).to(device=x.device, dtype=x.dtype)
        pred_chunk = None if self.internal_batch_size is None else max(1, self.internal_batch_size)
        with eval_mode(self.model), frozen_parameters(self.model):
            label = predict(self.model, x, pred_chunk)
            seed = noise_seed(self._relu_attr)  # the same Monte-Carlo draws for every evaluation map of x
            clean_map = maps_of(self._relu_attr, x, label, seed)
            ctx = self._setup(x, label, clean_map, target_map, k)
            clean_crit, _ = self._criterion(clean_map, ctx)

            x_adv = random_in_ball(x, self.eps, "linf", self.generator) if self.random_start else x.clone()
            best_x = x.clone()
            best_map = clean_map.clone()
            best_step = torch.full((n,), -1, dtype=torch.long, device=x.device)
            best_crit = torch.full((n,), float("inf"), dtype=clean_map.dtype, device=x.device)
            best_tie = best_crit.clone()
            for step in range(1, self.steps + 1):
                grad = self._gradient(x_adv, label, ctx)
                x_adv = project(x_adv - self.alpha * grad.sign(), x, self.eps, "linf").detach()
                kept = predict(self.model, x_adv, pred_chunk) == label
                maps = maps_of(self._relu_attr, x_adv, label, seed)
                crit, tie = self._criterion(maps, ctx)
                crit = torch.nan_to_num(crit, nan=float("inf"))
                tie = torch.nan_to_num(tie, nan=float("inf"))
                better = kept & ((best_step < 0) | (crit < best_crit) | ((crit == best_crit) & (tie < best_tie)))
                if bool(better.any()):
                    best_x[better] = x_adv[better]
                    best_map[better] = maps[better]
                    best_crit = torch.where(better, crit, best_crit)
                    best_tie = torch.where(better, tie, best_tie)
                    best_step[better] = step
            objective = self._report(torch.where(best_step >= 0, best_crit, clean_crit))
            return finish(x, label, clean_map, best_x, best_map, best_step, objective, k, self.model, pred_chunk)

    def hyperparameters(self) -> dict:
        return {"attribution": self.attribution, "attribution_kwargs": self.attribution_kwargs, "eps": self.eps,
                "alpha": self.alpha, "steps": self.steps, "k": self.k, "beta": self.beta,
                "random_start": self.random_start, "internal_batch_size": self.internal_batch_size,
                "precision": self.precision}
