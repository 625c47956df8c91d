"""Training methods under one entry point, and cached, resumable training runs.

``train(model, data, method="natural", epochs=..., **hyperparameters)`` trains in place and returns per-epoch
logs; ``train_cached(TrainConfig(...))`` builds, trains and stores a model in the results cache (resuming from
the last finished epoch after an interruption), or loads it.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Optional

from torch import nn

from rattrlib.config import check_choice, resolve_device, seed_everything
from rattrlib.data import ImageDataset, load_dataset
from rattrlib.models import build_model
from rattrlib.precision import PRECISIONS
from rattrlib.results import CorruptCacheError, Record, ResultsCache
from rattrlib.train.base import Batch, Progress, TrainingMethod
from rattrlib.train.loop import OPTIMISERS, fit
from rattrlib.train.natural import Natural
from rattrlib.train.adversarial import PGDAT, TRADES
from rattrlib.train.sat import PGDSAT, SAT, TRADESSAT
from rattrlib.train.art import ART
from rattrlib.train.gali import TeacherAligned
from rattrlib.train.rar import IGNorm, IGSumNorm
from rattrlib.train.ssr import SSR

METHODS: dict[str, type[TrainingMethod]] = {"natural": Natural}
# first-order (adversarial and saliency-based) trainers
METHODS.update({"pgd_at": PGDAT, "trades": TRADES, "sat": SAT, "pgd_sat": PGDSAT, "trades_sat": TRADESSAT})
# second-order (attributional) trainers
METHODS.update({"art": ART, "ssr": SSR, "ig_norm": IGNorm, "ig_sum_norm": IGSumNorm,
                "teacher_aligned": TeacherAligned})


def make_method(name: str, **hyperparameters) -> TrainingMethod:
    """The training method ``name`` with its hyperparameters (validated by its constructor)."""
    check_choice("method", name, sorted(METHODS))
    return METHODS[name](**hyperparameters)


def train(model: nn.Module, data: ImageDataset, method: str = "natural", *, epochs: int = 1,
          batch_size: int = 128, lr: float = 1e-3, optimiser: str = "adam", seed: int = 0,
          progress: bool = True, precision: str = "fp32", **hyperparameters) -> list[dict]:
    """Train ``model`` in place on ``data`` with ``method`` and its ``hyperparameters`` (the loss in
    ``precision``, :mod:`rattrlib.precision`); return epoch logs."""
    return fit(model, data, make_method(method, **hyperparameters), epochs=epochs, batch_size=batch_size,
               lr=lr, optimiser=optimiser, seed=seed, progress=progress, precision=precision)


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
    """The last epoch checkpoint of a run, or None; a corrupt one is reported and ignored (training restarts)."""
    try:
        return cache.load("checkpoint", **key)
    except CorruptCacheError as err:
        warnings.warn(f"ignoring checkpoint: {err}", stacklevel=3)
        return None


def train_cached(config: TrainConfig, *, seed: int = 0, device: str = "auto",
                 cache: ResultsCache | None = None, progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """The model trained by ``config`` with ``seed`` (in eval mode, on ``device``) and its per-epoch logs.

    Loads it from the results cache when it was trained before; else trains it (from the weights of
    ``config.init``'s model when given, itself trained or loaded first), saving a checkpoint after every
    epoch so an interrupted run resumes from the last finished epoch, and stores the result.
    """
    cache = cache or ResultsCache()
    data = load_dataset(config.dataset, "train").subset(config.n_train, seed=seed)
    target = resolve_device(device)
    key = {"config": config, "seed": seed, "dataset": config.dataset}

    def run() -> dict:
        start = None
        if config.init is not None:
            start, _ = train_cached(TrainConfig(**config.init), seed=seed, device=device, cache=cache,
                                    progress=progress)
        seed_everything(seed)
        model = build_model(config.model, data.shape, len(data.classes)).to(target)
        if start is not None:
            model.load_state_dict(start.state_dict())
        checkpoint = load_checkpoint(cache, key)
        method = make_method(config.method, **config.hyperparameters)
        method.results_cache = cache  # methods that load other cached models (teacher_aligned) use this cache
        logs = fit(model, data, method, epochs=config.epochs,
                   batch_size=config.batch_size, lr=config.lr, optimiser=config.optimiser, seed=seed,
                   progress=progress, save_checkpoint=lambda state: cache.save("checkpoint", value=state, **key),
                   load_checkpoint=lambda: checkpoint.value if checkpoint else None, precision=config.precision)
        return {"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "logs": logs}

    stored = cache.get_or_compute("model", config, run, seed=seed, dataset=config.dataset)
    model = build_model(config.model, data.shape, len(data.classes))
    model.load_state_dict(stored["state_dict"])
    return model.to(target).eval(), stored["logs"]


__all__ = ["METHODS", "Batch", "Progress", "TrainConfig", "TrainingMethod", "fit", "make_method", "train",
           "train_cached"]
