"""First-order trainers (PGD-AT, TRADES, SAT, PGD-SAT, TRADES-SAT): each loss against its formula on a
hand-built case, the perturbations' budgets, SAT's perturbation mixture and weak saliency, validation."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rattrlib.attacks import PGD
from rattrlib.data import ImageDataset
from rattrlib.train import METHODS, Batch, Progress, TrainConfig, train
from rattrlib.train.adversarial import PGDAT, TRADES, kl_divergence, trades_loss
from rattrlib.train.sat import (PGDSAT, SAT, TRADESSAT, sat_alpha, sat_perturbation, saliency_from_boxes,
                                saliency_from_maps, saliency_from_masks, saliency_from_threshold, weak_saliency)

EPS = 0.1


def tiny_model(classes=3):
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, classes))


def tiny_data(n=8, classes=3):
    g = torch.Generator().manual_seed(2)
    images = torch.rand(n, 1, 6, 6, generator=g)
    images[:, :, :, :2] = 0.0  # dark left columns, bright object elsewhere
    images[0, 0, 0, 2] = 1.0   # saturated pixels: clamping to [0, 1] must bite
    labels = torch.arange(n) % classes
    masks = torch.zeros(n, 6, 6, dtype=torch.bool)
    masks[:, 1:4, 2:5] = True
    boxes = torch.tensor([[2.0, 1.0, 5.0, 4.0]]).repeat(n, 1)
    return ImageDataset("tiny", "train", images, labels, ("a", "b", "c"), boxes=boxes, masks=masks)


def batch_of(data):
    return Batch(data.images, data.labels, torch.arange(len(data)))


def in_budget(x_adv, x, eps=EPS):
    return bool(((x_adv - x).abs() <= eps + 1e-6).all() and (x_adv >= 0).all() and (x_adv <= 1).all())


# ------------------------------------------------------------------------------------------------- PGD-AT
def test_pgd_at_loss_is_ce_on_the_seeded_pgd_batch():
    model, data = tiny_model(), tiny_data()
    method = PGDAT(eps=EPS, alpha=0.03, steps=3)
    torch.manual_seed(7)
    loss, terms = method.loss(model, batch_of(data), Progress(0, 1))
    torch.manual_seed(7)
    x_adv = PGD(model, EPS, 0.03, 3).perturb(data.images, data.labels)
    expected = F.cross_entropy(model(x_adv), data.labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms == {"ce_adv": pytest.approx(expected.item(), rel=1e-6), "eps": EPS}
    assert in_budget(x_adv, data.images)
    assert expected > F.cross_entropy(model(data.images), data.labels)  # the attack raised the loss
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_pgd_at_eps_warmup_attacks_inside_the_ramped_ball():
    model, data = tiny_model(), tiny_data()
    method = PGDAT(eps=0.3, alpha=0.03, steps=3, eps_warmup=0.5)
    seen = []
    original = method.perturb
    method.perturb = lambda m, x, y, eps=None: seen.append(eps) or original(m, x, y, eps)
    _, terms = method.loss(model, batch_of(data), Progress(0, 2, 0, 4))   # first of 8 batches: ε·(1/8)/0.5
    assert terms["eps"] == pytest.approx(0.075) and seen == [pytest.approx(0.075)]
    x_adv = original(model, data.images, data.labels, 0.075)
    assert in_budget(x_adv, data.images, 0.075)
    _, terms = method.loss(model, batch_of(data), Progress(1, 2, 0, 4))   # second half: the full ε
    assert terms["eps"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="eps_warmup"):
        PGDAT(eps_warmup=1.5)


# ------------------------------------------------------------------------------------------------- TRADES
def test_kl_divergence_is_the_textbook_formula():
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    p, q = a.softmax(1), b.softmax(1)
    by_hand = (p * (p.log() - q.log())).sum(1)
    assert torch.allclose(kl_divergence(a, b, "sum"), by_hand.sum())
    assert torch.allclose(kl_divergence(a, b), F.kl_div(b.log_softmax(1), p, reduction="batchmean"))


def test_trades_loss_equals_ce_plus_beta_kl_for_a_fixed_perturbation():
    model, data = tiny_model().double(), tiny_data()  # float64: the KL of nearby points is small
    x, y = data.images.double(), data.labels
    x_adv = (x + EPS * torch.sign(torch.randn_like(x))).clamp(0, 1)
    loss, ce, kl = trades_loss(model, x, y, x_adv, beta=6.0)
    p = model(x).softmax(1)
    q = model(x_adv).softmax(1)
    ce_hand = -(p[torch.arange(len(y)), y].log()).mean()
    kl_hand = (p * (p.log() - q.log())).sum(1).mean()
    assert kl_hand > 0
    assert ce.item() == pytest.approx(ce_hand.item(), rel=1e-9)
    assert kl.item() == pytest.approx(kl_hand.item(), rel=1e-9)
    assert loss.item() == pytest.approx((ce_hand + 6.0 * kl_hand).item(), rel=1e-9)


def test_trades_method_loss_uses_its_own_inner_maximiser_and_the_formula():
    model, data = tiny_model(), tiny_data()
    method = TRADES(eps=EPS, alpha=0.03, steps=4, beta_trades=2.0)
    torch.manual_seed(5)
    x_adv = method.perturb(model, data.images, data.labels)
    torch.manual_seed(5)
    loss, terms = method.loss(model, batch_of(data), Progress(0, 1))
    expected, ce, kl = trades_loss(model, data.images, data.labels, x_adv, 2.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["ce"] == pytest.approx(ce.item(), rel=1e-6) and terms["kl"] == pytest.approx(kl.item(), rel=1e-6)
    assert in_budget(x_adv, data.images)
    with torch.no_grad():
        clean = model(data.images)
        start_kl = kl_divergence(clean, model((data.images + 0.001 * torch.randn_like(data.images)).clamp(0, 1)))
        assert kl_divergence(clean, model(x_adv)) > 10 * start_kl  # the ascent found a much larger KL


# ------------------------------------------------------------------------------------------------- weak saliency
def test_weak_saliency_from_boxes_is_plus_one_exactly_inside():
    s = saliency_from_boxes(torch.tensor([[1.0, 2.0, 4.0, 5.0], [0.0, 0.0, 6.0, 6.0]]), 6, 6)
    expected = -torch.ones(6, 6, dtype=torch.int8)
    expected[2:5, 1:4] = 1  # rows y0 ≤ r < y1, columns x0 ≤ c < x1
    assert s.dtype == torch.int8 and torch.equal(s[0], expected)
    assert torch.equal(s[1], torch.ones(6, 6, dtype=torch.int8))


def test_weak_saliency_from_masks_threshold_and_maps():
    data = tiny_data()
    assert torch.equal(saliency_from_masks(data.masks), data.masks.to(torch.int8) * 2 - 1)
    assert torch.equal(weak_saliency(data, "mask"), saliency_from_masks(data.masks))
    assert torch.equal(weak_saliency(data, "box"), saliency_from_masks(data.masks))  # same region here
    s = saliency_from_threshold(data.images, 0.3)
    assert torch.equal(s == 1, data.images[:, 0] > 0.3)
    maps = torch.arange(36.0).view(1, 6, 6).repeat(2, 1, 1)
    maps[1] = maps[1].flip(-1)
    s = saliency_from_maps(maps, quantile=0.75)
    assert (s == 1).sum(dim=(1, 2)).tolist() == [9, 9]  # the top quarter of each map
    assert torch.equal(s[0] == 1, maps[0] >= 27)
    four_d = saliency_from_maps(torch.stack([maps, -maps], 1), quantile=0.75)  # Σ_c |·| first
    assert torch.equal(four_d, s)


def test_weak_saliency_errors_name_what_is_missing():
    data = tiny_data()
    bare = ImageDataset("bare", "train", data.images, data.labels, data.classes)
    with pytest.raises(ValueError, match="no masks"):
        weak_saliency(bare, "mask")
    with pytest.raises(ValueError, match="no boxes"):
        weak_saliency(bare, "box")
    with pytest.raises(ValueError, match="do not match"):
        SAT(saliency_source="maps", saliency_maps=torch.rand(3, 6, 6)).prepare(tiny_model(), data)


# ------------------------------------------------------------------------------------------------- SAT mixture
def test_sat_perturbation_with_alpha_zero_is_exactly_minus_eps_s():
    s = saliency_from_masks(tiny_data().masks)
    delta = sat_perturbation(s, (8, 3, 6, 6), 0.0, EPS)
    assert torch.equal(delta, -EPS * s.float().unsqueeze(1).expand(8, 3, 6, 6))


def test_sat_perturbation_with_alpha_one_is_a_fair_random_sign_independent_of_s():
    n, c, h, w = 200, 3, 16, 16
    s = torch.ones(n, h, w, dtype=torch.int8)
    delta, random = sat_perturbation(s, (n, c, h, w), 1.0, EPS, return_random=True)
    assert bool(random.all()) and torch.equal(delta.abs(), torch.full_like(delta, EPS))
    total = delta.numel()
    plus = (delta > 0).float().mean().item()  # −s would give all −ε; a fair sign gives half +ε
    assert abs(plus - 0.5) < 5 * math.sqrt(0.25 / total)


@pytest.mark.parametrize("alpha_t", [0.1, 0.3, 0.75])
def test_sat_perturbation_mixes_random_signs_with_probability_alpha_t(alpha_t):
    n, c, h, w = 100, 3, 16, 16
    s = saliency_from_boxes(torch.tensor([[2.0, 2.0, 10.0, 12.0]]).repeat(n, 1), h, w)
    delta, random = sat_perturbation(s, (n, c, h, w), alpha_t, EPS, return_random=True)
    total = delta.numel()
    sd = math.sqrt(alpha_t * (1 - alpha_t) / total)
    assert abs(random.float().mean().item() - alpha_t) < 5 * sd
    minus_s = -EPS * s.float().unsqueeze(1).expand(n, c, h, w)
    assert torch.equal(delta[~random], minus_s[~random])  # the saliency components are exactly −ε·s
    differs = (delta != minus_s).float().mean().item()  # a random sign disagrees with −s half the time
    assert abs(differs - alpha_t / 2) < 5 * math.sqrt(alpha_t / 2 * (1 - alpha_t / 2) / total)


def test_sat_schedules():
    assert sat_alpha("compressed", t=0.0, epoch=0) == 1.0
    assert sat_alpha("compressed", t=0.5, epoch=0) == pytest.approx(0.6 ** 5)
    assert sat_alpha("epochs", t=0.9, epoch=20) == pytest.approx(0.6 ** 2)  # authors: a^{epoch/10}
    assert sat_alpha("constant", t=0.3, epoch=3, alpha_t=0.25) == 0.25
    method = SAT(eps=EPS)
    method.prepare(tiny_model(), tiny_data(n=100))
    seen = [method.current_alpha(Progress(e, 2), 50) for e in (0, 0, 1, 1)]
    assert seen == pytest.approx([0.6 ** (10 * t) for t in (0.0, 0.25, 0.5, 0.75)])


def test_sat_loss_is_ce_on_x_minus_eps_s_when_alpha_is_zero():
    model, data = tiny_model(), tiny_data()
    method = SAT(eps=EPS, saliency_source="mask", schedule="constant", alpha_t=0.0)
    method.prepare(model, data)
    loss, terms = method.loss(model, batch_of(data), Progress(0, 1))
    s = data.masks.float().unsqueeze(1) * 2 - 1
    x_sat = (data.images - EPS * s).clamp(0, 1)
    assert loss.item() == pytest.approx(F.cross_entropy(model(x_sat), data.labels).item(), rel=1e-6)
    assert terms["alpha_t"] == 0.0
    assert in_budget(x_sat, data.images) and not torch.equal(x_sat, data.images - EPS * s)  # clamping bit
    x_sat_method, _ = method.sat_images(batch_of(data), Progress(0, 1))
    assert torch.equal(x_sat_method, x_sat)
    shuffled = Batch(data.images[[3, 1]], data.labels[[3, 1]], torch.tensor([3, 1]))
    x_two, _ = method.sat_images(shuffled, Progress(0, 1))
    assert torch.equal(x_two, x_sat[[3, 1]])  # the saliency is looked up by batch.index


def test_pgd_sat_starts_its_attack_from_the_sat_point():
    model, data = tiny_model(), tiny_data()
    method = PGDSAT(eps=EPS, alpha=0.02, steps=1, saliency_source="mask", schedule="constant", alpha_t=0.0)
    method.prepare(model, data)
    x_adv, alpha_t, sat_only = method.perturb(model, batch_of(data), Progress(0, 1))
    x_sat, _ = method.sat_images(batch_of(data), Progress(0, 1))
    start = x_sat.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(start), data.labels, reduction="sum"), start)
    expected = torch.min(torch.max(x_sat + 0.02 * grad.sign(), data.images - EPS), data.images + EPS).clamp(0, 1)
    assert torch.allclose(x_adv, expected, atol=1e-7) and not sat_only and alpha_t == 0.0
    loss, terms = method.loss(model, batch_of(data), Progress(0, 1))
    assert loss.item() == pytest.approx(F.cross_entropy(model(expected), data.labels).item(), rel=1e-5)
    assert set(terms) == {"ce_adv", "alpha_t", "sat_only"}


def test_pgd_sat_alternate_uses_the_sat_point_or_a_full_attack():
    model, data = tiny_model(), tiny_data()
    always = PGDSAT(eps=EPS, alpha=0.02, steps=3, combine="alternate", p_sat=1.0, saliency_source="box",
                    schedule="constant", alpha_t=0.5)
    always.prepare(model, data)
    torch.manual_seed(0)
    x_adv, _, sat_only = always.perturb(model, batch_of(data), Progress(0, 1))
    torch.manual_seed(0)
    x_sat, _ = always.sat_images(batch_of(data), Progress(0, 1))
    assert sat_only and torch.equal(x_adv, x_sat)
    never = PGDSAT(eps=EPS, alpha=0.02, steps=3, combine="alternate", p_sat=0.0, saliency_source="box")
    never.prepare(model, data)
    x_adv, _, sat_only = never.perturb(model, batch_of(data), Progress(0, 1))
    assert not sat_only and in_budget(x_adv, data.images)


def test_trades_sat_starts_the_kl_ascent_from_the_sat_point_and_uses_the_trades_loss():
    model, data = tiny_model(), tiny_data()
    method = TRADESSAT(eps=EPS, alpha=0.02, steps=1, beta_trades=3.0, saliency_source="mask",
                       schedule="constant", alpha_t=0.0)
    method.prepare(model, data)
    x_adv, _, _ = method.perturb(model, batch_of(data), Progress(0, 1))
    x_sat, _ = method.sat_images(batch_of(data), Progress(0, 1))
    clean = model(data.images).detach()
    start = x_sat.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(kl_divergence(clean, model(start), "sum"), start)
    expected = torch.min(torch.max(x_sat + 0.02 * grad.sign(), data.images - EPS), data.images + EPS).clamp(0, 1)
    assert torch.allclose(x_adv, expected, atol=1e-7)
    loss, terms = method.loss(model, batch_of(data), Progress(0, 1))
    by_hand, _, _ = trades_loss(model, data.images, data.labels, expected, 3.0)
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert set(terms) == {"ce", "kl", "alpha_t", "sat_only"}


# ------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("cls,kwargs,match", [
    (PGDAT, {"eps": 8}, "eps=8.*outside"), (PGDAT, {"eps": -0.1}, "eps"), (PGDAT, {"alpha": 0}, "alpha"),
    (PGDAT, {"steps": 0}, "steps"), (PGDAT, {"steps": 2.5}, "steps"), (PGDAT, {"random_start": 1}, "random_start"),
    (TRADES, {"beta_trades": 0}, "beta_trades"), (TRADES, {"alpha": -1}, "alpha"), (TRADES, {"eps": 1.5}, "eps"),
    (SAT, {"eps": 2}, "eps"), (SAT, {"saliency_source": "sky"}, "saliency_source"),
    (SAT, {"threshold": 1.5}, "threshold"), (SAT, {"quantile": 1.0}, "quantile"),
    (SAT, {"schedule": "cosine"}, "schedule"), (SAT, {"schedule": "constant"}, "needs alpha_t"),
    (SAT, {"schedule": "constant", "alpha_t": 1.5}, "alpha_t"), (SAT, {"alpha_t": 0.5}, "only used"),
    (SAT, {"decay": 0}, "decay"), (SAT, {"decay_epochs": 0}, "decay_epochs"),
    (SAT, {"saliency_maps": torch.rand(2, 6, 6)}, "saliency_maps"), (SAT, {"saliency_source": "maps"}, "saliency_maps"),
    (PGDSAT, {"combine": "both"}, "combine"), (PGDSAT, {"p_sat": 2}, "p_sat"), (PGDSAT, {"steps": 0}, "steps"),
    (TRADESSAT, {"beta_trades": -1}, "beta_trades"),
])
def test_bad_hyperparameters_raise_clear_errors(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_methods_are_registered_and_validated_by_train_config():
    for name, cls in {"pgd_at": PGDAT, "trades": TRADES, "sat": SAT, "pgd_sat": PGDSAT,
                      "trades_sat": TRADESSAT}.items():
        assert METHODS[name] is cls and cls.name == name
    with pytest.raises(ValueError, match="eps"):
        TrainConfig(dataset="tiny", method="pgd_at", hyperparameters={"eps": 8})
    maps = SAT(saliency_source="maps", saliency_maps=torch.rand(8, 6, 6)).hyperparameters()
    assert len(maps["saliency_maps_sha256"]) == 64


@pytest.mark.parametrize("method,hp", [
    ("pgd_at", {"eps": EPS, "alpha": 0.05, "steps": 2}),
    ("trades", {"eps": EPS, "alpha": 0.05, "steps": 2}),
    ("sat", {"eps": EPS, "saliency_source": "box"}),
    ("pgd_sat", {"eps": EPS, "alpha": 0.05, "steps": 2, "saliency_source": "mask"}),
    ("trades_sat", {"eps": EPS, "alpha": 0.05, "steps": 2, "combine": "alternate"}),
])
def test_every_method_trains_end_to_end_and_logs_its_terms(method, hp):
    data = tiny_data(n=24)
    model = tiny_model()
    logs = train(model, data, method, epochs=2, batch_size=12, progress=False, **hp)
    assert [log["epoch"] for log in logs] == [1, 2]
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert not model.training
