"""rattrlib.metrics against independent oracles: scipy.stats, set-based top-k, hand computations."""

import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
import torch

from rattrlib import metrics as M


def _maps(kind: str, shape, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of batches (a, b) with a chosen amount of ties, float64."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    b = a + 0.7 * torch.rand(shape, generator=g, dtype=torch.float64)
    if kind == "integer":  # few distinct values: ties everywhere
        a, b = (a * 4).round(), (b * 3).round()
    elif kind == "rounded":
        a, b = a.round(decimals=1), b.round(decimals=2)
    elif kind == "zeros":  # most pixels exactly zero, like saturated |gradient| maps
        a = a * (a > 0.8)
        b = b * (torch.rand(shape, generator=g, dtype=torch.float64) > 0.85)
    return a, b


def _scipy_rows(fn, a, b):
    return np.array([fn(x.ravel().numpy(), y.ravel().numpy()).statistic for x, y in zip(a, b)])


# ---------------------------------------------------------------- rank metrics

@pytest.mark.parametrize("size", [28, 64])
@pytest.mark.parametrize("kind", ["random", "integer", "rounded", "zeros"])
def test_kendall_and_spearman_equal_scipy(size, kind):
    a, b = _maps(kind, (4, size, size), seed=size)
    tau = M.kendall_tau(a, b, method="sort")  # the batched torch path (the default on GPU)
    assert tau.shape == (4,) and tau.dtype == torch.float64
    np.testing.assert_allclose(tau.numpy(), _scipy_rows(scipy.stats.kendalltau, a, b), rtol=0, atol=1e-6)
    rho = M.spearman_rho(a, b)
    np.testing.assert_allclose(rho.numpy(), _scipy_rows(scipy.stats.spearmanr, a, b), rtol=0, atol=1e-6)


def test_kendall_and_spearman_equal_scipy_at_224():
    """ImageNet-sized maps: int64 pair counts stay exact at D = 50 176 (≈1.26e9 pairs)."""
    a, b = _maps("rounded", (2, 224, 224), seed=224)
    np.testing.assert_allclose(M.kendall_tau(a, b, method="sort").numpy(), _scipy_rows(scipy.stats.kendalltau, a, b),
                               atol=1e-9)
    np.testing.assert_allclose(M.spearman_rho(a, b).numpy(), _scipy_rows(scipy.stats.spearmanr, a, b), atol=1e-9)


@pytest.mark.parametrize("kind", ["random", "integer", "zeros"])
def test_kendall_pairwise_method_agrees(kind):
    a, b = _maps(kind, (5, 11, 13), seed=3)
    ref = _scipy_rows(scipy.stats.kendalltau, a, b)
    np.testing.assert_allclose(M.kendall_tau(a, b, method="pairwise").numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(M.kendall_tau(a, b, method="sort").numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(M.kendall_tau(a, b).numpy(), ref, rtol=0, atol=1e-12)  # "auto" (scipy on CPU)


def test_rank_metrics_flat_float32_and_odd_sizes():
    """(N, D) input, float32 dtype kept, D not a power of two, tiny D."""
    for d in (2, 3, 5, 37):
        a, b = _maps("integer", (6, d), seed=d)
        a, b = a.float(), b.float()
        with _no_warn():
            ref_t = _scipy_rows(scipy.stats.kendalltau, a, b)
            ref_r = _scipy_rows(scipy.stats.spearmanr, a, b)
        tau, rho = M.kendall_tau(a, b, method="sort"), M.spearman_rho(a, b)
        assert tau.dtype == torch.float32 and M.kendall_tau(a, b).dtype == torch.float32
        np.testing.assert_allclose(tau.numpy(), ref_t, rtol=0, atol=1e-6)
        np.testing.assert_allclose(rho.numpy(), ref_r, rtol=0, atol=1e-6)


class _no_warn:
    """Silence scipy's constant-input warning inside a block."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_rank_metrics_constant_map_is_nan_like_scipy():
    a, b = _maps("random", (3, 8, 8))
    a[1] = 0.5
    b[2] = 0.0
    tau, rho = M.kendall_tau(a, b), M.spearman_rho(a, b)
    with _no_warn():
        ref_t = _scipy_rows(scipy.stats.kendalltau, a, b)
        ref_r = _scipy_rows(scipy.stats.spearmanr, a, b)
    assert np.isnan(ref_t[1:]).all() and np.isnan(ref_r[1:]).all()
    assert torch.isnan(tau[1:]).all() and torch.isnan(rho[1:]).all()
    assert not torch.isnan(tau[0]) and not torch.isnan(rho[0])
    for method in ("sort", "pairwise", "scipy"):
        assert torch.isnan(M.kendall_tau(a, b, method=method)[1:]).all()


def test_rank_identity_and_reversal():
    a, _ = _maps("integer", (2, 9, 9))
    assert torch.allclose(M.kendall_tau(a, a), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(M.spearman_rho(a, -a), -torch.ones(2, dtype=torch.float64))


def _topk_oracle(x: np.ndarray, k: int) -> set:
    """Top-k indices by value, ties towards the lower index (Python sort is stable)."""
    order = sorted(range(len(x)), key=lambda i: -x[i])
    return set(order[:k])


@pytest.mark.parametrize("kind", ["random", "integer"])
def test_topk_intersection_matches_set_oracle(kind):
    a, b = _maps(kind, (5, 10, 10), seed=7)
    for k in (1, 7, 30, 100):
        got = M.topk_intersection(a, b, k)
        want = [len(_topk_oracle(x.ravel().tolist(), k) & _topk_oracle(y.ravel().tolist(), k)) / k
                for x, y in zip(a, b)]
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_topk_intersection_hand_cases():
    a = torch.arange(16.0).reshape(1, 4, 4)
    assert M.topk_intersection(a, a, 5).item() == 1.0
    assert M.topk_intersection(a, -a, 8).item() == 0.0  # top-8 of a = indices 8..15, of −a = 0..7
    assert M.topk_intersection(a, -a, 10).item() == pytest.approx(0.4)  # {6..15} ∩ {0..9} = {6..9}
    # ties go to the lower index: all-equal maps pick indices 0..k−1
    flat = torch.zeros(1, 16)
    assert M.topk_mask(flat, 3)[0].nonzero().ravel().tolist() == [0, 1, 2]


# ---------------------------------------------------------------- distances

def test_center_of_mass_hand_built():
    m = torch.zeros(3, 6, 7)
    m[0, 2, 5] = 1.0
    m[1, 1, 1] = m[1, 3, 5] = 2.0  # two equal hot pixels → midpoint (2, 3)
    m[2, 0, 0], m[2, 0, 6] = 1.0, 3.0  # weighted: col = (0·1 + 6·3) / 4 = 4.5
    com = M.center_of_mass(m)
    assert torch.allclose(com, torch.tensor([[2.0, 5.0], [2.0, 3.0], [0.0, 4.5]]))
    assert torch.isnan(M.center_of_mass(torch.zeros(1, 4, 4))).all()


def test_dislocation_of_shifted_map_is_shift_length():
    g = torch.Generator().manual_seed(1)
    a = torch.zeros(2, 20, 20, dtype=torch.float64)
    a[:, 4:9, 3:10] = torch.rand(2, 5, 7, generator=g, dtype=torch.float64)
    b = torch.roll(a, shifts=(3, 4), dims=(1, 2))  # stays inside the frame
    assert torch.allclose(M.center_of_mass_dislocation(a, b), torch.full((2,), 5.0, dtype=torch.float64))
    b2 = torch.roll(a, shifts=(1, 2), dims=(1, 2))
    assert torch.allclose(M.center_of_mass_dislocation(a, b2), torch.full((2,), math.sqrt(5), dtype=torch.float64))
    assert torch.allclose(M.center_of_mass_dislocation(a, 7 * a), torch.zeros(2, dtype=torch.float64))


def test_distances_are_differentiable():
    """Attacks use cdl / cosd / alignment as losses: gradients must match finite differences."""
    g = torch.Generator().manual_seed(5)
    a = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) + 0.1
    b = torch.rand(2, 5, 6, generator=g, dtype=torch.float64) + 0.1
    x = a.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: M.center_of_mass_dislocation(t, b), (x,))
    assert torch.autograd.gradcheck(lambda t: M.cosine_distance(t, b), (x,))
    assert torch.autograd.gradcheck(lambda t: M.alignment(t, b), (x,))


def test_center_of_mass_refuses_negative_maps():
    with pytest.raises(ValueError, match="nonnegative"):
        M.center_of_mass(-torch.ones(1, 3, 3))


def test_cosine_distance():
    a = torch.rand(4, 5, 5, dtype=torch.float64)
    assert torch.allclose(M.cosine_distance(a, a), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(M.cosine_distance(a, 3.5 * a), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    x = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    y = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.allclose(M.cosine_distance(x, y), torch.tensor([1.0, 1 - 1 / math.sqrt(2)]))
    scipy_ref = [scipy.spatial.distance.cosine(p.ravel(), q.ravel()) for p, q in zip(a.numpy(), a.flip(1).numpy())]
    np.testing.assert_allclose(M.cosine_distance(a, a.flip(1)).numpy(), scipy_ref, atol=1e-12)


# ---------------------------------------------------------------- log-AUC

def test_log_auc_hand_computed():
    eps = torch.tensor([2, 4, 8, 16]) / 255
    assert M.log_auc(eps, torch.full((4,), 0.7)).item() == pytest.approx(0.7)
    # linear in log2 ε: v = log2(ε·255) = 1, 2, 3, 4 → mean over the range = midpoint 2.5
    assert M.log_auc(eps, torch.tensor([1.0, 2.0, 3.0, 4.0])).item() == pytest.approx(2.5)
    # uneven spacing: ε = 1, 2, 8 → x = 0, 1, 3; area = (1+3)/2·1 + (3+0)/2·2 = 5 → 5/3
    cols = M.log_auc([1.0, 2.0, 8.0], torch.tensor([[1.0, 5.0], [3.0, 5.0], [0.0, 5.0]]))
    assert cols.shape == (2,)
    assert torch.allclose(cols, torch.tensor([5 / 3, 5.0]))
    np.testing.assert_allclose(cols[0].item(), np.trapezoid([1, 3, 0], [0, 1, 3]) / 3)


@pytest.mark.parametrize("eps", [[2.0, 2.0, 4.0], [4.0, 2.0], [0.0, 1.0], [-1.0, 1.0], [1.0]])
def test_log_auc_rejects_bad_eps(eps):
    with pytest.raises(ValueError):
        M.log_auc(eps, torch.zeros(len(eps)))


def test_log_auc_rejects_mismatched_values():
    with pytest.raises(ValueError, match="match eps"):
        M.log_auc([1.0, 2.0, 4.0], torch.zeros(4, 3))


# ---------------------------------------------------------------- attribution-aware

def test_aa_metrics_are_the_product_formula():
    ref, a = _maps("random", (3, 8, 8), seed=11)
    _, b = _maps("integer", (3, 8, 8), seed=12)
    k = 10
    assert torch.allclose(M.aa_topk(ref, a, b, k), M.topk_intersection(ref, a, k) * M.topk_intersection(a, b, k))
    assert torch.allclose(M.aa_kendall(ref, a, b), M.kendall_tau(ref, a) * M.kendall_tau(a, b))
    assert torch.allclose(M.aa_spearman(ref, a, b), M.spearman_rho(ref, a) * M.spearman_rho(a, b))
    # ref == a: goodness is 1, the AA metric is the plain one
    assert torch.allclose(M.aa_topk(a, a, b, k), M.topk_intersection(a, b, k))
    assert torch.allclose(M.aa_kendall(a, a, b), M.kendall_tau(a, b))
    assert torch.allclose(M.aa_spearman(a, a, b), M.spearman_rho(a, b))


def test_aa_topk_hand_case_and_mask_reference():
    a = torch.tensor([[4.0, 3.0, 2.0, 1.0]])  # top-2 = {0, 1}
    b = torch.tensor([[4.0, 1.0, 3.0, 2.0]])  # top-2 = {0, 2} → similarity 1/2
    ref = torch.tensor([[1.0, 0.0, 0.0, 2.0]])  # top-2 = {3, 0} → goodness 1/2
    assert M.aa_topk(ref, a, b, 2).item() == pytest.approx(0.25)
    mask = torch.tensor([[True, True, True, False]])  # both of topk(a) inside → goodness 1
    assert M.aa_topk(mask, a, b, 2).item() == pytest.approx(0.5)
    # a bool mask in Kendall/Spearman is read as 0/1 values
    assert torch.allclose(M.aa_kendall(mask, a, b), M.kendall_tau(mask.float(), a) * M.kendall_tau(a, b))
    assert torch.allclose(M.aa_spearman(mask, a, b), M.spearman_rho(mask.float(), a) * M.spearman_rho(a, b))


# ---------------------------------------------------------------- alignment

def test_alignment():
    x = torch.rand(3, 2, 4, 4)
    assert torch.allclose(M.alignment(x, x), torch.ones(3))
    assert torch.allclose(M.alignment(x, -2 * x), -torch.ones(3))
    x1 = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]]])
    g1 = torch.tensor([[[[1.0, 1.0]]], [[[0.0, 3.0]]]])
    assert torch.allclose(M.alignment(x1, g1), torch.tensor([math.cos(math.pi / 4), 0.0]), atol=1e-7)


# ---------------------------------------------------------------- localisation

def test_normalise_map():
    m = torch.tensor([[[1.0, 3.0], [2.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]]])
    assert torch.allclose(M.normalise_map(m), torch.tensor([[[0.0, 0.5], [0.25, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]))


def test_box_from_map_recovers_rectangle_exclusive_corners():
    m = torch.zeros(2, 16, 20)
    m[0, 3:9, 5:14] = 1.0  # rows 3..8, cols 5..13 → box (5, 3, 14, 9)
    m[1, 0:4, 10:20] = 2.0  # touching the top/right border → (10, 0, 20, 4)
    no_filter = M.box_from_map(m, threshold=0.2, smooth=1)
    assert no_filter.tolist() == [[5.0, 3.0, 14.0, 9.0], [10.0, 0.0, 20.0, 4.0]]
    # 3×3 mean filter: in-edge pixels keep ≥ 4/9, out-edge neighbours get ≤ 1/3 → threshold 0.5 is exact …
    assert M.box_from_map(m, threshold=0.5).tolist() == no_filter.tolist()
    # … and the default 0.2 keeps the one-pixel halo (value 1/3 on the edges, 1/9 at the corners)
    assert M.box_from_map(m)[0].tolist() == [4.0, 2.0, 15.0, 10.0]
    gt = torch.tensor([[5.0, 3.0, 14.0, 9.0], [10.0, 0.0, 20.0, 4.0]])
    assert M.box_iou(no_filter, gt).tolist() == [1.0, 1.0]


def test_box_from_map_picks_largest_component():
    m = torch.zeros(1, 20, 20)
    m[0, 1:3, 1:4] = 1.0  # 6 pixels, the brightest
    m[0, 10:15, 8:12] = 0.6  # 20 pixels
    assert M.box_from_map(m, threshold=0.2, smooth=1).tolist() == [[8.0, 10.0, 12.0, 15.0]]
    mask = M.mask_from_map(m, threshold=0.2, smooth=1)
    assert mask.sum().item() == 26
    assert M.mask_from_map(m, threshold=0.2, smooth=1, largest_component=True).sum().item() == 20
    # diagonal touch joins two blobs in 8-connectivity, not in 4-connectivity
    d = torch.zeros(1, 10, 10)
    d[0, 0:3, 0:3] = 1.0  # 9 pixels
    d[0, 3:5, 3:8] = 1.0  # 10 pixels, touching the first only at a corner
    assert M.box_from_map(d, smooth=1, connectivity=8).tolist() == [[0.0, 0.0, 8.0, 5.0]]
    assert M.box_from_map(d, smooth=1, connectivity=4).tolist() == [[3.0, 3.0, 8.0, 5.0]]


def test_box_from_map_constant_map_gives_empty_box_and_options():
    assert M.box_from_map(torch.zeros(1, 5, 5)).tolist() == [[0.0, 0.0, 0.0, 0.0]]
    m = torch.zeros(1, 12, 12)
    m[0, 4:8, 4:8] = 1.0
    m[0, 0, 0] = 100.0  # a single outlier: without clipping it dominates the normalisation
    assert M.box_from_map(m, smooth=1).tolist() == [[0.0, 0.0, 1.0, 1.0]]
    clipped = M.box_from_map(m, smooth=1, clip_percentiles=(2, 98))
    # the (2, 98) percentiles are (0, 1): the outlier drops to the blob's level and the 16-pixel blob wins
    assert clipped.tolist() == [[4.0, 4.0, 8.0, 8.0]]
    assert M.box_from_map(m, smooth=1, gaussian_sigma=1.0).shape == (1, 4)


def test_box_iou_and_mask_iou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0, 4.0, 4.0], [4.0, 0.0, 8.0, 4.0], [2.0, 0.0, 6.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    # identical, touching-but-disjoint (exclusive x1), half-shifted 8/(16+16−8)=1/3, both empty
    assert torch.allclose(M.box_iou(a, b), torch.tensor([1.0, 0.0, 1 / 3, 0.0]))
    assert torch.allclose(M.box_iou(a[:1], torch.tensor([[0.0, 0.0, 4.0, 2.0]])), torch.tensor([0.5]))
    ma = torch.zeros(3, 4, 4, dtype=torch.bool)
    mb = torch.zeros(3, 4, 4, dtype=torch.bool)
    ma[0, :2], mb[0, :2] = True, True
    ma[1, :2], mb[1, 2:] = True, True
    ma[2, :, :2], mb[2, :, 1:3] = True, True  # 4 / 12
    assert torch.allclose(M.mask_iou(ma, mb), torch.tensor([1.0, 0.0, 1 / 3]))
    assert M.mask_iou(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)).item() == 0.0


def test_localisation_flags_combine_class_and_iou():
    pred = torch.tensor([[0.0, 0.0, 4.0, 4.0]] * 4)
    gt = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 4.0], [2.0, 0.0, 6.0, 4.0]])
    pred_labels, labels = torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 4])
    assert M.gt_known_loc(pred, gt).tolist() == [True, True, True, False]  # IoU 1, 0.5, 1, 1/3
    assert M.top1_loc(pred, gt, pred_labels, labels).tolist() == [True, True, False, False]
    pm = torch.zeros(3, 4, 4, dtype=torch.bool)
    gm = torch.zeros(3, 4, 4, dtype=torch.bool)
    pm[:, :2] = True
    gm[0, :2], gm[1, :2], gm[2, :1] = True, True, True  # IoU 1, 1, 0.5
    assert M.top1_seg(pm, gm, torch.tensor([0, 1, 2]), torch.tensor([0, 9, 2])).tolist() == [True, False, True]


# ---------------------------------------------------------------- validation and registry

@pytest.mark.parametrize("call", [
    lambda: M.kendall_tau(torch.rand(2, 4, 4), torch.rand(2, 4, 5)),
    lambda: M.spearman_rho(torch.rand(4), torch.rand(4)),
    lambda: M.topk_intersection(torch.rand(2, 4, 4), torch.rand(2, 4, 4), 0),
    lambda: M.topk_intersection(torch.rand(2, 4, 4), torch.rand(2, 4, 4), 17),
    lambda: M.topk_intersection(torch.rand(2, 4, 4), torch.rand(2, 4, 4), 2.5),
    lambda: M.kendall_tau(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)),
    lambda: M.kendall_tau(torch.rand(2, 4), torch.rand(2, 4), method="fast"),
    lambda: M.kendall_tau(torch.tensor([[1.0, float("nan")]]), torch.rand(1, 2)),
    lambda: M.center_of_mass_dislocation(torch.rand(2, 16), torch.rand(2, 16)),
    lambda: M.cosine_distance(torch.rand(3, 4), torch.rand(2, 4)),
    lambda: M.aa_topk(torch.rand(2, 9), torch.rand(2, 8), torch.rand(2, 8), 2),
    lambda: M.alignment(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 5)),
    lambda: M.box_from_map(torch.rand(2, 8, 8), threshold=1.0),
    lambda: M.box_from_map(torch.rand(2, 8, 8), smooth=2),
    lambda: M.box_from_map(torch.rand(8, 8)),
    lambda: M.box_iou(torch.zeros(2, 4), torch.zeros(3, 4)),
    lambda: M.box_iou(torch.tensor([[2.0, 0.0, 1.0, 1.0]]), torch.zeros(1, 4)),
    lambda: M.top1_loc(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(3), torch.zeros(2)),
    lambda: M.mask_iou(torch.zeros(2, 3, 3), torch.zeros(2, 3, 4)),
])
def test_bad_inputs_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_registry_declares_direction_and_source():
    expected_lower = {"center_of_mass_dislocation", "cosine_distance"}
    for name, fn in M.METRICS.items():
        assert fn.__name__ == name and fn.cite
        if name == "log_auc":
            assert fn.higher_is_better is None
        else:
            assert fn.higher_is_better is (name not in expected_lower)
    assert {"topk_intersection", "kendall_tau", "spearman_rho", "aa_topk", "alignment", "top1_seg"} <= set(M.METRICS)
