"""Results cache: hit, miss, provenance, atomic writes, and corrupt or stale files."""

import warnings

import pytest
import torch

from rattrlib import __version__
from rattrlib.results import CACHE_FORMAT, CorruptCacheError, ResultsCache, cache_key


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


@pytest.fixture
def cache(tmp_path):
    return ResultsCache(tmp_path)


def test_hit_returns_stored_value_without_recomputing(cache):
    compute = Counter({"w": torch.arange(4.0)})
    first = cache.get_or_compute("model", {"lr": 0.1}, compute, seed=0, dataset="d")
    second = cache.get_or_compute("model", {"lr": 0.1}, compute, seed=0, dataset="d")
    assert compute.calls == 1
    assert torch.equal(first["w"], second["w"])


@pytest.mark.parametrize("change", [{"config": {"lr": 0.2}}, {"seed": 1}, {"dataset": "other"}])
def test_any_change_of_config_seed_or_dataset_is_a_miss(cache, change):
    compute = Counter(1)
    base = {"config": {"lr": 0.1}, "seed": 0, "dataset": "d"}
    cache.get_or_compute("eval", base["config"], compute, seed=base["seed"], dataset=base["dataset"])
    args = {**base, **change}
    cache.get_or_compute("eval", args["config"], compute, seed=args["seed"], dataset=args["dataset"])
    assert compute.calls == 2


def test_key_ignores_dict_order_but_not_values():
    assert cache_key("k", {"a": 1, "b": 2}, 0, "d") == cache_key("k", {"b": 2, "a": 1}, 0, "d")
    assert cache_key("k", {"a": 1}, 0, "d") != cache_key("k", {"a": 1.5}, 0, "d")


def test_record_carries_provenance(cache):
    cache.save("eval", {"eps": 0.1}, [1, 2], seed=3, dataset="fashion_mnist")
    record = cache.load("eval", {"eps": 0.1}, seed=3, dataset="fashion_mnist")
    assert record.value == [1, 2]
    assert record.config == {"eps": 0.1} and record.seed == 3 and record.dataset == "fashion_mnist"
    assert record.rattrlib_version == __version__
    assert record.git_commit  # a sha (maybe +dirty) or 'unknown' outside a checkout
    assert record.created


def test_unserialisable_config_is_rejected_before_compute(cache):
    compute = Counter(1)
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        cache.get_or_compute("eval", {"f": object()}, compute, seed=0, dataset="d")
    assert compute.calls == 0


def _stored_path(cache, config):
    return cache.path("eval", cache_key("eval", config, 0, "d"))


def test_truncated_file_is_reported_moved_aside_and_recomputed(cache):
    config = {"eps": 0.1}
    cache.save("eval", config, torch.ones(1000), seed=0, dataset="d")
    path = _stored_path(cache, config)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptCacheError, match="unreadable"):
        cache.load("eval", config, seed=0, dataset="d")
    compute = Counter(torch.zeros(3))
    with pytest.warns(UserWarning, match="recomputed"):
        value = cache.get_or_compute("eval", config, compute, seed=0, dataset="d")
    assert compute.calls == 1 and torch.equal(value, torch.zeros(3))
    assert len(list(path.parent.glob("*.corrupt-*"))) == 1  # the bad file is kept for inspection
    assert torch.equal(cache.load("eval", config, seed=0, dataset="d").value, torch.zeros(3))


def test_payload_checksum_mismatch_is_detected(cache):
    config = {"eps": 0.2}
    cache.save("eval", config, torch.ones(10), seed=0, dataset="d")
    path = _stored_path(cache, config)
    stored = torch.load(path, weights_only=True)
    tampered = bytearray(stored["payload"].numpy().tobytes())
    tampered[-20] ^= 0xFF
    stored["payload"] = torch.frombuffer(tampered, dtype=torch.uint8)
    torch.save(stored, path)
    with pytest.raises(CorruptCacheError, match="checksum"):
        cache.load("eval", config, seed=0, dataset="d")


def test_stale_format_is_detected(cache):
    config = {"eps": 0.3}
    cache.save("eval", config, 1, seed=0, dataset="d")
    path = _stored_path(cache, config)
    stored = torch.load(path, weights_only=True)
    stored["meta"]["format"] = CACHE_FORMAT - 1
    torch.save(stored, path)
    with pytest.raises(CorruptCacheError, match="stale format"):
        cache.load("eval", config, seed=0, dataset="d")


def test_a_failed_write_keeps_the_previous_record_and_leaves_no_temporary_file(cache, monkeypatch):
    config = {"eps": 0.4}
    cache.save("eval", config, "good", seed=0, dataset="d")
    real_save = torch.save

    def save_then_crash(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and "meta" in obj:
            f.write(b"partial")
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        cache.save("eval", config, "new", seed=0, dataset="d")
    monkeypatch.undo()
    assert cache.load("eval", config, seed=0, dataset="d").value == "good"
    assert not list(_stored_path(cache, config).parent.glob("*.tmp"))


def test_no_warning_on_a_clean_hit(cache):
    cache.save("eval", {"a": 1}, 5, seed=0, dataset="d")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.get_or_compute("eval", {"a": 1}, Counter(6), seed=0, dataset="d") == 5
