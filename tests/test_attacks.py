"""Attacks: ε-ball and [0, 1] constraints, PGD against a trained tiny model, IFIA / Manipulate bookkeeping
against an independent per-image reference loop, the failure path, the random baseline and the evaluation
report. Tiny ReLU CNNs on 1×8×8 images, a few steps each."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

from rattrlib.attacks import (ATTACKS, IFIA, PGD, SCORES, AttackResult, Manipulate, RandomSignNoise,
                              evaluate_attributional_robustness, get_attack, mean_ci, pgd_accuracy)
from rattrlib.attributions import IntegratedGradients, attribution_map, smooth_copy
from rattrlib.metrics import METRICS
from rattrlib.metrics.distance import center_of_mass_dislocation
from rattrlib.metrics.rank import kendall_tau, topk_intersection, topk_mask

M = 4  # IG steps inside the attacks: small keeps the tests fast
IG_KW = {"n_steps": M}


def images(n=6, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g, dtype=dtype)


def tiny_cnn(classes=3, seed=0, dtype=torch.float32, centred=True):
    """A random ReLU CNN. ``centred``: the last bias is shifted so the mean logits over random images are equal,
    so predictions vary between images and margins are small (labels do flip during attacks)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(6 * 64, 16), nn.ReLU(), nn.Linear(16, classes)).to(dtype).eval()
    if centred:
        with torch.no_grad():
            net[-1].bias -= net(images(64, seed=99, dtype=dtype)).mean(0)
    return net


