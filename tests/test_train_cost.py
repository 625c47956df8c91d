"""rattrlib.train.cost: training steps timed like fit's, scaled to an epoch, the start model untouched, cached."""

import math

import pytest
import torch

from rattrlib.models import build_model
from rattrlib.results import ResultsCache
from rattrlib.train import TrainConfig
from rattrlib.train.cost import training_cost
from conftest import tiny_dataset


def config(method="natural", **hp):
    return TrainConfig(dataset="tiny", model="mnist_cnn", method=method, epochs=1, batch_size=8, hyperparameters=hp)


def test_epoch_is_the_mean_step_times_the_batches_of_an_epoch_and_start_is_untouched():
    data = tiny_dataset("train", 48)
    torch.manual_seed(3)
    start = build_model("mnist_cnn", data.shape, 2)
    before = {k: v.clone() for k, v in start.state_dict().items()}
    row = training_cost(config(), batches=3, warmup=1, batch_size=8, data=data, start=start, epoch_images=100)
    assert row["method"] == "natural" and row["batches"] == 3 and len(row["batch_seconds"]) == 3
    assert row["seconds_per_batch"] == pytest.approx(sum(row["batch_seconds"]) / 3)
    assert row["seconds_per_epoch"] == pytest.approx(row["seconds_per_batch"] * math.ceil(100 / 8))
    assert row["images_per_second"] == pytest.approx(8 / row["seconds_per_batch"])
    assert row["cpu_seconds_per_batch"] == pytest.approx(sum(row["batch_cpu_seconds"]) / 3)
    assert row["cpu_seconds_per_epoch"] == pytest.approx(row["cpu_seconds_per_batch"] * math.ceil(100 / 8))
    assert row["cpu_seconds_per_batch"] > 0
    assert all(torch.equal(before[k], v) for k, v in start.state_dict().items())
    # default epoch: the whole data given
    assert training_cost(config(), batches=1, warmup=0, data=data)["epoch_images"] == 48


def test_cached_measurement_is_reused_and_keyed_by_the_start_weights(tmp_path):
    data = tiny_dataset("train", 48)
    cache = ResultsCache(tmp_path)
    torch.manual_seed(0)
    a = build_model("mnist_cnn", data.shape, 2)
    first = training_cost(config(), batches=2, data=data, start=a, cache=cache)
    again = training_cost(config(), batches=2, data=data, start=a, cache=cache)
    assert again["batch_seconds"] == first["batch_seconds"] and again["measured"] == first["measured"]
    assert again["machine"]["threads"] == torch.get_num_threads()
    b = build_model("mnist_cnn", data.shape, 2)
    other = training_cost(config(), batches=2, data=data, start=b, cache=cache)
    assert other["batch_seconds"] != first["batch_seconds"]


def test_cached_measurement_is_shared_across_host_names_but_not_thread_counts(tmp_path, monkeypatch):
    data = tiny_dataset("train", 48)
    cache = ResultsCache(tmp_path)
    first = training_cost(config(), batches=2, data=data, cache=cache, threads=1)
    monkeypatch.setattr("platform.node", lambda: "another-container")
    renamed = training_cost(config(), batches=2, data=data, cache=cache, threads=1)
    assert renamed["measured"] == first["measured"] and renamed["batch_seconds"] == first["batch_seconds"]
    assert renamed["machine"]["host"] == first["machine"]["host"] != "another-container"  # where it was measured
    two = training_cost(config(), batches=2, data=data, cache=cache, threads=2)
    assert two["batch_seconds"] != first["batch_seconds"]


@pytest.mark.parametrize("kwargs, message", [({"batches": 0}, "batches"), ({"warmup": -1}, "warmup"),
                                              ({"batch_size": 40, "batches": 2}, "need 120 images")])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training_cost(config(), data=tiny_dataset("train", 48), **kwargs)


def test_config_must_be_a_train_config():
    with pytest.raises(ValueError, match="TrainConfig"):
        training_cost({"method": "natural"}, data=tiny_dataset("train", 48))


def test_threads_apply_during_the_measurement_only():
    before = torch.get_num_threads()
    row = training_cost(config(), batches=1, data=tiny_dataset("train", 48), threads=1)
    assert row["machine"]["threads"] == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        training_cost(config(), batches=1, data=tiny_dataset("train", 48), threads=0)
