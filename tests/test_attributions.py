"""Tests of rattrlib.attributions against independent oracles.

Oracles: the weight row of a hand-built linear model (all gradients are constant there), IG completeness
(Σ IG = f(x) − f(x0)), Captum's IntegratedGradients with the riemann_right rule, re-drawing the documented
noise by hand, ``torch.autograd.gradcheck`` of the create_graph path, and hand computations.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rattrlib.attributions import (ATTRIBUTIONS, GradientSHAP, InputXGradient, IntegratedGradients, Saliency,
                                   SmoothGrad, UniformGradient, attribution_map, get_attribution, smooth_copy)

torch.set_num_threads(2)
DT = torch.float64


# ----------------------------------------------------------------------------------------------------------
# tiny models
# ----------------------------------------------------------------------------------------------------------
def linear_model(shape=(2, 3, 3), classes=4, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), classes)).to(DT)
    return model.eval()


def weight_rows(model, target, shape):
    """Oracle: ∂f_c/∂x of a linear model is row c of its weight matrix, reshaped to C×H×W."""
    return model[1].weight[target].detach().reshape(len(target), *shape)


def smooth_cnn(channels=2, classes=3, act=nn.Tanh, seed=0, dtype=DT, gain=3.0):
    """A small smooth CNN (no ReLU): conv → act → conv (stride 2) → act → linear → act → linear.

    Weights are ``gain`` × PyTorch's default init so the logits are clearly nonlinear on [0, 1] images.
    """
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1), act(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1), act(),
        nn.Flatten(), nn.LazyLinear(8), act(), nn.Linear(8, classes))
    model(torch.zeros(1, channels, 6, 6))  # materialise the lazy layer (6×6 images)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return model.to(dtype).eval()


class ReluNet(nn.Module):
    """ReLU CNN with BatchNorm and ONE ReLU instance used twice (a shared module must stay shared)."""

    def __init__(self, classes=3):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 8), nn.ReLU(), nn.Linear(8, classes))

    def forward(self, x):
        return self.head(self.act(self.bn(self.act(self.conv(x)))))


def relu_net(seed=0):
    torch.manual_seed(seed)
    model = ReluNet().to(DT)
    with torch.no_grad():  # non-trivial BN statistics
        model.bn.running_mean.uniform_(-0.1, 0.1)
        model.bn.running_var.uniform_(0.5, 1.5)
    return model.eval()


class FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.relu(x.flatten(1)))


class CountingModel(nn.Module):
    """Counts forward calls and rows, to check that validation fails before heavy compute."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = 0
        self.max_rows = 0

    def forward(self, x):
        self.calls += 1
        self.max_rows = max(self.max_rows, x.shape[0])
        return self.model(x)


def images(n=4, shape=(2, 6, 6), seed=1, dtype=DT):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g, dtype=dtype)


def logit(model, x, target):
    with torch.no_grad():
        return model(x).gather(1, target[:, None]).squeeze(1)


# ----------------------------------------------------------------------------------------------------------
# saliency, gradient × input
# ----------------------------------------------------------------------------------------------------------
def test_saliency_of_linear_model_is_its_weight_row():
    shape = (2, 3, 3)
    model = linear_model(shape)
    x = images(3, shape)
    target = torch.tensor([0, 3, 1])
    torch.testing.assert_close(Saliency(model).attribute(x, target), weight_rows(model, target, shape))
    # int target = same class for all; a list works too
    torch.testing.assert_close(Saliency(model).attribute(x, 2), weight_rows(model, torch.tensor([2] * 3), shape))
    torch.testing.assert_close(Saliency(model).attribute(x, [0, 3, 1]), weight_rows(model, target, shape))


def test_input_x_gradient_of_linear_model_is_x_times_weight():
    shape = (2, 3, 3)
    model = linear_model(shape)
    x = images(3, shape)
    target = torch.tensor([1, 1, 2])
    torch.testing.assert_close(InputXGradient(model).attribute(x, target), x * weight_rows(model, target, shape))


