"""Common corruptions at five severities, applied on the fly (Hendrycks & Dietterich 2019, "Benchmarking Neural
Network Robustness to Common Corruptions and Perturbations", ICLR; ART Table 3 reports CIFAR-10-C).

A weather-free subset of ART Table 3's columns: Gaussian noise (GN), shot noise (SN), impulse noise (IN), speckle
noise (Sp-N), defocus blur (DB), brightness (B), contrast (C), pixelate (P) and JPEG (J). Glass, motion and
zoom blur, snow, frost, fog and elastic are not here.

The severity constants are CIFAR-10-C's (Hendrycks' ``make_cifar_c.py``: the ImageNet-C recipe with constants
re-chosen by its authors for 32×32 images), used unchanged for rattr's small images (28×28 and 32×32). The
functions are rattr's torch re-implementations of that recipe ("ImageNet-C/CIFAR-10-C style"), not the published
CIFAR-10-C files: the random draws differ, and results are not rounded to uint8 (except by the JPEG round trip).
Images are N×C×H×W in [0, 1] with C = 1 or 3; every corruption returns the input's shape, clamped to [0, 1].
"""

from __future__ import annotations

import io
import numbers
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from rattrlib.attacks._common import check_images, check_labels, check_model, eval_mode
from rattrlib.config import check_choice, check_generator, check_int

SEVERITIES = (1, 2, 3, 4, 5)

#: CIFAR-10-C's constants (Hendrycks' make_cifar_c.py), one per severity 1..5.
SEVERITY_CONSTANTS = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),            # σ of N(0, σ²)
    "shot_noise": (500, 250, 100, 75, 50),                        # photons λ: Poisson(λx)/λ
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),              # fraction of entries set to 0 or 1
    "speckle_noise": (0.06, 0.10, 0.12, 0.16, 0.20),              # σ of the multiplicative noise
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)),  # (disk radius, alias σ)
    "brightness": (0.05, 0.10, 0.15, 0.20, 0.30),                 # added to HSV value
    "contrast": (0.75, 0.50, 0.40, 0.30, 0.15),                   # factor on deviations from the mean
    "pixelate": (0.95, 0.90, 0.85, 0.75, 0.65),                   # relative side of the coarse image
    "jpeg_compression": (80, 65, 58, 50, 40),                     # JPEG quality
}


