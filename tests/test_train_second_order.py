"""Second-order training methods (ART, SSR, IG-NORM, IG-SUM-NORM, teacher-aligned GALI) against oracles.

Oracles: a hand-written softplus(β) forward of a tiny double-precision ReLU CNN (independent of
``smooth_copy``), per-image input gradients by ``torch.autograd.grad`` in a Python loop, cosine distances,
the soft-margin triplet and the cross-entropy written out by hand, the IG Riemann sum by an explicit loop over
path points, the explicit HW×HW Hessian ``W A Wᵀ`` with ``torch.linalg.eigvalsh`` (and, for a one-channel ReLU
net, the exact input Hessian of the CE), and central finite differences of each regulariser w.r.t. a parameter
tensor (the gradient must reach the parameters THROUGH the input gradient).
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rattrlib.attributions import smooth_copy
from rattrlib.data import DATASETS, DatasetInfo, ImageDataset
from rattrlib.models import build_model
from rattrlib.results import ResultsCache, cache_key
from rattrlib.train import METHODS, TrainConfig, make_method, train, train_cached
from rattrlib.train.art import ART, hardest_pair_triplet_loss, logit_gradients, random_start, runner_up
from rattrlib.train.base import Batch, Progress
from rattrlib.train.gali import TeacherAligned
from rattrlib.train.rar import IGNorm, IGSumNorm, loss_integrated_gradients
from rattrlib.train.ssr import SSR, softmax_hessian_factor

torch.set_num_threads(2)
DT = torch.float64


# ----------------------------------------------------------------------------------------------------------
# tiny models, data and oracles
# ----------------------------------------------------------------------------------------------------------
class Tiny(nn.Module):
    """2-layer ReLU CNN: conv 3×3 → ReLU → linear, on C×S×S images."""

    def __init__(self, channels=1, classes=3, hidden=3, size=6):
        super().__init__()
        self.conv = nn.Conv2d(channels, hidden, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(hidden * size * size, classes)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


def tiny(seed=0, gain=2.0, **kw):
    torch.manual_seed(seed)
    model = Tiny(**kw).to(DT)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return model


def softplus_forward(model, x, beta):
    """Oracle of the softplus(β) copy of :class:`Tiny`, written with the functional API."""
    h = F.softplus(F.conv2d(x, model.conv.weight, model.conv.bias, padding=1), beta=beta, threshold=40.0)
    return F.linear(h.flatten(1), model.fc.weight, model.fc.bias)


def hand_ce(logits, y):
    """Per-image cross-entropy written out: log Σ exp(z) − z_y."""
    return torch.logsumexp(logits, 1) - logits[torch.arange(len(y)), y]


def per_image_gradient(f, x, target):
    """∇_x f(x)_target for each image by itself (Python loop, no batching)."""
    rows = []
    for i in range(len(x)):
        xi = x[i:i + 1].detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(f(xi)[0, int(target[i])], xi)
        rows.append(g[0])
    return torch.stack(rows)


def per_image_ce_gradient(f, x, y):
    rows = []
    for i in range(len(x)):
        xi = x[i:i + 1].detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(hand_ce(f(xi), y[i:i + 1])[0], xi)
        rows.append(g[0])
    return torch.stack(rows)


def hand_cos_distance(g, x):
    g, x = g.flatten(), x.flatten()
    return 1.0 - float(g @ x) / (math.sqrt(float(g @ g)) * math.sqrt(float(x @ x)))


def batch(n=4, channels=1, size=6, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, channels, size, size, generator=g, dtype=DT)
    y = torch.arange(n) % classes
    return x, y


def perturbed(x, eps=0.1, seed=2):
    g = torch.Generator().manual_seed(seed)
    return (x + eps * (2 * torch.rand(x.shape, generator=g, dtype=DT) - 1)).clamp(0, 1)


def fd_check(loss_fn, param, n_entries=5, h=1e-6, rtol=1e-5, atol=1e-8):
    """Analytic gradient of ``loss_fn()`` w.r.t. ``param`` equals central differences at a few entries;
    returns the analytic gradient."""
    param.grad = None
    loss_fn().backward()
    analytic = param.grad.detach().clone()
    flat = param.data.view(-1)
    g = torch.Generator().manual_seed(0)
    for i in torch.randperm(flat.numel(), generator=g)[:n_entries].tolist():
        orig = flat[i].item()
        flat[i] = orig + h
        up = loss_fn().item()
        flat[i] = orig - h
        down = loss_fn().item()
        flat[i] = orig
        fd = (up - down) / (2 * h)
        assert abs(fd - analytic.view(-1)[i].item()) <= atol + rtol * abs(fd), (i, fd, analytic.view(-1)[i])
    param.grad = None
    return analytic


def step(method, model, x, y):
    return method.loss(model, Batch(x, y, torch.arange(len(x))), Progress(0, 1))


# ----------------------------------------------------------------------------------------------------------
# registry and validation
# ----------------------------------------------------------------------------------------------------------
def test_methods_are_registered_under_their_names():
    expected = {"art": ART, "ssr": SSR, "ig_norm": IGNorm, "ig_sum_norm": IGSumNorm,
                "teacher_aligned": TeacherAligned}
    for name, cls in expected.items():
        assert METHODS[name] is cls and cls.name == name


@pytest.mark.parametrize("cls, kwargs, message", [
    (ART, {"lam": -0.5}, "lam=-0.5"), (ART, {"beta": 0}, "beta=0"), (ART, {"beta": None}, "beta=None"),
    (ART, {"eps": 1.5}, "eps=1.5"), (ART, {"eps": -0.1}, "eps=-0.1"), (ART, {"alpha": 0}, "alpha=0"),
    (ART, {"steps": 0}, "steps=0"), (ART, {"steps": 2.5}, "steps=2.5"), (ART, {"topk": 0}, "topk=0"),
    (ART, {"hardest_pairs": "yes"}, "hardest_pairs"),
    (SSR, {"beta_s": -1}, "beta_s=-1"), (SSR, {"scale_s": 0}, "scale_s=0"), (SSR, {"beta": -2}, "beta=-2"),
    (SSR, {"beta_s": 2, "convex": True}, "beta_s=2"),
    (IGNorm, {"lam": -1}, "lam=-1"), (IGNorm, {"m_inner": 0}, "m_inner=0"), (IGNorm, {"m_outer": 0}, "m_outer=0"),
    (IGNorm, {"eps": 2}, "eps=2"), (IGNorm, {"alpha": -0.01}, "alpha=-0.01"), (IGNorm, {"beta": 0}, "beta=0"),
    (IGSumNorm, {"steps": 0}, "steps=0"), (IGSumNorm, {"lam": float("nan")}, "lam=nan"),
    (TeacherAligned, {"lam": -1e-3}, "lam=-0.001"), (TeacherAligned, {"lam_ig": -1}, "lam_ig=-1"),
    (TeacherAligned, {"m_inner": 0}, "m_inner=0"), (TeacherAligned, {"align_on": "both"}, "align_on='both'"),
    (TeacherAligned, {"teacher": "pgd"}, "teacher must be"), (TeacherAligned, {"start": "pgd"}, "start must be"),
    (TeacherAligned, {"teacher": {"dataset": "tiny", "depth": 3}}, "teacher="),
])
def test_bad_hyperparameters_raise_naming_the_value(cls, kwargs, message):
    if cls is TeacherAligned:
        kwargs = {"teacher": tiny(), **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        cls(**kwargs)


def test_bad_hyperparameters_fail_in_train_config_too():
    with pytest.raises(ValueError, match="m_outer=0"):
        TrainConfig(dataset="tiny", method="ig_norm", hyperparameters={"m_outer": 0})


def test_art_default_step_and_hyperparameters():
    method = ART(eps=0.06, steps=3)
    assert method.alpha == pytest.approx(0.05)  # 2.5 ε / steps
    assert method.hyperparameters() == {"eps": 0.06, "alpha": method.alpha, "steps": 3, "beta": 50.0,
                                        "lam": 0.5, "topk": None, "hardest_pairs": False}


# ----------------------------------------------------------------------------------------------------------
# ART (eq. 5–6, Alg. 1)
# ----------------------------------------------------------------------------------------------------------
def test_runner_up_is_the_highest_non_true_logit():
    logits = torch.tensor([[5.0, 1.0, 3.0], [0.0, 9.0, 2.0], [4.0, 4.0, 1.0], [1.0, 2.0, 7.0]])
    assert runner_up(logits, torch.tensor([0, 1, 0, 0])).tolist() == [2, 2, 1, 2]
    model = tiny()
    x, y = batch(n=6)
    _, _, istar = logit_gradients(model, x, y, create_graph=False)
    logits = model(x)
    for i in range(len(x)):
        others = [(logits[i, c].item(), c) for c in range(3) if c != y[i]]
        assert istar[i].item() == max(others)[1] != y[i].item()


def art_oracle(model, x, y, beta):
    """L_attr per image by hand: gradients of the hand-written softplus net, cosines, softplus triplet."""
    f = lambda z: softplus_forward(model, z, beta)  # noqa: E731
    logits = f(x)
    istar = [max((logits[i, c].item(), c) for c in range(logits.shape[1]) if c != y[i])[1] for i in range(len(x))]
    g_y = per_image_gradient(f, x, y)
    g_s = per_image_gradient(f, x, istar)
    out = []
    for i in range(len(x)):
        d_pos, d_neg = hand_cos_distance(g_y[i], x[i]), hand_cos_distance(g_s[i], x[i])
        out.append(math.log(1.0 + math.exp(-(d_neg - d_pos))))
    return torch.tensor(out, dtype=DT), g_y, g_s


def test_art_attr_loss_equals_eq5():
    model, (x, y) = tiny(), batch()
    method = ART(beta=10.0)
    expected, _, _ = art_oracle(model, x, y, 10.0)
    assert torch.allclose(method.attr_loss(model, x, y), expected, rtol=1e-10, atol=1e-12)


def test_art_loss_is_ce_on_the_relu_model_plus_lambda_attr(monkeypatch):
    model, (x, y) = tiny(), batch()
    x_adv = perturbed(x)
    method = ART(beta=10.0, lam=0.7)
    monkeypatch.setattr(method, "perturb", lambda m, xx, yy: x_adv)
    loss, terms = step(method, model, x, y)
    attr, _, _ = art_oracle(model, x_adv, y, 10.0)
    ce = hand_ce(model(x_adv), y).mean()
    assert loss.item() == pytest.approx((ce + 0.7 * attr.mean()).item(), rel=1e-10)
    assert terms == pytest.approx({"ce": ce.item(), "attr": attr.mean().item()}, rel=1e-10)


def test_art_hardest_pairs_equals_a_loop_over_rows(monkeypatch):
    model, (x, y) = tiny(), batch(n=3)
    x_adv = perturbed(x, eps=0.2)
    both, labels = torch.cat([x, x_adv]), y.repeat(2)
    _, g_y, g_s = art_oracle(model, both, labels, 10.0)
    expected = []
    for r in range(6):
        same = [r % 3, r % 3 + 3]
        d_ap = max(hand_cos_distance(g_y[s], both[r]) for s in same)
        d_an = min(hand_cos_distance(g_s[s], both[r]) for s in same)
        expected.append(math.log1p(math.exp(d_ap - d_an)))
    got = hardest_pair_triplet_loss(g_y, g_s, both, groups=2)
    assert torch.allclose(got, torch.tensor(expected, dtype=DT), rtol=1e-10)
    method = ART(beta=10.0, lam=1.0, hardest_pairs=True)
    monkeypatch.setattr(method, "perturb", lambda m, xx, yy: x_adv)
    _, terms = step(method, model, x, y)
    assert terms["attr"] == pytest.approx(sum(expected) / 6, rel=1e-10)


def test_art_inner_attack_stays_in_the_ball_and_in_the_unit_box():
    model, (x, y) = tiny(), batch(n=6)
    x[0] = 0.0
    x[1] = 1.0
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    for topk in (None, 5):
        method = ART(eps=0.1, alpha=0.08, steps=3, beta=10.0, topk=topk)
        x_adv = method.perturb(model, x, y)
        assert (x_adv - x).abs().max() <= 0.1 + 1e-12
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert (x_adv != x).any()
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_art_inner_step_ascends_the_attr_loss_of_the_perturbed_point():
    """One inner step from the random start = Π(start + α·sign(∇_z Σ L_attr(z))) with the oracle's gradient."""
    model, (x, y) = tiny(), batch()
    method = ART(eps=0.1, alpha=0.03, steps=1, beta=10.0)
    torch.manual_seed(5)
    x_adv = method.perturb(model, x, y)
    torch.manual_seed(5)
    start = random_start(x, 0.1)
    z = start.clone().requires_grad_(True)
    f = lambda v: softplus_forward(model, v, 10.0)  # noqa: E731
    logits = f(z)
    istar = runner_up(logits, y)
    (g_y,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), z, create_graph=True)
    (g_s,) = torch.autograd.grad(f(z).gather(1, istar[:, None]).sum(), z, create_graph=True)
    cos = lambda g: (g * z).flatten(1).sum(1) / (g.flatten(1).norm(dim=1) * z.flatten(1).norm(dim=1))  # noqa: E731
    objective = F.softplus((1 - cos(g_y)) - (1 - cos(g_s))).sum()
    (grad,) = torch.autograd.grad(objective, z)
    expected = torch.minimum(torch.maximum(start + 0.03 * grad.sign(), x - 0.1), x + 0.1).clamp(0, 1)
    clear = grad.abs() > 1e-9
    assert torch.allclose(x_adv[clear], expected[clear], atol=1e-12)