def two_class_task(n=64, seed=0):
    """Bright left half (class 0) or bright right half (class 1), plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = 0.1 * torch.rand(n, 1, 8, 8, generator=g)
    x[y == 0, :, :, :4] += 0.5
    x[y == 1, :, :, 4:] += 0.5
    return x.clamp(0, 1), y


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one thread is fastest, and avoids OpenMP spin-waits when the 2 cores are shared
    (measured: 60 Adam steps took 15 s with 2 threads under load, 0.2 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = tiny_cnn(classes=2)
    x, y = two_class_task()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    xt, yt = two_class_task(32, seed=1)
    assert (model(xt).argmax(1) == yt).float().mean() == 1.0
    torch.set_num_threads(before)
    return model, xt, yt


def margin_model(x0, delta=1e-3, a=1.0, c=1.0):
    """Logits ``[c Σ x + δ, c Σ x + a ‖x − x0‖₁]`` as a ReLU net: class 0 at x0 with margin δ, and ANY change of
    x0 flips the label to 1 (a label flips immediately). Other images are class 1 and stay there when moved a
    little."""
    d = x0.numel()
    net = nn.Sequential(nn.Flatten(), nn.Linear(d, 3 * d), nn.ReLU(), nn.Linear(3 * d, 2)).to(x0.dtype)
    eye = torch.eye(d, dtype=x0.dtype)
    flat = x0.flatten()
    with torch.no_grad():
        net[1].weight.copy_(torch.cat([eye, eye, -eye]))
        net[1].bias.copy_(torch.cat([torch.zeros(d, dtype=x0.dtype), -flat, flat]))
        w2 = torch.zeros(2, 3 * d, dtype=x0.dtype)
        w2[0, :d] = c
        w2[1, :d] = c
        w2[1, d:] = a
        net[3].weight.copy_(w2)
        net[3].bias.copy_(torch.tensor([delta, 0.0], dtype=x0.dtype))
    return net.eval()


def in_ball(x_adv, x, eps, norm="linf", tol=1e-6):
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    return bool((size <= eps + tol).all()) and bool((x_adv >= 0).all()) and bool((x_adv <= 1).all())


# ------------------------------------------------------------------------------------------------------------
# PGD
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("eps", [0.0, 0.03, 0.3, 1.0])
@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_stays_in_ball_and_box(norm, eps, random_start):
    eps = eps if norm == "linf" else 3 * eps  # ℓ2 radii beyond 1 are legal
    model, x = tiny_cnn(), images(8)
    y = torch.arange(8) % 3
    g = torch.Generator().manual_seed(0)
    x_adv = PGD(model, eps, alpha=0.1, steps=3, norm=norm, random_start=random_start, generator=g).perturb(x, y)
    assert x_adv.shape == x.shape
    assert in_ball(x_adv, x, eps, norm)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_eps_zero_returns_the_input(norm):
    model, x = tiny_cnn(), images(4)
    x_adv = PGD(model, 0.0, alpha=0.1, steps=3, norm=norm).perturb(x, torch.zeros(4, dtype=torch.long))
    assert torch.equal(x_adv, x)


@pytest.mark.parametrize("norm,eps,alpha", [("linf", 0.3, 0.05), ("l2", 2.0, 0.5)])
def test_pgd_lowers_accuracy_and_raises_ce_of_a_trained_model(trained, norm, eps, alpha):
    model, x, y = trained
    attack = PGD(model, eps, alpha=alpha, steps=10, norm=norm, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        clean_ce = F.cross_entropy(model(x), y).item()
    x_adv = attack.perturb(x, y)
    with torch.no_grad():
        adv_ce = F.cross_entropy(model(x_adv), y).item()
    assert adv_ce > clean_ce + 0.5
    robust = pgd_accuracy(model, x, y, attack, batch_size=10)
    assert robust <= 0.5  # clean accuracy is 1.0
    assert in_ball(x_adv, x, eps, norm)
    # random noise of the same size does less: the drop is the gradient's work
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noise = eps * (noise.sign() if norm == "linf" else noise / noise.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
    with torch.no_grad():
        assert robust < (model((x + noise).clamp(0, 1)).argmax(1) == y).float().mean()


def test_pgd_leaves_mode_and_parameter_grads_alone():
    model, x = tiny_cnn(), images(4)
    model.train()
    PGD(model, 0.1, 0.05, 2).perturb(x, torch.zeros(4, dtype=torch.long))
    assert model.training
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------------------------------------------------
# attacks on attributions: constraints
# ------------------------------------------------------------------------------------------------------------
def build(kind, model, eps, random_start=False, steps=3, generator=None):
    common = dict(attribution_kwargs=IG_KW, eps=eps, alpha=max(eps, 0.01) / 2, steps=steps, k=8,
                  random_start=random_start, generator=generator)
    if kind == "manipulate":
        return Manipulate(model, **common)
    if kind == "random":
        return RandomSignNoise(model, eps, generator, attribution_kwargs=IG_KW, k=8)
    return IFIA(model, objective=kind, **common)


KINDS = ["topk", "mass_center", "targeted", "manipulate", "random"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("eps,random_start", [(0.02, False), (0.1, True), (0.3, False), (0.3, True)])
def test_attacks_on_attributions_stay_in_ball_and_box(kind, eps, random_start):
    model, x = tiny_cnn(), images(4)
    attack = build(kind, model, eps, random_start, generator=torch.Generator().manual_seed(3))
    target = attack.clean_maps(x.flip(0)) if attack.needs_target_map else None
    r = attack.perturb(x, target_map=target)
    assert isinstance(r, AttackResult) and len(r) == 4
    assert in_ball(r.x_adv, x, eps)
    assert r.clean_map.shape == r.adv_map.shape == (4, 8, 8)


@pytest.mark.parametrize("kind", KINDS)
def test_success_means_label_kept_and_failure_means_clean_image(kind):
    model, x = tiny_cnn(seed=2), images(6, seed=5)
    attack = build(kind, model, eps=0.3, steps=4, generator=torch.Generator().manual_seed(0))
    target = attack.clean_maps(x.roll(1, 0)) if attack.needs_target_map else None
    r = attack.perturb(x, target_map=target)
    with torch.no_grad():
        clean, adv = model(x).argmax(1), model(r.x_adv).argmax(1)
    assert torch.equal(r.label, clean)
    assert torch.equal(adv[r.success], clean[r.success])
    assert torch.equal(r.adv_label, adv)
    fail = ~r.success
    assert bool(fail.any()) and bool(r.success.any())  # both paths are exercised (checked for this seed)
    assert torch.equal(r.x_adv[fail], x[fail])
    assert torch.equal(r.adv_map[fail], r.clean_map[fail])
    assert bool((r.topk_intersection[fail] == 1).all()) and bool((r.best_step[fail] == -1).all())
    assert bool((r.best_step[r.success] >= 1).all())


@pytest.mark.parametrize("kind", KINDS)
def test_immediate_label_flip_is_a_failure_and_other_images_are_not_affected(kind):
    dtype = torch.float64
    x = 0.2 + 0.6 * images(3, seed=7, dtype=dtype)  # inside (0, 1): steps are never undone by the clamp
    model = margin_model(x[0])
    with torch.no_grad():
        assert model(x).argmax(1).tolist() == [0, 1, 1]
    attack = build(kind, model, eps=0.1, steps=3, generator=torch.Generator().manual_seed(0))
    target = attack.clean_maps(x.roll(1, 0)) if attack.needs_target_map else None
    r = attack.perturb(x, target_map=target)
    assert r.success.tolist() == [False, True, True]
    assert torch.equal(r.x_adv[0], x[0])
    assert r.best_step[0] == -1 and r.topk_intersection[0] == 1.0 and r.cosine_distance[0] == 0.0
    assert r.adv_label.tolist() == [0, 1, 1]
    assert not torch.equal(r.x_adv[1:], x[1:])


# ------------------------------------------------------------------------------------------------------------
# IFIA: an independent per-image reference loop is the oracle
# ------------------------------------------------------------------------------------------------------------
def reference_ifia(model, x1, objective, eps, alpha, steps, k, beta, target=None):
    """Ghorbani's Alg. 1 for ONE image, written out: every iterate with its label and criterion."""
    ig = IntegratedGradients(model, n_steps=M)
    ig_s = IntegratedGradients(smooth_copy(model, beta), n_steps=M)
    with torch.no_grad():
        label = model(x1).argmax(1)
    clean = attribution_map(ig.attribute(x1, label))
    hw = clean[0].numel()
    top = topk_mask(clean.flatten(1), k)[0]
    rows = torch.arange(8, dtype=x1.dtype)

    def centre(m):
        m = m[0]
        return torch.stack([(m.sum(1) * rows).sum() / m.sum(), (m.sum(0) * rows).sum() / m.sum()])

    def unit(m):
        return m / m.sum()

    iterates, xa = [], x1.clone()
    for _ in range(steps):
        xa = xa.detach().requires_grad_(True)
        m = attribution_map(ig_s.attribute(xa, label, create_graph=True))
        if objective == "topk":
            loss = (m.flatten() / m.sum() * hw)[top].sum()
        elif objective == "mass_center":
            loss = -((centre(m) - centre(clean)) ** 2).sum()
        else:
            loss = ((unit(m) - unit(target)) ** 2).sum()
        (g,) = torch.autograd.grad(loss, xa)
        xa = (x1 + (xa.detach() - alpha * g.sign() - x1).clamp(-eps, eps)).clamp(0, 1)
        with torch.no_grad():
            kept = bool(model(xa).argmax(1) == label)
        m = attribution_map(ig.attribute(xa, label))
        iterates.append({"x": xa, "kept": kept, "map": m, "topk": float(topk_intersection(clean, m, k)),
                         "kendall": float(kendall_tau(clean, m)),
                         "cdl": float(center_of_mass_dislocation(clean, m)),
                         "dist": float(((unit(m) - unit(target)) ** 2).sum()) if target is not None else 0.0})
    return clean, iterates


