"""Models, by name: ``build_model(name, dataset_shape, num_classes)``; evaluation helpers."""

from __future__ import annotations

import torch
from torch import nn

from rattrlib.config import check_choice
from rattrlib.models.cnn import MnistCNN
from rattrlib.models.large import VGGGAP, WideResNet, resnet50, wrn28_10, wrn40_2
from rattrlib.models.resnet import RarResNet, ResNet20

#: name → constructor ``(in_channels, num_classes, image_size) -> nn.Module``; the smallest square size each
#: accepts is in :data:`MIN_SIZE`. Small: ``mnist_cnn`` (Madry/RAR/GALI MNIST net), ``resnet20`` (He et al.
#: CIFAR ResNet-20, rattr's cpu-scale net for colour images), ``rar_resnet`` (the RAR/GALI GTSRB/Flower ResNet,
#: Madry's CIFAR-challenge family with filters 16/16/32/64 and 5 units per stage). Paper scale: ``wrn28_10``,
#: ``wrn40_2`` (ART), ``resnet50`` (torchvision, random weights), ``vgg_gap`` (VGG-16-GAP, ART's CUB WSOL net).
MODELS = {
    "mnist_cnn": MnistCNN,
    "resnet20": ResNet20,
    "rar_resnet": RarResNet,
    "wrn28_10": wrn28_10,
    "wrn40_2": wrn40_2,
    "resnet50": resnet50,
    "vgg_gap": VGGGAP,
}

MIN_SIZE = {"mnist_cnn": 4, "resnet20": 8, "rar_resnet": 8, "wrn28_10": 8, "wrn40_2": 8, "resnet50": 32,
            "vgg_gap": 16}


def build_model(name: str, shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A fresh model ``name`` (a key of :data:`MODELS`) for images of ``shape`` = (C, H, W) and ``num_classes``
    classes, with random weights drawn from torch's global RNG. Raises ``ValueError`` for an unknown name (listing
    the valid ones), a shape that is not three positive ints, a non-square image, an image smaller than the
    model's :data:`MIN_SIZE`, or fewer than 2 classes."""
    check_choice("model", name, sorted(MODELS))
    if (not isinstance(shape, (tuple, list)) or len(shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise ValueError(f"shape must be (C, H, W), three positive ints; got {shape!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    channels, height, width = shape
    if height != width:
        raise ValueError(f"square images expected, got {height}×{width}")
    if height < MIN_SIZE[name]:
        raise ValueError(f"model {name!r} needs images of at least {MIN_SIZE[name]}×{MIN_SIZE[name]}, "
                         f"got {height}×{width}")
    return MODELS[name](in_channels=channels, num_classes=num_classes, image_size=height)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels (N,) of ``images`` (N×C×H×W in [0, 1]), computed in batches on the model's device."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                          for i in range(0, len(images), batch_size)])


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``images`` whose predicted label equals ``labels``."""
    was_training = model.training
    model.eval()
    try:
        return (predict(model, images, batch_size) == labels.cpu()).float().mean().item()
    finally:
        model.train(was_training)


__all__ = ["MIN_SIZE", "MODELS", "MnistCNN", "RarResNet", "ResNet20", "VGGGAP", "WideResNet", "accuracy",
           "build_model", "predict", "resnet50", "wrn28_10", "wrn40_2"]