def test_art_attr_gradient_reaches_the_parameters_through_the_input_gradient():
    model, (x, y) = tiny(), batch()
    x_adv = perturbed(x)
    method = ART(beta=10.0)
    for param in (model.conv.weight, model.fc.weight):
        grad = fd_check(lambda: method.attr_loss(model, x_adv, y).mean(), param)
        assert grad.abs().max() > 1e-6


# ----------------------------------------------------------------------------------------------------------
# SSR (Prop. 3, Def. 7)
# ----------------------------------------------------------------------------------------------------------
def test_softmax_hessian_factor_reproduces_diag_p_minus_ppT():
    logits = torch.randn(5, 4, dtype=DT) * 3
    L = softmax_hessian_factor(logits)
    p = logits.softmax(1)
    A = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    assert torch.allclose(L @ L.transpose(1, 2), A, atol=1e-14)


def explicit_hessian_top_eigenvalue(model, x, channel_mean=True):
    """λ_max of the explicit P×P matrix H̃ = W (diag(p) − ppᵀ) Wᵀ, W from a full Jacobian per image."""
    out = []
    for i in range(len(x)):
        J = torch.autograd.functional.jacobian(lambda z: model(z[None])[0], x[i])  # K×C×H×W
        W = (J.mean(1) if channel_mean else J).flatten(1).T  # P×K
        p = model(x[i:i + 1])[0].softmax(0).detach()
        H = W @ (torch.diag(p) - torch.outer(p, p)) @ W.T
        out.append(torch.linalg.eigvalsh(H)[-1])
    return torch.stack(out)


