"""Common corruptions (Hendrycks & Dietterich 2019, CIFAR-10-C constants): range and shape, severity ordering on
natural images, seeding, independent oracles (Pillow's BOX resize, scikit-image's HSV), the accuracy table and
argument checks."""

import numpy as np
import pandas as pd
import pytest
import skimage.color
import skimage.data
import skimage.transform
import torch
from PIL import Image
from torch import nn

from rattrlib.corruptions import (CORRUPTIONS, SEVERITY_CONSTANTS, accuracy_table, corrupt, corruption_accuracy,
                                  corruption_correct)

NOISES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def natural_images(channels=3, size=32):
    """Four scikit-image photos, centre-square crops resized to size×size, as N×C×H×W in [0, 1]."""
    out = []
    for photo in (skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()):
        side = min(photo.shape[:2])
        small = skimage.transform.resize(photo[:side, :side], (size, size), anti_aliasing=True)
        out.append(torch.tensor(small, dtype=torch.float32).permute(2, 0, 1))
    x = torch.stack(out).clamp(0, 1)
    return x if channels == 3 else x.mean(1, keepdim=True)


def test_constants_cover_every_corruption_and_severity():
    assert set(SEVERITY_CONSTANTS) == set(CORRUPTIONS)
    assert all(len(c) == 5 for c in SEVERITY_CONSTANTS.values())


@pytest.mark.parametrize("channels", [1, 3])
def test_shape_and_range(channels):
    x = torch.rand(3, channels, 28, 28, generator=torch.Generator().manual_seed(0))
    x[:, :, :3] = 0.0
    x[:, :, -3:] = 1.0
    for name in CORRUPTIONS:
        for severity in range(1, 6):
            out = corrupt(x, name, severity, generator=torch.Generator().manual_seed(1))
            assert out.shape == x.shape and out.dtype == x.dtype, name
            assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0, name


@pytest.mark.parametrize("channels", [1, 3])
def test_distance_grows_with_severity(channels):
    x = natural_images(channels)
    for name in CORRUPTIONS:
        d = [float((corrupt(x, name, s, torch.Generator().manual_seed(2)) - x).abs().mean()) for s in range(1, 6)]
        assert all(a < b for a, b in zip(d, d[1:])), (name, d)
        assert d[0] > 0, name


def test_seeded_generator_is_deterministic():
    x = natural_images(3)
    for name in CORRUPTIONS:
        a = corrupt(x, name, 3, torch.Generator().manual_seed(5))
        b = corrupt(x, name, 3, torch.Generator().manual_seed(5))
        assert torch.equal(a, b), name
        if name in NOISES:
            assert not torch.equal(a, corrupt(x, name, 3, torch.Generator().manual_seed(6))), name


@pytest.mark.parametrize("size", [28, 32])
def test_pixelate_matches_pillow_box_resize(size):
    a = (np.random.default_rng(0).random((size, size)) * 255).astype(np.uint8)
    x = torch.tensor(a, dtype=torch.float64)[None, None] / 255
    for severity, s in enumerate(SEVERITY_CONSTANTS["pixelate"], start=1):
        small = int(size * s)
        ref = np.asarray(Image.fromarray(a).resize((small, small), Image.BOX).resize((size, size), Image.BOX))
        # Pillow rounds the coarse image to uint8 and uses fixed-point weights: one level of slack
        assert np.abs(corrupt(x, "pixelate", severity)[0, 0].numpy() * 255 - ref).max() <= 1.0 + 1e-9


def test_brightness_matches_skimage_hsv_and_contrast_formula():
    x = natural_images(3)
    x[0, :, :4, :4] = 0.0  # black pixels: HSV hue and saturation are 0 there
    for severity, b in enumerate(SEVERITY_CONSTANTS["brightness"], start=1):
        hsv = skimage.color.rgb2hsv(x.permute(0, 2, 3, 1).double().numpy())
        hsv[..., 2] = np.clip(hsv[..., 2] + b, 0, 1)
        ref = np.clip(skimage.color.hsv2rgb(hsv), 0, 1)
        got = corrupt(x.double(), "brightness", severity).permute(0, 2, 3, 1).numpy()
        assert np.allclose(got, ref, atol=1e-9)
    c = SEVERITY_CONSTANTS["contrast"][4]
    mean = x.mean((2, 3), keepdim=True)
    assert torch.allclose(corrupt(x, "contrast", 5), ((x - mean) * c + mean).clamp(0, 1), atol=1e-6)