def best_of(iterates, objective):
    kept = [(i, it) for i, it in enumerate(iterates) if it["kept"]]
    if not kept:
        return None
    key = {"topk": lambda t: (t[1]["topk"], t[1]["kendall"], t[0]),
           "mass_center": lambda t: (-t[1]["cdl"], t[0]),
           "targeted": lambda t: (t[1]["dist"], t[0])}[objective]
    return min(kept, key=key)


@pytest.mark.parametrize("objective", ["topk", "mass_center", "targeted"])
def test_batched_ifia_equals_the_per_image_loop_and_the_reference(objective):
    dtype = torch.float64  # sign steps: float64 keeps batch-size round-off away from sign flips
    # seed 1: some images flip their label mid-way, one at once (checked below): the bookkeeping is exercised
    model, x = tiny_cnn(seed=1, dtype=dtype), images(6, seed=11, dtype=dtype)
    kw = dict(attribution_kwargs=IG_KW, objective=objective, eps=0.3, alpha=0.06, steps=6, k=10, beta=5.0)
    target = None
    if objective == "targeted":
        target = attribution_map(IntegratedGradients(model, n_steps=M).attribute(
            x.roll(1, 0), model(x.roll(1, 0)).argmax(1)))
    batched = IFIA(model, **kw).perturb(x, target_map=target)
    chunked = IFIA(model, internal_batch_size=2 * M, **kw).perturb(x, target_map=target)
    flips = 0
    for i in range(len(x)):
        one = IFIA(model, **kw).perturb(x[i:i + 1], target_map=None if target is None else target[i:i + 1])
        assert torch.allclose(batched.x_adv[i], one.x_adv[0], atol=1e-6, rtol=0)
        assert batched.success[i] == one.success[0] and batched.best_step[i] == one.best_step[0]
        # independent reference loop
        clean, its = reference_ifia(model, x[i:i + 1], objective, 0.3, 0.06, 6, 10, 5.0,
                                    None if target is None else target[i:i + 1])
        flips += sum(not it["kept"] for it in its)
        best = best_of(its, objective)
        assert torch.allclose(batched.clean_map[i], clean[0], atol=1e-10)
        if best is None:
            assert not batched.success[i] and torch.equal(batched.x_adv[i], x[i])
        else:
            step, it = best
            assert batched.success[i] and int(batched.best_step[i]) == step + 1
            assert torch.allclose(batched.x_adv[i], it["x"][0], atol=1e-6, rtol=0)
            expected = {"topk": it["topk"], "mass_center": it["cdl"], "targeted": it["dist"]}[objective]
            assert math.isclose(float(batched.objective[i]), expected, rel_tol=1e-6, abs_tol=1e-9)
    assert torch.allclose(batched.x_adv, chunked.x_adv, atol=1e-6, rtol=0)
    assert torch.equal(batched.success, chunked.success) and torch.equal(batched.best_step, chunked.best_step)
    assert flips > 0 and bool(batched.success.any())
    if objective == "topk":
        assert not bool(batched.success.all())