@pytest.mark.parametrize("channels, channel_mean", [(1, True), (2, True), (2, False)])
def test_ssr_lambda_max_from_the_KxK_route_equals_eigvalsh_of_the_explicit_hessian(channels, channel_mean):
    model, (x, _) = tiny(channels=channels, classes=4, size=5), batch(n=3, channels=channels, size=5)
    method = SSR(channel_mean=channel_mean)
    lam, _ = method.top_eigenvalue(model, x)
    assert torch.allclose(lam, explicit_hessian_top_eigenvalue(model, x, channel_mean), rtol=1e-9, atol=1e-14)


def test_ssr_hessian_is_the_exact_input_hessian_of_the_ce_for_a_one_channel_relu_net():
    model, (x, y) = tiny(classes=4, size=5), batch(n=2, size=5)
    lam, _ = SSR().top_eigenvalue(model, x)
    for i in range(2):
        H = torch.autograd.functional.hessian(lambda z: hand_ce(model(z[None]), y[i:i + 1])[0], x[i])
        assert torch.linalg.eigvalsh(H.reshape(25, 25))[-1].item() == pytest.approx(lam[i].item(), rel=1e-9)


@pytest.mark.parametrize("convex", [False, True])
def test_ssr_loss_is_ce_plus_beta_s_times_s_times_lambda_max(convex):
    model, (x, y) = tiny(), batch()
    method = SSR(beta_s=0.3, scale_s=20.0, convex=convex)
    loss, terms = step(method, model, x, y)
    ce = hand_ce(model(x), y).mean().item()
    lam = explicit_hessian_top_eigenvalue(model, x).mean().item()
    expected = (0.7 if convex else 1.0) * ce + 0.3 * 20.0 * lam
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    assert terms == pytest.approx({"ce": ce, "lambda_max": lam, "reg": 20.0 * lam}, rel=1e-9)


