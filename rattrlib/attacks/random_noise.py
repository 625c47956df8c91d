"""The random-perturbation baseline every attributional-robustness number is reported with (rattr protocol,
"Always report …"; Kamath et al., AAAI 2024: rank metrics drop under random noise too)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from rattrlib.attacks._common import (AttackResult, AttributionAttack, build_attribution_pair, check_eps,
                                      check_generator, check_images, check_int, check_k, check_model, eval_mode,
                                      finish, maps_of, noise_seed, predict, project, random_sign)
from rattrlib.metrics.rank import topk_intersection


class RandomSignNoise(AttributionAttack):
    """``x' = clip_[0,1](x + ε·s)``, s a uniform random sign per entry (the corner of the ℓ∞ ε-ball an IFIA step
    walks towards, without a gradient), with the same label check and scores as :class:`~rattrlib.attacks.IFIA`.

    One draw per image; if the ReLU model's prediction changes, the draw fails and the clean image is returned
    (``success=False``, top-k = 100 %), exactly as an attack that found no label-preserving iterate.

    Args:
        model: N×C×H×W in [0, 1] → N×K logits.
        eps: ε ∈ [0, 1].
        attribution, attribution_kwargs: the map compared (same meaning as in IFIA; use the attack's).
        k: the top-k of the reported ``topk_intersection``.
        internal_batch_size: passed to the attribution (bounds memory).
        generator: seeds the signs.

    ``perturb(x, target_map=None) -> AttackResult`` with ``best_step = 1`` on success, −1 on failure, and
    ``objective`` = the top-k intersection.
    """

    def __init__(self, model: nn.Module, eps: float, generator: Optional[torch.Generator] = None, *,
                 attribution: str = "integrated_gradients", attribution_kwargs: Optional[dict] = None, k: int = 100,
                 internal_batch_size: Optional[int] = None):
        self.model = check_model(model)
        self.eps = check_eps(eps)
        self.generator = check_generator(generator)
        self.k = check_int("k", k, 1)
        self.internal_batch_size = (None if internal_batch_size is None
                                    else check_int("internal_batch_size", internal_batch_size, 1))
        self.attribution = attribution
        self.attribution_kwargs = dict(attribution_kwargs or {})
        self._relu_attr, _, _ = build_attribution_pair(model, attribution, attribution_kwargs, None,
                                                       self.internal_batch_size)

    def hyperparameters(self) -> dict:
        return {"eps": self.eps, "attribution": self.attribution, "attribution_kwargs": self.attribution_kwargs,
                "k": self.k, "internal_batch_size": self.internal_batch_size}

    @torch.no_grad()
    def perturb(self, x: Tensor, target_map: Optional[Tensor] = None) -> AttackResult:
        """One random-sign draw per image of ``x`` (N×C×H×W in [0, 1]); ``target_map`` is ignored."""
        x = check_images(x).detach()
        n, _, h, w = x.shape
        k = check_k(self.k, h * w)
        chunk = self.internal_batch_size
        with eval_mode(self.model):
            label = predict(self.model, x, chunk)
            seed = noise_seed(self._relu_attr)  # the same Monte-Carlo draws for the clean and the noisy map
            clean_map = maps_of(self._relu_attr, x, label, seed)
            x_noisy = project(x + self.eps * random_sign(x, self.generator), x, self.eps, "linf")
            kept = predict(self.model, x_noisy, chunk) == label
            maps = maps_of(self._relu_attr, x_noisy, label, seed)
            best_step = torch.where(kept, 1, -1).long()
            objective = torch.where(kept, topk_intersection(clean_map, maps, k), torch.ones_like(clean_map[:, 0, 0]))
            return finish(x, label, clean_map, x_noisy, maps, best_step, objective, k, self.model, chunk)