# ----------------------------------------------------------------------------------------------------------
# integrated gradients
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", ["riemann_right", "trapezoid"])
@pytest.mark.parametrize("baseline", [None, 0.5, "tensor"])
def test_ig_of_linear_model_is_delta_times_weight(rule, baseline):
    shape = (2, 3, 3)
    model = linear_model(shape)
    x = images(3, shape)
    target = torch.tensor([0, 1, 3])
    if baseline == "tensor":
        baseline = images(1, shape, seed=7)[0]  # C×H×W, broadcast over the batch
    x0 = torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline, dtype=DT).expand_as(x)
    for m in (1, 3):
        ig = IntegratedGradients(model, n_steps=m, rule=rule, baseline=baseline).attribute(x, target)
        torch.testing.assert_close(ig, (x - x0) * weight_rows(model, target, shape), rtol=1e-12, atol=1e-12)


def test_ig_completeness_at_300_steps():
    model = smooth_cnn()
    x = images(5)
    target = torch.tensor([0, 1, 2, 0, 1])
    ig = IntegratedGradients(model, n_steps=300).attribute(x, target)
    gap = logit(model, x, target) - logit(model, torch.zeros_like(x), target)
    assert (gap.abs() > 0.3).all()
    rel = (ig.sum(dim=(1, 2, 3)) - gap).abs() / gap.abs()
    assert (rel < 0.01).all(), rel
    # the oracle is not trivial: the path is curved enough that 4 steps miss by more than 1 %
    ig4 = IntegratedGradients(model, n_steps=4).attribute(x, target)
    assert ((ig4.sum(dim=(1, 2, 3)) - gap).abs() / gap.abs()).max() > 0.05
    # with a non-black baseline as well
    x0 = images(1, seed=5)
    ig = IntegratedGradients(model, n_steps=300, baseline=x0).attribute(x, target)
    gap = logit(model, x, target) - logit(model, x0.expand_as(x), target)
    assert ((ig.sum(dim=(1, 2, 3)) - gap).abs() / gap.abs() < 0.01).all()


# Captum builds its alphas with float32 torch.linspace, so even in float64 the two agree to ~1e-8 only
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_ig_matches_captum_riemann_right(dtype, tol):
    captum_attr = pytest.importorskip("captum.attr")
    model = smooth_cnn(act=nn.Softplus, dtype=dtype)
    x = images(3, dtype=dtype)
    target = torch.tensor([2, 0, 1])
    x0 = images(1, seed=9, dtype=dtype) * 0.2
    m = 24
    ours = IntegratedGradients(model, n_steps=m, baseline=x0).attribute(x, target)
    theirs = captum_attr.IntegratedGradients(model).attribute(
        x, baselines=x0.expand_as(x), target=target, n_steps=m, method="riemann_right")
    torch.testing.assert_close(ours, theirs.to(dtype), rtol=tol, atol=tol)


@pytest.mark.parametrize("rule", ["riemann_right", "trapezoid"])
def test_ig_internal_batch_size_gives_the_same_result(rule):
    model = smooth_cnn()
    x = images(3)
    target = torch.tensor([0, 1, 2])
    full = IntegratedGradients(model, n_steps=7, rule=rule).attribute(x, target)
    for ibs in (1, 2, 3, 5, 9, 1000):  # smaller than N, not a multiple of N, a multiple, larger than N·m
        counted = CountingModel(model)
        out = IntegratedGradients(counted, n_steps=7, rule=rule, internal_batch_size=ibs).attribute(x, target)
        torch.testing.assert_close(out, full, rtol=1e-13, atol=1e-14)
        n_points = 3 * (7 if rule == "riemann_right" else 8)
        assert counted.max_rows <= ibs and counted.calls >= n_points / ibs
    # and on the create_graph path
    x.requires_grad_(True)
    a = IntegratedGradients(model, n_steps=5).attribute(x, target, create_graph=True)
    b = IntegratedGradients(model, n_steps=5, internal_batch_size=2).attribute(x, target, create_graph=True)
    ga, = torch.autograd.grad(a.square().sum(), x)
    gb, = torch.autograd.grad(b.square().sum(), x)
    torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(ga, gb, rtol=1e-12, atol=1e-13)