def test_ifia_topk_lowers_the_intersection_and_reports_recomputable_scores():
    dtype = torch.float64
    model, x = tiny_cnn(seed=4, dtype=dtype), images(6, seed=2, dtype=dtype)
    k, steps = 10, 8
    r = IFIA(model, attribution_kwargs=IG_KW, eps=0.2, alpha=0.03, steps=steps, k=k).perturb(x)
    assert bool(r.success.any()) and bool((r.topk_intersection < 1).any())
    # maps recomputed from x_adv, independently, one image at a time
    ig = IntegratedGradients(model, n_steps=M)
    maps = torch.cat([attribution_map(ig.attribute(r.x_adv[i:i + 1], r.label[i:i + 1])) for i in range(6)])
    clean = torch.cat([attribution_map(ig.attribute(x[i:i + 1], r.label[i:i + 1])) for i in range(6)])
    assert torch.allclose(maps, r.adv_map, atol=1e-10) and torch.allclose(clean, r.clean_map, atol=1e-10)
    assert torch.equal(r.topk_intersection, topk_intersection(clean, maps, k))
    assert torch.allclose(r.kendall_tau, kendall_tau(clean, maps), atol=1e-12)
    assert torch.equal(r.objective, r.topk_intersection)
    for i in range(6):  # scipy as the oracle of the rank scores
        a, b = clean[i].flatten().numpy(), maps[i].flatten().numpy()
        assert math.isclose(float(r.kendall_tau[i]), scipy.stats.kendalltau(a, b).statistic, abs_tol=1e-9)
        assert math.isclose(float(r.spearman_rho[i]), scipy.stats.spearmanr(a, b).statistic, abs_tol=1e-9)
        cos = 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        assert math.isclose(float(r.cosine_distance[i]), cos, abs_tol=1e-9)
    frame = r.to_frame()
    assert list(frame.columns[:3]) == ["success", "label", "adv_label"] and len(frame) == 6


def test_best_iterate_is_no_worse_than_the_final_iterate():
    dtype = torch.float64
    model, x = tiny_cnn(seed=0, dtype=dtype), images(6, seed=11, dtype=dtype)
    r = IFIA(model, attribution_kwargs=IG_KW, eps=0.15, alpha=0.03, steps=6, k=10, beta=5.0).perturb(x)
    checked = 0
    for i in range(6):
        _, its = reference_ifia(model, x[i:i + 1], "topk", 0.15, 0.03, 6, 10, 5.0)
        kept = [it["topk"] for it in its if it["kept"]]
        assert float(r.topk_intersection[i]) == (min(kept) if kept else 1.0)
        if its[-1]["kept"]:
            assert float(r.topk_intersection[i]) <= its[-1]["topk"]
            checked += 1
    assert checked > 0


