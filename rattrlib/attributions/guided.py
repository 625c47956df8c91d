"""Guided Backpropagation and Guided Grad-CAM++ (the SAT poster's "GBP" and "G.G.CAM++" teacher maps).

- :class:`GuidedBackprop` (Springenberg et al. 2015, "Striving for Simplicity: The All Convolutional Net", §3.4,
  Fig. 1): the gradient of the target logit where every ReLU passes back only positive gradients at positive
  inputs, ``R_l = 1[z_l > 0] · 1[R_{l+1} > 0] · R_{l+1}``. Implemented as Captum does: a backward hook on
  every ``nn.ReLU`` module clamps its input gradient at 0 (rattr's networks use one ``nn.ReLU`` module per
  use; a ReLU written as ``F.relu`` is not guided, and a model without ``nn.ReLU`` modules gets its plain
  gradient).
- :func:`grad_cam_pp` (Chattopadhyay et al. 2018, "Grad-CAM++", eq. 19 with the exponential score, whose
  higher derivatives are powers of the first): for the activations ``A^k`` (N×K×h×w) of a target layer and
  ``g^k = ∂f_c/∂A^k``::

      α^{kc}_{ij} = g²_{ij} / (2 g²_{ij} + Σ_{ab} A^k_{ab} · g³_{ij})     (0 where g_{ij} = 0)
      w^c_k      = Σ_{ij} α^{kc}_{ij} · ReLU(g_{ij})
      L^c        = ReLU(Σ_k w^c_k A^k)                                   (N×h×w)

  (the ``exp(f_c)`` factor of the paper's eq. 19 multiplies every ``w_k`` alike and is dropped, as in the
  pytorch-grad-cam implementation).
- :class:`GuidedGradCAMpp`: ``GBP(x) ⊙ upsample(L^c)`` (Selvaraju et al. 2017 §3.1 "Guided Grad-CAM" with
  Grad-CAM++ in place of Grad-CAM), the Grad-CAM++ map bilinearly upsampled to H×W and broadcast over
  channels.

The target layer: a module of the model, or its name in ``model.named_modules()``; None picks the last
module (in forward order of completion) whose output is N×K×h×w with h·w > 1 — for rattr's ResNet-20 the output of its last
residual block (``layers``), for a plain CNN the last conv/ReLU feature map.

These maps are not differentiable in a useful sense (guided ReLUs and the Grad-CAM++ ratio); they are
computed with ``create_graph=False`` only (``create_graph=True`` raises).
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rattrlib.attributions._core import GradientAttribution, check_batch_size, target_gradient

LayerSpec = Union[None, str, nn.Module]


def _relu_modules(model) -> list:
    return [m for m in model.modules() if isinstance(m, nn.ReLU)] if isinstance(model, nn.Module) else []


def guided_gradient(model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
    """∇ of the target logit with every ``nn.ReLU``'s input gradient clamped at 0 (guided backpropagation);
    x N×C×H×W, target (N,) → N×C×H×W, detached. The hooks are removed afterwards."""
    hooks = [m.register_full_backward_hook(lambda mod, g_in, g_out: (g_in[0].clamp(min=0),))
             for m in _relu_modules(model)]
    try:
        return target_gradient(model, x, target, create_graph=False)
    finally:
        for h in hooks:
            h.remove()


def resolve_layer(model: nn.Module, layer: LayerSpec, x: Tensor) -> nn.Module:
    """The module named/given by ``layer``; None: the last module of ``model`` (in order of forward completion)
    with an N×K×h×w output, h·w > 1 (so not a global pool), for input ``x`` (one forward of the first image)."""
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise ValueError("layer is not a module of the model")
        return layer
    if isinstance(layer, str):
        named = dict(model.named_modules())
        if layer not in named:
            raise ValueError(f"model has no module named {layer!r}; some names: {list(named)[1:8]}")
        return named[layer]
    finished = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: finished.append(mod)
                                     if isinstance(out, Tensor) and out.ndim == 4 and out.shape[-1] * out.shape[-2] > 1
                                     else None)
             for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    if not finished:
        raise ValueError("the model has no submodule with a 4-D (N×K×h×w) output: give layer=")
    return finished[-1]


def grad_cam_pp(model: nn.Module, x: Tensor, target: Tensor, layer: nn.Module, eps: float = 1e-12) -> Tensor:
    """The Grad-CAM++ map ``L^c`` (N×h×w, ≥ 0, detached) of the target logit at ``layer``'s output (module
    docstring); ``eps`` guards the α denominator."""
    store = {}

    def keep(mod, inp, out):
        store["a"] = out

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(x.detach().requires_grad_(True))  # a graph even when the parameters are frozen
            act = store.get("a")
            if act is None or act.ndim != 4:
                raise ValueError("the target layer must produce an N×K×h×w output")
            (g,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), act)
    finally:
        handle.remove()
    a, g = act.detach(), g.detach()
    g2, g3 = g * g, g * g * g
    denom = 2 * g2 + a.sum((2, 3), keepdim=True) * g3
    alpha = torch.where(g != 0, g2 / torch.where(denom.abs() > eps, denom, torch.full_like(denom, eps)),
                        torch.zeros_like(g))
    weights = (alpha * g.clamp(min=0)).sum((2, 3), keepdim=True)
    return (weights * a).sum(1).clamp(min=0)


class GuidedBackprop(GradientAttribution):
    """Guided Backpropagation (Springenberg et al. 2015; module docstring): N×C×H×W → N×C×H×W, signed.

    Args:
        model: an ``nn.Module`` whose ReLUs are ``nn.ReLU`` modules (hooked during the call only).
    """

    def __init__(self, model: Callable[[Tensor], Tensor]):
        super().__init__(model)

    def _attribute(self, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:
        if create_graph:
            raise ValueError("GuidedBackprop is not differentiable: use create_graph=False")
        return guided_gradient(self.model, x, target)


class GuidedGradCAMpp(GradientAttribution):
    """Guided Grad-CAM++: ``GBP(x) ⊙ upsample_bilinear(GradCAM++(x))`` (module docstring); N×C×H×W → N×C×H×W.

    Args:
        model: an ``nn.Module`` whose ReLUs are ``nn.ReLU`` modules.
        layer: the Grad-CAM++ layer (a module, its name, or None: the last 4-D output, e.g. ResNet-20's last
            block).
        internal_batch_size: images per forward (None: all at once).
    """

    def __init__(self, model: Callable[[Tensor], Tensor], layer: LayerSpec = None,
                 internal_batch_size: Optional[int] = None):
        super().__init__(model)
        if layer is not None and not isinstance(layer, (str, nn.Module)):
            raise ValueError(f"layer must be None, a module name or an nn.Module, got {type(layer).__name__}")
        self.layer = layer
        self.internal_batch_size = check_batch_size(internal_batch_size)

    def _hyperparameters(self) -> dict:
        return {"layer": self.layer if not isinstance(self.layer, nn.Module) else type(self.layer).__name__,
                "internal_batch_size": self.internal_batch_size}

    def _attribute(self, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:
        if create_graph:
            raise ValueError("GuidedGradCAMpp is not differentiable: use create_graph=False")
        layer = resolve_layer(self.model, self.layer, x)
        size = self.internal_batch_size or x.shape[0]
        out = []
        for xs, ts in zip(x.split(size), target.split(size)):
            cam = grad_cam_pp(self.model, xs, ts, layer)
            up = F.interpolate(cam[:, None], size=tuple(xs.shape[-2:]), mode="bilinear", align_corners=False)
            out.append(guided_gradient(self.model, xs, ts) * up)
        return torch.cat(out)


__all__ = ["GuidedBackprop", "GuidedGradCAMpp", "grad_cam_pp", "guided_gradient", "resolve_layer"]