def test_ig_trapezoid_differs_from_riemann_but_both_converge():
    model = smooth_cnn()
    x = images(5)[:3]
    target = torch.tensor([0, 1, 2])  # logit gaps ≥ 0.3 (see the completeness test)
    right4 = IntegratedGradients(model, n_steps=4).attribute(x, target)
    trap4 = IntegratedGradients(model, n_steps=4, rule="trapezoid").attribute(x, target)
    assert (right4 - trap4).abs().max() > 1e-3
    # trapezoid with m = 1 by hand: (x − x0) ⊙ (∇f(x0) + ∇f(x)) / 2
    sal = Saliency(model)
    trap1 = IntegratedGradients(model, n_steps=1, rule="trapezoid").attribute(x, target)
    torch.testing.assert_close(trap1, x * (sal.attribute(torch.zeros_like(x), target) + sal.attribute(x, target)) / 2)
    gap = logit(model, x, target) - logit(model, torch.zeros_like(x), target)
    errors = {}
    for rule in ("riemann_right", "trapezoid"):
        errors[rule] = [((IntegratedGradients(model, n_steps=m, rule=rule).attribute(x, target)
                          .sum(dim=(1, 2, 3)) - gap).abs() / gap.abs()).max().item() for m in (4, 300)]
        assert errors[rule][1] < 0.01 and errors[rule][1] < errors[rule][0], errors
    assert errors["trapezoid"][1] < errors["riemann_right"][1]  # second order vs first order
    right300 = IntegratedGradients(model, n_steps=300).attribute(x, target)
    trap300 = IntegratedGradients(model, n_steps=300, rule="trapezoid").attribute(x, target)
    assert (right300 - trap300).abs().max() < (right4 - trap4).abs().max() / 20