def test_impulse_noise_hits_the_stated_fraction_and_defocus_keeps_constants():
    x = torch.full((8, 3, 32, 32), 0.5)
    for severity, amount in enumerate(SEVERITY_CONSTANTS["impulse_noise"], start=1):
        out = corrupt(x, "impulse_noise", severity, torch.Generator().manual_seed(severity))
        changed = out != 0.5
        assert abs(float(changed.float().mean()) - amount) < 0.01
        assert set(out[changed].unique().tolist()) <= {0.0, 1.0}
    for severity in range(1, 6):  # a normalised kernel with reflected edges leaves a flat image unchanged
        assert torch.allclose(corrupt(x, "defocus_blur", severity), x, atol=1e-6)


class BrightSide(nn.Module):
    """Class 0 if the left half is brighter than the right half, else class 1."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        left, right = x[..., :16].mean((1, 2, 3)), x[..., 16:].mean((1, 2, 3))
        return torch.stack([left - right, right - left], 1) + self.w


def test_corruption_accuracy_table():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(20) % 2
    x = 0.3 * torch.rand(20, 1, 32, 32, generator=g)
    x[y == 0, :, :, :16] += 0.4
    x[y == 1, :, :, 16:] += 0.4
    model = BrightSide()
    table = corruption_accuracy(model, x, y, generator=torch.Generator().manual_seed(1), batch_size=7)
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == list(CORRUPTIONS) and table.index.name == "corruption"
    assert list(table.columns) == [1, 2, 3, 4, 5, "mean"]
    assert ((table >= 0) & (table <= 1)).all().all()
    assert np.allclose(table["mean"], table[[1, 2, 3, 4, 5]].mean(axis=1))
    assert table.loc["brightness"].eq(1.0).all()  # a uniform brightening keeps which side is brighter
    again = corruption_accuracy(model, x, y, generator=torch.Generator().manual_seed(1), batch_size=7)
    pd.testing.assert_frame_equal(table, again)
    part = corruption_accuracy(model, x, y, names=["contrast"], severities=(1, 5))
    assert list(part.columns) == [1, 5, "mean"] and list(part.index) == ["contrast"]


def test_corruption_correct_is_the_per_image_outcome_of_a_hand_written_loop():
    # oracle: corrupt image by image with the noise drawn in the documented order (corruption → severity →
    # batch), classify, compare; the table is its mean over images
    g = torch.Generator().manual_seed(0)
    y = torch.arange(12) % 2
    x = 0.3 * torch.rand(12, 1, 32, 32, generator=g)
    x[y == 0, :, :, :16] += 0.002  # a margin small enough for the noise to flip some images
    x[y == 1, :, :, 16:] += 0.002
    model, names, severities = BrightSide(), ["gaussian_noise", "contrast"], (2, 5)
    correct = corruption_correct(model, x, y, names, severities, torch.Generator().manual_seed(3), batch_size=5)
    assert correct.shape == (12, 2, 2) and correct.dtype == bool
    oracle = torch.Generator().manual_seed(3)
    for i, name in enumerate(names):
        for j, severity in enumerate(severities):
            for start in range(0, 12, 5):
                xc = corrupt(x[start:start + 5], name, severity, oracle)
                expected = (model(xc).argmax(1) == y[start:start + 5]).numpy()
                assert (correct[start:start + 5, i, j] == expected).all()
    table = accuracy_table(correct, names, severities)
    np.testing.assert_allclose(table[[2, 5]].to_numpy(), correct.mean(axis=0))
    assert not correct.all() and correct.any()  # the noise at severity 5 costs some images, not all
    with pytest.raises(ValueError, match="shape"):
        accuracy_table(correct, ["contrast"], severities)


def test_bad_arguments_raise():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="gaussian_noise"):
        corrupt(x, "fog", 1)
    for severity in (0, 6, 2.0, True, "3"):
        with pytest.raises(ValueError, match="severity"):
            corrupt(x, "contrast", severity)
    with pytest.raises(ValueError, match="channels"):
        corrupt(torch.rand(2, 4, 8, 8), "contrast", 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(x * 2, "contrast", 1)
    with pytest.raises(ValueError, match="generator"):
        corrupt(x, "gaussian_noise", 1, generator=0)
    y = torch.tensor([0, 1])
    model = BrightSide()
    with pytest.raises(ValueError, match="corruption"):
        corruption_accuracy(model, x, y, names=["snow"])
    with pytest.raises(ValueError, match="severity"):
        corruption_accuracy(model, x, y, severities=(1, 7))
    with pytest.raises(ValueError, match="severities"):
        corruption_accuracy(model, x, y, severities=())
    with pytest.raises(ValueError, match="labels"):
        corruption_accuracy(model, x, torch.tensor([0, 1, 0]))
