"""Small residual networks for 32×32 and 64×64 colour images: ResNet-20 and the RAR/GALI ResNet.

Every nonlinearity is an ``nn.ReLU`` module (one module per use), so :func:`rattrlib.attributions.smooth_copy`
turns the whole network into its softplus(β) surrogate; the leaky ReLU of the RAR ResNet is written as
``a·z + (1 − a)·ReLU(z)`` around an ``nn.ReLU`` module for the same reason (its smooth copy is then
``a·z + (1 − a)·softplus_β(z)``, exactly the "softplus" activation of RAR's code). Inputs are N×C×H×W in
[0, 1]; global average pooling makes both nets work for any square size ≥ 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_size(name: str, image_size: int, minimum: int) -> None:
    if not isinstance(image_size, int) or image_size < minimum:
        raise ValueError(f"{name} needs images of at least {minimum}×{minimum}, got image_size={image_size!r}")


class PadShortcut(nn.Module):
    """He et al.'s option-A shortcut: keep every ``stride``-th pixel, zero-pad the new channels (no weights)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride, self.extra = stride, out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN, plus the (option-A) shortcut, then ReLU (He et al. 2016, Fig. 2 left)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels
                         else PadShortcut(in_channels, out_channels, stride))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20 for CIFAR-size images (He et al. 2016, "Deep Residual Learning for Image Recognition", §4.2).

    conv3×3(16)-BN-ReLU → 3 stages × n = 3 basic blocks with 16, 32, 64 channels (stride 1, 2, 2; option-A
    identity shortcuts, zero-padded) → global average pool → FC. 6n + 2 = 20 weighted layers, 0.27 M
    parameters. The model SSR (Wang et al. 2020) uses for CIFAR-10 / Flower, and rattr's cpu-scale model for
    3-channel data. Input N×C×H×W in [0, 1] (no normalisation: BN follows the first conv); any square size
    ≥ 8; output N×classes logits. ``blocks_per_stage`` = n (3 → ResNet-20, 5 → ResNet-32, …).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32,
                 blocks_per_stage: int = 3):
        super().__init__()
        _check_size("ResNet20", image_size, 8)
        if blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers, channels = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(blocks_per_stage):
                layers.append(BasicBlock(channels, width, stride if i == 0 else 1))
                channels = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))))


class LeakyReLUModule(nn.Module):
    """``a·z + (1 − a)·ReLU(z)`` (= leaky ReLU with slope ``a``) built on an ``nn.ReLU`` module, so that a
    smooth copy becomes ``a·z + (1 − a)·softplus_β(z)`` — RAR's code uses exactly these two (slope 0.1)."""

    def __init__(self, slope: float = 0.1):
        super().__init__()
        if not 0.0 <= slope < 1.0:
            raise ValueError(f"slope must be in [0, 1), got {slope}")
        self.slope = float(slope)
        self.relu = nn.ReLU()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.slope == 0.0:
            return self.relu(z)
        return self.slope * z + (1.0 - self.slope) * self.relu(z)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class PerImageStandardization(nn.Module):
    """``(x − mean(x)) / max(std(x), 1/√d)`` per image over all C·H·W entries (TensorFlow's
    ``per_image_standardization``, the first op of Madry's CIFAR-10 and RAR's GTSRB/Flower models)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        mean = flat.mean(1, keepdim=True)
        # max(std, 1/√d) = √max(var, 1/d): never a square root at 0 (its infinite slope would give NaN grads)
        std = flat.var(1, unbiased=False, keepdim=True).clamp_min(1.0 / flat.shape[1]).sqrt()
        return ((flat - mean) / std).view_as(x)


class PreActUnit(nn.Module):
    """Madry et al.'s residual unit ("cifar10_challenge" model.py ``_residual``): [BN] → leaky ReLU → conv3×3
    (stride s) → [BN] → leaky ReLU → conv3×3; shortcut = the unit's input (or, in the first unit of the net,
    the activated input), average-pooled by s and zero-padded in channels when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, activate_before_residual: bool,
                 batch_norm: bool, slope: float):
        super().__init__()
        self.activate_before_residual = activate_before_residual
        self.bn1 = nn.BatchNorm2d(in_channels) if batch_norm else nn.Identity()
        self.act1 = LeakyReLUModule(slope)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.act2 = LeakyReLUModule(slope)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.stride, self.extra = stride, out_channels - in_channels

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra == 0 and self.stride == 1:
            return x
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride, self.stride)
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.act1(self.bn1(x))
        shortcut = self._shortcut(activated if self.activate_before_residual else x)
        out = self.conv1(activated)
        out = self.conv2(self.act2(self.bn2(out)))
        return out + shortcut


class RarResNet(nn.Module):
    """The "ResNet with 5 residual units, each with (16, 16, 32, 64) filters" of RAR (Chen et al. 2019) and
    GALI (§4 "Architecture Details") for GTSRB and Flower: Madry et al.'s CIFAR-10-challenge ResNet family
    (itself TensorFlow's CIFAR ResNet) with filters (16, 16, 32, 64).

    per-image standardisation → conv3×3(16) → 3 stages × ``units_per_stage`` pre-activation units
    (:class:`PreActUnit`; widths 16, 32, 64; strides 1, 2, 2) → [BN] → leaky ReLU → global average pool → FC.

    Reading of "5 residual units": Madry's model has ``num_residual_units = 5`` per stage (unit_i_0 plus four
    more), so the default is 5 units per stage (15 units, 32 weighted layers, 0.46 M parameters). The RAR
    authors' public TensorFlow code uses fewer: 2 units per stage for GTSRB and 1 for Flower, and no batch
    norm; ``RarResNet(units_per_stage=2, batch_norm=False)`` reproduces that code's layout. Leaky ReLU slope 0.1
    as in both codes. Input N×C×H×W in [0, 1], any square size ≥ 8; output N×classes logits.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 43, image_size: int = 32,
                 units_per_stage: int = 5, batch_norm: bool = True, slope: float = 0.1):
        super().__init__()
        _check_size("RarResNet", image_size, 8)
        if units_per_stage < 1:
            raise ValueError(f"units_per_stage must be >= 1, got {units_per_stage}")
        self.standardize = PerImageStandardization()
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        units, channels = [], 16
        for stage, (width, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
            for i in range(units_per_stage):
                units.append(PreActUnit(channels, width, stride if i == 0 else 1,
                                        activate_before_residual=(stage == 0 and i == 0),
                                        batch_norm=batch_norm, slope=slope))
                channels = width
        self.units = nn.Sequential(*units)
        self.final_bn = nn.BatchNorm2d(64) if batch_norm else nn.Identity()
        self.final_act = LeakyReLUModule(slope)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # N(0, 2/(k²·out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.units(self.stem(self.standardize(x)))
        return self.fc(self.pool(self.final_act(self.final_bn(out))))
