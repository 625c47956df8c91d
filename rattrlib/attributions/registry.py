"""Attribution methods by name, for configs and chapter parameters."""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from rattrlib.attributions._core import GradientAttribution
from rattrlib.attributions.gradient import InputXGradient, Saliency
from rattrlib.attributions.gradient_shap import GradientSHAP
from rattrlib.attributions.guided import GuidedBackprop, GuidedGradCAMpp
from rattrlib.attributions.integrated_gradients import IntegratedGradients
from rattrlib.attributions.smoothgrad import SmoothGrad, UniformGradient
from rattrlib.config import check_choice

#: name → attribution class; every class takes ``(model, **hyperparameters)``.
ATTRIBUTIONS: dict[str, type[GradientAttribution]] = {
    "saliency": Saliency,
    "input_x_gradient": InputXGradient,
    "integrated_gradients": IntegratedGradients,
    "smoothgrad": SmoothGrad,
    "uniform_gradient": UniformGradient,
    "gradient_shap": GradientSHAP,
    "guided_backprop": GuidedBackprop,
    "guided_gradcam_pp": GuidedGradCAMpp,
}


def get_attribution(name: str, model: Callable[[Tensor], Tensor], **kwargs) -> GradientAttribution:
    """Build the attribution ``name`` (a key of :data:`ATTRIBUTIONS`) for ``model`` with ``kwargs``.

    An unknown name raises ``ValueError`` listing the valid ones; unknown or invalid hyperparameters raise
    from the class's constructor (``TypeError`` / ``ValueError``).
    """
    check_choice("attribution", name, ATTRIBUTIONS)
    return ATTRIBUTIONS[name](model, **kwargs)