# ----------------------------------------------------------------------------------------------------------
# smoothgrad, uniform gradient
# ----------------------------------------------------------------------------------------------------------
def test_zero_noise_smoothgrad_and_uniform_gradient_equal_saliency():
    model = smooth_cnn()
    x = images(3)
    target = torch.tensor([0, 2, 1])
    sal = Saliency(model).attribute(x, target)
    torch.testing.assert_close(SmoothGrad(model, sigma=0.0, n_samples=5).attribute(x, target), sal)
    torch.testing.assert_close(UniformGradient(model, radius=0.0, n_samples=5).attribute(x, target), sal)
    # and they are close for tiny noise
    torch.testing.assert_close(SmoothGrad(model, sigma=1e-6, n_samples=3).attribute(x, target), sal,
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cls,param", [(SmoothGrad, "sigma"), (UniformGradient, "radius")])
def test_noisy_gradients_redraw_by_hand(cls, param):
    """Oracle: draw the documented noise by hand (one N×C×H×W draw per sample, in order) and average."""
    model = smooth_cnn()
    x = images(2)
    target = torch.tensor([1, 0])
    scale, n = 0.2, 4
    out = cls(model, **{param: scale}, n_samples=n, generator=torch.Generator().manual_seed(3)).attribute(x, target)
    g = torch.Generator().manual_seed(3)
    sal = Saliency(model)
    expected = torch.zeros_like(x)
    for _ in range(n):
        if cls is SmoothGrad:
            noise = scale * torch.randn(x.shape, generator=g, dtype=DT)
        else:
            u = torch.rand(x.shape, generator=g, dtype=DT)
            noise = scale * (2 * u - 1)
            assert noise.abs().max() <= scale
        expected += sal.attribute(x + noise, target) / n
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("cls,param", [(SmoothGrad, "sigma"), (UniformGradient, "radius")])
def test_noisy_gradients_are_deterministic_given_a_seeded_generator(cls, param):
    model = smooth_cnn()
    x = images(3)

    def run(seed, ibs=None):
        method = cls(model, **{param: 0.1}, n_samples=6, internal_batch_size=ibs,
                     generator=torch.Generator().manual_seed(seed))
        return method.attribute(x, 1)

    a = run(0)
    torch.testing.assert_close(run(0), a, rtol=0, atol=0)
    torch.testing.assert_close(run(0, ibs=4), a, rtol=1e-13, atol=1e-14)  # chunking does not move the draws
    assert (run(1) - a).abs().max() > 1e-4
    assert (a - Saliency(model).attribute(x, 1)).abs().max() > 1e-4  # the noise did something


# ----------------------------------------------------------------------------------------------------------
# gradient shap
# ----------------------------------------------------------------------------------------------------------
def test_gradient_shap_on_linear_model():
    shape = (2, 3, 3)
    model = linear_model(shape)
    x = images(3, shape)
    target = torch.tensor([2, 0, 1])
    w = weight_rows(model, target, shape)
    # one baseline: the gradient is constant, so every draw gives exactly (x − b) ⊙ w
    torch.testing.assert_close(GradientSHAP(model, n_samples=5).attribute(x, target), x * w)
    b = images(1, shape, seed=4)
    torch.testing.assert_close(GradientSHAP(model, n_samples=5, baselines=b).attribute(x, target), (x - b) * w)
    # several baselines: (x − E b) ⊙ w in expectation (constant images 0, 0.5, 1 → E b = 0.5; 5σ tolerance)
    bs = torch.tensor([0.0, 0.5, 1.0], dtype=DT)[:, None, None, None].expand(3, *shape)
    n = 3000
    gen = torch.Generator().manual_seed(0)
    out = GradientSHAP(model, n_samples=n, baselines=bs, generator=gen).attribute(x, target)
    implied_mean_baseline = x - out / w
    assert (implied_mean_baseline - 0.5).abs().max() < 5 * math.sqrt(1 / 6 / n)
    # input noise averages out too
    out = GradientSHAP(model, n_samples=n, stdev=0.1, generator=torch.Generator().manual_seed(0)).attribute(x, target)
    assert (out / w - x).abs().max() < 5 * 0.1 / math.sqrt(n)


def test_gradient_shap_completeness_in_expectation_and_draws():
    model = smooth_cnn()
    x = images(5)[:2]
    target = torch.tensor([0, 1])  # logit gaps ≥ 0.3
    n = 2000
    out = GradientSHAP(model, n_samples=n, generator=torch.Generator().manual_seed(1),
                       internal_batch_size=1000).attribute(x, target)
    gap = logit(model, x, target) - logit(model, torch.zeros_like(x), target)
    assert ((out.sum(dim=(1, 2, 3)) - gap).abs() / gap.abs() < 0.05).all()
    # hand re-draw of the documented order: baseline indices, α, noise
    bs = images(3, seed=8)
    g = torch.Generator().manual_seed(5)
    out = GradientSHAP(model, n_samples=3, stdev=0.05, baselines=bs,
                       generator=torch.Generator().manual_seed(5)).attribute(x, target)
    sal, expected = Saliency(model), torch.zeros_like(x)
    for _ in range(3):
        x0 = bs[torch.randint(3, (2,), generator=g)]
        alpha = torch.rand(2, 1, 1, 1, generator=g, dtype=DT)
        xt = x + 0.05 * torch.randn(x.shape, generator=g, dtype=DT)
        expected += (xt - x0) * sal.attribute(x0 + alpha * (xt - x0), target) / 3
    torch.testing.assert_close(out, expected)


# ----------------------------------------------------------------------------------------------------------
# create_graph: second order
# ----------------------------------------------------------------------------------------------------------
def tiny_softplus_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 2), nn.Softplus(beta=2.0), nn.Flatten(),
                         nn.Linear(8, 3), nn.Softplus(beta=2.0), nn.Linear(3, 2)).to(DT).eval()


