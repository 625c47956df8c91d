"""Training on two processes (DistributedDataParallel, gloo, CPU) against one process with the same global batch.

Measured on the project's 2-core machine: the largest weight difference after 2 epochs of natural training was
5.2e-7 (float rounding of the gradient averaging; weights up to 0.21); the tests allow ``TOLERANCE``. The
process tests take ~10–15 s each (starting the processes is most of it).
"""

import socket

import conftest

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rattrlib.data import DATASETS, DatasetInfo
from rattrlib.models import MnistCNN
from rattrlib.results import ResultsCache
from rattrlib.train import TrainConfig, fit, make_method, train_cached
from rattrlib.train import distributed
from rattrlib.train.base import Progress
from rattrlib.train.loop import check_distributed, loss_module, shard

#: largest |weight difference| accepted between a 2-process and a 1-process run
TOLERANCE = 1e-5
#: 53 images in global batches of 16: the last batch (5) splits 3 + 2, so uneven parts are weighted
N_IMAGES, BATCH, EPOCHS, SEED = 53, 16, 2, 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_model() -> MnistCNN:
    torch.manual_seed(0)
    return MnistCNN(1, 2, image_size=8)


def tiny_info() -> DatasetInfo:
    return DatasetInfo("tiny", "test data", (1, 8, 8), ("left", "right"), True, "none",
                       lambda split, **kw: conftest.tiny_dataset(split, N_IMAGES))


class Interrupt(Exception):
    pass


def run_on_two_processes(job, *args) -> None:
    """``job(rank, *args)`` on 2 CPU processes joined in a gloo group."""
    mp.spawn(_worker, args=(free_port(), job, args), nprocs=2, join=True)


def _worker(rank: int, port: int, job, args) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        job(rank, *args)
    finally:
        dist.destroy_process_group()


def _fit_job(rank: int, out) -> None:
    model = fresh_model()
    logs = fit(model, conftest.tiny_dataset("train", N_IMAGES), make_method("natural"), epochs=EPOCHS,
               batch_size=BATCH, seed=SEED, progress=False)
    torch.save({"state": model.state_dict(), "logs": logs}, out / f"rank{rank}.pt")


def _train_cached_job(rank: int, out, root) -> None:
    DATASETS["tiny"] = tiny_info()
    model, logs = train_cached(TrainConfig(dataset="tiny", epochs=EPOCHS, batch_size=BATCH), seed=SEED,
                               device="cpu", cache=ResultsCache(root), progress=False)
    torch.save({"state": model.state_dict(), "logs": logs}, out / f"rank{rank}.pt")


def _second_order_job(rank: int, out) -> None:
    """One ART step (double backward through the softplus surrogate): the gradient DDP leaves in ``.grad``
    against the mean of the ranks' own gradients, computed without DDP from the same random state."""
    model = fresh_model()
    method = make_method("art", eps=0.1, steps=1)
    wrapped = loss_module(model, method, torch.device("cpu"))
    data = conftest.tiny_dataset("train", 16)
    x, y, index = (shard(t, rank, 2) for t in (data.images, data.labels, torch.arange(16)))
    torch.manual_seed(rank)
    loss, _ = wrapped.module(x, y, index, Progress(0, 1))
    expected = torch.autograd.grad(loss, list(model.parameters()))
    for g in expected:
        dist.all_reduce(g)
        g /= 2
    torch.manual_seed(rank)
    loss, _ = wrapped(x, y, index, Progress(0, 1))
    loss.backward()
    difference = max((p.grad - g).abs().max().item() for p, g in zip(model.parameters(), expected))
    torch.save({"difference": difference, "type": type(wrapped).__name__}, out / f"rank{rank}.pt")


