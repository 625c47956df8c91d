"""Results cache: hit, miss, provenance, atomic writes, and corrupt or stale files."""

import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import filelock
import pytest
import torch

import rattrlib.results as results
from rattrlib import __version__
from rattrlib.results import CACHE_FORMAT, CorruptCacheError, ResultsCache, StaleCodeError, cache_key, code_fingerprint


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


# -- many processes, one cache -----------------------------------------------------------------------------


def _slow_compute(log: str, value):
    """A compute function that records each call in ``log`` and takes long enough for a race."""
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(1.0)
    return value


def _worker(root: str, log: str, queue, barrier) -> None:
    warnings.simplefilter("ignore")
    barrier.wait(timeout=120)  # both processes ask for the key at the same moment
    try:
        value = ResultsCache(root).get_or_compute("eval", {"eps": 0.1}, lambda: _slow_compute(log, torch.arange(5.0)),
                                                  seed=0, dataset="d")
        queue.put(("ok", value.tolist()))
    except BaseException as err:  # reported to the test, which fails on it
        queue.put(("error", repr(err)))


def _race(root, log, n=2):
    ctx = multiprocessing.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(n)
    procs = [ctx.Process(target=_worker, args=(str(root), str(log), queue, barrier)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return results


def test_two_processes_computing_the_same_key_compute_it_once(tmp_path):
    log = tmp_path / "calls.log"
    results = _race(tmp_path / "cache", log)
    assert results == [("ok", [0.0, 1.0, 2.0, 3.0, 4.0])] * 2
    assert len(log.read_text().split()) == 1


def test_two_processes_meeting_a_corrupt_record_neither_crashes_and_one_rebuilds(tmp_path):
    cache = ResultsCache(tmp_path / "cache")
    cache.save("eval", {"eps": 0.1}, torch.ones(1000), seed=0, dataset="d")
    path = _stored_path(cache, {"eps": 0.1})
    path.write_bytes(path.read_bytes()[:200])
    log = tmp_path / "calls.log"
    results = _race(tmp_path / "cache", log)
    assert results == [("ok", [0.0, 1.0, 2.0, 3.0, 4.0])] * 2
    assert len(log.read_text().split()) == 1
    assert len(list(path.parent.glob(f"{path.name}.corrupt-*"))) == 1


def test_a_process_killed_while_saving_leaves_no_record_and_its_temporary_file_is_cleaned(tmp_path):
    root = tmp_path / "cache"
    ready = tmp_path / "ready"
    code = textwrap.dedent(f"""
        import os, time, torch
        from rattrlib.results import ResultsCache
        def stuck(fd):
            open({str(ready)!r}, "w").close()
            time.sleep(600)
        os.fsync = stuck
        ResultsCache({str(root)!r}).save("eval", {{"eps": 0.1}}, torch.ones(100000), seed=0, dataset="d")
    """)
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(600):
            if ready.exists() or child.poll() is not None:
                break
            time.sleep(0.1)
        assert ready.exists(), "the writer never reached its fsync"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    cache = ResultsCache(root)
    leftovers = list((root / "eval").glob(".*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    assert cache.load("eval", {"eps": 0.1}, seed=0, dataset="d") is None  # no partial record under the key
    assert cache.clean_temporaries() == leftovers
    assert not list((root / "eval").glob(".*.tmp"))


def _temporary(cache, writer, key="k" * 20):
    (cache.root / "eval").mkdir(parents=True, exist_ok=True)
    tmp = cache.root / "eval" / f".{key}.{writer}.abc123.tmp"
    tmp.write_bytes(b"half a record")
    return tmp


def test_only_temporaries_of_dead_writers_on_this_host_are_removed(cache):
    host = results._WRITER.rpartition("~")[0]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = _temporary(cache, f"{host}~{dead.pid}")
    alive = _temporary(cache, f"{host}~{os.getpid()}", key="a" * 20)
    elsewhere = _temporary(cache, f"otherhost~{dead.pid}", key="b" * 20)
    assert cache.clean_temporaries() == [orphan]
    assert alive.exists() and elsewhere.exists()


def test_the_first_get_or_compute_of_a_process_cleans_the_cache(cache, monkeypatch):
    monkeypatch.setattr(results, "_CLEANED", set())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = _temporary(cache, f"{results._WRITER.rpartition('~')[0]}~{dead.pid}")
    assert cache.get_or_compute("eval", {"eps": 0.1}, lambda: 7, seed=0, dataset="d") == 7
    assert not orphan.exists()


def test_records_are_readable_by_the_group_sharing_the_cache(cache):
    cache.save("eval", {"eps": 0.1}, 1, seed=0, dataset="d")
    mode = _stored_path(cache, {"eps": 0.1}).stat().st_mode & 0o777
    assert mode == 0o666 & ~results._UMASK


def test_every_module_a_training_imports_is_in_the_models_fingerprint():
    """The fingerprint of a model covers the code that trains it: every rattrlib module loaded by importing
    rattrlib.train lies under a part of MODEL_CODE (the package root and the cache itself excepted)."""
    code = "import sys, rattrlib.train; print('\\n'.join(m.__file__ for n, m in sys.modules.items() " \
           "if n.startswith('rattrlib') and getattr(m, '__file__', None)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout.split()
    package = os.path.dirname(results.__file__)
    uncovered = []
    for path in out:
        relative = os.path.relpath(path, package)
        if relative in ("__init__.py", "results.py"):
            continue
        if not any(relative == part or relative.startswith(part + os.sep) for part in results.MODEL_CODE):
            uncovered.append(relative)
    assert uncovered == []


def _read_only(monkeypatch):
    """Make every write to the cache fail as on a read-only mount (tests may run as root, which ignores chmod)."""
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    monkeypatch.setattr(os, "replace", refuse)


def test_a_read_only_cache_returns_the_result_with_a_warning(cache, monkeypatch):
    cache.save("eval", {"eps": 0.1}, 1, seed=0, dataset="d")
    _read_only(monkeypatch)
    compute = Counter(torch.ones(3))
    with pytest.warns(UserWarning) as caught:
        value = cache.get_or_compute("eval", {"eps": 0.2}, compute, seed=0, dataset="d")
    messages = " ".join(str(w.message) for w in caught)
    assert "not writable" in messages and "not stored" in messages
    assert compute.calls == 1 and torch.equal(value, torch.ones(3))
    assert cache.get_or_compute("eval", {"eps": 0.1}, Counter(2), seed=0, dataset="d") == 1  # hits still load


def test_a_corrupt_record_in_a_read_only_cache_is_reported_and_recomputed(cache, monkeypatch):
    cache.save("eval", {"eps": 0.1}, torch.ones(1000), seed=0, dataset="d")
    path = _stored_path(cache, {"eps": 0.1})
    path.write_bytes(path.read_bytes()[:200])
    _read_only(monkeypatch)
    with pytest.warns(UserWarning) as caught:
        value = cache.get_or_compute("eval", {"eps": 0.1}, Counter(5), seed=0, dataset="d")
    assert value == 5
    messages = " ".join(str(w.message) for w in caught)
    assert "unreadable" in messages and "not stored" in messages


def test_a_record_of_the_wrong_structure_is_treated_as_corrupt(cache):
    def validate(value):
        if not isinstance(value, dict):
            raise TypeError("not a dict")

    cache.save("eval", {"eps": 0.1}, [1, 2], seed=0, dataset="d")
    with pytest.warns(UserWarning, match="wrong structure"):
        value = cache.get_or_compute("eval", {"eps": 0.1}, Counter({"a": 1}), seed=0, dataset="d",
                                     validate=validate)
    assert value == {"a": 1}
    assert cache.get_or_compute("eval", {"eps": 0.1}, Counter({}), seed=0, dataset="d", validate=validate) == {"a": 1}


def test_a_record_of_other_code_is_recomputed_or_loaded_with_allow_stale(cache, monkeypatch):
    cache.save("eval", {"eps": 0.1}, "old", seed=0, dataset="d")
    monkeypatch.setattr(results, "code_fingerprint", lambda parts: "other-code")
    with pytest.raises(StaleCodeError, match="other rattrlib sources"):
        cache.load("eval", {"eps": 0.1}, seed=0, dataset="d")
    with pytest.warns(UserWarning, match="allow_stale"):
        assert cache.get_or_compute("eval", {"eps": 0.1}, Counter("new"), seed=0, dataset="d",
                                    allow_stale=True) == "old"
    assert cache.get_or_compute("eval", {"eps": 0.1}, Counter("new"), seed=0, dataset="d") == "new"
    assert cache.load("eval", {"eps": 0.1}, seed=0, dataset="d").code == "other-code"


def test_code_fingerprint_ignores_docstrings_and_comments_but_not_code(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    module = package / "m.py"
    monkeypatch.setattr(results, "__file__", str(package / "results.py"))

    def fingerprint(source):
        module.write_text(source)
        results.code_fingerprint.cache_clear()
        return results.code_fingerprint(("m.py",))

    base = fingerprint('def f(x):\n    return x + 1\n')
    assert fingerprint('def f(x):\n    """Adds one."""\n    # a comment\n    return x + 1  # here\n') == base
    assert fingerprint('def f(x):\n    return x + 2\n') != base
    results.code_fingerprint.cache_clear()
    with pytest.raises(ValueError, match="not a file or folder"):
        code_fingerprint(("no_such_module.py",))