def method_factories(model):
    base = torch.full((1, 1, 3, 3), 0.1, dtype=DT)
    two_baselines = torch.cat([base, 2 * base])
    return {
        "saliency": lambda: Saliency(model),
        "input_x_gradient": lambda: InputXGradient(model),
        "integrated_gradients": lambda: IntegratedGradients(model, n_steps=3, baseline=base),
        "ig_trapezoid_chunked": lambda: IntegratedGradients(model, n_steps=3, rule="trapezoid",
                                                            internal_batch_size=2),
        "smoothgrad": lambda: SmoothGrad(model, sigma=0.1, n_samples=3, generator=torch.Generator().manual_seed(0)),
        "uniform_gradient": lambda: UniformGradient(model, radius=0.1, n_samples=3,
                                                    generator=torch.Generator().manual_seed(0)),
        "gradient_shap": lambda: GradientSHAP(model, n_samples=3, stdev=0.05, baselines=two_baselines,
                                              generator=torch.Generator().manual_seed(0)),
    }


@pytest.mark.parametrize("name", list(method_factories(None)))
def test_create_graph_gradcheck_wrt_input_and_parameter_gradient(name):
    model = tiny_softplus_model()
    make = method_factories(model)[name]  # a fresh, re-seeded method per call → deterministic function of x
    x = torch.rand(1, 1, 3, 3, dtype=DT, generator=torch.Generator().manual_seed(2)) + 0.2
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda inp: make().attribute(inp, 1, create_graph=True), (x,))
    # a loss on the attribution has a gradient w.r.t. the model's parameters
    attr = make().attribute(x.detach(), 1, create_graph=True)  # x without requires_grad: still a graph
    assert attr.grad_fn is not None
    grads = torch.autograd.grad(attr.square().sum(), [model[0].weight, model[3].weight])
    assert all(gr.abs().sum() > 0 for gr in grads)
    # create_graph=False: same values, no graph, even for an input that requires grad
    plain = make().attribute(x, 1)
    assert plain.grad_fn is None and not plain.requires_grad
    torch.testing.assert_close(plain, attr.detach())
    assert x.grad is None


def test_attribute_works_under_no_grad_and_keeps_the_model_mode():
    model = smooth_cnn()
    x = images(2)
    for mode in (True, False):
        model.train(mode)
        for name in ATTRIBUTIONS:
            kwargs = {"n_samples": 2} if name in ("smoothgrad", "uniform_gradient", "gradient_shap") else {}
            with torch.no_grad():
                out = get_attribution(name, model, **kwargs).attribute(x, 0)
            assert out.shape == x.shape and out.dtype == x.dtype
            assert all(m.training == mode for m in model.modules())


def test_create_graph_flows_to_an_input_that_requires_grad():
    """The attack use: x_adv requires grad, the loss is on the attribution map of x_adv."""
    model = smooth_cnn()
    delta = torch.zeros(2, 2, 6, 6, dtype=DT, requires_grad=True)
    x_adv = images(2) + delta  # a non-leaf input
    for method in (Saliency(model), IntegratedGradients(model, n_steps=4)):
        loss = attribution_map(method.attribute(x_adv, torch.tensor([0, 1]), create_graph=True)).sum()
        (g,) = torch.autograd.grad(loss, delta)
        assert g.abs().sum() > 0


# ----------------------------------------------------------------------------------------------------------
# attribution map
# ----------------------------------------------------------------------------------------------------------
def test_attribution_map_sums_absolute_values_over_channels():
    attr = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]],
                          [[-4.0, 5.0], [-6.0, 0.5]]]])  # 1×2×2×2
    expected = torch.tensor([[[5.0, 7.0], [6.0, 3.5]]])
    torch.testing.assert_close(attribution_map(attr), expected)
    assert attribution_map(torch.zeros(3, 1, 4, 5)).shape == (3, 4, 5)
    with pytest.raises(ValueError, match="N×C×H×W"):
        attribution_map(torch.zeros(2, 4, 5))


