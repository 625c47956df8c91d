"""The training loop and cached training on a tiny learnable data set."""

import copy

import conftest

import pytest
import torch

from rattrlib.data import DATASETS, DatasetInfo
from rattrlib.models import MnistCNN, accuracy, build_model
from rattrlib.results import ResultsCache
from rattrlib.train import TrainConfig, TrainingMethod, fit, train, train_cached


def tiny_dataset(n=64, split="train"):
    """conftest's two-class half-bright images, 64 of them (this file's tests were tuned on 64)."""
    return conftest.tiny_dataset(split, n)


@pytest.fixture
def tiny_registered(monkeypatch):
    info = DatasetInfo("tiny", "test data", (1, 8, 8), ("left", "right"), True, "none",
                       lambda split, **kw: tiny_dataset(split=split))
    monkeypatch.setitem(DATASETS, "tiny", info)


def test_training_learns_the_tiny_task_and_logs_each_epoch():
    data = tiny_dataset()
    torch.manual_seed(0)
    model = MnistCNN(1, 2, image_size=8)
    logs = train(model, data, epochs=3, batch_size=16, lr=1e-3, progress=False)
    assert [log["epoch"] for log in logs] == [1, 2, 3]
    assert {"ce", "train_accuracy", "seconds"} <= logs[0].keys()
    assert logs[-1]["ce"] < logs[0]["ce"]
    test = tiny_dataset(split="test")
    assert accuracy(model, test.images, test.labels) == 1.0


def test_same_seed_gives_identical_weights():
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = MnistCNN(1, 2, image_size=8)
        train(model, tiny_dataset(), epochs=1, batch_size=16, seed=5, progress=False)
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_bad_hyperparameters_fail_before_training():
    model = MnistCNN(1, 2, image_size=8)
    with pytest.raises(ValueError, match="method='magic'"):
        train(model, tiny_dataset(), method="magic")
    with pytest.raises(ValueError, match="lr > 0"):
        train(model, tiny_dataset(), lr=0)
    with pytest.raises(ValueError, match="n_train"):
        TrainConfig(dataset="tiny", n_train=0)
    with pytest.raises(ValueError, match="model='resnet9000'"):
        build_model("resnet9000", (1, 8, 8), 2)


def test_train_cached_trains_once_then_loads(tiny_registered, tmp_path, monkeypatch):
    cache = ResultsCache(tmp_path)
    config = TrainConfig(dataset="tiny", epochs=1, batch_size=16)
    model, logs = train_cached(config, seed=0, device="cpu", cache=cache, progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although the model was cached")

    monkeypatch.setattr("rattrlib.train.cached.fit", no_training)
    again, logs_again = train_cached(config, seed=0, device="cpu", cache=cache, progress=False)
    assert logs_again == logs
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert not again.training


class NoisyNatural(TrainingMethod):
    """CE on images with Gaussian noise: uses the torch RNG, like PGD's random start does."""

    name = "noisy"

    def loss(self, model, batch, progress):
        loss = torch.nn.functional.cross_entropy(model(batch.x + 0.1 * torch.randn_like(batch.x)), batch.y)
        return loss, {"ce": loss.item()}


class Interrupt(Exception):
    pass


def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one():
    def fresh():
        torch.manual_seed(0)
        return MnistCNN(1, 2, image_size=8)

    uninterrupted = fresh()
    logs_a = fit(uninterrupted, tiny_dataset(), NoisyNatural(), epochs=3, batch_size=16, seed=3, progress=False)

    saved = {}

    def save_then_die(state):
        saved["state"] = copy.deepcopy(state)
        if len(state["logs"]) == 2:
            raise Interrupt

    first = fresh()
    with pytest.raises(Interrupt):
        fit(first, tiny_dataset(), NoisyNatural(), epochs=3, batch_size=16, seed=3, progress=False,
            save_checkpoint=save_then_die)
    torch.manual_seed(123)  # the RNG state at restart is whatever it is; the checkpoint restores it
    resumed = fresh()
    logs_b = fit(resumed, tiny_dataset(), NoisyNatural(), epochs=3, batch_size=16, seed=3, progress=False,
                 load_checkpoint=lambda: saved["state"])
    assert [log["ce"] for log in logs_b] == [log["ce"] for log in logs_a]
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted.state_dict().values(),
                                                 resumed.state_dict().values()))


def test_train_cached_resumes_from_its_last_checkpoint(tiny_registered, tmp_path, monkeypatch):
    config = TrainConfig(dataset="tiny", epochs=3, batch_size=16)
    reference, _ = train_cached(config, seed=0, device="cpu", cache=ResultsCache(tmp_path / "a"), progress=False)

    cache = ResultsCache(tmp_path / "b")
    real_save = ResultsCache.save

    def save_and_die_after_two_epochs(self, kind, config, value, **kw):
        real_save(self, kind, config, value, **kw)
        if kind == "checkpoint" and len(value["logs"]) == 2:
            raise Interrupt

    with monkeypatch.context() as patch, pytest.raises(Interrupt):
        patch.setattr(ResultsCache, "save", save_and_die_after_two_epochs)
        train_cached(config, seed=0, device="cpu", cache=cache, progress=False)
    epochs_run = []
    real_fit = fit

    def counting_fit(*args, **kwargs):
        logs = real_fit(*args, **kwargs)
        epochs_run.append(len(logs))
        return logs

    monkeypatch.setattr("rattrlib.train.cached.fit", counting_fit)
    resumed, logs = train_cached(config, seed=0, device="cpu", cache=cache, progress=False)
    assert len(logs) == 3 and epochs_run == [3]
    assert all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()))