def test_manipulate_moves_maps_towards_the_target():
    model, x = tiny_cnn(seed=6), images(6, seed=4)
    attack = Manipulate(model, attribution_kwargs=IG_KW, eps=0.2, alpha=0.02, steps=6, k=8, gamma=1e-3)
    target = attack.clean_maps(x.roll(1, 0))
    r = attack.perturb(x, target_map=target)
    unit = lambda m: m / m.flatten(1).sum(1).view(-1, 1, 1)  # noqa: E731
    before = (unit(r.clean_map) - unit(target)).flatten(1).pow(2).sum(1)
    after = (unit(r.adv_map) - unit(target)).flatten(1).pow(2).sum(1)
    assert torch.allclose(r.objective, after, rtol=1e-5)
    assert bool((after[r.success] < before[r.success]).any())


# ------------------------------------------------------------------------------------------------------------
# random baseline
# ------------------------------------------------------------------------------------------------------------
def test_random_sign_noise_is_a_corner_of_the_ball_with_the_label_check():
    model, x = tiny_cnn(), 0.2 + 0.6 * images(6)
    r = RandomSignNoise(model, 0.05, torch.Generator().manual_seed(0), attribution_kwargs=IG_KW, k=8).perturb(x)
    ok = r.success
    assert torch.allclose((r.x_adv[ok] - x[ok]).abs(), torch.full_like(x[ok], 0.05), atol=1e-6)
    with torch.no_grad():
        assert torch.equal(model(r.x_adv).argmax(1)[ok], r.label[ok])
    zero = RandomSignNoise(model, 0.0, attribution_kwargs=IG_KW, k=8).perturb(x)
    assert torch.equal(zero.x_adv, x) and bool(zero.success.all()) and bool((zero.topk_intersection == 1).all())
    xm = 0.2 + 0.6 * images(3, seed=7, dtype=torch.float64)
    flip = RandomSignNoise(margin_model(xm[0]), 0.05, attribution_kwargs=IG_KW, k=8).perturb(xm)
    assert flip.success.tolist() == [False, True, True] and torch.equal(flip.x_adv[0], xm[0])


# ------------------------------------------------------------------------------------------------------------
# evaluation report
# ------------------------------------------------------------------------------------------------------------
def test_evaluate_report_is_consistent_with_its_rows(trained):
    model, x, y = trained
    y = y.clone()
    y[:3] = 1 - y[:3]  # three "misclassified" images: not attacked
    x, y = x[:12], y[:12]
    attack = IFIA(model, attribution_kwargs=IG_KW, eps=0.1, alpha=0.02, steps=3, k=8)
    rep = evaluate_attributional_robustness(model, x, y, "integrated_gradients", attack, k=5, batch_size=4,
                                            progress=False, keep_result=True)
    per, s = rep.per_image, rep.summary.iloc[0]
    assert list(per.columns[:4]) == ["label", "prediction", "correct", "success"]
    assert {*SCORES, "best_step"} <= set(per.columns)
    assert SCORES == ("topk_intersection", "kendall_tau", "spearman_rho", "center_of_mass_dislocation",
                      "cosine_distance") and set(SCORES) <= set(METRICS)  # one vocabulary: the metric registry
    assert s["n_images"] == 12 and s["n_attacked"] == 9 == per["correct"].sum()
    assert per.loc[~per["correct"], "success"].isna().all()
    assert per.loc[~per["correct"], "topk_intersection"].isna().all()
    assert s["success_rate"] == per.loc[per["correct"], "success"].mean()
    for c in SCORES:
        assert {f"{c}_mean", f"{c}_ci_low", f"{c}_ci_high"} <= set(rep.summary.columns)
        assert s[f"{c}_ci_low"] <= s[f"{c}_mean"] <= s[f"{c}_ci_high"]
    vals = per.loc[per["correct"], "topk_intersection"].to_numpy()
    assert math.isclose(s["topk_intersection_mean"], vals.mean())
    low, high = scipy.stats.t.interval(0.95, len(vals) - 1, loc=vals.mean(), scale=scipy.stats.sem(vals))
    assert math.isclose(s["topk_intersection_ci_low"], low, rel_tol=1e-9)
    assert math.isclose(s["topk_intersection_ci_high"], high, rel_tol=1e-9)
    # scores at the evaluation k (5), recomputed from the kept maps
    assert torch.equal(torch.tensor(per.loc[per["correct"], "topk_intersection"].to_numpy(), dtype=torch.float32),
                       topk_intersection(rep.result.clean_map, rep.result.adv_map, 5))
    assert rep.result.x_adv.shape == (9, 1, 8, 8)


