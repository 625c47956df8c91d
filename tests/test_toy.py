"""The 2-D toy ReLU network of SSR Fig. 1: piecewise linear, attributions through rattrlib.attributions agree
with their definitions on it (saliency constant on a linear piece, SmoothGrad → saliency as σ → 0, IG
completeness), and the figure draws what it says."""

import copy

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402
from torch import nn  # noqa: E402

from rattrlib.toy import (DOMAIN, PointsAsImages, local_saliency_spread, make_toy_network,  # noqa: E402
                          neighbourhood, pick_neighbourhoods, plot_toy_geometry, toy_attributions, toy_data,
                          toy_scores)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def net():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    model = make_toy_network(seed=0)
    torch.set_num_threads(before)
    return model


def generic_points(n=16, seed=3):
    g = torch.Generator().manual_seed(seed)
    return 1.6 * torch.rand(n, 2, generator=g) - 0.8


def test_network_is_a_trained_relu_mlp_and_deterministic(net):
    assert all(isinstance(m, (nn.Linear, nn.ReLU, nn.Sequential)) for m in net.modules())
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 2
    assert not net.training
    x, y = toy_data(512, seed=0)
    assert x.abs().max() < 1.3 and (y == 0).sum() == (y == 1).sum()
    assert (net(x).argmax(1) == y).float().mean() > 0.95
    state = torch.get_rng_state()
    again = make_toy_network(seed=0, steps=5)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                 make_toy_network(seed=0, steps=5).state_dict().values()))


def test_saliency_is_constant_in_a_tiny_neighbourhood_but_not_globally(net):
    pts = generic_points()
    sal = toy_attributions(net, pts, ("saliency",))["saliency"]
    for direction in ([1e-5, 0.0], [0.0, 1e-5], [-7e-6, 7e-6]):
        moved = toy_attributions(net, pts + torch.tensor(direction), ("saliency",))["saliency"]
        assert torch.allclose(moved, sal, atol=1e-6, rtol=0)
    # the score is exactly linear on that neighbourhood: f(x + h) − f(x) = ⟨∇f(x), h⟩ (float64: the step is
    # below float32's resolution of scores ≈ 30)
    net64, pts64 = copy.deepcopy(net).double(), pts.double()
    h = torch.tensor([6e-6, -4e-6], dtype=torch.float64)
    step = toy_scores(net64, pts64 + h) - toy_scores(net64, pts64)
    sal64 = toy_attributions(net64, pts64, ("saliency",))["saliency"]
    assert torch.allclose(step, sal64 @ h, atol=1e-11, rtol=0)
    unit = sal / sal.norm(dim=1, keepdim=True)
    assert (1 - unit @ unit.T).max() > 0.5  # ...but the pieces differ: the network is not linear


def test_smoothgrad_tends_to_saliency_as_sigma_goes_to_zero(net):
    pts = generic_points(8)
    sal = toy_attributions(net, pts, ("saliency",))["saliency"]
    for sigma in (1e-7, 0.0):  # the mean of 8 equal gradients: equal up to float32 rounding
        sg = toy_attributions(net, pts, ("smoothgrad",),
                              method_kwargs={"smoothgrad": {"sigma": sigma, "n_samples": 8}})["smoothgrad"]
        assert torch.allclose(sg, sal, atol=1e-5, rtol=1e-6)
    wide = toy_attributions(net, pts, ("smoothgrad",), method_kwargs={"smoothgrad": {"sigma": 0.3}})["smoothgrad"]
    assert not torch.allclose(wide, sal, atol=1e-2)


@pytest.mark.parametrize("rule", ["riemann_right", "trapezoid"])
def test_integrated_gradients_completeness_from_the_corner(net, rule):
    pts = generic_points(8)
    ig = toy_attributions(net, pts, ("integrated_gradients",),
                          method_kwargs={"integrated_gradients": {"n_steps": 2000, "rule": rule}})
    corner = torch.tensor([[-1.0, -1.0]])
    gap = toy_scores(net, pts) - toy_scores(net, corner)
    assert torch.allclose(ig["integrated_gradients"].sum(1), gap, atol=2e-2 * gap.abs().max())


def test_logit_quantity_attributes_the_predicted_class(net):
    pts = generic_points(6)
    sal = toy_attributions(net, pts, ("saliency",), quantity="logit")["saliency"]
    x = pts.clone().requires_grad_(True)
    logits = net(x)
    logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
    assert torch.allclose(sal, x.grad, atol=1e-6)
    assert PointsAsImages(net)(pts.reshape(-1, 1, 1, 2)).shape == (6, 1)


def test_spread_is_zero_for_a_linear_model_and_picks_a_flat_and_ridge_points(net):
    linear = nn.Sequential(nn.Linear(2, 2))
    assert local_saliency_spread(linear, generic_points(5), 0.1).abs().max() < 1e-6
    centres = pick_neighbourhoods(net, radius=0.05, grid=21)
    assert centres.shape == (3, 2) and bool(((centres >= DOMAIN[0]) & (centres <= DOMAIN[1])).all())
    spread = local_saliency_spread(net, centres, 0.05)
    assert spread[0] < 1e-5 and bool((spread[1:] > 0.1).all())
    assert torch.linalg.vector_norm(centres[1] - centres[2]) >= 0.3 - 1e-6


def test_figure_draws_one_unit_arrow_per_point_and_method(net):
    centres = torch.tensor([[-0.5, 0.5], [0.3, -0.2], [0.6, 0.6]])
    methods = ("saliency", "integrated_gradients", "smoothgrad")
    fig = plot_toy_geometry(net, centres, methods, n_per=4, grid=41, method_kwargs={"smoothgrad": {"n_samples": 16}})
    try:
        assert len(fig.axes) == 1 + 3
        main = fig.axes[0]
        quivers = [c for c in main.collections if isinstance(c, Quiver)]
        assert [q.get_gid() for q in quivers] == [f"arrows:{m}" for m in methods]
        for q in quivers:
            assert q.N == 3 * 4
            length = (q.U ** 2 + q.V ** 2) ** 0.5
            assert abs(length - length[0]).max() < 1e-6  # unit vectors × one display length
        assert {t.get_text() for t in main.texts} >= {"A", "B", "C"}
        for ax in fig.axes[1:]:
            assert sum(isinstance(c, Quiver) for c in ax.collections) == 3
            assert all(c.N == 4 for c in ax.collections if isinstance(c, Quiver))
        assert torch.allclose(torch.tensor(quivers[0].X[:4]), neighbourhood(centres[:1], 0.05, 4)[:, 0])
    finally:
        plt.close(fig)
    fig = plot_toy_geometry(net, centres[:2], ("saliency",), zoom=False, grid=21, labels=["P", "Q"])
    try:
        assert len(fig.axes) == 1
        assert sum(isinstance(c, Quiver) for c in fig.axes[0].collections) == 1
    finally:
        plt.close(fig)


def test_bad_inputs_raise_clear_errors(net):
    with pytest.raises(ValueError, match="attribution"):
        toy_attributions(net, generic_points(2), ("saliency", "lrp"))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        toy_attributions(net, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="not asked for"):
        toy_attributions(net, generic_points(2), ("saliency",), method_kwargs={"smoothgrad": {"sigma": 0.1}})
    with pytest.raises(ValueError, match="labels"):
        plot_toy_geometry(net, generic_points(2), labels=["A"])
    with pytest.raises(ValueError, match="dataset"):
        make_toy_network(dataset="circles")
    with pytest.raises(ValueError, match="hidden"):
        make_toy_network(hidden=())