def test_warmup_eps_ramps_linearly_then_stays_at_eps():
    from rattrlib.train.base import Progress, warmup_eps

    # 2 epochs of 4 batches, ramp over the first half: batch b of epoch 0 trains at ε·(b + 1)/4
    assert [warmup_eps(0.3, 0.5, Progress(0, 2, b, 4)) for b in range(4)] == pytest.approx([0.075, 0.15, 0.225, 0.3])
    assert warmup_eps(0.3, 0.5, Progress(1, 2, 0, 4)) == pytest.approx(0.3)
    assert warmup_eps(0.3, 0.0, Progress(0, 2, 0, 4)) == 0.3


def test_init_fine_tunes_the_model_of_another_config(tiny_registered, tmp_path, monkeypatch):
    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    base = TrainConfig(dataset="tiny", epochs=1, batch_size=16)
    start, _ = train_cached(base, seed=5, device="cpu", progress=False)
    tuned, _ = train_cached(TrainConfig(dataset="tiny", epochs=1, batch_size=16, lr=1e-12, init=base), seed=5,
                            device="cpu", progress=False)
    scratch, _ = train_cached(TrainConfig(dataset="tiny", epochs=1, batch_size=16, lr=1e-12), seed=5,
                              device="cpu", progress=False)
    for (name, a), b, c in zip(start.state_dict().items(), tuned.state_dict().values(),
                               scratch.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name    # lr ≈ 0: tuned == its init
    assert any(not torch.allclose(a.float(), c.float()) for a, c in
               zip(start.state_dict().values(), scratch.state_dict().values()))
    with pytest.raises(ValueError, match="init must train the same dataset and model"):
        TrainConfig(dataset="tiny", init=TrainConfig(dataset="fashion_mnist"))


def test_the_checkpoint_is_removed_once_the_model_is_stored_unless_kept(tiny_registered, tmp_path):
    config = TrainConfig(dataset="tiny", epochs=2, batch_size=16)
    for keep, root in ((False, tmp_path / "a"), (True, tmp_path / "b")):
        cache = ResultsCache(root)
        train_cached(config, seed=0, device="cpu", cache=cache, progress=False, keep_checkpoint=keep)
        assert (cache.load("checkpoint", config, seed=0, dataset="tiny") is not None) == keep
        assert cache.load("model", config, seed=0, dataset="tiny") is not None


def test_a_model_record_of_the_wrong_structure_is_rebuilt_not_a_type_error(tiny_registered, tmp_path):
    cache = ResultsCache(tmp_path)
    config = TrainConfig(dataset="tiny", epochs=1, batch_size=16)
    cache.save("model", config, {"weights": [1, 2]}, seed=0, dataset="tiny")  # well-formed record, wrong payload
    with pytest.warns(UserWarning, match="wrong structure"):
        model, logs = train_cached(config, seed=0, device="cpu", cache=cache, progress=False)
    assert len(logs) == 1 and isinstance(model, torch.nn.Module)


_TRAIN_IN_A_PROCESS = """
import sys, torch
from rattrlib.train import TrainConfig, train_cached
config = TrainConfig(dataset="fashion_mnist", epochs=1, batch_size=32, n_train=64)
model, _ = train_cached(config, seed=0, device="cpu", progress=False)
torch.save(model.state_dict(), sys.argv[1])
"""


@pytest.mark.slow
def test_a_model_trained_by_other_code_is_retrained_not_served(tmp_path):
    """The issue's ×0 experiment: a copy of rattrlib whose natural loss is multiplied by 0 must not be served the
    model the real code trained (the key is the same; the training code's fingerprint is not)."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import rattrlib

    copy = tmp_path / "copy"
    shutil.copytree(Path(rattrlib.__file__).parent, copy / "rattrlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    natural = copy / "rattrlib" / "train" / "natural.py"
    source = natural.read_text()
    assert "loss = F.cross_entropy(" in source
    natural.write_text(source.replace("loss = F.cross_entropy(", "loss = 0 * F.cross_entropy("))
    env = {**os.environ, "RATTR_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}

    def run(pythonpath, out):
        subprocess.run([sys.executable, "-c", _TRAIN_IN_A_PROCESS, str(out)], check=True, env={
            **env, "PYTHONPATH": str(pythonpath)}, cwd=tmp_path)
        return torch.load(out)

    real = Path(rattrlib.__file__).parent.parent
    trained = run(real, tmp_path / "real.pt")
    zeroed = run(copy, tmp_path / "zeroed.pt")
    again = run(real, tmp_path / "again.pt")
    assert any(not torch.equal(trained[k], zeroed[k]) for k in trained)  # retrained by the ×0 code
    assert all(torch.equal(trained[k], again[k]) for k in trained)  # and by the real code again, identically
