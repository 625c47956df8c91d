"""Training methods under one entry point, and cached, resumable training runs.

``train(model, data, method="natural", epochs=..., **hyperparameters)`` trains in place and returns per-epoch
logs; ``train_cached(TrainConfig(...))`` (:mod:`rattrlib.train.cached`) builds, trains and stores a model in the
results cache (resuming from the last finished epoch after an interruption), or loads it.
"""

from __future__ import annotations

from torch import nn

from rattrlib.data import ImageDataset
from rattrlib.train.base import Batch, Progress, TrainingMethod
from rattrlib.train.cached import TrainConfig, load_checkpoint, train_cached
from rattrlib.train.loop import fit
from rattrlib.train.registry import METHODS, make_method
from rattrlib.train.natural import Natural
from rattrlib.train.adversarial import PGDAT, TRADES
from rattrlib.train.sat import PGDSAT, SAT, TRADESSAT
from rattrlib.train.art import ART
from rattrlib.train.gali import TeacherAligned
from rattrlib.train.rar import IGNorm, IGSumNorm
from rattrlib.train.ssr import SSR

METHODS["natural"] = Natural
# first-order (adversarial and saliency-based) trainers
METHODS.update({"pgd_at": PGDAT, "trades": TRADES, "sat": SAT, "pgd_sat": PGDSAT, "trades_sat": TRADESSAT})
# second-order (attributional) trainers
METHODS.update({"art": ART, "ssr": SSR, "ig_norm": IGNorm, "ig_sum_norm": IGSumNorm,
                "teacher_aligned": TeacherAligned})


def train(model: nn.Module, data: ImageDataset, method: str = "natural", *, epochs: int = 1,
          batch_size: int = 128, lr: float = 1e-3, optimiser: str = "adam", seed: int = 0,
          progress: bool = True, precision: str = "fp32", **hyperparameters) -> list[dict]:
    """Train ``model`` in place on ``data`` with ``method`` and its ``hyperparameters`` (the loss in
    ``precision``, :mod:`rattrlib.precision`); return epoch logs."""
    return fit(model, data, make_method(method, **hyperparameters), epochs=epochs, batch_size=batch_size,
               lr=lr, optimiser=optimiser, seed=seed, progress=progress, precision=precision)


__all__ = ["METHODS", "Batch", "Progress", "TrainConfig", "TrainingMethod", "fit", "load_checkpoint",
           "make_method", "train", "train_cached"]
