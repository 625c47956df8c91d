"""Per-image correctness: the mean over images is (clean or adversarial) accuracy."""

from __future__ import annotations

import torch

from rattrlib.metrics._common import as_tensor, metric


@metric(higher_is_better=True, cite="top-1 accuracy; Madry et al. 2018 (ICLR), §2 (adversarial accuracy)",
        bounds=(0.0, 1.0))
def accuracy(predictions, labels) -> torch.Tensor:
    """1.0 where ``predictions`` (N,) equal ``labels`` (N,), else 0.0: per-image scores whose mean is the
    accuracy (of clean images, or of adversarial examples for robust accuracy)."""
    predictions, labels = as_tensor(predictions, "predictions"), as_tensor(labels, "labels")
    if predictions.ndim != 1 or predictions.shape != labels.shape:
        raise ValueError(f"predictions and labels must be 1-D of the same length, got {tuple(predictions.shape)} "
                         f"and {tuple(labels.shape)}")
    return (predictions == labels).double()
