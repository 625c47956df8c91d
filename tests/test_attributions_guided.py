"""Guided Backprop and Guided Grad-CAM++ (rattrlib.attributions.guided) against hand computations on tiny
models and Captum's GuidedBackprop (when Captum is installed)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rattrlib.attributions import GuidedBackprop, GuidedGradCAMpp, Saliency, get_attribution
from rattrlib.attributions.guided import grad_cam_pp, resolve_layer
from rattrlib.models.resnet import ResNet20

DT = torch.float64


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).to(DT).eval()


def test_guided_backprop_of_one_hidden_layer_by_hand():
    """f_c = w2_c · ReLU(W1 x + b1): GBP = W1ᵀ (1[z > 0] · ReLU(w2_c)), the saliency W1ᵀ (1[z > 0] · w2_c)."""
    model = mlp()
    x = torch.randn(5, 2, 2, 2, dtype=DT, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 2, 1, 0])
    w1, b1, w2 = model[1].weight, model[1].bias, model[3].weight
    z = x.flatten(1) @ w1.T + b1
    expected = ((z > 0) * w2[target].clamp(min=0)) @ w1
    sal = ((z > 0) * w2[target]) @ w1
    got = GuidedBackprop(model).attribute(x, target)
    torch.testing.assert_close(got, expected.detach().view_as(x))
    torch.testing.assert_close(Saliency(model).attribute(x, target), sal.detach().view_as(x))
    assert not torch.allclose(got, Saliency(model).attribute(x, target))
    # the hooks are gone afterwards: the plain gradient is unchanged
    assert all(not m._backward_hooks for m in model.modules())


def test_guided_backprop_matches_captum_on_a_resnet():
    captum_attr = pytest.importorskip("captum.attr")
    torch.manual_seed(0)
    model = ResNet20(3, 4, image_size=8).to(DT).eval()
    x = torch.rand(3, 3, 8, 8, dtype=DT, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([0, 3, 1])
    ours = GuidedBackprop(model).attribute(x, target)
    theirs = captum_attr.GuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=target)
    torch.testing.assert_close(ours, theirs.detach())
    assert ours.shape == x.shape and ours.abs().sum() > 0


class CamNet(nn.Module):
    """conv(1→2, 3×3, pad 1) → ReLU (the Grad-CAM++ layer) → global mean pool → linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


def cam_net():
    torch.manual_seed(0)
    net = CamNet().to(DT).eval()
    with torch.no_grad():
        net.fc.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, -1.0]], dtype=DT))
    return net


def test_grad_cam_pp_of_a_pooled_linear_head_by_hand():
    """After a global mean pool, g_k = W[c, k] / (h·w) at every pixel, so α_k = g²/(2g² + S_k g³) and
    w_k = h·w · α_k · ReLU(g_k) = h·w · g_k / (2 + S_k g_k) for g_k > 0 (0 otherwise); L = ReLU(Σ_k w_k A_k)."""
    net = cam_net()
    x = torch.rand(4, 1, 5, 5, dtype=DT, generator=torch.Generator().manual_seed(3))
    target = torch.tensor([0, 1, 2, 1])
    a = net.relu(net.conv(x)).detach()
    hw = 25
    g = net.fc.weight.detach()[target] / hw                           # N×K
    s = a.sum((2, 3))                                                  # N×K
    w = torch.where(g > 0, hw * g / (2 + s * g), torch.zeros_like(g))
    expected = (w[:, :, None, None] * a).sum(1).clamp(min=0)
    got = grad_cam_pp(net, x, target, net.relu)
    torch.testing.assert_close(got, expected)
    assert (got[2] == 0).all()  # class 2 has only negative weights: an empty map
    assert got[1].sum() > 0


def test_guided_gradcam_pp_is_gbp_times_the_cam_and_finds_the_layer():
    net = cam_net()
    x = torch.rand(3, 1, 5, 5, dtype=DT, generator=torch.Generator().manual_seed(4))
    target = torch.tensor([1, 0, 1])
    cam = grad_cam_pp(net, x, target, net.relu)                        # same size as x: upsampling is identity
    gbp = GuidedBackprop(net).attribute(x, target)
    for layer in (None, "relu", net.relu):
        got = GuidedGradCAMpp(net, layer=layer).attribute(x, target)
        torch.testing.assert_close(got, gbp * cam[:, None])
    chunked = GuidedGradCAMpp(net, internal_batch_size=2).attribute(x, target)
    torch.testing.assert_close(chunked, gbp * cam[:, None])
    for p in net.parameters():   # a frozen teacher (no parameter requires grad) gives the same maps
        p.requires_grad_(False)
    torch.testing.assert_close(GuidedGradCAMpp(net).attribute(x, target), gbp * cam[:, None])
    assert isinstance(get_attribution("guided_gradcam_pp", net), GuidedGradCAMpp)


def test_resnet20_layer_is_its_last_block_and_the_map_is_upsampled():
    torch.manual_seed(0)
    model = ResNet20(3, 4, image_size=16).to(DT).eval()
    x = torch.rand(2, 3, 16, 16, dtype=DT, generator=torch.Generator().manual_seed(5))
    layer = resolve_layer(model, None, x)
    assert layer is model.layers   # the stage Sequential: its output is the last block's (not the 1×1 pool)
    target = torch.tensor([0, 2])
    cam = grad_cam_pp(model, x, target, model.layers[-1])              # 4×4 at 16 px input
    assert cam.shape == (2, 4, 4)
    up = F.interpolate(cam[:, None], size=(16, 16), mode="bilinear", align_corners=False)
    got = GuidedGradCAMpp(model).attribute(x, target)
    torch.testing.assert_close(got, GuidedBackprop(model).attribute(x, target) * up)


def test_guided_methods_reject_create_graph_and_bad_layers():
    net = cam_net()
    x = torch.rand(1, 1, 5, 5, dtype=DT)
    for method in (GuidedBackprop(net), GuidedGradCAMpp(net)):
        with pytest.raises(ValueError, match="create_graph"):
            method.attribute(x, 0, create_graph=True)
    with pytest.raises(ValueError, match="no module named 'nope'"):
        GuidedGradCAMpp(net, layer="nope").attribute(x, 0)
    with pytest.raises(ValueError, match="layer must be"):
        GuidedGradCAMpp(net, layer=3)