@pytest.mark.parametrize("beta", [None, 5.0])
def test_ssr_gradient_reaches_the_parameters_through_W(beta):
    model, (x, _) = tiny(), batch()
    method = SSR(beta=beta)
    for param in (model.conv.weight, model.fc.weight, model.conv.bias):
        grad = fd_check(lambda: method.top_eigenvalue(model, x)[0].mean(), param)
        assert grad.abs().max() > 1e-6


# ----------------------------------------------------------------------------------------------------------
# RAR (IG-NORM, IG-SUM-NORM) and the loss IG
# ----------------------------------------------------------------------------------------------------------
def ig_oracle(f, x, x_adv, y, m):
    """(x' − x) ⊙ (1/m) Σ_{k=1..m} ∇CE(x + k/m (x' − x)), one path point and one image at a time."""
    total = torch.zeros_like(x)
    for k in range(1, m + 1):
        total += per_image_ce_gradient(f, x + k / m * (x_adv - x), y)
    return (x_adv - x) * total / m


@pytest.mark.parametrize("internal_batch_size", [None, 8, 1000])
def test_loss_ig_equals_the_explicit_right_riemann_sum(internal_batch_size):
    model, (x, y) = tiny(), batch()
    x_adv = perturbed(x, eps=0.2)
    got = loss_integrated_gradients(smooth_copy(model, 10.0), x, x_adv, y, 7,
                                    internal_batch_size=internal_batch_size)
    expected = ig_oracle(lambda z: softplus_forward(model, z, 10.0), x, x_adv, y, 7)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-13)


