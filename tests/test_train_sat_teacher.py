"""SAT driven by a teacher's saliency maps through a cached config (``saliency_teacher``): the maps are the
teacher's attribution maps of the true class (hand oracle: the registry method called directly), cached under
the teacher config + attribution + kwargs + data, and SAT's weak saliency is their per-image quantile cut."""

import dataclasses

import pytest
import torch

import rattrlib.train.sat as sat_module
from rattrlib.attributions import SmoothGrad, attribution_map, get_attribution
from rattrlib.data import load_dataset
from rattrlib.results import ResultsCache
from rattrlib.train import TrainConfig, train_cached
from rattrlib.train.sat import SAT, saliency_from_maps, teacher_saliency_maps
from rattrlib.zoo import get_model, zoo_config


def test_teacher_maps_are_the_true_class_maps_and_are_cached(tiny_zoo, monkeypatch):
    teacher_cfg = zoo_config("tiny", "natural", "smoke")
    data = load_dataset("tiny", "train").subset(20, seed=0)
    maps = teacher_saliency_maps(teacher_cfg, "saliency", {}, data, batch_size=7)
    teacher, _ = train_cached(teacher_cfg, seed=0, progress=False)
    expected = attribution_map(get_attribution("saliency", teacher).attribute(data.images, data.labels))
    assert maps.shape == (20, 8, 8) and maps.dtype == torch.float32
    torch.testing.assert_close(maps, expected)
    # SmoothGrad gets a generator seeded with `seed`
    sg = teacher_saliency_maps(dataclasses.asdict(teacher_cfg), "smoothgrad", {"n_samples": 3, "sigma": 0.1}, data,
                               seed=0, batch_size=100)
    oracle = SmoothGrad(teacher, sigma=0.1, n_samples=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sg, attribution_map(oracle.attribute(data.images, data.labels)))
    # second call: from the cache, no attribution computed
    monkeypatch.setattr(sat_module, "get_attribution", lambda *a, **k: pytest.fail("recomputed a cached map"))
    again = teacher_saliency_maps(teacher_cfg, "saliency", {}, data, batch_size=7)
    assert torch.equal(again, maps)
    # other data → another key (computes, so the patched function fails)
    with pytest.raises(pytest.fail.Exception):
        teacher_saliency_maps(teacher_cfg, "saliency", {}, data.subset(10, seed=1), batch_size=7)


def test_sat_with_a_saliency_teacher_trains_through_the_zoo_and_uses_the_quantile_cut(tiny_zoo):
    teacher_cfg = zoo_config("tiny", "natural", "smoke")
    spec = {"config": dataclasses.asdict(teacher_cfg), "seed": 0, "attribution": "integrated_gradients",
            "kwargs": {"n_steps": 4}}
    overrides = {"saliency_source": "maps", "saliency_teacher": spec, "quantile": 0.75}
    config = zoo_config("tiny", "sat", "smoke", overrides=overrides)
    assert config.hyperparameters["saliency_teacher"]["attribution"] == "integrated_gradients"
    model, logs = get_model("tiny", "sat", "smoke", overrides=overrides, progress=False)
    assert len(logs) == 1 and all(torch.isfinite(p).all() for p in model.parameters())
    # the weak saliency SAT uses: +1 on each image's top quarter of its teacher's IG map
    data = load_dataset("tiny", "train").subset(config.n_train, seed=0)
    method = SAT(**config.hyperparameters)
    method.prepare(model, data)
    maps = teacher_saliency_maps(teacher_cfg, "integrated_gradients", {"n_steps": 4}, data)
    s = method.saliency(torch.arange(len(data)))
    assert torch.equal(s, saliency_from_maps(maps, 0.75))
    assert ((s == 1).sum((1, 2)) <= 16).all()  # at most a quarter of 64 pixels above the 0.75 quantile
    # cached: the same overrides load the same model
    again, _ = get_model("tiny", "sat", "smoke", overrides=overrides, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("kwargs,match", [
    ({"saliency_source": "maps", "saliency_maps": torch.zeros(2, 8, 8),
      "saliency_teacher": {"config": {"dataset": "tiny"}, "attribution": "saliency"}}, "exactly one"),
    ({"saliency_source": "mask", "saliency_teacher": {"config": {"dataset": "tiny"}, "attribution": "saliency"}},
     "exactly one"),
    ({"saliency_source": "maps", "saliency_teacher": {"config": {"dataset": "tiny"}, "attribution": "gradcam"}},
     "attribution"),
    ({"saliency_source": "maps", "saliency_teacher": {"attribution": "saliency"}}, "config"),
    ({"saliency_source": "maps", "saliency_teacher": {"config": {"dataset": "tiny"}, "attribution": "smoothgrad",
                                                      "kwargs": {"generator": 1}}}, "generator"),
    ({"saliency_source": "maps", "saliency_teacher": "natural"}, "dict"),
])
def test_saliency_teacher_is_validated_in_the_constructor(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SAT(eps=0.1, **kwargs)


def test_teacher_maps_leave_the_callers_rng_alone(tiny_zoo):
    teacher_cfg = zoo_config("tiny", "natural", "smoke")
    data = load_dataset("tiny", "train").subset(10, seed=0)
    train_cached(teacher_cfg, seed=0, progress=False, cache=ResultsCache())
    torch.manual_seed(5)
    teacher_saliency_maps(teacher_cfg, "smoothgrad", {"n_samples": 2}, data)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))
    assert isinstance(TrainConfig(**dataclasses.asdict(teacher_cfg)), TrainConfig)


def test_adversarial_accuracy_config_shares_the_zoo_cache_and_takes_a_subset_config(tiny_zoo):
    from rattrlib.attacks import PGD, pgd_accuracy
    from rattrlib.evaluation import adversarial_accuracy_config, adversarial_accuracy_zoo

    pgd = {"eps": 0.2, "alpha": 0.1, "steps": 2}
    zoo = adversarial_accuracy_zoo("tiny", "natural", "pgd", pgd, n=None, scale="smoke", progress=False)
    same = adversarial_accuracy_config(zoo_config("tiny", "natural", "smoke"), "pgd", pgd, n=None, progress=False)
    assert same == zoo
    # a config the zoo cannot name (another training subset): oracle = pgd_accuracy on the trained model
    config = dataclasses.replace(zoo_config("tiny", "natural", "smoke"), n_train=24)
    acc = adversarial_accuracy_config(config, "pgd", pgd, n=None, progress=False)
    model, _ = train_cached(config, seed=0, progress=False)
    test = load_dataset("tiny", "test")
    expected = pgd_accuracy(model, test.images, test.labels, PGD(model, **pgd, generator=torch.Generator().manual_seed(0)),
                            batch_size=100)
    assert acc == expected
    with pytest.raises(ValueError, match="TrainConfig"):
        adversarial_accuracy_config({"dataset": "tiny"})


def test_model_fingerprint_hashes_zero_dim_buffers():
    """training_cost(start=<ResNet>) fingerprints the start model: BatchNorm's 0-d num_batches_tracked must hash."""
    from torch import nn

    from rattrlib.results import model_fingerprint

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    before = model_fingerprint(model)
    model[1].num_batches_tracked += 1
    assert model_fingerprint(model) != before and len(before) == 20
