"""ART's evaluation tools (rattrlib.evaluation, rattrlib.explorer, rattrlib.plots): attribution attacks on other
maps and the targeted attack, stronger and gradient-free attacks, image–gradient alignment, weakly supervised
localisation, and the ε/β explorer driven through its widget callbacks."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rattrlib.data import ImageDataset, load_dataset
from rattrlib.corruptions import CORRUPTIONS, SEVERITIES, corruption_accuracy
from rattrlib.evaluation import (adversarial_accuracy_zoo, attack_zoo_model, corruption_accuracy_zoo,
                                 evaluate_localisation, gradient_alignment, ifia_protocol)
from rattrlib.explorer import IFIAExplorer
from rattrlib.models import accuracy
from rattrlib.plots import plot_ablation, plot_distributions, plot_image_rows, plot_localisation
from rattrlib.published import art_table
from rattrlib.zoo import get_model

matplotlib.use("Agg")


@pytest.fixture
def protocol():
    return ifia_protocol("tiny", "smoke", k=10, n_eval=12)


def test_attack_zoo_model_runs_each_attack_on_the_chosen_map_and_caches(tiny_zoo, protocol):
    reports = {}
    for attribution, attack in (("saliency", "topk"), ("gradient_shap", "topk"), ("integrated_gradients", "targeted"),
                                ("saliency", "random_sign")):
        reports[attribution, attack] = attack_zoo_model("tiny", "natural", protocol, attribution=attribution,
                                                        attack=attack, scale="smoke", device="cpu", progress=False)
    test = load_dataset("tiny", "test").subset(protocol.n_eval, seed=0)
    for (attribution, attack), report in reports.items():
        assert report.config["attribution"] == attribution
        res = report.result
        x = test.images[np.flatnonzero(report.per_image["correct"].to_numpy())]  # the attacked images
        assert len(x) == len(res) > 0
        assert (res.x_adv - x).abs().max() <= protocol.eps + 1e-6
        assert torch.equal(res.adv_label[res.success], res.label[res.success])
    assert "objective" in reports["integrated_gradients", "targeted"].config["attack_hyperparameters"]
    assert reports["integrated_gradients", "targeted"].config["attack_hyperparameters"]["objective"] == "targeted"
    # cached: a second call returns the same maps, one file per (attribution, attack)
    again = attack_zoo_model("tiny", "natural", protocol, attribution="gradient_shap", scale="smoke", device="cpu",
                             progress=False)
    assert torch.equal(again.result.adv_map, reports["gradient_shap", "topk"].result.adv_map)
    assert len(list((tiny_zoo / "results" / "attribution_attack").glob("*.pt"))) == 4
    with pytest.raises(ValueError, match="attack='pgd' is not valid"):
        attack_zoo_model("tiny", "natural", protocol, attack="pgd", scale="smoke")
    with pytest.raises(ValueError, match="attribution='nope' is not valid"):
        attack_zoo_model("tiny", "natural", protocol, attribution="nope", scale="smoke")


def test_adversarial_accuracy_never_exceeds_clean_and_more_steps_never_help(tiny_zoo):
    clean = adversarial_accuracy_zoo("tiny", "natural", "pgd", {"eps": 0.0, "steps": 1, "alpha": 0.01},
                                     n=None, scale="smoke", device="cpu", progress=False)
    model, _ = get_model("tiny", "natural", "smoke", device="cpu", progress=False)
    test = load_dataset("tiny", "test")
    assert clean == pytest.approx(accuracy(model, test.images, test.labels))     # ε = 0: the clean accuracy
    pgd = {s: adversarial_accuracy_zoo("tiny", "natural", "pgd", {"eps": 0.3, "alpha": 0.05, "steps": s,
                                                                   "random_start": False},
                                       n=None, scale="smoke", device="cpu", progress=False) for s in (5, 40)}
    spsa = adversarial_accuracy_zoo("tiny", "natural", "spsa", {"eps": 0.3, "steps": 5, "samples": 8}, n=None,
                                    scale="smoke", device="cpu", progress=False)
    assert pgd[40] <= pgd[5] <= clean and spsa <= clean
    with pytest.raises(ValueError, match="attack='cw' is not valid"):
        adversarial_accuracy_zoo("tiny", "natural", "cw", scale="smoke")
    with pytest.raises(ValueError, match="eps"):
        adversarial_accuracy_zoo("tiny", "natural", "pgd", {"eps": 3.0}, scale="smoke")


def test_corruption_accuracy_zoo_is_table_3_on_the_seeded_subset_and_is_cached(tiny_zoo):
    frame = corruption_accuracy_zoo("tiny", "natural", n=16, scale="smoke", device="cpu", progress=False)
    model, _ = get_model("tiny", "natural", "smoke", device="cpu", progress=False)
    subset = load_dataset("tiny", "test").subset(16, seed=0)
    direct = corruption_accuracy(model, subset.images, subset.labels, generator=torch.Generator().manual_seed(0))
    pd.testing.assert_frame_equal(frame, direct)
    assert len(list((tiny_zoo / "results" / "corruption_correct").glob("*.pt"))) == 1
    again = corruption_accuracy_zoo("tiny", "natural", n=16, scale="smoke", device="cpu", progress=False)
    pd.testing.assert_frame_equal(again, frame)
    # per image: the claims engine's input, from the same cache record (no second evaluation)
    correct = corruption_accuracy_zoo("tiny", "natural", n=16, scale="smoke", device="cpu", progress=False,
                                      per_image=True)
    assert correct.shape == (16, len(CORRUPTIONS), len(SEVERITIES)) and correct.dtype == bool
    np.testing.assert_allclose(correct.mean(axis=0), frame[list(SEVERITIES)].to_numpy())
    assert len(list((tiny_zoo / "results" / "corruption_correct").glob("*.pt"))) == 1
    corruption_accuracy_zoo("tiny", "natural", n=8, scale="smoke", device="cpu", progress=False)
    assert len(list((tiny_zoo / "results" / "corruption_correct").glob("*.pt"))) == 2   # n is in the key
    with pytest.raises(ValueError, match="n=0 must be >= 1"):
        corruption_accuracy_zoo("tiny", "natural", n=0, scale="smoke")


class _Linear(nn.Module):
    """f(x) = W·flatten(x): its input gradient for class y is W[y] whatever x is."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x):
        return x.flatten(1) @ self.weight.T


