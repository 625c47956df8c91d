"""Class-conditional generation (Santurkar et al. 2019; ART Fig. 4): shape and range, the class logit rising over
the steps, the ℓ2 ball, the class-conditional Gaussian seeds, seeding and argument checks. Tiny models on 1×8×8."""

import math

import pytest
import torch
from torch import nn

from rattrlib.generation import class_conditional_seeds, generate_class_samples

SHAPE = (1, 8, 8)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_cnn(classes=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 16), nn.ReLU(),
                         nn.Linear(16, classes)).eval()


def class_logit(model, x, classes):
    with torch.no_grad():
        return model(x).gather(1, torch.as_tensor(classes)[:, None]).squeeze(1)


def test_shape_range_and_seeded_noise_start():
    model = tiny_cnn()
    out = generate_class_samples(model, [0, 1, 2, 1], SHAPE, steps=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, *SHAPE) and not out.requires_grad
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    again = generate_class_samples(model, [0, 1, 2, 1], SHAPE, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert all(p.requires_grad for p in model.parameters()) and not model.training


def test_target_logit_rises_over_the_steps():
    model = tiny_cnn(seed=1)
    classes = [0, 1, 2, 0, 1, 2]
    seeds = torch.rand(6, *SHAPE, generator=torch.Generator().manual_seed(3)) * 0.5 + 0.25
    logits = [class_logit(model, seeds, classes)]
    for steps in (1, 2, 5, 20):
        x = generate_class_samples(model, classes, SHAPE, steps=steps, step_size=0.2, init=seeds)
        logits.append(class_logit(model, x, classes))
    logits = torch.stack(logits)  # (checkpoints, images)
    assert bool((logits[1:] > logits[:-1]).all()), logits
    # a gradient step moves each image by exactly α in ℓ2 while no pixel is clamped
    x1 = generate_class_samples(model, classes, SHAPE, steps=1, step_size=0.2, init=seeds)
    assert torch.allclose(torch.linalg.vector_norm((x1 - seeds).flatten(1), dim=1), torch.full((6,), 0.2))


def test_eps_ball_around_the_seed():
    model = tiny_cnn(seed=2)
    seeds = torch.rand(4, *SHAPE, generator=torch.Generator().manual_seed(4))
    out = generate_class_samples(model, [0, 1, 2, 0], SHAPE, steps=10, step_size=0.5, eps=0.7, init=seeds)
    dist = torch.linalg.vector_norm((out - seeds).flatten(1), dim=1)
    assert bool((dist <= 0.7 + 1e-5).all())
    assert float(dist.max()) > 0.6  # the ball binds: ten steps of 0.5 would go further
    assert torch.equal(generate_class_samples(model, [0, 1, 2, 0], SHAPE, steps=3, eps=0.0, init=seeds), seeds)


def test_class_conditional_seeds_fit_each_class():
    g = torch.Generator().manual_seed(0)
    images = torch.cat([0.2 + 0.1 * torch.rand(200, *SHAPE, generator=g),   # class 0: dark
                        0.7 + 0.1 * torch.rand(200, *SHAPE, generator=g),   # class 1: bright
                        torch.full((3, *SHAPE), 0.5)])                      # class 2: one constant image
    labels = torch.tensor([0] * 200 + [1] * 200 + [2] * 3)
    classes = torch.tensor([0, 1] * 200 + [2])
    seeds = class_conditional_seeds(images, labels, classes, generator=torch.Generator().manual_seed(1))
    assert seeds.shape == (401, *SHAPE)
    for c in (0, 1):
        drawn, real = seeds[:400][classes[:400] == c].flatten(1), images[labels == c].flatten(1)
        assert torch.allclose(drawn.mean(0), real.mean(0), atol=0.01)
        # per-pixel variance of U(0, 0.1) is 1/1200
        assert abs(float(drawn.var(0).mean()) - 1 / 1200) < 2e-4
    assert torch.allclose(seeds[-1], torch.full(SHAPE, 0.5))  # zero covariance: the mean itself
    again = class_conditional_seeds(images, labels, classes, generator=torch.Generator().manual_seed(1))
    assert torch.equal(seeds, again)
    # the draws follow the sample covariance: the mean of x0·x0ᵀ over many seeds tends to Σ + μμᵀ
    two = torch.rand(50, 1, 2, 2, generator=g)
    draws = class_conditional_seeds(two.clamp(0.3, 0.7), torch.zeros(50, dtype=torch.long),
                                    torch.zeros(20000, dtype=torch.long), generator=g).flatten(1)
    flat = two.clamp(0.3, 0.7).flatten(1)
    assert torch.allclose(torch.cov(draws.T), torch.cov(flat.T), atol=2e-3)


def test_bad_arguments_raise():
    model = tiny_cnn()
    good = dict(model=model, classes=[0, 1], image_shape=SHAPE, steps=2)
    bad = [dict(classes=[]), dict(classes=[-1]), dict(classes=[0.5]), dict(classes=[[0, 1]]), dict(classes=[0, 3]),
           dict(image_shape=(8, 8)), dict(image_shape=(1, 8, 0)), dict(steps=0), dict(step_size=0.0),
           dict(step_size=math.nan), dict(eps=-1.0), dict(init="mean"), dict(init=torch.rand(3, *SHAPE)),
           dict(init=torch.full((2, *SHAPE), 2.0)), dict(generator=1), dict(model=lambda x: x)]
    for change in bad:
        with pytest.raises(ValueError):
            generate_class_samples(**{**good, **change})
    images, labels = torch.rand(5, *SHAPE), torch.tensor([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        class_conditional_seeds(images, labels, [2])
    with pytest.raises(ValueError, match="labels"):
        class_conditional_seeds(images, labels[:4], [0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        class_conditional_seeds(images * 3, labels, [0])