def test_loss_ig_is_complete():
    model, (x, y) = tiny(), batch()
    x_adv = perturbed(x, eps=0.2)
    smooth = smooth_copy(model, 10.0)
    ig = loss_integrated_gradients(smooth, x, x_adv, y, 200, create_graph=False, internal_batch_size=800)
    gap = hand_ce(smooth(x_adv), y) - hand_ce(smooth(x), y)
    assert torch.allclose(ig.flatten(1).sum(1), gap, rtol=2e-2, atol=1e-4)


@pytest.mark.parametrize("cls", [IGNorm, IGSumNorm])
def test_rar_losses_equal_their_formulas(cls, monkeypatch):
    model, (x, y) = tiny(), batch()
    x_adv = perturbed(x, eps=0.2)
    method = cls(eps=0.2, m_outer=6, lam=0.4, beta=10.0)
    monkeypatch.setattr(method, "perturb", lambda m, xx, yy, eps=None: x_adv)
    loss, terms = step(method, model, x, y)
    ig = ig_oracle(lambda z: softplus_forward(model, z, 10.0), x, x_adv, y, 6).abs().flatten(1).sum(1).mean()
    ce = hand_ce(model(x if cls is IGNorm else x_adv), y).mean()
    assert loss.item() == pytest.approx((ce + 0.4 * ig).item(), rel=1e-10)
    assert terms == pytest.approx({"ce": ce.item(), "ig": ig.item()}, rel=1e-10)


