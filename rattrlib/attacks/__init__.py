"""Attacks on predictions and on attribution maps, batched with per-image bookkeeping.

Captum-like: hyperparameters in the constructor, a batched call. Images are N×C×H×W in [0, 1]; every step
projects onto the ℓ∞ (or ℓ2) ε-ball around the clean image and clamps to [0, 1].

- :class:`PGD` (Madry et al. 2018) and the gradient-free :class:`SPSA` (Uesato et al. 2018)
  ``.perturb(x, y) -> x_adv``; :func:`pgd_accuracy` (robust accuracy under either);
- :class:`IFIA` (Ghorbani et al. 2019: top-k, mass-center, targeted), :class:`Manipulate` (Dombrowski et al.
  2019, SSR's variant), :class:`RandomSignNoise` (the random baseline): ``.perturb(x, target_map=None) ->``
  :class:`AttackResult` (x_adv, success flags, clean/attacked maps, per-image scores, best step);
- :func:`evaluate_attributional_robustness` → :class:`RobustnessReport` (per-image DataFrame + summary with
  t confidence intervals);
- :func:`get_attack` / :data:`ATTACKS`: by name.
"""

from rattrlib.attacks._common import NORMS, SCORES, AttackResult, AttributionAttack, map_scores, project
from rattrlib.attacks.evaluate import RobustnessReport, evaluate_attributional_robustness, mean_ci
from rattrlib.attacks.ifia import IFIA, IFIA_OBJECTIVES
from rattrlib.attacks.manipulate import Manipulate
from rattrlib.attacks.pgd import PGD, adversarial_correct, pgd_accuracy
from rattrlib.attacks.random_noise import RandomSignNoise
from rattrlib.attacks.registry import ATTACKS, get_attack
from rattrlib.attacks.spsa import SPSA

__all__ = [
    "ATTACKS",
    "AttackResult",
    "AttributionAttack",
    "IFIA",
    "IFIA_OBJECTIVES",
    "Manipulate",
    "NORMS",
    "PGD",
    "RandomSignNoise",
    "RobustnessReport",
    "SCORES",
    "SPSA",
    "evaluate_attributional_robustness",
    "get_attack",
    "map_scores",
    "mean_ci",
    "pgd_accuracy",
    "adversarial_correct",
    "project",
]
