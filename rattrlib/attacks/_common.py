"""Shared pieces of every attack: hyperparameter checks, the ε-ball projection, the result type and the scores.

Conventions (rattr protocols, "Tensors and budgets"): images are float N×C×H×W tensors in [0, 1]; ε, α are on
that scale; after every step the iterate is projected onto the ℓ∞ (or ℓ2) ε-ball around the clean image and
clamped to [0, 1] (clamping never leaves the ball, since the clean image lies in [0, 1]).
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Dict, Iterator, Optional

import pandas as pd
import torch
from torch import Tensor, nn

from rattrlib.attributions import ATTRIBUTIONS, attribution_map, get_attribution, smooth_copy
from rattrlib.config import (check_choice, check_eps, check_generator, check_int,  # noqa: F401
                             check_nonnegative, check_positive, check_range)
from rattrlib.metrics.distance import center_of_mass_dislocation, cosine_distance
from rattrlib.metrics.rank import kendall_tau, spearman_rho, topk_intersection

NORMS = ("linf", "l2")

#: the per-image scores every attributional attack reports, clean map vs attacked map (rattr protocol
#: "Similarity metrics"), by their :data:`rattrlib.metrics.METRICS` names (:func:`map_scores` computes them).
SCORES = ("topk_intersection", "kendall_tau", "spearman_rho", "center_of_mass_dislocation", "cosine_distance")


# ----------------------------------------------------------------------------------------------------------
# hyperparameter checks (constructors; all raise ValueError before any compute)
# ----------------------------------------------------------------------------------------------------------












def check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module returning logits, got {type(model).__name__}")
    return model


def check_images(x, name: str = "x") -> Tensor:
    """A floating N×C×H×W tensor with N ≥ 1 and every entry in [0, 1]."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (N×C×H×W), got {type(x).__name__}")
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty N×C×H×W batch, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has NaN or infinite entries")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must hold images in [0, 1] (normalisation belongs inside the model); "
                         f"got values in [{lo:.4g}, {hi:.4g}]")
    return x


def check_labels(y, n: int, device) -> Tensor:
    """Labels as a LongTensor (N,) on ``device``."""
    y = torch.as_tensor(y, device=device)
    if y.is_floating_point() or y.dtype == torch.bool or tuple(y.shape) != (n,):
        raise ValueError(f"labels must be {n} integer class indices (shape ({n},)), got {y.dtype} {tuple(y.shape)}")
    if bool((y < 0).any()):
        raise ValueError("labels must be non-negative class indices")
    return y.long()


def check_k(k, pixels: int) -> int:
    """k ∈ [1, H·W]."""
    k = check_int("k", k, 1)
    if k > pixels:
        raise ValueError(f"k={k} is outside [1, {pixels}] (the number of pixels per map)")
    return k


def check_target_map(target_map, n: int, hw: tuple) -> Tensor:
    """Target maps for the targeted attacks: N×H×W, finite, ≥ 0, each with a positive sum."""
    if target_map is None:
        raise ValueError("this attack needs target_map (N×H×W), e.g. the maps of shuffled test images (ART §5)")
    if not isinstance(target_map, Tensor) or tuple(target_map.shape) != (n, *hw):
        shape = tuple(target_map.shape) if isinstance(target_map, Tensor) else type(target_map).__name__
        raise ValueError(f"target_map must be a tensor of shape {(n, *hw)}, got {shape}")
    if not bool(torch.isfinite(target_map).all()) or bool((target_map < 0).any()):
        raise ValueError("target_map must be finite and nonnegative (an |attribution| map)")
    if bool((target_map.flatten(1).sum(1) <= 0).any()):
        raise ValueError("every target map needs a positive sum (an all-zero map has no normalised form)")
    return target_map


# ----------------------------------------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------------------------------------
def project(x_adv: Tensor, x: Tensor, eps: float, norm: str = "linf") -> Tensor:
    """Π: the nearest point of the ε-ball around ``x`` (ℓ∞: clip each entry; ℓ2: rescale δ per image), then
    clamped to [0, 1]. ``x_adv``, ``x``: N×C×H×W; result N×C×H×W within the ball and in [0, 1]."""
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        size = torch.linalg.vector_norm(delta.flatten(1), dim=1).view(-1, 1, 1, 1)
        scale = torch.where(size > eps, eps / size.clamp_min(torch.finfo(size.dtype).tiny), torch.ones_like(size))
        delta = delta * scale
    return (x + delta).clamp(0.0, 1.0)