@pytest.mark.parametrize("cls", [IGNorm, IGSumNorm])
def test_rar_inner_step_is_a_signed_step_of_its_objective(cls):
    model, (x, y) = tiny(), batch()
    method = cls(eps=0.15, alpha=0.05, steps=1, m_inner=3, lam=0.5, beta=10.0)
    torch.manual_seed(3)
    x_adv = method.perturb(model, x, y)
    torch.manual_seed(3)
    start = random_start(x, 0.15)
    z = start.clone().requires_grad_(True)
    f = lambda v: softplus_forward(model, v, 10.0)  # noqa: E731
    total = 0
    for k in range(1, 4):
        p = x + k / 3 * (z - x)
        (g,) = torch.autograd.grad(hand_ce(f(p), y).sum(), p, create_graph=True)
        total = total + g
    norm = ((z - x) * total / 3).abs().sum()
    objective = norm if cls is IGNorm else hand_ce(model(z), y).sum() + 0.5 * norm
    (grad,) = torch.autograd.grad(objective, z)
    expected = torch.minimum(torch.maximum(start + 0.05 * grad.sign(), x - 0.15), x + 0.15).clamp(0, 1)
    clear = grad.abs() > 1e-9
    assert clear.float().mean() > 0.5
    assert torch.allclose(x_adv[clear], expected[clear], atol=1e-12)
    assert (x_adv - x).abs().max() <= 0.15 + 1e-12 and x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("beta", [10.0, None])
def test_ig_regulariser_gradient_reaches_the_parameters(beta):
    model, (x, y) = tiny(), batch()
    x_adv = perturbed(x, eps=0.2)
    method = IGNorm(m_outer=4, beta=beta)
    for param in (model.conv.weight, model.fc.weight):
        grad = fd_check(lambda: method.ig(model, x, x_adv, y, 4).abs().flatten(1).sum(1).mean(), param)
        assert grad.abs().max() > 1e-6


# ----------------------------------------------------------------------------------------------------------
# teacher-aligned (GALI eq. 9)
# ----------------------------------------------------------------------------------------------------------
def test_teacher_aligned_loss_equals_eq9(monkeypatch):
    student, teacher, (x, y) = tiny(seed=0), tiny(seed=1), batch()
    x_adv = perturbed(x, eps=0.2)
    for align_on in ("clean", "adversarial"):
        method = TeacherAligned(teacher, eps=0.2, lam=0.05, lam_ig=0.8, m_outer=5, beta=10.0, align_on=align_on)
        method.prepare(student, None)
        monkeypatch.setattr(method, "perturb", lambda m, xx, yy: x_adv)
        loss, terms = step(method, student, x, y)
        f = lambda z: softplus_forward(student, z, 10.0)  # noqa: E731
        ig = ig_oracle(f, x, x_adv, y, 5).abs().flatten(1).sum(1).mean()
        at = x if align_on == "clean" else x_adv
        align = (per_image_gradient(f, at, y) - per_image_gradient(teacher, at, y)).pow(2).flatten(1).sum(1).mean()
        ce = hand_ce(student(x_adv), y).mean()
        assert loss.item() == pytest.approx((ce + 0.8 * ig + 0.05 * align).item(), rel=1e-10)
        assert terms == pytest.approx({"ce": ce.item(), "ig": ig.item(), "align": align.item()}, rel=1e-10)


