"""Class-conditional image generation with a (robust) classifier: Santurkar et al. 2019, "Image Synthesis with a
Single (Robust) Classifier" (NeurIPS), §3 "Generation", as in ART Fig. 4 (samples from a CIFAR-10 ART model).

A seed x₀ is drawn from a class-conditional Gaussian (or given), then the class score is maximised by projected
gradient ascent in ℓ2. Santurkar et al. find that a robust model turns the seed into a recognisable image of the
class, while a natural model only adds noise-like patterns that raise the logit.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from rattrlib.attacks._common import check_images, check_model, eval_mode, frozen_parameters, project
from rattrlib.config import check_choice, check_generator, check_int, check_nonnegative, check_positive

INITS = ("noise",)


def _check_classes(classes) -> Tensor:
    """Class indices as a LongTensor (N,), N ≥ 1, all ≥ 0."""
    c = torch.as_tensor(classes)
    if c.ndim != 1 or c.numel() == 0 or c.is_floating_point() or c.dtype == torch.bool:
        raise ValueError(f"classes must be a non-empty 1-D sequence of int class indices, got {classes!r}")
    if bool((c < 0).any()):
        raise ValueError("classes must be non-negative class indices")
    return c.long()


def _check_shape(image_shape) -> tuple:
    if (not isinstance(image_shape, (tuple, list, torch.Size)) or len(image_shape) != 3
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in image_shape)):
        raise ValueError(f"image_shape must be (C, H, W), three positive ints; got {image_shape!r}")
    return tuple(int(v) for v in image_shape)


def class_conditional_seeds(images: Tensor, labels, classes, generator: Optional[torch.Generator] = None
                            ) -> Tensor:
    """Santurkar et al.'s seeds: for each entry c of ``classes``, one draw from ``N(μ_c, Σ_c)``, the Gaussian
    fitted to the ``images`` of class c (mean and full sample covariance over all pixels), clamped to [0, 1].

    Drawn exactly without forming Σ_c: ``x₀ = μ_c + (X_c − μ_c)ᵀ z / √(n_c − 1)``, z ~ N(0, I_{n_c}), where X_c
    holds the n_c training images of class c as rows (cost O(n_c·d) per seed).

    Args:
        images: N×C×H×W in [0, 1] (training images); labels: (N,) class indices.
        classes: (M,) the class of each seed; each needs ≥ 2 images.
        generator: seeds the draws (CPU, or the generator's device).

    Returns M×C×H×W in [0, 1], on the images' device.
    """
    images = check_images(images, "images")
    labels = torch.as_tensor(labels, device=images.device)
    if labels.is_floating_point() or labels.dtype == torch.bool or tuple(labels.shape) != (images.shape[0],):
        raise ValueError(f"labels must be {images.shape[0]} integer class indices, got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    classes = _check_classes(classes).to(images.device)
    generator = check_generator(generator)
    flat = images.flatten(1)
    seeds = torch.empty(classes.numel(), flat.shape[1], dtype=images.dtype, device=images.device)
    draw_device = images.device if generator is None else generator.device
    for c in classes.unique().tolist():
        rows = flat[labels == c]
        if rows.shape[0] < 2:
            raise ValueError(f"class {c} has {rows.shape[0]} image(s); fitting its Gaussian needs at least 2")
        where = (classes == c).nonzero().squeeze(1)
        mean = rows.mean(0)
        z = torch.randn(where.numel(), rows.shape[0], generator=generator, dtype=images.dtype,
                        device=draw_device).to(images.device)
        seeds[where] = mean + z @ (rows - mean) / math.sqrt(rows.shape[0] - 1)
    return seeds.view(-1, *images.shape[1:]).clamp(0, 1)


def generate_class_samples(model: nn.Module, classes, image_shape: Sequence[int], steps: int = 60,
                           step_size: float = 0.5, eps: Optional[float] = None,
                           init: Union[str, Tensor] = "noise", generator: Optional[torch.Generator] = None
                           ) -> Tensor:
    """Images the model scores as ``classes`` (Santurkar et al. 2019 §3; ART Fig. 4): from a seed x₀, ``steps``
    steps of ℓ2 gradient ascent on the class logit z_c,

        ``x ← Π(x + α·∇z_c(x)/‖∇z_c(x)‖₂)``,

    Π = projection onto the ℓ2 ball of radius ``eps`` around x₀ (no ball when ``eps`` is None), then clamp to
    [0, 1]. Santurkar et al. write the objective as minimising the classification loss of class c; ART says
    "maximization of the class score", which is what this does. One step moves each image by at most α in ℓ2, so
    ``steps·step_size`` bounds the total distance travelled.

    Args:
        model: N×C×H×W in [0, 1] → N×K logits; run in eval mode with frozen parameters (both restored after).
        classes: (N,) target class of each image, in [0, K).
        image_shape: (C, H, W).
        steps: ≥ 1. step_size: α > 0 on the [0, 1] scale (ℓ2). eps: ℓ2 radius ≥ 0, or None.
        init: ``"noise"`` (x₀ uniform in [0, 1] per entry) or an N×C×H×W tensor of seeds in [0, 1], e.g.
            :func:`class_conditional_seeds` (Santurkar et al.'s class-conditional Gaussian).
        generator: seeds the ``"noise"`` start.

    Returns N×C×H×W in [0, 1] on the model's device (detached).
    """
    check_model(model)
    classes = _check_classes(classes)
    shape = _check_shape(image_shape)
    steps = check_int("steps", steps, 1)
    step_size = check_positive("step_size", step_size)
    eps = None if eps is None else check_nonnegative("eps", eps)
    generator = check_generator(generator)
    n = classes.numel()
    device = next(model.parameters()).device
    if isinstance(init, Tensor):
        seeds = check_images(init, "init")
        if tuple(seeds.shape) != (n, *shape):
            raise ValueError(f"init must have shape {(n, *shape)} (one seed per class entry), "
                             f"got {tuple(seeds.shape)}")
        seeds = seeds.detach().to(device)
    else:
        check_choice("init", init, INITS)
        draw_device = device if generator is None else generator.device
        seeds = torch.rand((n, *shape), generator=generator, device=draw_device).to(device)
    classes = classes.to(device)
    x = seeds.clone()
    with eval_mode(model), frozen_parameters(model), torch.enable_grad():
        for step in range(steps):
            x = x.detach().requires_grad_(True)
            logits = model(x)
            if step == 0 and int(classes.max()) >= logits.shape[1]:
                raise ValueError(f"classes must be in [0, {logits.shape[1]}) for this model, "
                                 f"got {int(classes.max())}")
            (grad,) = torch.autograd.grad(logits.gather(1, classes[:, None]).sum(), x)
            size = torch.linalg.vector_norm(grad.flatten(1), dim=1).view(-1, 1, 1, 1)
            x = x.detach() + step_size * grad / size.clamp_min(1e-12)
            x = project(x, seeds, eps, "l2") if eps is not None else x.clamp(0, 1)
    return x.detach()
