"""The precision switch: checks, bf16 training and attacks close to fp32 on tiny models, fp32 untouched."""

import pytest
import torch

import conftest
from rattrlib import precision as prec
from rattrlib.attacks import IFIA
from rattrlib.models import MnistCNN, accuracy
from rattrlib.train import TrainConfig, train
from test_attacks import images, tiny_cnn

needs_bf16 = pytest.mark.skipif(not prec.cpu_has_bf16_units(), reason="this CPU has no bf16 units")


def test_bad_precision_is_named():
    with pytest.raises(ValueError, match="precision='fp16'"):
        prec.check_precision("fp16")
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(dataset="fashion_mnist", precision="half")


def test_bf16_without_units_is_refused_not_emulated(monkeypatch):
    monkeypatch.setattr(prec, "cpu_has_bf16_units", lambda: False)
    with pytest.raises(ValueError, match="AMX-BF16"):
        prec.check_precision("bf16", "cpu")
    assert prec.check_precision("fp32", "cpu") == "fp32"


@needs_bf16
def test_autocast_runs_matmuls_in_bfloat16_and_fp32_leaves_them_alone():
    a = torch.randn(8, 8)
    with prec.autocast("bf16", "cpu"):
        assert (a @ a).dtype == torch.bfloat16
    with prec.autocast("fp32", "cpu"):
        assert (a @ a).dtype == torch.float32


def _trained(method, precision, **hp):
    data = conftest.tiny_dataset("train", 64)
    torch.manual_seed(0)
    model = MnistCNN(1, 2, image_size=8)
    logs = train(model, data, method, epochs=3, batch_size=16, seed=0, progress=False, precision=precision, **hp)
    return model, logs


@needs_bf16
@pytest.mark.parametrize("method, hp", [("natural", {}), ("art", {"eps": 0.1, "alpha": 0.05, "steps": 1})])
def test_bf16_training_learns_the_tiny_task_like_fp32(method, hp):
    test = conftest.tiny_dataset("test", 48)
    fp32, logs32 = _trained(method, "fp32", **hp)
    bf16, logs16 = _trained(method, "bf16", **hp)
    assert all(torch.isfinite(torch.tensor(l["loss"])) for l in logs16)
    assert accuracy(bf16, test.images, test.labels) >= accuracy(fp32, test.images, test.labels) - 0.05
    # the same seed and batches: bf16 rounds, so the weights differ, but not by much
    w32, w16 = fp32.state_dict(), bf16.state_dict()
    rel = max(float((w32[k] - w16[k]).norm() / (w32[k].norm() + 1e-12)) for k in w32 if w32[k].is_floating_point())
    assert 0 < rel < 0.2


@needs_bf16
def test_bf16_ifia_keeps_the_eps_ball_and_scores_in_fp32():
    model, x = tiny_cnn(), images(6)
    kw = dict(attribution="integrated_gradients", attribution_kwargs={"n_steps": 4}, eps=0.1, alpha=0.02, steps=4,
              k=8, beta=10.0)
    r32 = IFIA(model, **kw).perturb(x)
    r16 = IFIA(model, **kw, precision="bf16").perturb(x)
    assert (r16.x_adv - x).abs().max() <= 0.1 + 1e-6 and r16.x_adv.min() >= 0 and r16.x_adv.max() <= 1
    assert r16.clean_map.dtype == torch.float32 and torch.equal(r16.clean_map, r32.clean_map)
    assert bool((r16.adv_label[r16.success] == r16.label[r16.success]).all())
    # both attacks move the maps (top-k ∩ below 1 on average) by a similar amount
    assert abs(float(r16.topk_intersection.mean() - r32.topk_intersection.mean())) < 0.25
    assert IFIA(model, **kw, precision="bf16").hyperparameters()["precision"] == "bf16"


def test_protocol_precision_is_the_fastest_native_one_below_paper_scale():
    from rattrlib.evaluation import ifia_protocol
    native = "bf16" if prec.cpu_has_bf16_units() and not torch.cuda.is_available() else "fp32"
    assert prec.fastest_precision("cpu") == ("bf16" if prec.cpu_has_bf16_units() else "fp32")
    assert ifia_protocol("fashion_mnist", "cpu").precision == native
    assert ifia_protocol("fashion_mnist", "smoke").precision == native
    assert ifia_protocol("fashion_mnist", "paper").precision == "fp32"
    assert ifia_protocol("fashion_mnist", "cpu", precision="fp32").precision == "fp32"


def test_fastest_precision_falls_back_to_fp32_without_units(monkeypatch):
    monkeypatch.setattr(prec, "cpu_has_bf16_units", lambda: False)
    assert prec.fastest_precision("cpu") == "fp32"