def test_alignment_gradient_reaches_the_student_not_the_teacher():
    student, teacher, (x, y) = tiny(seed=0), tiny(seed=1), batch()
    method = TeacherAligned(teacher, beta=10.0)
    method.prepare(student, None)
    for param in (student.conv.weight, student.fc.weight):
        grad = fd_check(lambda: method.alignment(student, x, y).mean(), param)
        assert grad.abs().max() > 1e-6
    assert all(not p.requires_grad and p.grad is None for p in method.teacher.parameters())
    assert not method.teacher.training


def test_teacher_identity_is_in_the_hyperparameters_and_the_teacher_is_a_frozen_copy():
    teacher = tiny(seed=1)
    a = TeacherAligned(teacher).hyperparameters()
    assert a == TeacherAligned(tiny(seed=1)).hyperparameters()
    assert a["teacher"]["sha256"] != TeacherAligned(tiny(seed=2)).hyperparameters()["teacher"]["sha256"]
    method = TeacherAligned(teacher, start="teacher")
    with torch.no_grad():
        teacher.fc.weight.add_(1.0)  # changing the caller's model afterwards changes nothing
    assert method.hyperparameters() == {**a, "start": "teacher"}
    student = tiny(seed=0)
    method.prepare(student, None)  # AT-start: the student begins from the teacher's weights
    assert torch.equal(student.fc.weight, tiny(seed=1).fc.weight)
    assert student.fc.weight.requires_grad and teacher.fc.weight.requires_grad


def tiny_dataset(n=32, split="train", size=8):
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    labels = torch.arange(n) % 2
    images = 0.1 * torch.rand(n, 1, size, size, generator=g)
    images[labels == 0, :, :, :size // 2] += 0.8
    images[labels == 1, :, :, size // 2:] += 0.8
    return ImageDataset("tiny", split, images.clamp(0, 1), labels, ("left", "right"))


def test_teacher_and_start_given_as_train_configs_are_trained_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RATTR_HOME", str(tmp_path / "home"))
    info = DatasetInfo("tiny", "test data", (1, 8, 8), ("left", "right"), True, "none",
                       lambda split, **kw: tiny_dataset(split=split))
    monkeypatch.setitem(DATASETS, "tiny", info)
    teacher_spec = {"dataset": "tiny", "epochs": 1, "batch_size": 16, "seed": 3}
    hp = {"teacher": teacher_spec, "start": "teacher", "eps": 0.1, "alpha": 0.05, "steps": 1, "m_inner": 1,
          "m_outer": 2}
    config = TrainConfig(dataset="tiny", method="teacher_aligned", epochs=1, batch_size=16, hyperparameters=hp)
    identity = make_method("teacher_aligned", **hp).hyperparameters()["teacher"]
    assert identity["seed"] == 3 and identity["config"]["method"] == "natural"
    cache = ResultsCache(tmp_path / "shared")
    trained = []
    real_fit = train_cached.__globals__["fit"]

    def counting_fit(model, data, method, **kwargs):
        trained.append(method.name)
        return real_fit(model, data, method, **kwargs)

    monkeypatch.setattr("rattrlib.train.cached.fit", counting_fit)
    student, logs = train_cached(config, seed=0, device="cpu", cache=cache, progress=False)
    assert trained == ["teacher_aligned", "natural"]  # the teacher, resolved in prepare, in the same cache
    assert math.isfinite(logs[0]["align"]) and math.isfinite(logs[0]["ig"])
    assert not (tmp_path / "home" / "results").exists()
    teacher, _ = train_cached(TrainConfig(dataset="tiny", epochs=1, batch_size=16), seed=3, device="cpu",
                              cache=cache, progress=False)
    assert trained == ["teacher_aligned", "natural"]  # loaded, not trained again
    cache.path("model", cache_key("model", config, 0, "tiny")).unlink()  # train the student again: its run
    shutil.rmtree(cache.root / "checkpoint")  # must not depend on whether the teacher had to be trained
    again, _ = train_cached(config, seed=0, device="cpu", cache=cache, progress=False)
    assert trained == ["teacher_aligned", "natural", "teacher_aligned"]
    assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), again.state_dict().values()))
    start = build_model("mnist_cnn", (1, 8, 8), 2)
    method = make_method("teacher_aligned", **hp)
    method.results_cache = cache
    method.prepare(start, tiny_dataset())  # AT-start from the cached teacher
    assert all(torch.equal(a, b) for a, b in zip(start.state_dict().values(), teacher.state_dict().values()))


