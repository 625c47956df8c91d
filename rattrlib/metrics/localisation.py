"""Weakly supervised localisation and segmentation from attribution maps (ART, Singh et al. 2020, §4.2 and
§5 'Image Segmentation'; the protocol's "Downstream tasks").

Pipeline (:func:`mask_from_map`, :func:`box_from_map`): per-image [optional percentile clipping] → min-max
normalise to [0, 1] → k×k mean filter (zero padding, as the authors' 3×3 conv) → [optional Gaussian filter]
→ keep pixels ``> threshold · max`` → largest connected component → its bounding box.
Scores: GT-known Loc (box IoU ≥ 0.5), Top-1 Loc (correct class and box IoU ≥ 0.5), Top-1 Seg (correct class
and mask IoU ≥ 0.5).

Boxes are float (N, 4) ``(x0, y0, x1, y1)`` in pixels with ``x1``/``y1`` **exclusive** (the convention of
:class:`rattrlib.data.base.ImageDataset`): a box covers columns ``x0 ≤ col < x1``, rows ``y0 ≤ row < y1``;
its area is ``(x1 − x0)(y1 − y0)``.

Differences from the authors' code (nupurkmr9/Attributional-Robustness, WSOL_CUB): it normalised with the
batch-wide min/max, clipped to the (2, 98) percentiles of the standardised map (``clip_percentiles=(2, 98)``
reproduces that per image), applied a Gaussian filter σ=3 after the mean filter (``gaussian_sigma=3``),
thresholded an 8-bit colour-mapped copy and kept the contour with the largest bounding rectangle. Here
thresholding is on the float map and "largest" means most pixels (ties: the component met first in raster
order), in 8-connectivity (the contours' connectivity) unless ``connectivity=4``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from rattrlib.config import check_choice
from rattrlib.metrics._common import as_tensor, check_batch, metric, out_dtype


def normalise_map(maps) -> torch.Tensor:
    """Per-image min-max normalisation to [0, 1]. maps: (N, ...). A constant map becomes all zeros."""
    maps = check_batch(maps, "maps", ndims=(2, 3, 4))
    x = maps.to(out_dtype(maps))
    flat = x.reshape(x.shape[0], -1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    out = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, 1), torch.zeros_like(flat))
    return out.reshape(x.shape)


def _check_options(threshold, smooth, clip_percentiles, gaussian_sigma, connectivity):
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold={threshold!r} must be in [0, 1) (a fraction of the map's maximum)")
    if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1 or smooth % 2 == 0:
        raise ValueError(f"smooth={smooth!r} must be an odd positive int (mean-filter size; 1 = no filter)")
    if clip_percentiles is not None:
        low, high = clip_percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"clip_percentiles={clip_percentiles!r} must be (low, high) with 0 ≤ low < high ≤ 100")
    if gaussian_sigma < 0:
        raise ValueError(f"gaussian_sigma={gaussian_sigma!r} must be ≥ 0")
    check_choice("connectivity", connectivity, (4, 8))


def _smoothed(maps: torch.Tensor, smooth: int, clip_percentiles, gaussian_sigma: float) -> torch.Tensor:
    """The processed (N, H, W) map that is thresholded."""
    x = maps.to(out_dtype(maps))
    if clip_percentiles is not None:
        flat = x.reshape(x.shape[0], -1)
        q = torch.tensor([clip_percentiles[0] / 100, clip_percentiles[1] / 100], dtype=x.dtype, device=x.device)
        rows = max(1, 2**24 // flat.shape[1])  # torch.quantile refuses inputs above 2**24 elements
        # (2, N): linear interpolation, as np.percentile's default
        bounds = torch.cat([torch.quantile(flat[i:i + rows], q, dim=1) for i in range(0, len(flat), rows)], dim=1)
        x = torch.maximum(torch.minimum(x, bounds[1][:, None, None]), bounds[0][:, None, None])
    x = normalise_map(x)
    if smooth > 1:
        x = F.avg_pool2d(x[:, None], smooth, stride=1, padding=smooth // 2, count_include_pad=True)[:, 0]
    if gaussian_sigma > 0:
        smoothed = [ndimage.gaussian_filter(img, gaussian_sigma) for img in x.detach().cpu().numpy()]
        x = torch.as_tensor(np.stack(smoothed), device=maps.device)
    return x


def _largest_component(mask: np.ndarray, connectivity: int) -> np.ndarray:
    """The connected component of the bool (H, W) ``mask`` with the most pixels (ties: lowest label)."""
    structure = ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)
    labels, count = ndimage.label(mask, structure=structure)
    if count <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def mask_from_map(maps, threshold: float = 0.2, smooth: int = 3, clip_percentiles=None,
                  gaussian_sigma: float = 0.0, largest_component: bool = False, connectivity: int = 8) -> torch.Tensor:
    """Bool (N, H, W) object mask from (N, H, W) attribution maps (ART §5, weakly supervised segmentation).

    Steps as in the module docstring: [clip to ``clip_percentiles`` (low, high) per image] → min-max
    normalise → ``smooth``×``smooth`` mean filter (zero padding; 1 = none) → [Gaussian σ=``gaussian_sigma``]
    → ``map > threshold · max(map)`` (strict, as cv2.THRESH_BINARY) → optionally only the largest connected
    component. threshold ∈ [0, 1); a constant map gives an empty mask.
    """
    maps = check_batch(maps, "maps", ndims=(3,))
    _check_options(threshold, smooth, clip_percentiles, gaussian_sigma, connectivity)
    x = _smoothed(maps, smooth, clip_percentiles, gaussian_sigma)
    peak = x.reshape(x.shape[0], -1).max(dim=1).values
    mask = x > threshold * peak[:, None, None]
    if largest_component:
        kept = [_largest_component(m, connectivity) for m in mask.cpu().numpy()]
        mask = torch.as_tensor(np.stack(kept), device=maps.device)
    return mask


def _mask_box(mask: torch.Tensor) -> torch.Tensor:
    """(x0, y0, x1, y1) exclusive-corner boxes around each True region of a bool (N, H, W) mask; (0, 0, 0, 0)
    for an empty mask."""
    n, h, w = mask.shape
    rows, cols = mask.any(dim=2), mask.any(dim=1)
    r_idx = torch.arange(h, device=mask.device)
    c_idx = torch.arange(w, device=mask.device)
    y0 = torch.where(rows, r_idx, h).min(dim=1).values
    y1 = torch.where(rows, r_idx + 1, 0).max(dim=1).values
    x0 = torch.where(cols, c_idx, w).min(dim=1).values
    x1 = torch.where(cols, c_idx + 1, 0).max(dim=1).values
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    return torch.where(rows.any(dim=1)[:, None], boxes, torch.zeros_like(boxes))


def box_from_map(maps, threshold: float = 0.2, smooth: int = 3, clip_percentiles=None,
                 gaussian_sigma: float = 0.0, connectivity: int = 8) -> torch.Tensor:
    """Float (N, 4) boxes ``(x0, y0, x1, y1)``, x1/y1 exclusive, around the largest connected component of the
    thresholded map (ART §4.2; protocol: normalise → 3×3 mean filter → threshold 0.2 → largest component).

    maps: (N, H, W) (the |·| channel-mean map of the predicted class). Options as :func:`mask_from_map`.
    Note the 3×3 filter spreads a blob by one pixel at levels ≥ 1/3 of an edge's height, so with the default
    threshold 0.2 the box of a sharp rectangle is one pixel larger on each side. A constant (e.g. all-zero)
    map gives the empty box (0, 0, 0, 0), whose IoU with anything is 0 (the authors' code returned
    (0, 0, 1, 1)). Components are found with ``scipy.ndimage.label`` on the CPU, one image at a time.
    """
    mask = mask_from_map(maps, threshold, smooth, clip_percentiles, gaussian_sigma, largest_component=True,
                         connectivity=connectivity)
    return _mask_box(mask).to(out_dtype(as_tensor(maps, "maps")))


def _check_boxes(boxes, name: str) -> torch.Tensor:
    boxes = as_tensor(boxes, name)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must be (N, 4) boxes (x0, y0, x1, y1), got shape {tuple(boxes.shape)}")
    if bool((boxes[:, 2] < boxes[:, 0]).any() | (boxes[:, 3] < boxes[:, 1]).any()):
        raise ValueError(f"{name} has boxes with x1 < x0 or y1 < y0 (corners are (x0, y0, x1, y1), x1/y1 exclusive)")
    return boxes


@metric(higher_is_better=True, cite="intersection over union; Singh et al. 2020 (ART), §4.2", bounds=(0.0, 1.0))
def box_iou(a, b) -> torch.Tensor:
    """IoU of paired boxes (N, 4) ``(x0, y0, x1, y1)`` with exclusive x1/y1 (area = (x1−x0)(y1−y0)).

    Returns (N,) in [0, 1]; 0 when both boxes are empty (no union). Box i of ``a`` is compared with box i of
    ``b`` (no all-pairs matrix).
    """
    a, b = _check_boxes(a, "a"), _check_boxes(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must both be (N, 4) with the same N, got {tuple(a.shape)} and {tuple(b.shape)}")
    dtype = out_dtype(a, b)
    a, b = a.to(dtype), b.to(dtype)
    iw = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, 1), torch.zeros_like(inter))


@metric(higher_is_better=True, cite="intersection over union; Singh et al. 2020 (ART), §5 'Image Segmentation'",
        bounds=(0.0, 1.0))
def mask_iou(a, b) -> torch.Tensor:
    """IoU of paired masks (N, H, W) (bool, or numbers read as ``!= 0``). Returns (N,) float in [0, 1]; 0 when
    both masks are empty."""
    a = check_batch(a, "a", ndims=(3,))
    b = check_batch(b, "b", ndims=(3,))
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a != 0, b != 0
    inter = (a & b).sum(dim=(1, 2))
    union = (a | b).sum(dim=(1, 2))
    dtype = torch.get_default_dtype()
    return torch.where(union > 0, inter.to(dtype) / union.clamp(min=1).to(dtype), torch.zeros((), dtype=dtype))


def _check_labels(pred_labels, labels, n: int):
    pred_labels, labels = as_tensor(pred_labels, "pred_labels"), as_tensor(labels, "labels")
    for name, value in (("pred_labels", pred_labels), ("labels", labels)):
        if value.shape != (n,):
            raise ValueError(f"{name} must be ({n},), got shape {tuple(value.shape)}")
    return pred_labels, labels


def _check_iou_threshold(iou_threshold: float) -> None:
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold={iou_threshold!r} must be in (0, 1]")


@metric(higher_is_better=True, cite="Choe & Shim 2019 (ADL); Singh et al. 2020 (ART), §4.2 'GT-Known Loc'",
        bounds=(0.0, 1.0))
def gt_known_loc(pred_boxes, gt_boxes, iou_threshold: float = 0.5) -> torch.Tensor:
    """GT-known localisation hit: ``box_iou(pred, gt) ≥ iou_threshold`` (0.5), class ignored.
    (N, 4) boxes → bool (N,); its mean is the GT-Known Loc rate (the papers report ×100)."""
    _check_iou_threshold(iou_threshold)
    return box_iou(pred_boxes, gt_boxes) >= iou_threshold


@metric(higher_is_better=True, cite="Choe & Shim 2019 (ADL); Singh et al. 2020 (ART), §4.2 'Top-1 Loc'",
        bounds=(0.0, 1.0))
def top1_loc(pred_boxes, gt_boxes, pred_labels, labels, iou_threshold: float = 0.5) -> torch.Tensor:
    """Top-1 localisation hit: predicted class correct AND ``box_iou ≥ iou_threshold`` (0.5).
    Boxes (N, 4), labels (N,) → bool (N,); its mean is the Top-1 Loc rate."""
    hit = gt_known_loc(pred_boxes, gt_boxes, iou_threshold)
    pred_labels, labels = _check_labels(pred_labels, labels, hit.shape[0])
    return hit & (pred_labels.to(hit.device) == labels.to(hit.device))


@metric(higher_is_better=True, cite="Singh et al. 2020 (ART), §5 'Image Segmentation' (Top-1 Seg)",
        bounds=(0.0, 1.0))
def top1_seg(pred_masks, gt_masks, pred_labels, labels, iou_threshold: float = 0.5) -> torch.Tensor:
    """Top-1 segmentation hit: predicted class correct AND ``mask_iou ≥ iou_threshold`` (0.5).
    Masks (N, H, W), labels (N,) → bool (N,); its mean is the Top-1 Seg rate."""
    _check_iou_threshold(iou_threshold)
    hit = mask_iou(pred_masks, gt_masks) >= iou_threshold
    pred_labels, labels = _check_labels(pred_labels, labels, hit.shape[0])
    return hit & (pred_labels.to(hit.device) == labels.to(hit.device))
