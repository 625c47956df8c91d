"""Plain gradient attributions: the saliency map and gradient × input."""

from __future__ import annotations

from torch import Tensor

from rattrlib.attributions._core import GradientAttribution, target_gradient


class Saliency(GradientAttribution):
    """Saliency map ``∇_x f_c(x)`` (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside Convolutional Networks",
    §3.1: the derivative of the class score w.r.t. the image), signed, one backward pass.

    ``f_c`` is the logit of class c. Input x: N×C×H×W (images in [0, 1]); output: N×C×H×W, same dtype,
    unbounded. The paper's visualised map is ``max_channel |·|``; rattr's metric map is
    :func:`attribution_map` (``Σ_channel |·|``).
    """

    def _attribute(self, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:
        return target_gradient(self.model, x, target, create_graph=create_graph)


class InputXGradient(GradientAttribution):
    """Gradient × input ``x ⊙ ∇_x f_c(x)`` (Shrikumar et al. 2016/2017; equals IG with a zero baseline for a
    linear model). Input x: N×C×H×W; output: N×C×H×W, same dtype, unbounded.
    """

    def _attribute(self, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:
        return x * target_gradient(self.model, x, target, create_graph=create_graph)