# ----------------------------------------------------------------------------------------------------------
# smoke training: one epoch of every method, finite logged terms
# ----------------------------------------------------------------------------------------------------------
class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                 nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, x):
        return self.net(x)


SMOKE = {
    "art": ({"eps": 0.1, "steps": 2}, {"ce", "attr"}),
    "ssr": ({"scale_s": 10.0}, {"ce", "lambda_max", "reg"}),
    "ig_norm": ({"eps": 0.1, "alpha": 0.05, "steps": 2, "m_inner": 2, "m_outer": 4}, {"ce", "ig"}),
    "ig_sum_norm": ({"eps": 0.1, "alpha": 0.05, "steps": 2, "m_inner": 2, "m_outer": 4}, {"ce", "ig"}),
    "teacher_aligned": ({"eps": 0.1, "alpha": 0.05, "steps": 2, "m_inner": 2, "m_outer": 4}, {"ce", "ig", "align"}),
}


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_one_epoch_of_each_method_runs_with_finite_logged_terms(name):
    hp, terms = SMOKE[name]
    if name == "teacher_aligned":
        torch.manual_seed(7)
        hp = {**hp, "teacher": SmallNet()}
    torch.manual_seed(0)
    model = SmallNet()
    data = tiny_dataset(n=32)
    logs = train(model, data, name, epochs=2, batch_size=16, lr=3e-3, progress=False, **hp)
    assert terms | {"loss", "train_accuracy", "seconds"} <= set(logs[0])
    assert all(math.isfinite(log[k]) for log in logs for k in terms | {"loss"})
    assert logs[-1]["ce"] < logs[0]["ce"] or logs[-1]["train_accuracy"] == 1.0
    assert all(torch.isfinite(p).all() for p in model.parameters())


class TinyBN(Tiny):
    """:class:`Tiny` with a BatchNorm after the convolution: its train-mode output depends on the batch."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.bn = nn.BatchNorm2d(self.conv.out_channels)

    def forward(self, x):
        return self.fc(self.act(self.bn(self.conv(x))).flatten(1))


def test_ig_of_the_trainers_batches_all_path_points_unless_a_batchnorm_trains():
    """All m points in one forward is the same IG (to round-off) for a model without batch norm; a model with
    a BatchNorm in train mode keeps one path point per forward, whose result differs from the one-forward one."""
    torch.manual_seed(0)
    x = torch.rand(4, 1, 6, 6, dtype=DT)
    x_adv = (x + 0.1 * torch.rand_like(x)).clamp(0, 1)
    y = torch.tensor([0, 1, 2, 0])
    method = IGNorm(eps=0.1, m_inner=2, m_outer=5, beta=None)
    plain = tiny().train()
    batched = method.ig(plain, x, x_adv, y, 5)
    per_point = loss_integrated_gradients(plain, x, x_adv, y, 5, internal_batch_size=None)
    assert torch.allclose(batched, per_point, atol=1e-12, rtol=1e-10)
    torch.manual_seed(1)
    with_bn = TinyBN().to(DT).train()
    guarded = method.ig(with_bn, x, x_adv, y, 5)
    assert torch.equal(guarded, loss_integrated_gradients(with_bn, x, x_adv, y, 5, internal_batch_size=None))
    all_at_once = loss_integrated_gradients(with_bn, x, x_adv, y, 5, internal_batch_size=4 * 5)
    assert not torch.allclose(guarded, all_at_once, atol=1e-6)
