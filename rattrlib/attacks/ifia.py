"""The iterative feature-importance attack (IFIA) of Ghorbani, Abid & Zou 2019 ("Interpretation of Neural
Networks is Fragile", AAAI, §3 and Alg. 1), batched, with the rattr protocol's bookkeeping."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from rattrlib.attacks._common import normalise, target_distance
from rattrlib.attacks._iterative import IterativeMapAttack
from rattrlib.config import check_choice
from rattrlib.metrics.distance import center_of_mass, center_of_mass_dislocation
from rattrlib.metrics.rank import kendall_tau, topk_intersection, topk_mask

IFIA_OBJECTIVES = ("topk", "mass_center", "targeted")


class IFIA(IterativeMapAttack):
    """Ghorbani et al. 2019, Alg. 1: ``x' ← Π(x' − α·sign(∇_{x'} D(x')))`` for ``steps`` steps in the ℓ∞ ε-ball
    around x (clamped to [0, 1]), where D is the attack's dissimilarity loss on the attribution map ``map(x')``
    of the class the ReLU model predicts on the clean x (the label to keep), computed on the softplus(β) copy
    of the model with a second-order graph (ReLU nets have zero second derivative):

    - ``"topk"``: S = top-k pixels of the clean map (fixed once; ties → lower pixel index),
      minimise ``Σ_{i∈S} map̃(x')_i`` with ``map̃ = map · H·W / Σ map`` (maps rescaled to sum to H·W);
    - ``"mass_center"``: maximise ``‖C(map(x')) − C(map(x))‖²₂`` (ascent; the square has the sign of the
      protocol's ‖·‖₂ gradient and no singularity at 0), C the centre of mass in pixel coordinates (floats);
    - ``"targeted"``: minimise ``‖map(x')/Σ − t/Σ‖²₂`` to a target map t per image (ART, Singh et al. 2020,
      §5: the maps of shuffled test images; sign steps make the H·W vs 1 normalisation immaterial).

    The clean map (its set S, its centre) is the **ReLU** model's, the map the metrics compare against (as in
    the reference code, which took S from the original network); ``map(x')`` inside the loss is the softplus
    copy's.

    After every step the ReLU model's label and map of x' are checked; each image keeps its label-preserving
    iterate with the lowest top-k intersection with the clean map (ties: lowest Kendall τ), the largest
    centre dislocation, or the smallest distance to the target. No such iterate → failure: the clean image is
    returned with ``success=False`` (and counts with top-k = 100 %).

    Args:
        model: ReLU network (``nn.ReLU`` modules), N×C×H×W in [0, 1] → N×K logits.
        attribution: a name in :data:`rattrlib.attributions.ATTRIBUTIONS`; the same method and
            ``attribution_kwargs`` (e.g. ``{"n_steps": 10}`` for IG — state m; the protocol's "as small as
            gives stable gradients") serve the loss (softplus copy) and the bookkeeping maps (ReLU model).
        objective: one of :data:`IFIA_OBJECTIVES`.
        eps: ℓ∞ budget in [0, 1] (RAR/GALI: MNIST 0.3, Fashion-MNIST 0.1; ART CIFAR-10 8/255).
        alpha: step size > 0 (0.01; ART 1/255). steps: ≥ 1 (100; ART 50).
        k: the top-k of the attack and of the reported ``topk_intersection`` (RAR's MNIST attack used 200,
            evaluation 100; :func:`evaluate_attributional_robustness` recomputes its metrics at its own k).
        beta: softplus β > 0 of the attack's surrogate (default 10; RAR's code ≈ 1, ART 50 — report it).
        random_start: start from x + U(−ε, ε) (ART's CIFAR-10 setting) instead of x.
        internal_batch_size: at most this many images×path points per forward and per differentiable chunk
            (bounds memory); None: the whole batch at once. Results do not depend on it.
        generator: seeds the random start.
        precision: "fp32" or "bf16" (:mod:`rattrlib.precision`) for the loss gradient of each step; the label
            checks, the kept maps and the scores stay fp32.

    ``perturb(x, target_map=None) -> AttackResult`` (N×C×H×W in, see :class:`~rattrlib.attacks.AttackResult`;
    ``objective`` = top-k ∩, dislocation in pixels, or squared distance to the target).
    """

    def __init__(self, model: nn.Module, attribution: str = "integrated_gradients",
                 attribution_kwargs: Optional[dict] = None, objective: str = "topk", eps: float = 0.1,
                 alpha: float = 0.01, steps: int = 100, k: int = 100, beta: float = 10.0,
                 random_start: bool = False, internal_batch_size: Optional[int] = None,
                 generator: Optional[torch.Generator] = None, precision: str = "fp32"):
        self.objective = check_choice("objective", objective, IFIA_OBJECTIVES)
        self.needs_target_map = objective == "targeted"
        super().__init__(model, attribution=attribution, attribution_kwargs=attribution_kwargs, eps=eps,
                         alpha=alpha, steps=steps, k=k, beta=beta, random_start=random_start,
                         internal_batch_size=internal_batch_size, generator=generator, precision=precision)

    def hyperparameters(self) -> dict:
        return {"objective": self.objective, **super().hyperparameters()}

    def _setup(self, x: Tensor, label: Tensor, clean_map: Tensor, target_map: Optional[Tensor], k: int) -> dict:
        ctx = {"clean_map": clean_map, "k": k}
        if self.objective == "topk":
            ctx["top_set"] = topk_mask(clean_map.flatten(1), k).to(clean_map.dtype)
        elif self.objective == "mass_center":
            ctx["center"] = torch.nan_to_num(center_of_mass(clean_map))
        else:
            ctx["target"] = target_map
        return ctx

    def _loss(self, maps: Tensor, xc: Tensor, ctx: dict, sl: slice) -> Tensor:
        if self.objective == "topk":
            pixels = maps.shape[1] * maps.shape[2]
            return (normalise(maps, float(pixels)).flatten(1) * ctx["top_set"][sl]).sum()
        if self.objective == "mass_center":
            return -(center_of_mass(maps) - ctx["center"][sl]).pow(2).sum()
        return target_distance(maps, ctx["target"][sl]).sum()

    def _criterion(self, maps: Tensor, ctx: dict) -> Tuple[Tensor, Tensor]:
        clean = ctx["clean_map"]
        if self.objective == "topk":
            return topk_intersection(clean, maps, ctx["k"]), kendall_tau(clean, maps)
        if self.objective == "mass_center":
            return -center_of_mass_dislocation(clean, maps), torch.zeros_like(maps[:, 0, 0])
        return target_distance(maps, ctx["target"]), torch.zeros_like(maps[:, 0, 0])

    def _report(self, crit: Tensor) -> Tensor:
        return -crit if self.objective == "mass_center" else crit
