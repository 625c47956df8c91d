"""Parameter checks used by every chapter's parameters cell."""

import pytest
import torch

from rattrlib.config import check_choice, check_range, pick_scale, resolve_device, seed_everything


def test_check_choice_lists_valid_values():
    assert check_choice("dataset", "a", ["a", "b"]) == "a"
    with pytest.raises(ValueError, match=r"dataset='nope'.*'a', 'b'"):
        check_choice("dataset", "nope", ["a", "b"])


def test_check_range_bounds():
    assert check_range("eps", 0.0, 0, 1) == 0.0
    with pytest.raises(ValueError, match=r"outside \(0, 1\]"):
        check_range("beta", 0.0, 0, 1, low_open=True)
    with pytest.raises(ValueError, match="eps=1.5"):
        check_range("eps", 1.5, 0, 1)


def test_pick_scale_validates_scale_and_presets():
    presets = {"smoke": {"n": 1}, "cpu": {"n": 2}, "paper": {"n": 3}}
    assert pick_scale("cpu", presets) == {"n": 2}
    with pytest.raises(ValueError, match="'smoke', 'cpu', 'paper'"):
        pick_scale("fast", presets)
    with pytest.raises(ValueError, match="lack the scales"):
        pick_scale("cpu", {"cpu": {}})


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device='tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU"):
            resolve_device("cuda")


def test_seed_everything_makes_torch_repeatable():
    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError):
        seed_everything(-1)


def test_importing_rattrlib_flushes_denormals_in_every_torch_thread():
    """Second-order steps on trained nets are 3–4× slower with denormals; rattrlib turns on flush-to-zero."""
    import subprocess
    import sys

    code = ("import rattrlib, torch; torch.set_num_threads(2); "
            "x = torch.full((1 << 22,), 1e-39, dtype=torch.float32); "
            "print(int((x * 1.0 != 0).sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
