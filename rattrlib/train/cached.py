"""Cached, resumable training runs: a :class:`TrainConfig` is everything that determines a trained model;
:func:`train_cached` trains it once (resuming from the last finished epoch after an interruption), stores it in
the results cache and loads it afterwards."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable, Optional

from torch import Tensor, nn

from rattrlib.config import check_choice, resolve_device, seed_everything
from rattrlib.data import load_dataset
from rattrlib.models import build_model
from rattrlib.precision import PRECISIONS
from rattrlib.results import CorruptCacheError, Record, ResultsCache, StaleCodeError, cache_key
from rattrlib.train import distributed
from rattrlib.train.loop import OPTIMISERS, check_distributed, fit
from rattrlib.train.registry import make_method


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model; with the seed, its canonical JSON is the cache key."""

    dataset: str
    model: str = "mnist_cnn"
    method: str = "natural"
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    optimiser: str = "adam"
    n_train: Optional[int] = None  # stratified subset of the training split; None = all of it
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    #: fine-tune: start from the weights of the model this config (a TrainConfig or dict of its fields) trains
    #: with the same seed, trained first or loaded from the cache; None = the architecture's random init
    init: Optional[dict] = None
    #: arithmetic of the training loss (:mod:`rattrlib.precision`): "fp32" or "bf16"
    precision: str = "fp32"

    def __post_init__(self):
        make_method(self.method, **self.hyperparameters)  # validates the method and its hyperparameters
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("optimiser", self.optimiser, OPTIMISERS)
        if self.n_train is not None and self.n_train < 1:
            raise ValueError(f"n_train must be positive or None, got {self.n_train}")
        if isinstance(self.init, TrainConfig):
            object.__setattr__(self, "init", dataclasses.asdict(self.init))
        if self.init is not None:
            start = TrainConfig(**self.init)
            if (start.dataset, start.model) != (self.dataset, self.model):
                raise ValueError(f"init must train the same dataset and model ({self.dataset!r}, {self.model!r}); "
                                 f"got ({start.dataset!r}, {start.model!r})")


def load_checkpoint(cache: ResultsCache, key: dict) -> Optional[Record]:
    """The last epoch checkpoint of a run, or None; a corrupt checkpoint, or one written by other rattrlib
    sources, is reported and ignored (training restarts)."""
    try:
        return cache.load("checkpoint", **key)
    except (CorruptCacheError, StaleCodeError, PermissionError) as err:
        warnings.warn(f"ignoring checkpoint: {err}", stacklevel=3)
        return None


def check_model_payload(value) -> None:
    """Raise unless ``value`` has the structure :func:`train_cached` stores: a state dict of tensors and logs."""
    if not isinstance(value, dict) or set(value) != {"state_dict", "logs"}:
        raise TypeError(f"expected a dict with keys state_dict and logs, got {type(value).__name__} "
                        f"{sorted(value) if isinstance(value, dict) else ''}")
    if not isinstance(value["state_dict"], dict) or not all(isinstance(v, Tensor)
                                                             for v in value["state_dict"].values()):
        raise TypeError("state_dict must map names to tensors")
    if not isinstance(value["logs"], list):
        raise TypeError(f"logs must be a list, got {type(value['logs']).__name__}")


def shared_get_or_compute(cache: ResultsCache, config: TrainConfig, run: Callable[[], dict], *, seed: int,
                          allow_stale: bool) -> dict:
    """The model record's value: ``cache.get_or_compute`` in one process. In a process group of several
    (:mod:`rattrlib.train.distributed`) only rank 0 uses the cache — its key lock, lookup and store; when it
    has to train, it tells the other ranks, which then ``run()`` with it (training together, storing nothing,
    never taking the lock: a rank waiting for the lock while rank 0 waits for it in a collective would
    deadlock); every rank returns rank 0's value."""
    if not distributed.is_distributed():
        return cache.get_or_compute("model", config, run, seed=seed, dataset=config.dataset,
                                    allow_stale=allow_stale, validate=check_model_payload)
    if distributed.is_main():
        told = []

        def tell_then_run() -> dict:
            told.append(distributed.broadcast_object(True))
            return run()

        stored = cache.get_or_compute("model", config, tell_then_run, seed=seed, dataset=config.dataset,
                                      allow_stale=allow_stale, validate=check_model_payload)
        if not told:
            distributed.broadcast_object(False)
    else:
        stored = run() if distributed.broadcast_object(None) else None
    return distributed.broadcast_object(stored)


