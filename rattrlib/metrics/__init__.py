"""Metrics on attribution maps: rank similarity, geometric distance, log-AUC, attribution-aware products,
input-gradient alignment, and weakly supervised localisation.

Every function is batched: maps are (N, H, W) (or (N, D)) tensors of the same shape and the result is one
score per image, (N,). Each scoring function carries ``higher_is_better``, ``cite`` and ``bounds`` and is
registered by name in :data:`METRICS` (Quantus-style declared direction and source).

==================================  =========  ================================================
metric                              better     source
==================================  =========  ================================================
accuracy (per-image 0/1; mean)     higher     Madry et al. 2018, §2
topk_intersection (fraction; ×100)  higher     Ghorbani et al. 2019, §3
kendall_tau (τ-b, = scipy)          higher     Ghorbani et al. 2019, §3
spearman_rho (= scipy)              higher     Ghorbani et al. 2019, §3
center_of_mass_dislocation          lower      SSR §5 (cdl)
cosine_distance                     lower      SSR §5 (cosd)
log_auc                             (metric's) SSR Fig. 2a
aa_topk / aa_kendall / aa_spearman  higher     GALI eq. 10–12
alignment                           higher     Etmann et al. 2019; ART Fig. 6
box_iou / mask_iou                  higher     ART §4.2 / §5
gt_known_loc / top1_loc / top1_seg  higher     ART §4.2 / §5 (bool hits; mean = rate)
==================================  =========  ================================================

Explanation-robustness metrics of an explainer (not of two maps, so listed in ``SENSITIVITY_METRICS``,
not in ``METRICS``): max_sensitivity / avg_sensitivity (Yeh et al. 2019), local_lipschitz_estimate
(Alvarez-Melis & Jaakkola 2018), relative_input_stability (Agarwal et al. 2022); lower is better, Quantus'
conventions in :mod:`rattrlib.metrics.sensitivity`.
"""

from rattrlib.metrics._common import METRICS, metric
from rattrlib.metrics.accuracy import accuracy
from rattrlib.metrics.alignment import alignment
from rattrlib.metrics.auc import log_auc
from rattrlib.metrics.aware import aa_kendall, aa_spearman, aa_topk
from rattrlib.metrics.distance import center_of_mass, center_of_mass_dislocation, cosine_distance
from rattrlib.metrics.localisation import (
    box_from_map,
    box_iou,
    gt_known_loc,
    mask_from_map,
    mask_iou,
    normalise_map,
    top1_loc,
    top1_seg,
)
from rattrlib.metrics.rank import average_rank, kendall_tau, spearman_rho, topk_intersection, topk_mask
from rattrlib.metrics.sensitivity import (
    SENSITIVITY_METRICS,
    avg_sensitivity,
    local_lipschitz_estimate,
    max_sensitivity,
    relative_input_stability,
    sample_noise,
)

__all__ = [
    "METRICS",
    "metric",
    "accuracy",
    "topk_intersection",
    "topk_mask",
    "kendall_tau",
    "spearman_rho",
    "average_rank",
    "center_of_mass",
    "center_of_mass_dislocation",
    "cosine_distance",
    "log_auc",
    "aa_topk",
    "aa_kendall",
    "aa_spearman",
    "alignment",
    "normalise_map",
    "mask_from_map",
    "box_from_map",
    "box_iou",
    "mask_iou",
    "gt_known_loc",
    "top1_loc",
    "top1_seg",
    "SENSITIVITY_METRICS",
    "max_sensitivity",
    "avg_sensitivity",
    "local_lipschitz_estimate",
    "relative_input_stability",
    "sample_noise",
]
