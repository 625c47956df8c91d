"""The model registry: output shapes, parameter counts of the published nets, smooth copies, validation."""

import pytest
import torch
from torch import nn

from rattrlib.attributions import smooth_copy
from rattrlib.models import MIN_SIZE, MODELS, build_model
from rattrlib.models.resnet import LeakyReLUModule, PerImageStandardization, RarResNet

SMALL = [("mnist_cnn", (1, 28, 28)), ("resnet20", (3, 32, 32)), ("resnet20", (3, 64, 64)),
         ("resnet20", (1, 28, 28)), ("rar_resnet", (3, 32, 32)), ("rar_resnet", (3, 64, 64))]
LARGE = [("wrn28_10", (3, 8, 8)), ("wrn40_2", (3, 16, 16)), ("resnet50", (3, 32, 32)), ("vgg_gap", (3, 16, 16))]


def test_every_registered_model_is_exercised():
    assert {name for name, _ in SMALL + LARGE} == set(MODELS)


@pytest.mark.parametrize("name,shape", SMALL)
def test_small_models_give_logits_of_the_right_shape(name, shape):
    model = build_model(name, shape, 7).eval()
    out = model(torch.rand(3, *shape))
    assert out.shape == (3, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("name,shape", LARGE)
def test_large_models_forward_a_small_batch(name, shape):
    model = build_model(name, shape, 5).eval()
    with torch.no_grad():
        out = model(torch.rand(2, *shape))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


@pytest.mark.parametrize("name,classes,millions", [("resnet20", 10, 0.27), ("wrn28_10", 10, 36.5),
                                                   ("wrn40_2", 10, 2.2), ("resnet50", 1000, 25.6)])
def test_parameter_counts_match_the_papers(name, classes, millions):
    model = build_model(name, (3, 32, 32), classes)
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert count == pytest.approx(millions, rel=0.02)


def test_rar_resnet_has_five_units_per_stage_and_the_papers_filters():
    model = RarResNet(3, 43, 32)
    assert len(model.units) == 15
    assert [u.conv2.out_channels for u in model.units[::5]] == [16, 32, 64]
    code_variant = RarResNet(3, 43, 32, units_per_stage=2, batch_norm=False)
    assert len(code_variant.units) == 6 and not any(isinstance(m, nn.BatchNorm2d) for m in code_variant.modules())


@pytest.mark.parametrize("name,shape", SMALL + LARGE)
def test_smooth_copy_replaces_every_relu_and_no_functional_relu_remains(name, shape, monkeypatch):
    model = build_model(name, shape, 4).eval()
    relus = {id(m) for m in model.modules() if isinstance(m, nn.ReLU)}
    smooth = smooth_copy(model, 10.0)
    assert not any(isinstance(m, nn.ReLU) for m in smooth.modules())
    assert len({id(m) for m in smooth.modules() if isinstance(m, nn.Softplus)}) == len(relus)

    def forbidden(*args, **kwargs):
        raise AssertionError("a functional relu ran inside forward")

    x = torch.rand(2, *shape)
    monkeypatch.setattr(torch.nn.functional, "relu", forbidden)
    monkeypatch.setattr(torch, "relu", forbidden)
    monkeypatch.setattr(torch.Tensor, "relu", forbidden)
    with torch.no_grad():
        out = smooth(x)
    assert out.shape == (2, 4) and torch.isfinite(out).all()


def test_leaky_relu_module_and_its_smooth_copy_are_rars_activations():
    z = torch.linspace(-3, 3, 61)
    leaky = LeakyReLUModule(0.1)
    assert torch.allclose(leaky(z), torch.nn.functional.leaky_relu(z, 0.1))
    smooth = smooth_copy(leaky, 2.0)
    assert torch.allclose(smooth(z), 0.1 * z + 0.9 * torch.nn.functional.softplus(z, beta=2.0), atol=1e-6)


def test_per_image_standardization_matches_tensorflow_and_has_finite_gradients_on_constant_images():
    x = torch.rand(2, 3, 4, 4)
    x[1] = 0.5  # constant image: std 0 → TF's floor 1/√d
    x.requires_grad_(True)
    out = PerImageStandardization()(x)
    flat = x.detach()[0].flatten()
    expected = (flat - flat.mean()) / max(flat.std(unbiased=False).item(), 48 ** -0.5)
    assert torch.allclose(out[0].flatten(), expected, atol=1e-6)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    out.pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_build_model_validates_names_and_shapes():
    with pytest.raises(ValueError, match="model='resnet9000'.*choose one of"):
        build_model("resnet9000", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="square"):
        build_model("resnet20", (3, 32, 16), 10)
    with pytest.raises(ValueError, match="at least 32"):
        build_model("resnet50", (3, 16, 16), 10)
    with pytest.raises(ValueError, match="three positive ints"):
        build_model("resnet20", (32, 32), 10)
    with pytest.raises(ValueError, match="three positive ints"):
        build_model("resnet20", (3, 0, 0), 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("resnet20", (3, 32, 32), 1)
    assert set(MIN_SIZE) == set(MODELS)