def random_in_ball(x: Tensor, eps: float, norm: str, generator: Optional[torch.Generator]) -> Tensor:
    """A random start: ℓ∞ — x + U(−ε, ε) per entry; ℓ2 — x + δ, δ uniform in the ℓ2 ε-ball (Gaussian direction,
    radius ε·u^{1/d}); projected and clamped. Drawn on the generator's device, moved to x's."""
    device = x.device if generator is None else generator.device
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)
        delta = eps * (2 * u - 1)
    else:
        g = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)
        r = torch.rand((x.shape[0],), generator=generator, dtype=x.dtype, device=device).to(x.device)
        d = x[0].numel()
        direction = g / torch.linalg.vector_norm(g.flatten(1), dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        delta = direction * (eps * r.pow(1.0 / d)).view(-1, 1, 1, 1)
    return project(x + delta, x, eps, norm)


def random_sign(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Random ±1 per entry (x's shape, dtype, device)."""
    device = x.device if generator is None else generator.device
    bits = torch.randint(0, 2, x.shape, generator=generator, device=device).to(device=x.device, dtype=x.dtype)
    return 2 * bits - 1


# ----------------------------------------------------------------------------------------------------------
# model helpers
# ----------------------------------------------------------------------------------------------------------
@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode (BatchNorm/Dropout frozen, images independent), restore the caller's mode after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, chunk: Optional[int] = None) -> Tensor:
    """Predicted labels (N,) of the model on ``x``, in chunks of ``chunk`` images (None: one forward)."""
    if chunk is None or chunk >= x.shape[0]:
        return model(x).argmax(1)
    return torch.cat([model(part).argmax(1) for part in x.split(chunk)])


# ----------------------------------------------------------------------------------------------------------
# attributions for an attack: the ReLU model (bookkeeping) and its softplus copy (the loss)
# ----------------------------------------------------------------------------------------------------------
def _accepts(cls: type, name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


def build_attribution_pair(model: nn.Module, attribution: str, attribution_kwargs: Optional[dict],
                           beta: Optional[float], internal_batch_size: Optional[int]):
    """``(relu_attr, smooth_attr, points_per_image)``: the attribution on ``model`` and on its softplus(β) copy
    (None when ``beta`` is None), both with the same hyperparameters; ``internal_batch_size`` is passed to the
    attribution when it takes one. ``points_per_image``: gradient evaluations per image in one attribution."""
    check_choice("attribution", attribution, ATTRIBUTIONS)
    kwargs = dict(attribution_kwargs or {})
    cls = ATTRIBUTIONS[attribution]
    if internal_batch_size is not None and _accepts(cls, "internal_batch_size"):
        given = kwargs.get("internal_batch_size")
        if given is not None and given != internal_batch_size:
            raise ValueError(f"internal_batch_size={internal_batch_size} differs from attribution_kwargs"
                             f"['internal_batch_size']={given}; give it once")
        kwargs["internal_batch_size"] = internal_batch_size
    relu_attr = get_attribution(attribution, model, **kwargs)
    smooth_attr = None if beta is None else get_attribution(attribution, smooth_copy(model, beta), **kwargs)
    points = getattr(relu_attr, "n_steps", None)
    if points is not None and getattr(relu_attr, "rule", None) == "trapezoid":
        points += 1
    if points is None:
        points = getattr(relu_attr, "n_samples", 1)
    return relu_attr, smooth_attr, int(points)


def image_chunk(internal_batch_size: Optional[int], points_per_image: int, n: int) -> int:
    """Images per differentiable chunk so that at most ``internal_batch_size`` images×points carry a graph at
    once (all n when None)."""
    if internal_batch_size is None:
        return n
    return max(1, internal_batch_size // max(1, points_per_image))


def noise_seed(attr) -> Optional[int]:
    """A seed for the Monte-Carlo draws of every evaluation map of one batch, or None for an attribution without
    draws (no ``generator`` attribute). Drawn from the attribution's generator (torch's global RNG when it has
    none), so batches and seeds differ while the maps of one batch share their draws (see :func:`maps_of`)."""
    if not hasattr(attr, "generator"):
        return None
    own = attr.generator
    device = "cpu" if own is None else own.device
    return int(torch.randint(0, 2 ** 62, (1,), generator=own, device=device))


def maps_of(attr, x: Tensor, target: Tensor, seed: Optional[int] = None) -> Tensor:
    """Detached N×H×W map ``Σ_c |A(x)|`` of the target class (no graph).

    ``seed`` (from :func:`noise_seed`): a stochastic attribution (SmoothGrad, Uniform Gradient, GradientSHAP) draws
    its noise from a generator seeded with it, so the clean map and the attacked map of an image use the same
    draws (common random numbers) and their distance measures the perturbation, not the Monte-Carlo noise; the
    attribution's own generator is left untouched."""
    if seed is None or not hasattr(attr, "generator"):
        return attribution_map(attr.attribute(x, target))
    own = attr.generator
    attr.generator = torch.Generator("cpu" if own is None else own.device).manual_seed(seed)
    try:
        return attribution_map(attr.attribute(x, target))
    finally:
        attr.generator = own


# ----------------------------------------------------------------------------------------------------------
# normalised maps and distances used by the attack losses and the bookkeeping
# ----------------------------------------------------------------------------------------------------------
def normalise(m: Tensor, total: float = 1.0) -> Tensor:
    """Rescale each map of ``m`` (N×H×W, ≥ 0) to sum to ``total`` (a tiny floor keeps all-zero maps at 0)."""
    s = m.flatten(1).sum(1).clamp_min(torch.finfo(m.dtype).tiny).view(-1, *([1] * (m.ndim - 1)))
    return m * (total / s)


def target_distance(m: Tensor, target: Tensor) -> Tensor:
    """``‖m/Σm − t/Σt‖²₂`` per image (N,): the squared ℓ2 distance of sum-1 maps (Dombrowski et al. 2019)."""
    return (normalise(m) - normalise(target)).flatten(1).pow(2).sum(1)


def map_scores(clean: Tensor, adv: Tensor, k: int) -> Dict[str, Tensor]:
    """The protocol's similarity metrics of each (clean, attacked) map pair, all (N,):

    ``topk_intersection`` = |topk(A) ∩ topk(B)| / k (fraction), ``kendall_tau`` τ-b and ``spearman_rho`` ρ
    over all pixels, ``center_of_mass_dislocation`` = ‖C(A) − C(B)‖₂ in pixels, ``cosine_distance`` =
    1 − cos(A, B) (keys are the :data:`rattrlib.metrics.METRICS` names). NaN where a rank correlation or a
    centre is undefined (a constant or all-zero map)."""
    return {
        "topk_intersection": topk_intersection(clean, adv, k),
        "kendall_tau": kendall_tau(clean, adv),
        "spearman_rho": spearman_rho(clean, adv),
        "center_of_mass_dislocation": center_of_mass_dislocation(clean, adv),
        "cosine_distance": cosine_distance(clean, adv),
    }


# ----------------------------------------------------------------------------------------------------------
# the result of every attributional attack
# ----------------------------------------------------------------------------------------------------------
@dataclass
class AttackResult:
    """What an attack on attributions returns, one entry per image (all tensors on the input's device).

    Attributes:
        x_adv: N×C×H×W in [0, 1], inside the ε-ball; the kept (best label-preserving) iterate, or the clean
            image where the attack failed.
        success: (N,) bool — a label-preserving iterate existed (the protocol's success rate is its mean).
        label: (N,) long — the ReLU model's prediction on the clean image (the label kept, and the class whose
            attribution is attacked).
        adv_label: (N,) long — the ReLU model's prediction on ``x_adv`` (== ``label`` wherever ``success``).
        clean_map, adv_map: N×H×W ≥ 0 — ReLU-model maps ``Σ_c |A|`` of ``label`` at x and at ``x_adv``.
        topk_intersection, kendall_tau, spearman_rho, center_of_mass_dislocation, cosine_distance: (N,)
            scores of (clean_map, adv_map) (:func:`map_scores`; top-k as a fraction in [0, 1]). A failed
            image scores as its clean map: top-k = 1, τ = ρ = 1, dislocation = cosine distance = 0.
        objective: (N,) the attack's own criterion at the kept iterate (top-k ∩ with the attack's k; centre
            dislocation; or squared distance of sum-1 maps to the target), its clean value where it failed.
        best_step: (N,) long — the step (1..steps) of the kept iterate; −1 where the attack failed.
        k: the top-k of ``topk_intersection``.
    """

    x_adv: Tensor
    success: Tensor
    label: Tensor
    adv_label: Tensor
    clean_map: Tensor
    adv_map: Tensor
    topk_intersection: Tensor
    kendall_tau: Tensor
    spearman_rho: Tensor
    center_of_mass_dislocation: Tensor
    cosine_distance: Tensor
    objective: Tensor
    best_step: Tensor
    k: int

    def __len__(self) -> int:
        return int(self.x_adv.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """The per-image columns (success, labels, scores, objective, best_step) as a DataFrame."""
        cols = ["success", "label", "adv_label", *SCORES, "objective", "best_step"]
        return pd.DataFrame({c: getattr(self, c).detach().cpu().numpy() for c in cols})

    @classmethod
    def concat(cls, results) -> "AttackResult":
        """Join the results of consecutive batches (same k)."""
        results = list(results)
        if not results:
            raise ValueError("nothing to concatenate")
        ks = {r.k for r in results}
        if len(ks) != 1:
            raise ValueError(f"results with different k: {sorted(ks)}")
        out = {f.name: torch.cat([getattr(r, f.name) for r in results]) for f in fields(cls) if f.name != "k"}
        return cls(**out, k=results[0].k)


def finish(x: Tensor, label: Tensor, clean_map: Tensor, best_x: Tensor, best_map: Tensor, best_step: Tensor,
           objective: Tensor, k: int, model: nn.Module, chunk: Optional[int]) -> AttackResult:
    """Assemble an :class:`AttackResult`: failed images (best_step < 0) get the clean image and map back."""
    success = best_step >= 0
    view = success.view(-1, *([1] * (x.ndim - 1)))
    x_adv = torch.where(view, best_x, x)
    adv_map = torch.where(success.view(-1, 1, 1), best_map, clean_map)
    adv_label = predict(model, x_adv, chunk)
    scores = map_scores(clean_map, adv_map, k)
    return AttackResult(x_adv=x_adv, success=success, label=label, adv_label=adv_label, clean_map=clean_map,
                        adv_map=adv_map, objective=objective, best_step=best_step, k=k, **scores)


class AttributionAttack:
    """Base of the attacks on attribution maps (IFIA, Manipulate, RandomSignNoise).

    ``perturb(x, target_map=None) -> AttackResult``. ``needs_target_map`` says whether a target map per image
    is required. ``attribution`` is the attribution's registry name (``rattrlib.attributions.ATTRIBUTIONS``).
    """

    needs_target_map: bool = False
    attribution: str
    model: nn.Module

    def perturb(self, x: Tensor, target_map: Optional[Tensor] = None) -> AttackResult:  # pragma: no cover
        raise NotImplementedError

    def clean_maps(self, x: Tensor, label: Optional[Tensor] = None) -> Tensor:
        """ReLU-model maps (N×H×W) of ``x`` for ``label`` (default: the model's prediction) — e.g. the target
        maps of shuffled images for the targeted attacks (ART §5)."""
        x = check_images(x)
        with eval_mode(self.model):
            if label is None:
                label = predict(self.model, x)
            return maps_of(self._relu_attr, x, label)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({params})"

    def hyperparameters(self) -> dict:  # pragma: no cover
        return {}



@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring grad during an attack (only input gradients are needed; no ``.grad`` is
    touched), restored after. The smooth copy shares the Parameter objects, so it is frozen too."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