# ----------------------------------------------------------------------------------------------------------
# smooth copy
# ----------------------------------------------------------------------------------------------------------
def test_smooth_copy_shares_parameters_and_buffers_and_replaces_relu():
    model = relu_net()
    smooth = smooth_copy(model, beta=10.0)
    assert type(smooth) is ReluNet and smooth is not model
    for (name, p), (name_s, p_s) in zip(model.named_parameters(), smooth.named_parameters()):
        assert name == name_s and p is p_s
    for (name, b), (name_s, b_s) in zip(model.named_buffers(), smooth.named_buffers()):
        assert name == name_s and b is b_s
    assert not any(isinstance(m, nn.ReLU) for m in smooth.modules())
    softplus = [m for m in smooth.modules() if isinstance(m, nn.Softplus)]
    assert len(softplus) == 2 and all(m.beta == 10.0 for m in softplus)  # the shared ReLU stays one module
    assert smooth.act is not model.act and isinstance(model.act, nn.ReLU)  # original untouched
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2
    assert smooth.state_dict().keys() == model.state_dict().keys()


def test_smooth_copy_converges_to_relu_model_as_beta_grows():
    model = relu_net()
    x = images(5) - 0.5
    with torch.no_grad():
        ref = model(x)
        errors = [(smooth_copy(model, beta)(x) - ref).abs().max().item() for beta in (10.0, 100.0, 1e3, 1e5)]
    assert errors[2] < 1e-2 and errors[3] < 1e-4, errors
    assert errors == sorted(errors, reverse=True)


def test_smooth_copy_has_nonzero_second_derivative_where_relu_has_none():
    model = relu_net()
    x = images(2) - 0.5
    for net, expect_zero in ((model, True), (smooth_copy(model, 5.0), False)):
        xi = x.clone().requires_grad_(True)
        sal = Saliency(net).attribute(xi, 0, create_graph=True)
        (hess_v,) = torch.autograd.grad(sal.square().sum(), xi, allow_unused=True)
        hess_v = torch.zeros_like(x) if hess_v is None else hess_v  # ReLU: the input gradient is constant
        assert (hess_v.abs().max() == 0) == expect_zero


def test_smooth_copy_sees_weight_changes_and_sends_gradients_to_the_original():
    model = relu_net()
    smooth = smooth_copy(model, 20.0)
    x = images(2)
    before = smooth(x).detach()
    with torch.no_grad():
        model.conv.weight.mul_(1.5)
        model.head[1].bias.add_(0.3)
    after = smooth(x).detach()
    assert (after - before).abs().max() > 1e-3
    torch.testing.assert_close(after, smooth_copy(model, 20.0)(x).detach())
    # load_state_dict on the original is seen as well
    other = relu_net(seed=5)
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(smooth(x).detach(), smooth_copy(other, 20.0)(x).detach())
    # gradients through the copy land in the original's .grad
    model.zero_grad()
    smooth(x).sum().backward()
    assert model.conv.weight.grad is not None and model.conv.weight.grad.abs().sum() > 0


def test_smooth_copy_follows_the_original_mode_and_keeps_its_own_hooks():
    model = relu_net()
    smooth = smooth_copy(model, 20.0)
    model.train()
    smooth(images(4))  # train-mode BN: updates the SHARED running statistics
    assert smooth.bn.training and int(model.bn.num_batches_tracked) == 1
    model.eval()
    smooth.train()  # ignored: the copy follows the original at every forward
    smooth(images(4))
    assert not smooth.bn.training and int(model.bn.num_batches_tracked) == 1
    calls = []
    smooth.conv.register_forward_hook(lambda *a: calls.append(1))
    model(images(1))
    assert calls == []


def test_smooth_copy_rejects_bad_beta_and_models_without_relu_modules():
    for beta in (0.0, -1.0, float("nan"), float("inf"), True, "50"):
        with pytest.raises(ValueError, match="beta"):
            smooth_copy(relu_net(), beta)
    with pytest.raises(ValueError, match="functional"):
        smooth_copy(FunctionalRelu(), 10.0)
    with pytest.raises(ValueError, match="nn.Module"):
        smooth_copy(lambda x: x, 10.0)