def test_gradient_alignment_is_the_cosine_of_image_and_weight_row():
    torch.manual_seed(0)
    w = torch.randn(3, 1 * 4 * 4)
    x = torch.rand(5, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 0, 1])
    got = gradient_alignment(_Linear(w), x, y, batch_size=2)
    want = [float(torch.dot(x[i].flatten(), w[y[i]]) / (x[i].norm() * w[y[i]].norm())) for i in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-5)


class _BoxLogit(nn.Module):
    """Two classes; logit 1 = Σ of the pixels inside a fixed box (so its gradient is the box's indicator), logit 0 =
    a constant below it: every image is predicted class 1 and its saliency map is exactly the box."""

    def __init__(self, box):
        super().__init__()
        x0, y0, x1, y1 = box
        mask = torch.zeros(1, 1, 16, 16)
        mask[..., y0:y1, x0:x1] = 1
        self.register_buffer("mask", mask)
        self.bias = nn.Parameter(torch.tensor(-1e3))

    def forward(self, x):
        inside = (x * self.mask).flatten(1).sum(1)
        return torch.stack([torch.full_like(inside, 0.0) + self.bias, inside + 1.0], dim=1)


def test_localisation_recovers_the_box_the_gradient_highlights():
    box = (3, 5, 11, 12)
    images = torch.rand(4, 1, 16, 16)
    masks = torch.zeros(4, 16, 16, dtype=torch.bool)
    masks[:, 5:12, 3:11] = True
    gt = torch.tensor([box, box, (0, 0, 4, 4), box], dtype=torch.float32)
    labels = torch.tensor([1, 0, 1, 1])
    data = ImageDataset("boxes", "test", images, labels, ("a", "b"), boxes=gt, masks=masks)
    loc = evaluate_localisation(_BoxLogit(box), data, "saliency", smooth=1, clip_percentiles=None, progress=False)
    assert torch.equal(loc.predictions, torch.ones(4, dtype=torch.long))
    assert torch.equal(loc.boxes, torch.tensor([box] * 4, dtype=torch.float32))
    np.testing.assert_allclose(loc.box_iou.numpy(), [1, 1, 0, 1])
    scores = loc.scores()
    assert scores["GT-known Loc (%)"] == pytest.approx(75)
    assert scores["Top-1 Loc (%)"] == pytest.approx(50)        # image 1 is misclassified, image 2 mislocated
    assert scores["Top-1 Acc (%)"] == pytest.approx(75)
    assert scores["Top-1 Seg (%)"] == pytest.approx(75)        # the masks are the box: image 2's mask is right too
    with pytest.raises(ValueError, match="no boxes and masks"):
        evaluate_localisation(_BoxLogit(box), ImageDataset("plain", "test", images, labels, ("a", "b")))


