"""The manipulation attack of Dombrowski et al. 2019 ("Explanations can be manipulated and geometry is to
blame", NeurIPS, eq. 4) in the signed-step, ε-ball variant of SSR (Wang et al. 2020, §2 and §5)."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from rattrlib.attacks._common import check_nonnegative, target_distance
from rattrlib.attacks._iterative import IterativeMapAttack


class Manipulate(IterativeMapAttack):
    """Targeted manipulation: signed steps ``x' ← Π(x' − α·sign(∇L))`` in the ℓ∞ ε-ball (clamped to [0, 1])
    minimising

        ``L(x') = ‖h(x') − h_t‖²₂ + γ ‖softmax f(x') − softmax f(x)‖²₂``

    with h = the attribution map ``Σ_c |A|`` of the clean prediction normalised to sum 1, computed on the
    softplus(β) copy (as is f inside L), and h_t the target map (given per image, normalised to sum 1).
    Dombrowski et al. used Adam on an unconstrained image and β growth; SSR's variant (used here) takes signed
    steps in the ε-ball at fixed β.

    Bookkeeping (ReLU model): after every step, each image keeps its label-preserving iterate with the smallest
    ``‖h(x') − h_t‖²`` (ReLU map); none → failure, the clean image is returned (``success=False``).

    Args:
        model, attribution, attribution_kwargs, eps, alpha, steps, k, beta, random_start, internal_batch_size,
            generator: as in :class:`~rattrlib.attacks.IFIA` (``k`` only for the reported top-k).
        gamma: γ ≥ 0, weight of the output term. None (default): the weights of Dombrowski's and SSR's code,
            ``1e11 · MSE(maps) + 1e6 · MSE(outputs)``, i.e. ``γ = 1e-5 · H·W / K`` for K classes.

    ``perturb(x, target_map) -> AttackResult``; ``target_map`` N×H×W ≥ 0 is required (e.g. the maps of a
    shuffled batch, :meth:`clean_maps`); ``objective`` = squared distance of sum-1 ReLU maps to the target.
    """

    needs_target_map = True

    def __init__(self, model: nn.Module, attribution: str = "integrated_gradients",
                 attribution_kwargs: Optional[dict] = None, eps: float = 8 / 255, alpha: float = 1 / 255,
                 steps: int = 50, gamma: Optional[float] = None, k: int = 100, beta: float = 10.0,
                 random_start: bool = False, internal_batch_size: Optional[int] = None,
                 generator: Optional[torch.Generator] = None, precision: str = "fp32"):
        self.gamma = None if gamma is None else check_nonnegative("gamma", gamma)
        super().__init__(model, attribution=attribution, attribution_kwargs=attribution_kwargs, eps=eps,
                         alpha=alpha, steps=steps, k=k, beta=beta, random_start=random_start,
                         internal_batch_size=internal_batch_size, generator=generator, precision=precision)

    def hyperparameters(self) -> dict:
        return {**super().hyperparameters(), "gamma": self.gamma}

    def _setup(self, x: Tensor, label: Tensor, clean_map: Tensor, target_map: Optional[Tensor], k: int) -> dict:
        with torch.no_grad():
            probs = torch.softmax(self._smooth_model(x), dim=1)
        gamma = self.gamma
        if gamma is None:
            gamma = 1e-5 * clean_map.shape[1] * clean_map.shape[2] / probs.shape[1]
        return {"target": target_map, "probs": probs, "gamma": gamma}

    def _loss(self, maps: Tensor, xc: Tensor, ctx: dict, sl: slice) -> Tensor:
        loss = target_distance(maps, ctx["target"][sl]).sum()
        if ctx["gamma"] > 0:
            probs = torch.softmax(self._smooth_model(xc), dim=1)
            loss = loss + ctx["gamma"] * (probs - ctx["probs"][sl]).pow(2).sum()
        return loss

    def _criterion(self, maps: Tensor, ctx: dict) -> Tuple[Tensor, Tensor]:
        return target_distance(maps, ctx["target"]), torch.zeros_like(maps[:, 0, 0])
