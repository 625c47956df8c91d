"""The papers' large networks (``scale="paper"``): Wide-ResNet-28-10 / 40-2, ResNet-50, VGG-16-GAP.

Each is built with random weights (no ImageNet weights are downloaded; ART fine-tuned ImageNet-pretrained
ResNet-50 / VGG on CUB, so a paper-scale CUB run from scratch is a departure to report). Every ReLU is an
``nn.ReLU`` module used out of place, so :func:`rattrlib.attributions.smooth_copy` swaps them all and autograd's
double backward never meets an in-place activation. Inputs N×C×H×W in [0, 1], outputs N×classes logits.
"""

from __future__ import annotations

import torch
from torch import nn

from rattrlib.models.resnet import _check_size


class WideBlock(nn.Module):
    """Pre-activation wide block (Zagoruyko & Komodakis 2016, Fig. 1d): BN-ReLU-conv3×3-BN-ReLU-[dropout]-
    conv3×3, plus the input — or a 1×1 conv of the activated input when the width or stride changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(in_channels), nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(out_channels), nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.equal = in_channels == out_channels and stride == 1
        self.shortcut = None if self.equal else nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.relu1(self.bn1(x))
        out = self.conv2(self.dropout(self.relu2(self.bn2(self.conv1(activated)))))
        return out + (x if self.equal else self.shortcut(activated))


class WideResNet(nn.Module):
    """WRN-depth-k (Zagoruyko & Komodakis 2016, "Wide Residual Networks", Table 1): conv3×3(16) → 3 groups of
    n = (depth − 4)/6 wide blocks with 16k, 32k, 64k channels (strides 1, 2, 2) → BN-ReLU → global average
    pool → FC. WRN-28-10 (36.5 M parameters) is ART's CIFAR-10 / GTSRB / Flower model (Singh et al. 2020 §5)
    and GALI's Table 7 model; WRN-40-2 is ART's SVHN model. Dropout 0 (ART does not mention any).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32, depth: int = 28,
                 widen: int = 10, dropout: float = 0.0):
        super().__init__()
        _check_size("WideResNet", image_size, 8)
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"WideResNet depth must be 6n + 4 with n >= 1, got {depth}")
        if widen < 1:
            raise ValueError(f"widen must be >= 1, got {widen}")
        n = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        blocks, channels = [], 16
        for width, stride in zip(widths, (1, 2, 2)):
            for i in range(n):
                blocks.append(WideBlock(channels, width, stride if i == 0 else 1, dropout))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.blocks(self.stem(x))))


def wrn28_10(in_channels: int = 3, num_classes: int = 10, image_size: int = 32) -> WideResNet:
    """WRN-28-10 (ART's CIFAR-10, GTSRB and Flower model)."""
    return WideResNet(in_channels, num_classes, image_size, depth=28, widen=10)


def wrn40_2(in_channels: int = 3, num_classes: int = 10, image_size: int = 32) -> WideResNet:
    """WRN-40-2 (ART's SVHN model)."""
    return WideResNet(in_channels, num_classes, image_size, depth=40, widen=2)


def _out_of_place(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model


def resnet50(in_channels: int = 3, num_classes: int = 1000, image_size: int = 224) -> nn.Module:
    """torchvision's ResNet-50 (He et al. 2016, bottleneck [3, 4, 6, 3]) with ``weights=None`` and
    ``num_classes`` outputs; ART's ResNet-50 for CUB WSOL. Not adapted for small inputs: the ImageNet stem
    (7×7/2 conv + 3×3/2 max-pool) stays, so a 64×64 image reaches the last stage as 2×2 and a 32×32 image as
    1×1 (adaptive average pooling keeps the output defined; the minimum size is 32). A first conv for
    ``in_channels`` ≠ 3 is the same 7×7/2 conv with that many inputs. ReLUs are made out of place; the one
    ReLU module a bottleneck reuses three times becomes one softplus module in a smooth copy.
    """
    from torchvision.models import resnet50 as tv_resnet50

    _check_size("resnet50", image_size, 32)
    model = tv_resnet50(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return _out_of_place(model)


#: VGG-16's convolution configuration (Simonyan & Zisserman 2015, Table 1 column D); "M" = 2×2 max-pool.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


class VGGGAP(nn.Module):
    """VGG-16-GAP for weakly supervised localisation (Zhou et al. 2016, CAM; Choe & Shim 2019, ADL; ART's
    "VGG-GAP" on CUB, Singh et al. 2020 Table 2).

    VGG-16's 13 conv3×3 layers with their first four max-pools (the fifth pool and the FC layers removed, so
    the last map is H/16) → conv3×3(1024) → ReLU → global average pool → FC(1024 → classes). Optional BN after
    each conv (``batch_norm=True``; the papers' VGG has none, but from-scratch training needs it). Minimum
    input size 16.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 200, image_size: int = 224,
                 batch_norm: bool = False):
        super().__init__()
        _check_size("VGGGAP", image_size, 16)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            layers.append(nn.Conv2d(channels, item, 3, 1, 1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(item))
            layers.append(nn.ReLU())
            channels = item
        self.features = nn.Sequential(*layers)
        self.gap_conv = nn.Sequential(nn.Conv2d(channels, 1024, 3, 1, 1), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(1024, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.gap_conv(self.features(x))))
