"""Differentiable, batched attribution maps of the target logit, and the softplus surrogate of a ReLU network.

One class per method, Captum-like: the model and hyperparameters in the constructor, then
``method.attribute(x, target, *, create_graph=False)`` → a tensor of x's shape (N×C×H×W), where ``target``
is an int or a LongTensor (N,) and the attributed quantity is the **logit** of the target class. With
``create_graph=True`` the result is differentiable w.r.t. x and the model parameters (attacks, training
losses); otherwise it is detached. Methods never change the model's train/eval mode.

- :class:`Saliency` ``∇f_c(x)``; :class:`InputXGradient` ``x ⊙ ∇f_c(x)``;
- :class:`IntegratedGradients` (right Riemann by default, black baseline);
- :class:`SmoothGrad` (Gaussian, absolute σ); :class:`UniformGradient` (SSR Def. 8);
- :class:`GradientSHAP` (expected gradients);
- :class:`GuidedBackprop`, :class:`GuidedGradCAMpp` (guided ReLU backward; ⊙ Grad-CAM++; not differentiable);
- :func:`attribution_map`: N×C×H×W → N×H×W, ``Σ_channel |·|`` (the map metrics and attacks use);
- :func:`smooth_copy`: ReLU → softplus(β) copy sharing the parameters;
- :func:`get_attribution` / :data:`ATTRIBUTIONS`: by name.
"""

from rattrlib.attributions.gradient import InputXGradient, Saliency
from rattrlib.attributions.gradient_shap import GradientSHAP
from rattrlib.attributions.guided import GuidedBackprop, GuidedGradCAMpp
from rattrlib.attributions.integrated_gradients import IG_RULES, IntegratedGradients
from rattrlib.attributions.maps import attribution_map
from rattrlib.attributions.registry import ATTRIBUTIONS, get_attribution
from rattrlib.attributions.smooth_copy import SOFTPLUS_THRESHOLD, smooth_copy
from rattrlib.attributions.smoothgrad import SmoothGrad, UniformGradient

__all__ = [
    "ATTRIBUTIONS",
    "GradientSHAP",
    "GuidedBackprop",
    "GuidedGradCAMpp",
    "IG_RULES",
    "InputXGradient",
    "IntegratedGradients",
    "SOFTPLUS_THRESHOLD",
    "Saliency",
    "SmoothGrad",
    "UniformGradient",
    "attribution_map",
    "get_attribution",
    "smooth_copy",
]
