"""The shared core of every attribution: input checks and batched input gradients of the target logit.

Every method in :mod:`rattrlib.attributions` is a weighted sum of input gradients of the target logit
``f_c`` evaluated at some points around (or on a path to) the input:

    A(x) = Σ_k  w_k ⊙ ∇_z f_c(z)|_{z = p_k(x)}

with the points ``p_k`` and weights ``w_k`` set by the method. :func:`gradient_sum` computes that sum in
chunks of at most ``internal_batch_size`` images×points per forward, and :func:`target_gradient` is the
single place where ``torch.autograd.grad`` is called.
"""

from __future__ import annotations

import numbers
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from rattrlib.config import check_generator, check_int, check_nonnegative, check_range  # noqa: F401

Target = Union[int, Sequence[int], Tensor]


# ----------------------------------------------------------------------------------------------------------
# hyperparameter checks (constructors)
# ----------------------------------------------------------------------------------------------------------




def check_batch_size(value) -> Optional[int]:
    """``internal_batch_size``: None (one forward for all points) or an int ≥ 1."""
    return None if value is None else check_int("internal_batch_size", value, 1)




def check_model(model) -> None:
    if not callable(model):
        raise ValueError(f"model must be a callable (an nn.Module returning logits), got {type(model).__name__}")


# ----------------------------------------------------------------------------------------------------------
# input checks (every call, before any forward)
# ----------------------------------------------------------------------------------------------------------
def check_inputs(x, target: Target) -> Tuple[Tensor, Tensor]:
    """Validate a batch and its targets; return ``x`` and ``target`` as a LongTensor (N,) on x's device.

    ``x`` must be a floating N×C×H×W tensor. ``target`` is an int (the same class for every image), or a
    sequence / integer tensor of N non-negative class indices. The upper bound (number of logits) is checked
    at the first forward, before any backward pass.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"x must be a torch.Tensor (N×C×H×W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N×C×H×W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating tensor, got dtype {x.dtype}")
    n = x.shape[0]
    if n == 0:
        raise ValueError("x is an empty batch (N = 0)")
    if isinstance(target, bool):
        raise ValueError(f"target must be an int or a LongTensor of shape ({n},), got a bool")
    if isinstance(target, numbers.Integral):
        target = torch.full((n,), int(target), dtype=torch.long, device=x.device)
    else:
        target = torch.as_tensor(target, device=x.device)
        if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
            raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}")
        if target.ndim == 0:
            target = target.expand(n)
        if tuple(target.shape) != (n,):
            raise ValueError(f"target must be an int or have shape ({n},) for {n} images, "
                             f"got shape {tuple(target.shape)}")
        target = target.long()
    if bool((target < 0).any()):
        raise ValueError(f"target holds negative class indices: {target[target < 0].tolist()}")
    return x, target


# ----------------------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------------------
def target_gradient(model: Callable[[Tensor], Tensor], points: Tensor, target: Tensor, *,
                    create_graph: bool) -> Tensor:
    """∇_z f_{target_i}(z_i) for every row ``z_i`` of ``points`` (M×C×H×W), target (M,) → M×C×H×W.

    The sum of the selected logits is differentiated w.r.t. ``points`` (rows are independent for a model
    without batch coupling, e.g. one in eval mode). With ``create_graph=False`` a fresh detached leaf is used
    and the result carries no graph. With ``create_graph=True``, ``points`` itself is used when it is part of
    a graph (so the result is differentiable w.r.t. whatever produced it and w.r.t. the model parameters);
    a tensor that does not require grad is replaced by a leaf copy that does.
    """
    if not create_graph or not points.requires_grad:
        points = points.detach().requires_grad_(True)
    logits = model(points)
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != points.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must return logits of shape (N, classes); got {shape} for {points.shape[0]} inputs")
    n_classes = logits.shape[1]
    top = int(target.max())
    if top >= n_classes:
        raise ValueError(f"target class {top} is out of range: the model has {n_classes} logits (0..{n_classes - 1})")
    selected = logits.gather(1, target[:, None]).sum()
    if not selected.requires_grad:  # output does not depend on the input nor on trainable parameters
        return torch.zeros_like(points)
    (grad,) = torch.autograd.grad(selected, points, create_graph=create_graph, allow_unused=True)
    if grad is None:
        return torch.zeros_like(points)
    return grad if create_graph else grad.detach()


def gradient_sum(model: Callable[[Tensor], Tensor], target: Tensor, n_terms: int,
                 term: Callable[[int], Tuple[Tensor, Union[float, Tensor]]], *, create_graph: bool,
                 internal_batch_size: Optional[int]) -> Tensor:
    """``Σ_{k < n_terms} w_k ⊙ ∇f_c(p_k)`` for a batch of N images, evaluated in bounded chunks.

    ``term(k)`` returns ``(p_k, w_k)``: the k-th point of every image (N×C×H×W, any graph it carries is kept
    when ``create_graph``) and its weight (a float or a tensor broadcastable to N×C×H×W). ``term`` is called
    once per k in increasing k, so random draws inside it happen in the same order whatever the chunking.
    Points of consecutive k are stacked into forwards of at most ``internal_batch_size`` rows (all n_terms·N
    rows in one forward when None), and terms are added in increasing k, so the result does not depend on the
    chunking (up to the model's own batch-size invariance).
    """
    n = target.shape[0]
    per_forward = n * n_terms if internal_batch_size is None else internal_batch_size
    ks_per_chunk = max(1, per_forward // n)
    total = None
    for k0 in range(0, n_terms, ks_per_chunk):
        ks = range(k0, min(k0 + ks_per_chunk, n_terms))
        points, weights = zip(*(term(k) for k in ks))
        stacked = torch.cat(points) if len(points) > 1 else points[0]
        targets = target.repeat(len(points))
        grads = torch.cat([target_gradient(model, p, t, create_graph=create_graph)
                           for p, t in zip(stacked.split(per_forward), targets.split(per_forward))])
        for j, w in enumerate(weights):
            contribution = grads[j * n:(j + 1) * n] * w
            total = contribution if total is None else total + contribution
    return total


def draw(kind: str, shape: Sequence[int], like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Random numbers of ``like``'s dtype on ``like``'s device: ``kind`` is "normal" or "uniform" ([0, 1)).

    With a generator, the numbers are drawn on the generator's device and moved, so a seeded CPU generator
    gives the same numbers whatever device the model runs on.
    """
    device = like.device if generator is None else generator.device
    fn = torch.randn if kind == "normal" else torch.rand
    return fn(tuple(shape), generator=generator, dtype=like.dtype, device=device).to(like.device)


def draw_index(high: int, n: int, like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """n integers uniform on {0, …, high−1} (LongTensor on ``like``'s device)."""
    device = like.device if generator is None else generator.device
    return torch.randint(high, (n,), generator=generator, device=device).to(like.device)


class GradientAttribution:
    """Base of every method: holds the model, validates a call, and leaves the model's mode alone.

    Subclasses implement ``_attribute(x, target, create_graph)`` on validated inputs; ``x`` there is the
    caller's tensor when ``create_graph`` (so gradients reach an input that requires grad) and a detached view
    otherwise.
    """

    def __init__(self, model: Callable[[Tensor], Tensor]):
        check_model(model)
        self.model = model

    def attribute(self, x: Tensor, target: Target, *, create_graph: bool = False) -> Tensor:
        """Attribution of the target logit to every input entry: same shape and dtype as ``x`` (N×C×H×W).

        ``target``: an int (the same class for all images) or a LongTensor (N,). ``create_graph=True`` keeps
        the graph so the result is differentiable w.r.t. ``x`` and the model parameters (for attacks and
        training losses); with False the result is detached and no graph is kept. Works under
        ``torch.no_grad()`` too (gradients are enabled locally).
        """
        x, target = check_inputs(x, target)
        if not create_graph:
            x = x.detach()
        with torch.enable_grad():
            out = self._attribute(x, target, bool(create_graph))
        return out if create_graph else out.detach()

    def _attribute(self, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({params})"

    def _hyperparameters(self) -> dict:
        return {}