def _normal(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    device = x.device if generator is None else generator.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


def _uniform(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    device = x.device if generator is None else generator.device
    return torch.rand(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


def gaussian_noise(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """``x + N(0, σ²)`` per entry, σ ∈ (0.04, 0.06, 0.08, 0.09, 0.10)."""
    sigma = SEVERITY_CONSTANTS["gaussian_noise"][severity - 1]
    return (x + sigma * _normal(x, generator)).clamp(0, 1)


def shot_noise(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Photon noise ``Poisson(λx)/λ`` per entry, λ ∈ (500, 250, 100, 75, 50)."""
    lam = SEVERITY_CONSTANTS["shot_noise"][severity - 1]
    device = x.device if generator is None else generator.device
    counts = torch.poisson((x * lam).to(device), generator=generator).to(x.device)
    return (counts / lam).clamp(0, 1)


def impulse_noise(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Salt-and-pepper: each entry independently, with probability a ∈ (0.01, 0.02, 0.03, 0.05, 0.07), becomes
    1 or 0 with equal chance (scikit-image ``random_noise(mode='s&p')``, as CIFAR-10-C)."""
    amount = SEVERITY_CONSTANTS["impulse_noise"][severity - 1]
    hit = _uniform(x, generator) < amount
    salt = _uniform(x, generator) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def speckle_noise(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Multiplicative noise ``x + x·N(0, σ²)``, σ ∈ (0.06, 0.10, 0.12, 0.16, 0.20)."""
    sigma = SEVERITY_CONSTANTS["speckle_noise"][severity - 1]
    return (x + x * sigma * _normal(x, generator)).clamp(0, 1)


def _defocus_kernel(radius: float, alias_sigma: float, dtype, device) -> Tensor:
    """The anti-aliased disk of make_cifar_c.py: the indicator of ``i² + j² ≤ r²`` on the integer grid, summed
    to 1, convolved with a 3×3 Gaussian of σ = alias_sigma (normalised), as a 5×5 kernel (r ≤ 1.5)."""
    grid = torch.arange(-2, 3, dtype=torch.float64)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= radius ** 2).double()
    disk /= disk.sum()
    g = torch.exp(-torch.arange(-1, 2, dtype=torch.float64) ** 2 / (2 * alias_sigma ** 2))
    g = torch.outer(g, g) / g.sum() ** 2
    kernel = F.conv2d(disk[None, None], g[None, None], padding=1)[0, 0]
    return kernel.to(dtype=dtype, device=device)


def defocus_blur(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Convolution with an anti-aliased disk, (radius, σ) ∈ ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2),
    (1.5, 0.1)); edges reflected (OpenCV's default border). Deterministic; ``generator`` is unused."""
    radius, alias_sigma = SEVERITY_CONSTANTS["defocus_blur"][severity - 1]
    kernel = _defocus_kernel(radius, alias_sigma, x.dtype, x.device)
    c = x.shape[1]
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, kernel.expand(c, 1, 5, 5), groups=c).clamp(0, 1)


def brightness(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """HSV value ``V = max_c x_c`` raised by b ∈ (0.05, 0.10, 0.15, 0.20, 0.30) and clipped to 1, hue and
    saturation kept: every channel scales by ``V'/V`` (a black pixel becomes grey b). On one channel: ``x + b``.
    Deterministic; ``generator`` is unused."""
    b = SEVERITY_CONSTANTS["brightness"][severity - 1]
    value = x.amax(1, keepdim=True)
    new_value = (value + b).clamp(max=1)
    scaled = x * (new_value / value.clamp_min(torch.finfo(x.dtype).tiny))
    return torch.where(value > 0, scaled, new_value.expand_as(x)).clamp(0, 1)


def contrast(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """``(x − μ)·c + μ``, μ the per-image, per-channel mean, c ∈ (0.75, 0.5, 0.4, 0.3, 0.15). Deterministic."""
    c = SEVERITY_CONSTANTS["contrast"][severity - 1]
    mean = x.mean((2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp(0, 1)


def _box_resample(n: int, m: int) -> Tensor:
    """PIL's ``resize(BOX)`` from n to m < n pixels followed by ``resize(BOX)`` back to n, as one n×n matrix.
    Down: output i averages the inputs whose centres lie in (i·n/m, (i+1)·n/m]; up: output i copies input
    ⌊(i + ½)·m/n⌋ (nearest centre). A centre exactly on a window edge (possible only when m holds more factors
    of 2 than n; never at 28 or 32 pixels) goes to the left window; PIL's floating point decides it there."""
    i = torch.arange(m)[:, None]
    centres = 2 * torch.arange(n)[None, :] + 1                       # 2·(j + ½)
    down = ((2 * i * n < centres * m) & (centres * m <= 2 * (i + 1) * n)).double()
    down /= down.sum(1, keepdim=True)
    up = torch.zeros(n, m, dtype=torch.float64)
    up[torch.arange(n), ((2 * torch.arange(n) + 1) * m) // (2 * n)] = 1.0
    return up @ down


def pixelate(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Box-filter down to ``⌊s·H⌋ × ⌊s·W⌋``, s ∈ (0.95, 0.9, 0.85, 0.75, 0.65), and back up (PIL's BOX resize both
    ways, as CIFAR-10-C, without its rounding to uint8 in between: within one uint8 level of Pillow). On 28×28
    the coarse sides are 26, 25, 23, 21, 18. Deterministic; ``generator`` is unused."""
    s = SEVERITY_CONSTANTS["pixelate"][severity - 1]
    h, w = x.shape[-2:]
    rows = _box_resample(h, max(1, int(h * s))).to(dtype=x.dtype, device=x.device)
    cols = _box_resample(w, max(1, int(w * s))).to(dtype=x.dtype, device=x.device)
    return (rows @ x @ cols.T).clamp(0, 1)


def jpeg_compression(x: Tensor, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """JPEG round trip at quality q ∈ (80, 65, 58, 50, 40) with Pillow, as CIFAR-10-C (via uint8, on the CPU,
    one image at a time). Deterministic; ``generator`` is unused."""
    quality = SEVERITY_CONSTANTS["jpeg_compression"][severity - 1]
    pixels = (x.detach().cpu().double() * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        out.append(np.asarray(Image.open(buffer)).reshape(image.shape))
    decoded = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    return (decoded.to(device=x.device, dtype=x.dtype) / 255).clamp(0, 1)


#: name → function ``(x, severity, generator=None) -> x'`` (the order of ART Table 3's columns).
CORRUPTIONS: dict[str, Callable[..., Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "brightness": brightness,
    "contrast": contrast,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "speckle_noise": speckle_noise,
}


def _check_severity(severity) -> int:
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or severity not in SEVERITIES:
        raise ValueError(f"severity={severity!r} is not valid; choose one of 1, 2, 3, 4, 5")
    return int(severity)


def _check_corruptible(x: Tensor, name: str = "x") -> Tensor:
    x = check_images(x, name)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels, got {x.shape[1]}")
    if min(x.shape[-2:]) < 3:
        raise ValueError(f"{name} must be at least 3×3 pixels, got {tuple(x.shape[-2:])}")
    return x


def corrupt(x: Tensor, name: str, severity: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """Corruption ``name`` (a key of :data:`CORRUPTIONS`) at ``severity`` ∈ 1..5 (Hendrycks & Dietterich 2019,
    CIFAR-10-C constants) of x (N×C×H×W in [0, 1], C ∈ {1, 3}) → same shape in [0, 1]. ``generator`` seeds the
    noise corruptions (the others are deterministic). Bad arguments raise ``ValueError``."""
    check_choice("corruption", name, CORRUPTIONS)
    severity = _check_severity(severity)
    generator = check_generator(generator)
    x = _check_corruptible(x)
    return CORRUPTIONS[name](x.detach(), severity, generator)


def corruption_correct(model: nn.Module, images: Tensor, labels, names: Optional[Iterable[str]] = None,
                       severities: Sequence[int] = SEVERITIES, generator: Optional[torch.Generator] = None,
                       batch_size: int = 256) -> np.ndarray:
    """Per image, corruption and severity: is the corrupted image still classified correctly? (ART Table 3's
    per-image outcomes.) A bool array N × len(names) × len(severities).

    Args:
        model: N×C×H×W in [0, 1] → logits; run in eval mode (restored after).
        images: N×C×H×W in [0, 1], C ∈ {1, 3}; labels: (N,) class indices.
        names: corruptions (keys of :data:`CORRUPTIONS`); None: all, in :data:`CORRUPTIONS` order.
        severities: a non-empty subset of 1..5.
        generator: seeds the noise, drawn batch by batch in the order corruption → severity → batch.
        batch_size: images per corrupted batch, moved to the model's device.
    """
    check_model(model)
    images = _check_corruptible(images, "images")
    labels = check_labels(labels, images.shape[0], images.device)
    names = _check_names(names)
    severities = [_check_severity(s) for s in severities]
    if not severities:
        raise ValueError("severities must hold at least one of 1..5")
    generator = check_generator(generator)
    batch_size = check_int("batch_size", batch_size, 1)
    device = next(model.parameters()).device
    out = np.zeros((images.shape[0], len(names), len(severities)), dtype=bool)
    with torch.no_grad(), eval_mode(model):
        for i, name in enumerate(names):
            for j, severity in enumerate(severities):
                for start in range(0, images.shape[0], batch_size):
                    xb = images[start:start + batch_size]
                    xc = CORRUPTIONS[name](xb, severity, generator).to(device)
                    hit = model(xc).argmax(1) == labels[start:start + batch_size].to(device)
                    out[start:start + batch_size, i, j] = hit.cpu().numpy()
    return out


def accuracy_table(correct: np.ndarray, names: Optional[Iterable[str]] = None,
                   severities: Sequence[int] = SEVERITIES) -> pd.DataFrame:
    """ART Table 3's layout from :func:`corruption_correct`'s array: one row per corruption (index
    ``corruption``), one column per severity and ``mean`` (over the severities), accuracies as fractions."""
    names = _check_names(names)
    severities = list(severities)
    if correct.ndim != 3 or correct.shape[1:] != (len(names), len(severities)):
        raise ValueError(f"correct has shape {correct.shape}; expected N × {len(names)} corruptions × "
                         f"{len(severities)} severities")
    per_cell = correct.mean(axis=0)
    table = pd.DataFrame(per_cell, index=pd.Index(names, name="corruption"),
                         columns=pd.Index(severities, name="severity"))
    table["mean"] = per_cell.mean(axis=1)
    return table


def corruption_accuracy(model: nn.Module, images: Tensor, labels, names: Optional[Iterable[str]] = None,
                        severities: Sequence[int] = SEVERITIES, generator: Optional[torch.Generator] = None,
                        batch_size: int = 256) -> pd.DataFrame:
    """Top-1 accuracy (fraction) under each corruption and severity, as in ART Table 3 (which reports the mean
    over the five severities per corruption): :func:`accuracy_table` of :func:`corruption_correct` (same
    arguments). Returns one row per corruption, one column per severity, and ``mean``."""
    names = _check_names(names)
    severities = [_check_severity(s) for s in severities]
    correct = corruption_correct(model, images, labels, names, severities, generator, batch_size)
    return accuracy_table(correct, names, severities)


def _check_names(names: Optional[Iterable[str]]) -> list:
    """The corruption names (all of :data:`CORRUPTIONS` for None), each checked; at least one."""
    names = list(CORRUPTIONS) if names is None else list(names)
    if not names:
        raise ValueError("names must hold at least one corruption")
    for name in names:
        check_choice("corruption", name, CORRUPTIONS)
    return names