def test_evaluate_by_name_targeted_and_mismatches(trained):
    model, x, y = trained
    rep = evaluate_attributional_robustness(model, x[:6], y[:6], "integrated_gradients", "manipulate", k=5,
                                            batch_size=3, progress=False,
                                            attack_kwargs=dict(attribution_kwargs=IG_KW, steps=2, k=5))
    assert rep.summary.index[0] == "Manipulate" and rep.summary.iloc[0]["n_attacked"] == 6
    base = RandomSignNoise(model, 0.1, attribution_kwargs=IG_KW, k=5)
    with pytest.raises(ValueError, match="attribution"):
        evaluate_attributional_robustness(model, x, y, "saliency", base, k=5, progress=False)
    with pytest.raises(ValueError, match="different model"):
        evaluate_attributional_robustness(tiny_cnn(classes=2), x, y, None, base, k=5, progress=False)


def test_mean_ci_matches_scipy_t_interval():
    v = np.array([0.2, 0.5, 0.9, 0.4, np.nan])
    mean, low, high, n = mean_ci(v, 0.9)
    lo, hi = scipy.stats.t.interval(0.9, 3, loc=np.nanmean(v), scale=scipy.stats.sem(v[:4]))
    assert n == 4 and math.isclose(mean, np.nanmean(v)) and math.isclose(low, lo) and math.isclose(high, hi)
    assert math.isnan(mean_ci([1.0])[1]) and mean_ci([])[3] == 0


# ------------------------------------------------------------------------------------------------------------
# bad inputs fail before any compute, listing the valid values
# ------------------------------------------------------------------------------------------------------------
def test_bad_hyperparameters_raise_clear_errors():
    model = tiny_cnn()
    with pytest.raises(ValueError, match=r"eps=1.5 is outside \[0, 1\]"):
        IFIA(model, eps=1.5)
    with pytest.raises(ValueError, match="steps=0 must be >= 1"):
        IFIA(model, steps=0)
    with pytest.raises(ValueError, match="'topk', 'mass_center', 'targeted'"):
        IFIA(model, objective="center")
    with pytest.raises(ValueError, match="alpha=0"):
        PGD(model, 0.1, alpha=0, steps=3)
    with pytest.raises(ValueError, match="'linf', 'l2'"):
        PGD(model, 0.1, alpha=0.1, steps=3, norm="l1")
    with pytest.raises(ValueError, match="eps=-0.1"):
        RandomSignNoise(model, -0.1)
    with pytest.raises(ValueError, match="attribution="):
        Manipulate(model, attribution="gradcam")
    with pytest.raises(ValueError, match="'ifia_topk'"):
        get_attack("fgsm", model)
    assert set(ATTACKS) >= {"pgd", "ifia_topk", "ifia_mass_center", "ifia_targeted", "manipulate", "random_sign"}
    x = images(2)
    with pytest.raises(ValueError, match=r"k=65 is outside \[1, 64\]"):
        IFIA(model, k=65, steps=1).perturb(x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        IFIA(model, k=5, steps=1).perturb(x * 2)
    with pytest.raises(ValueError, match="target_map"):
        IFIA(model, objective="targeted", k=5, steps=1).perturb(x)
    with pytest.raises(ValueError, match="labels"):
        PGD(model, 0.1, 0.1, 1).perturb(x, torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("attribution,kwargs", [("smoothgrad", {"n_samples": 4, "sigma": 0.2}),
                                                ("uniform_gradient", {"n_samples": 4, "radius": 0.2})])
def test_stochastic_maps_of_the_clean_and_attacked_image_share_their_draws(attribution, kwargs):
    """With ε = 0 the attacked image is the clean one: its map must be the clean map (cosine distance 0, top-k ∩ 1),
    not a second Monte-Carlo draw (SSR's SmoothGrad / Uniform Gradient scores)."""
    model, x = tiny_cnn(), 0.2 + 0.6 * images(6)
    for attack in (RandomSignNoise(model, 0.0, torch.Generator().manual_seed(0), attribution=attribution,
                                   attribution_kwargs=kwargs, k=8),
                   IFIA(model, attribution, kwargs, eps=0.0, alpha=0.01, steps=2, k=8)):
        r = attack.perturb(x)
        assert torch.equal(r.clean_map, r.adv_map)
        assert bool((r.topk_intersection == 1).all()) and float(r.cosine_distance.abs().max()) < 1e-6
    a = RandomSignNoise(model, 0.0, attribution=attribution, attribution_kwargs=kwargs, k=8)
    assert not torch.equal(a.perturb(x).clean_map, a.perturb(x).clean_map)  # batches still draw afresh
