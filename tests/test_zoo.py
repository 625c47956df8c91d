"""The model zoo: presets, validation, and smoke-scale training + caching on a tiny registered data set."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from rattrlib import zoo
from rattrlib.models import MODELS
from rattrlib.train import METHODS, TrainConfig
from rattrlib.zoo import ZOO_DATASETS, ZOO_METHODS, ZooDataset, eval_pgd, get_model, zoo_config, zoo_table

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_dataset_method_or_scale_lists_the_valid_values():
    with pytest.raises(ValueError, match="dataset='imagenet'.*choose one of.*'fashion_mnist'"):
        zoo_config("imagenet", "natural", "cpu")
    with pytest.raises(ValueError, match="method='magic'.*choose one of.*'pgd_at'.*'teacher_aligned'"):
        zoo_config("fashion_mnist", "magic", "cpu")
    with pytest.raises(ValueError, match="scale='huge'.*choose one of.*'smoke', 'cpu', 'paper'"):
        zoo_config("fashion_mnist", "natural", "huge")
    with pytest.raises(ValueError, match="scale="):
        get_model("fashion_mnist", "natural", scale="huge")
    with pytest.raises(ValueError, match="no zoo preset for 'sat' on 'cifar10'"):
        zoo_config("cifar10", "sat", "cpu")


def test_every_method_of_the_issue_has_a_registered_trainer():
    assert set(ZOO_METHODS) <= set(METHODS)


@pytest.mark.parametrize("scale", ["smoke", "cpu", "paper"])
def test_every_preset_is_a_valid_train_config(scale):
    for dataset, info in ZOO_DATASETS.items():
        for method in ZOO_METHODS:
            if method in zoo.SAT_FAMILY and info.sat_source is None:
                continue
            config = zoo_config(dataset, method, scale)
            assert isinstance(config, TrainConfig) and config.dataset == dataset and config.method == method
            assert config.model in MODELS
            if scale == "paper":
                assert config.model == info.paper_model and config.n_train is None
            else:
                assert config.model == info.cpu_model
    table = zoo_table(scale)
    assert len(table) == sum(1 for info in ZOO_DATASETS.values() for m in ZOO_METHODS
                             if not (m in zoo.SAT_FAMILY and info.sat_source is None))


def test_presets_follow_the_papers_and_the_cpu_budgets():
    paper = zoo_config("fashion_mnist", "pgd_at", "paper").hyperparameters
    assert paper == {"eps": 0.1, "alpha": 0.01, "steps": 20}  # RAR's Fashion-MNIST PGD
    assert zoo_config("mnist", "ig_sum_norm", "paper").hyperparameters["lam"] == 0.1
    assert zoo_config("mnist", "pgd_at", "paper").batch_size == 50
    assert zoo_config("cifar10", "art", "paper").hyperparameters == pytest.approx(
        {"eps": 8 / 255, "alpha": 5 / 255, "steps": 3, "beta": 50.0, "lam": 0.5})
    assert zoo_config("cifar10", "natural", "paper").model == "wrn28_10"
    assert zoo_config("cub200", "pgd_at", "paper").hyperparameters["eps"] == pytest.approx(2 / 255)
    assert zoo_config("flowers102", "sat", "cpu").hyperparameters["saliency_source"] == "mask"
    cpu = {m: zoo_config("fashion_mnist", m, "cpu") for m in ZOO_METHODS}
    assert 3 <= cpu["natural"].epochs <= 5 and cpu["natural"].n_train is None
    assert 1 <= cpu["pgd_at"].epochs <= 2 and cpu["pgd_at"].hyperparameters["steps"] == 10
    assert cpu["art"].epochs == 1 and cpu["art"].n_train == 10_000
    assert 2_000 <= cpu["ig_norm"].n_train <= 5_000 and cpu["ig_norm"].batch_size == 64
    # cpu: every method but natural fine-tunes the natural model; teacher_aligned starts from its teacher
    natural = dataclasses.asdict(cpu["natural"])
    assert all(cpu[m].init == natural for m in ZOO_METHODS if m not in ("natural", "teacher_aligned"))
    assert cpu["natural"].init is None and cpu["teacher_aligned"].init is None
    assert cpu["pgd_at"].hyperparameters.get("eps_warmup", 0) == 0               # Fashion-MNIST: constant ε
    assert zoo_config("mnist10k", "pgd_at", "cpu").hyperparameters["eps_warmup"] == 0.5
    assert zoo_config("mnist10k", "ig_sum_norm", "cpu").hyperparameters["eps_warmup"] == 0.5
    assert "eps_warmup" not in zoo_config("mnist10k", "pgd_at", "paper").hyperparameters
    assert zoo_config("cifar10", "natural", "cpu").model == "resnet20"
    assert zoo_config("mnist10k", "natural", "smoke").n_train == 256
    assert eval_pgd("mnist") == {"eps": 0.3, "alpha": 0.01, "steps": 40, "random_start": True}
    assert eval_pgd("fashion_mnist")["eps"] == 0.1


def test_teacher_aligned_names_the_pgd_at_teacher_of_the_same_scale_and_seed():
    config = zoo_config("fashion_mnist", "teacher_aligned", "cpu", seed=3)
    hp = config.hyperparameters
    assert hp["teacher"] == dataclasses.asdict(zoo_config("fashion_mnist", "pgd_at", "cpu"))
    assert hp["teacher_seed"] == 3 and hp["start"] == "teacher"
    json.dumps(dataclasses.asdict(config))  # the cache key stays JSON


def test_smoke_get_model_trains_once_then_loads_from_the_cache(tiny_zoo, monkeypatch):
    model, logs = get_model("tiny", "pgd_at", "smoke", device="cpu", progress=False)
    assert not model.training and len(logs) == 1 and "ce_adv" in logs[0]
    assert list((tiny_zoo / "results" / "model").glob("*.pt"))

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although the model was cached")

    monkeypatch.setattr("rattrlib.train.cached.fit", no_training)
    again, logs_again = get_model("tiny", "pgd_at", "smoke", device="cpu", progress=False)
    assert logs_again == logs
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_smoke_teacher_aligned_starts_from_the_cached_pgd_at_teacher(tiny_zoo, monkeypatch):
    teacher, _ = get_model("tiny", "pgd_at", "smoke", device="cpu", progress=False)
    trained = []
    real_fit = zoo.train_cached.__globals__["fit"]

    def counting_fit(model, data, method, **kwargs):
        trained.append(method.name)
        return real_fit(model, data, method, **kwargs)

    monkeypatch.setattr("rattrlib.train.cached.fit", counting_fit)
    student, logs = get_model("tiny", "teacher_aligned", "smoke", device="cpu", progress=False)
    assert trained == ["teacher_aligned"]  # the teacher came from the cache
    assert {"ce", "ig", "align"} <= set(logs[0])
    changed = [not torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), student.state_dict().values())]
    assert any(changed)


def test_build_zoo_script_writes_accuracies_and_timings(tiny_zoo, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("build_zoo", ROOT / "data_scripts" / "build_zoo.py")
    build_zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_zoo)
    out = tmp_path / "zoo_smoke.json"
    threads = torch.get_num_threads()
    try:
        assert build_zoo.main(["--scale", "smoke", "--datasets", "tiny", "--methods", "natural", "sat",
                               "--out", str(out), "--quiet", "--threads", "1", "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(threads)
    blob = json.loads(out.read_text())
    assert blob["scale"] == "smoke" and blob["eval_pgd"]["tiny"]["steps"] == 40
    rows = {r["method"]: r for r in blob["rows"]}
    assert set(rows) == {"natural", "sat"}
    for row in rows.values():
        assert 0 <= row["pgd_accuracy"] <= row["clean_accuracy"] <= 1 and row["n_eval"] == 48
        assert row["train_seconds"] > 0 and row["eval_seconds"] > 0
    assert rows["natural"]["clean_accuracy"] > 0.9
    assert "clean" in capsys.readouterr().out
