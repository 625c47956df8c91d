"""SPSA (Uesato et al. 2018): constraints, the finite-difference gradient estimate against autograd on a linear
model, accuracy drop on a trained tiny model, seeding, registry and argument checks. 1×8×8 images."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rattrlib.attacks import ATTACKS, SPSA, get_attack, pgd_accuracy
from rattrlib.attacks.spsa import margin


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def linear_model(classes=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, classes)).eval()


def two_class_task(n=64, seed=0):
    """Bright left half (class 0) or bright right half (class 1), plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = 0.1 * torch.rand(n, 1, 8, 8, generator=g)
    x[y == 0, :, :, :4] += 0.5
    x[y == 1, :, :, 4:] += 0.5
    return x.clamp(0, 1), y


def trained_mlp():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))
    x, y = two_class_task(128, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


def test_margin_is_true_minus_best_other_logit():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    assert torch.allclose(margin(logits, torch.tensor([0, 0])), torch.tensor([1.0, -5.0]))


def test_stays_in_ball_and_unit_box():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 8, 8, generator=g)
    x[:, :, :2] = 0.0  # entries on the box boundary: clamping must act
    x[:, :, -2:] = 1.0
    model = linear_model()
    y = model(x).argmax(1)
    eps = 0.1
    x_adv = SPSA(model, eps, alpha=0.05, steps=5, samples=8, generator=g).perturb(x, y)
    assert x_adv.shape == x.shape
    assert float((x_adv - x).abs().max()) <= eps + 1e-6
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert torch.equal(SPSA(model, 0.0, steps=2, samples=2).perturb(x, y), x)


def test_gradient_estimate_matches_autograd_on_linear_model():
    model = linear_model(seed=3)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.25
    y = torch.tensor([0, 1, 2, 0])
    attack = SPSA(model, 0.1, samples=1024, delta=1e-3, generator=torch.Generator().manual_seed(0),
                  internal_batch_size=2048)
    estimate = attack.estimate_gradient(x, y)
    xr = x.clone().requires_grad_(True)
    (true,) = torch.autograd.grad(margin(model(xr), y).sum(), xr)
    cos = F.cosine_similarity(estimate.flatten(1), true.flatten(1), dim=1)
    assert bool((cos > 0.8).all()), cos  # about 1/sqrt(1 + d/samples) = 0.97 for d = 64
    # chunking does not change the draws
    small = SPSA(model, 0.1, samples=1024, delta=1e-3, generator=torch.Generator().manual_seed(0),
                 internal_batch_size=40).estimate_gradient(x, y)
    assert torch.allclose(small, estimate, atol=1e-5)


def test_lowers_accuracy_of_trained_model():
    model = trained_mlp()
    x, y = two_class_task(32, seed=5)
    clean = float((model(x).argmax(1) == y).float().mean())
    attack = SPSA(model, 0.3, alpha=0.05, steps=15, samples=16, generator=torch.Generator().manual_seed(0))
    robust = pgd_accuracy(model, x, y, attack, batch_size=16)
    assert clean == 1.0
    assert robust <= 0.5 * clean
    x_adv = attack.perturb(x, y)
    still_right = model(x_adv).argmax(1) == y
    assert bool((margin(model(x_adv), y)[~still_right] < 0).all())


def test_deterministic_with_seeded_generator():
    model = trained_mlp()
    x, y = two_class_task(8, seed=7)

    def run(seed):
        attack = SPSA(model, 0.2, alpha=0.05, steps=4, samples=8, generator=torch.Generator().manual_seed(seed))
        return attack.perturb(x, y)

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_registry_and_argument_checks():
    model = linear_model()
    assert "spsa" in ATTACKS
    assert isinstance(get_attack("spsa", model, eps=0.1), SPSA)
    bad = [dict(eps=8), dict(eps=-0.1), dict(eps=0.1, alpha=0), dict(eps=0.1, steps=0),
           dict(eps=0.1, samples=0), dict(eps=0.1, delta=0.0), dict(eps=0.1, generator=0),
           dict(eps=0.1, internal_batch_size=0), dict(eps=0.1, steps=2.5)]
    for kwargs in bad:
        with pytest.raises(ValueError):
            SPSA(model, **kwargs)
    attack = SPSA(model, 0.1, steps=1, samples=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        attack.perturb(torch.full((2, 1, 8, 8), 2.0), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        attack.perturb(torch.rand(2, 1, 8, 8), torch.tensor([0, 1, 2]))