def max_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.mark.slow
def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(tmp_path):
    run_on_two_processes(_fit_job, tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    single = fresh_model()
    logs = fit(single, conftest.tiny_dataset("train", N_IMAGES), make_method("natural"), epochs=EPOCHS,
               batch_size=BATCH, seed=SEED, progress=False)
    assert max_difference(ranks[0]["state"], ranks[1]["state"]) == 0.0  # the ranks hold one model
    assert ranks[0]["logs"] == ranks[1]["logs"]
    assert max_difference(ranks[0]["state"], single.state_dict()) <= TOLERANCE
    for two, one in zip(ranks[0]["logs"], logs):  # logged terms are global batch means
        assert two["ce"] == pytest.approx(one["ce"], abs=1e-5)
        assert two["train_accuracy"] == one["train_accuracy"]


@pytest.mark.slow
def test_train_cached_on_two_processes_stores_one_record_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setitem(DATASETS, "tiny", tiny_info())
    config = TrainConfig(dataset="tiny", epochs=EPOCHS, batch_size=BATCH)
    reference, reference_logs = train_cached(config, seed=SEED, device="cpu", cache=ResultsCache(tmp_path / "a"),
                                             progress=False)
    # one process trains an epoch, writes its checkpoint and dies; two processes finish the run
    root = tmp_path / "b"
    real_save = ResultsCache.save
    checkpointed = []

    def save_then_die(self, kind, config, value, **kw):
        real_save(self, kind, config, value, **kw)
        if kind == "checkpoint":
            checkpointed.extend(value["logs"])
            raise Interrupt

    with monkeypatch.context() as patch, pytest.raises(Interrupt):
        patch.setattr(ResultsCache, "save", save_then_die)
        train_cached(config, seed=SEED, device="cpu", cache=ResultsCache(root), progress=False)
    assert len(list((root / "checkpoint").glob("*.pt"))) == 1

    run_on_two_processes(_train_cached_job, tmp_path, root)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert max_difference(ranks[0]["state"], ranks[1]["state"]) == 0.0
    assert ranks[0]["logs"] == ranks[1]["logs"]
    assert len(list((root / "model").glob("*.pt"))) == 1
    assert not list((root / "checkpoint").glob("*.pt"))  # removed once the model was stored (keep_checkpoint)
    assert ranks[0]["logs"][0] == checkpointed[0]  # resumed: the first epoch was not trained again
    assert len(ranks[0]["logs"]) == len(reference_logs) == EPOCHS
    assert max_difference(ranks[0]["state"], reference.state_dict()) <= TOLERANCE
    stored, _ = train_cached(config, seed=SEED, device="cpu", cache=ResultsCache(root), progress=False)
    assert max_difference(stored.state_dict(), ranks[0]["state"]) == 0.0


@pytest.mark.slow
def test_ddp_averages_the_gradients_of_a_second_order_method(tmp_path):
    run_on_two_processes(_second_order_job, tmp_path)
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result["type"] == "DistributedDataParallel"
        assert result["difference"] <= 1e-6


def test_methods_and_batches_that_cannot_run_on_several_processes_are_refused():
    natural = make_method("natural")
    check_distributed(natural, 53, 16, 2)  # fine: parts of 8 + 8, last 3 + 2
    with pytest.raises(ValueError, match="batch_size=15"):
        check_distributed(natural, 53, 15, 2)
    with pytest.raises(ValueError, match="batch_size=16 leaves a last batch of 1"):
        check_distributed(natural, 49, 16, 2)
    with pytest.raises(ValueError, match="method='sat'"):
        check_distributed(make_method("sat"), 53, 16, 2)
    assert [len(shard(torch.arange(5), r, 2)) for r in range(2)] == [3, 2]


def test_helpers_outside_a_process_group_are_one_process():
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert not distributed.is_distributed()
    assert distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.global_sums([1.5, 2.0]) == [1.5, 2.0]
    assert distributed.backend_for("cpu") == "gloo" and distributed.backend_for("cuda:1") == "nccl"


def test_train_cached_refuses_before_training_the_start_model(tiny_zoo, monkeypatch):
    """Under several processes a config that cannot train is refused before its ``init`` model is trained."""
    for name, value in (("is_distributed", True), ("is_main", True), ("world_size", 2)):
        monkeypatch.setattr(distributed, name, lambda value=value: value)
    monkeypatch.setattr(distributed, "broadcast_object", lambda obj: obj)
    start = TrainConfig(dataset="tiny", epochs=1, batch_size=16)
    cache = ResultsCache(tiny_zoo / "results")
    with pytest.raises(ValueError, match="batch_size=15"):
        train_cached(TrainConfig(dataset="tiny", epochs=1, batch_size=15, init=start), device="cpu", cache=cache,
                     progress=False)
    assert cache.load("model", start, seed=0, dataset="tiny") is None