def _tiny_models():
    torch.manual_seed(0)
    net = lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    return {"a": net().eval(), "b": net().eval()}


def test_explorer_callbacks_rerun_the_attack_with_the_chosen_settings():
    models = _tiny_models()
    images = torch.rand(3, 1, 8, 8)
    labels = models["a"](images).argmax(1)
    ex = IFIAExplorer(models, images, labels, class_names=["left", "right"], eps=0.05, eps_max=0.2, steps=4,
                      attribution_kwargs={"n_steps": 3}, k=10)
    assert ex.last is None
    ex.eps.value = 0.1                                     # a slider change runs the attack
    assert ex.last["eps"] == pytest.approx(0.1) and ex.last["model"] == "a"
    assert (ex.last["x_adv"] - images[0]).abs().max() <= 0.1 + 1e-6
    assert 0 <= ex.last["top-k ∩ (%)"] <= 100 and -1 <= ex.last["Kendall τ"] <= 1
    assert "top-k ∩" in ex.status.value
    ex.model.value = "b"
    ex.image.value = 2
    assert (ex.last["model"], ex.last["image"]) == ("b", 2)
    assert (ex.last["x_adv"] - images[2]).abs().max() <= 0.1 + 1e-6
    ex.beta.value = 50.0
    assert ex.last["beta"] == pytest.approx(50.0, rel=1e-6)
    ex.eps.value = 0.0                                     # ε = 0: the image cannot move, the maps agree
    metrics = ex.run()
    assert torch.equal(ex.last["x_adv"], images[2]) and metrics["top-k ∩ (%)"] == pytest.approx(100)
    fig = ex.figure()
    assert len(fig.axes) == 4 and "ε = 0.000" in fig.axes[1].get_title()
    with pytest.raises(ValueError, match="eps"):
        IFIAExplorer(models, images, labels, eps=0.5, eps_max=0.2)
    with pytest.raises(ValueError, match="one label each"):
        IFIAExplorer(models, images, labels[:2])


def test_art_figures_draw_what_they_are_given():
    fig = plot_distributions({"a": np.array([0.1, 0.2, np.nan]), "b": np.array([0.5, 0.6])}, ylabel="cos")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a\n(n = 2)", "b\n(n = 2)"]
    frame = pd.DataFrame({"parameter": ["β", "β", "λ", "λ"], "value": [10, 50, 0.1, 0.5],
                          "top-k ∩ (%)": [1, 2, 3, 4], "Kendall τ ×100": [5, 6, 7, 8],
                          "random top-k ∩ (%)": [0, 1, 2, 3],
                          "clean acc. (%)": [9, 10, 11, 12], "PGD acc. (%)": [1, 1, 1, 1]})
    fig = plot_ablation(frame)
    assert len(fig.axes) == 4 and fig.axes[0].get_xlabel() == "β"
    top_k, random, kendall = fig.axes[1].lines            # top-k ∩, its random baseline (dashed), Kendall τ
    np.testing.assert_allclose(top_k.get_ydata(), [3, 4])
    np.testing.assert_allclose(random.get_ydata(), [2, 3])
    assert random.get_linestyle() == "--" and random.get_color() == top_k.get_color() and kendall.get_linestyle() == "-"
    imgs = torch.rand(2, 3, 8, 8)
    fig = plot_localisation(imgs, {"m": torch.rand(2, 8, 8)}, torch.tensor([[0, 0, 4, 4], [1, 1, 5, 5]]),
                            {"m": torch.tensor([[0, 0, 3, 3], [2, 2, 6, 6]])})
    assert len(fig.axes[2].patches) == 2                    # true and estimated box on the model's row
    fig = plot_image_rows({"x": imgs, "y": imgs[:1]}, column_titles=["c0", "c1"])
    assert len(fig.axes) == 4


def test_art_published_tables_have_their_rows_and_reject_unknown_ones():
    t1 = art_table("Table 1", "cifar10")
    assert t1.loc["ART", "topk"] == 92.90 and t1.loc["PGD-10", "pgd40_accuracy"] == 44.07
    assert math.isnan(art_table("Table 3", "cifar10").loc["PGD-10", "speckle_noise"])
    assert art_table("Table 3", "cifar10").shape == (3, 15)
    with pytest.raises(ValueError, match="no table 'Table 9'"):
        art_table("Table 9", "cifar10")
    with pytest.raises(ValueError, match="no rows for 'mnist'"):
        art_table("Table 1", "mnist")