# ----------------------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------------------
def test_registry_builds_every_method_and_rejects_unknown_names():
    model = linear_model()
    assert set(ATTRIBUTIONS) == {"saliency", "input_x_gradient", "integrated_gradients", "smoothgrad",
                                 "uniform_gradient", "gradient_shap", "guided_backprop",
                                 "guided_gradcam_pp"}
    for name, cls in ATTRIBUTIONS.items():
        assert isinstance(get_attribution(name, model), cls)
    ig = get_attribution("integrated_gradients", model, n_steps=7, rule="trapezoid")
    assert ig.n_steps == 7 and ig.rule == "trapezoid"
    with pytest.raises(ValueError, match="'saliency'.*'gradient_shap'"):
        get_attribution("gradcam", model)


@pytest.mark.parametrize("make,match", [
    (lambda m: IntegratedGradients(m, n_steps=0), "n_steps"),
    (lambda m: IntegratedGradients(m, n_steps=2.5), "n_steps"),
    (lambda m: IntegratedGradients(m, rule="gauss_legendre"), "riemann_right.*trapezoid"),
    (lambda m: IntegratedGradients(m, baseline="black"), "baseline"),
    (lambda m: IntegratedGradients(m, internal_batch_size=0), "internal_batch_size"),
    (lambda m: SmoothGrad(m, sigma=-0.1), "sigma"),
    (lambda m: SmoothGrad(m, n_samples=0), "n_samples"),
    (lambda m: SmoothGrad(m, generator=0), "generator"),
    (lambda m: UniformGradient(m, radius=-1.0), "radius"),
    (lambda m: UniformGradient(m, n_samples=True), "n_samples"),
    (lambda m: GradientSHAP(m, stdev=-1.0), "stdev"),
    (lambda m: GradientSHAP(m, baselines=torch.zeros(2, 3, 3)), "baselines"),
    (lambda m: Saliency("not a model"), "model"),
])
def test_constructors_validate_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(linear_model())


@pytest.mark.parametrize("x_shape,target,match", [
    ((2, 3, 3), 0, "4-D"),                            # missing batch dim
    ((3, 2, 3, 3), torch.tensor([0, 1]), r"shape \(3,\)"),  # wrong number of targets
    ((3, 2, 3, 3), torch.tensor([0.0, 1.0, 2.0]), "integer"),
    ((3, 2, 3, 3), -1, "negative"),
    ((3, 2, 3, 3), 2.0, "integer"),
])
def test_bad_inputs_fail_before_any_forward(x_shape, target, match):
    counted = CountingModel(linear_model())
    with pytest.raises(ValueError, match=match):
        IntegratedGradients(counted, n_steps=50).attribute(torch.rand(*x_shape, dtype=DT), target)
    assert counted.calls == 0
    with pytest.raises(ValueError, match="floating"):
        Saliency(counted).attribute(torch.zeros(1, 2, 3, 3, dtype=torch.long), 0)


def test_target_out_of_range_fails_at_the_first_forward():
    counted = CountingModel(linear_model(classes=4))
    x = images(3, (2, 3, 3))
    for method in (IntegratedGradients(counted, n_steps=50, internal_batch_size=3),
                   SmoothGrad(counted, n_samples=20, internal_batch_size=3)):
        counted.calls = 0
        with pytest.raises(ValueError, match="out of range.*4 logits"):
            method.attribute(x, torch.tensor([0, 4, 1]))
        assert counted.calls == 1
    with pytest.raises(ValueError, match="does not broadcast"):
        IntegratedGradients(counted, baseline=torch.zeros(5, 2, 3, 3)).attribute(x, 0)
    with pytest.raises(ValueError, match="baselines"):
        GradientSHAP(counted, baselines=torch.zeros(2, 1, 3, 3)).attribute(x, 0)
