"""Attacks by name, for configs and chapter parameters."""

from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

from rattrlib.attacks.ifia import IFIA
from rattrlib.attacks.manipulate import Manipulate
from rattrlib.attacks.pgd import PGD
from rattrlib.attacks.random_noise import RandomSignNoise
from rattrlib.attacks.spsa import SPSA
from rattrlib.config import check_choice

#: name → constructor taking ``(model, **hyperparameters)``. The ``ifia_*`` entries fix IFIA's objective.
ATTACKS: dict[str, Callable] = {
    "pgd": PGD,
    "ifia_topk": partial(IFIA, objective="topk"),
    "ifia_mass_center": partial(IFIA, objective="mass_center"),
    "ifia_targeted": partial(IFIA, objective="targeted"),
    "manipulate": Manipulate,
    "random_sign": RandomSignNoise,
    "spsa": SPSA,
}


def get_attack(name: str, model: nn.Module, **kwargs):
    """Build the attack ``name`` (a key of :data:`ATTACKS`) on ``model`` with ``kwargs``; an unknown name raises
    ``ValueError`` listing the valid ones, bad hyperparameters raise from the constructor."""
    check_choice("attack", name, ATTACKS)
    return ATTACKS[name](model, **kwargs)