def train_cached(config: TrainConfig, *, seed: int = 0, device: str = "auto", cache: ResultsCache | None = None,
                 progress: bool = True, allow_stale: bool = False,
                 keep_checkpoint: bool = False) -> tuple[nn.Module, list[dict]]:
    """The model trained by ``config`` with ``seed`` (in eval mode, on ``device``) and its per-epoch logs.

    Loads it from the results cache when it was trained before by the same training code (``allow_stale``: by
    any code, with a warning); else trains it (from the weights of ``config.init``'s model when given, itself
    trained or loaded first), saving a checkpoint after every epoch so an interrupted run resumes from the
    last finished epoch, and stores the result. The checkpoint is deleted once the model is stored, unless
    ``keep_checkpoint``. Processes sharing the cache train each model once (:class:`ResultsCache`).

    In a process group of several processes (``torchrun``, :mod:`rattrlib.train.distributed`) all ranks call
    this together and train together (:func:`~rattrlib.train.loop.fit`); rank 0 alone loads and writes
    checkpoints and the record (:func:`shared_get_or_compute`), and every rank returns rank 0's model and logs.
    """
    cache = cache or ResultsCache()
    data = load_dataset(config.dataset, "train").subset(config.n_train, seed=seed)
    target = resolve_device(device)
    key = {"config": config, "seed": seed, "dataset": config.dataset}
    trained_here = []

    def run() -> dict:
        if distributed.is_distributed():  # refused before its start model or anything else is trained
            check_distributed(make_method(config.method, **config.hyperparameters), len(data), config.batch_size,
                              distributed.world_size())
        start = None
        if config.init is not None:
            start, _ = train_cached(TrainConfig(**config.init), seed=seed, device=device, cache=cache,
                                    progress=progress, allow_stale=allow_stale, keep_checkpoint=keep_checkpoint)
        seed_everything(seed)
        model = build_model(config.model, data.shape, len(data.classes)).to(target)
        if start is not None:
            model.load_state_dict(start.state_dict())
        checkpoint = load_checkpoint(cache, key) if distributed.is_main() else None  # fit sends it to all ranks
        method = make_method(config.method, **config.hyperparameters)
        method.results_cache = cache  # methods that load other cached models (teacher_aligned) use this cache
        logs = fit(model, data, method, epochs=config.epochs,
                   batch_size=config.batch_size, lr=config.lr, optimiser=config.optimiser, seed=seed,
                   progress=progress, save_checkpoint=lambda state: cache.save_or_warn("checkpoint", value=state,
                                                                                       **key),
                   load_checkpoint=lambda: checkpoint.value if checkpoint else None, precision=config.precision)
        trained_here.append(True)
        return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "logs": logs}

    stored = shared_get_or_compute(cache, config, run, seed=seed, allow_stale=allow_stale)
    if (trained_here and distributed.is_main() and not keep_checkpoint
            and cache.path("model", cache_key("model", config, seed, config.dataset)).exists()):
        cache.remove("checkpoint", **key)
    model = build_model(config.model, data.shape, len(data.classes))
    model.load_state_dict(stored["state_dict"])
    return model.to(target).eval(), stored["logs"]


__all__ = ["TrainConfig", "check_model_payload", "load_checkpoint", "shared_get_or_compute", "train_cached"]
