"""The cross-paper leaderboard (issue 17): every method on one protocol, the strongest attacks, 95 % intervals
from the claims engine — and anyone's model scored on it in three lines.

>>> row = evaluate(model, scale="cpu", name="my model")    # any nn.Module on the protocol's images
>>> place(row, rows, "worst top-k ∩ · IG")                # among the others, with ranks and rank intervals
>>> write([*rows, row], "leaderboard_cpu")                  # leaderboard_cpu.csv and .json, with provenance

What :func:`evaluate` measures, per model and evaluation seed (:class:`LeaderboardProtocol`, presets
:func:`protocol`):

- **clean accuracy** on ``ifia.n_clean`` stratified test images (None: all of them);
- **robust accuracy** on ``ifia.n_pgd`` stratified test images under **AutoAttack** (Croce & Hein 2020, the
  standard version: APGD-CE, APGD-T, FAB-T, Square 5000 queries; torchattacks' implementation) and, beside it,
  under **PGD-40** with random start (Madry et al. 2018): AutoAttack far below PGD flags gradient masking;
- for each attribution of ``attributions``, on the correctly classified images among ``ifia.n_eval``: the attack
  **ensemble** — IFIA top-k and IFIA mass-center (Ghorbani et al. 2019, Alg. 1), Manipulate toward the clean map
  of another attacked image (Dombrowski et al. 2019, eq. 4, SSR's signed-step variant; targets a seeded cyclic
  shuffle) and the random-sign baseline — at ε; per image the **worst case** of top-k ∩ and of Kendall τ
  (the minimum over the ensemble, each metric on its own), and the random-sign baseline alone;
- the **log-AUC** (SSR, Wang et al. 2020, Fig. 2a; :func:`rattrlib.metrics.log_auc`) of the per-image
  worst-case top-k ∩ over ε × ``eps_multipliers`` (¼, ½, 1, 2; α scaled with ε), for ``auc_attributions``;
- GALI's **AA top-k** and **AA Kendall** (eq. 10, 11) at ε against the object itself (the garment: channel-mean
  intensity > ``object_threshold``, GALI Table 5's reference), worst case over the ensemble as above — only on
  data whose objects lie on a black background (:data:`BLACK_BACKGROUND`; not CIFAR-10);
- the **image–gradient alignment** cos(x, ∇ₓf_y(x)) of ART Fig. 6 (Etmann et al. 2019) on the ``ifia.n_eval``
  images, true label;
- the stability metrics of the XAI-evaluation community on saliency maps of the true label (Quantus'
  conventions, :mod:`rattrlib.metrics.sensitivity`), ``sensitivity_samples`` draws per image at radius r =
  ``sensitivity_radius`` (default ε): **Max-** and **Avg-Sensitivity** (Yeh et al. 2019, U[−r, r]), the **Local
  Lipschitz Estimate** (Alvarez-Melis & Jaakkola 2018, N(0, r²)) and **RIS** (Agarwal et al. 2022, U[−r, r]
  draws that keep the prediction), on all ``ifia.n_eval`` images.

Localisation IoU is not a column: the protocol's models classify 28×28 garments, and localisation needs the
composite-scene models (chapters 04 and 06 report it for the methods they train there).

Every per-image value goes into a :class:`~rattrlib.claims.Measurements` (row = the model's name, seed = the
evaluation seed, condition ``"<attack>@<attribution>"``, see :func:`condition`); a column's mean and 95 %
interval come from :func:`~rattrlib.claims.contrast_interval`: Student's t over the per-seed means with ≥ 2
seeds (:func:`merge` the rows of one method's seeds), a bootstrap over the images with one ("images only").
An evaluation is cached under the model's weights (:func:`~rattrlib.results.model_fingerprint`), the protocol
and the seed.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
try:
    import torchattacks
except ImportError as err:  # installed by `make env` with --no-deps (its metadata pins an old requests)
    raise ImportError("rattrlib.leaderboard needs torchattacks for AutoAttack: "
                      "pip install --no-deps torchattacks==3.5.1") from err
from torch import Tensor, nn
from tqdm.auto import tqdm

from rattrlib import __version__
from rattrlib.attacks import (PGD, Manipulate, RandomSignNoise, adversarial_correct,
                              evaluate_attributional_robustness)
from rattrlib.attributions import ATTRIBUTIONS, Saliency
from rattrlib.claims import METRICS, Measurements, contrast_interval, format_value, images_per_seed, metric_label
from rattrlib.config import SCALES, check_choice, check_int, check_positive, check_range, check_real, resolve_device
from rattrlib.data import DATASETS, ImageDataset, load_dataset
from rattrlib.evaluation import IFIAProtocol, gradient_alignment, ifia_protocol, make_ifia, report_measurements
from rattrlib.metrics import (aa_kendall, aa_topk, avg_sensitivity, local_lipschitz_estimate, log_auc, max_sensitivity,
                              relative_input_stability, sample_noise)
from rattrlib.models import predict
from rattrlib.results import EVALUATION_CODE, ResultsCache, code_fingerprint, git_commit, model_fingerprint
from rattrlib.settings import check_seeds
from rattrlib.zoo import eval_pgd

#: bump when the leaderboard's measurements change, so cached evaluations are recomputed
LEADERBOARD_VERSION = 2
#: the sources of the leaderboard itself (its cache key carries their fingerprint beside ``EVALUATION_CODE``)
LEADERBOARD_CODE = ("leaderboard.py", "claims.py")

#: the attack ensemble (names of :data:`rattrlib.attacks.ATTACKS`); the worst case per image is over these
ENSEMBLE = ("ifia_topk", "ifia_mass_center", "manipulate", "random_sign")
#: the random-perturbation baseline, reported alone too
BASELINE = "random_sign"
#: the condition name of the per-image minimum over the ensemble
WORST = "worst_case"
#: attributions of the leaderboard (registry names of :data:`rattrlib.attributions.ATTRIBUTIONS`)
LEADERBOARD_ATTRIBUTIONS = ("saliency", "integrated_gradients", "smoothgrad")
#: attributions an attack can differentiate (the guided ones have no second-order graph)
ATTACKABLE = tuple(a for a in ATTRIBUTIONS if not a.startswith("guided"))
#: short names in column labels
SHORT = {"saliency": "saliency", "integrated_gradients": "IG", "smoothgrad": "SmoothGrad",
         "input_x_gradient": "x⊙∇", "uniform_gradient": "UniformGrad", "gradient_shap": "GradSHAP"}
#: the two similarity metrics of the ensemble (:data:`rattrlib.metrics.METRICS` names)
SIMILARITIES = ("topk_intersection", "kendall_tau")
#: GALI's attribution-aware versions (eq. 10, 11) against the object mask (``object_threshold``)
AWARE = ("aa_topk", "aa_kendall")
#: the object of a Fashion-MNIST / MNIST image: channel-mean intensity above this (GALI Table 5's reference)
OBJECT_THRESHOLD = 0.1
#: data sets whose objects lie on a black background, so that a threshold segments them (the object-aware columns)
BLACK_BACKGROUND = ("fashion_mnist", "mnist10k", "mnist")
#: the stability metrics of the XAI-evaluation community, on saliency maps (lower is better)
STABILITY = ("max_sensitivity", "avg_sensitivity", "local_lipschitz_estimate", "relative_input_stability")
#: AutoAttack's targeted DLR loss (APGD-T) reads the 3rd and 4th largest logits
AUTOATTACK_MIN_CLASSES = 4
#: images per attack call
BATCH = 50
#: the Measurements condition of the stability metrics (noise draws around each image, saliency maps)
STABILITY_CONDITION = "noise@saliency"


# ---------------------------------------------------------------------------------------------------- protocol
def _check_tuple(name: str, value, choices) -> tuple:
    """A non-empty list/tuple of distinct entries of ``choices``, as a tuple."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{name}={value!r} must be a non-empty list of names from {list(choices)}")
    for entry in value:
        check_choice(f"{name} entry", entry, choices)
    if len(set(value)) != len(value):
        raise ValueError(f"{name}={value!r} repeats an entry")
    return tuple(value)


def _check_multipliers(value, eps: float) -> tuple:
    """≥ 2 strictly increasing positive multipliers including 1, each keeping m·ε ≤ 1."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) < 2:
        raise ValueError(f"eps_multipliers={value!r} must list at least 2 multipliers of ε (e.g. [0.25, 0.5, 1, 2])")
    values = tuple(check_positive("eps_multipliers entry", v) for v in value)
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"eps_multipliers={value!r} must be strictly increasing")
    if 1.0 not in values:
        raise ValueError(f"eps_multipliers={value!r} must include 1 (the protocol's ε)")
    if values[-1] * eps > 1.0:
        raise ValueError(f"eps_multipliers={value!r}: {values[-1]}·ε = {values[-1] * eps} leaves the [0, 1] scale")
    return values


@dataclasses.dataclass(frozen=True)
class LeaderboardProtocol:
    """One protocol for every row of the leaderboard (see the module docstring for what is measured).

    Attributes:
        dataset: a registered dataset (:data:`rattrlib.data.DATASETS`) with ≥ 4 classes (AutoAttack's APGD-T).
        ifia: the attributional evaluation (:class:`~rattrlib.evaluation.IFIAProtocol`): ε, α, steps, k, IG
            points ``ig_steps``, softplus β, precision of the attack steps, and the image counts ``n_eval``
            (attributional columns and sensitivities), ``n_pgd`` (AutoAttack and PGD-40, the same images) and
            ``n_clean`` (None: the whole test split).
        attacks: the ensemble, a subset of :data:`ENSEMBLE` that includes ``random_sign``.
        attributions: registry names (:data:`ATTACKABLE`); ``auc_attributions``: those with a log-AUC column
            (None: all of them; an empty list: none).
        eps_multipliers: the ε grid of the log-AUC (strictly increasing, includes 1).
        autoattack_steps: iterations of APGD-CE, APGD-T and FAB-T (Croce & Hein's standard: 100; torchattacks
            3.5.1 leaves its default 10 — this field sets them); ``autoattack_queries``: Square's queries
            (standard: 5000).
        pgd_steps, pgd_alpha: the PGD column (random start, ℓ∞ ε = ``ifia.eps``).
        smoothgrad_samples, smoothgrad_sigma: SmoothGrad's draws and absolute σ (Smilkov et al. 2017).
        sensitivity_radius: r of Max-/Avg-Sensitivity (None: ε); ``sensitivity_samples``: draws per image.
        object_threshold: the object of an image is where its channel mean exceeds this (the AA columns); None:
            no object-aware columns (:func:`protocol` sets None for data outside :data:`BLACK_BACKGROUND`).
        seeds: the seeds of the leaderboard (each method is trained and evaluated once per seed).
    """

    dataset: str
    ifia: IFIAProtocol
    attacks: tuple = ENSEMBLE
    attributions: tuple = LEADERBOARD_ATTRIBUTIONS
    auc_attributions: Optional[tuple] = None
    eps_multipliers: tuple = (0.25, 0.5, 1.0, 2.0)
    autoattack_steps: int = 100
    autoattack_queries: int = 5000
    pgd_steps: int = 40
    pgd_alpha: float = 0.01
    smoothgrad_samples: int = 10
    smoothgrad_sigma: float = 0.15
    sensitivity_radius: Optional[float] = None
    sensitivity_samples: int = 50
    object_threshold: Optional[float] = OBJECT_THRESHOLD
    seeds: tuple = (0, 1, 2)

    def __post_init__(self):
        check_choice("dataset", self.dataset, sorted(DATASETS))
        info = DATASETS[self.dataset]
        if len(info.classes) < AUTOATTACK_MIN_CLASSES:
            raise ValueError(f"dataset={self.dataset!r} has {len(info.classes)} classes; AutoAttack's APGD-T "
                             f"(targeted DLR loss) needs at least {AUTOATTACK_MIN_CLASSES}")
        if not isinstance(self.ifia, IFIAProtocol):
            raise ValueError(f"ifia must be an IFIAProtocol (rattrlib.evaluation.ifia_protocol), got "
                             f"{type(self.ifia).__name__}")
        if self.ifia.k > info.shape[1] * info.shape[2]:
            raise ValueError(f"ifia.k={self.ifia.k} exceeds the {info.shape[1]}×{info.shape[2]} pixels of "
                             f"{self.dataset!r}")
        attacks = _check_tuple("attacks", self.attacks, ENSEMBLE)
        if BASELINE not in attacks:
            raise ValueError(f"attacks={self.attacks!r} must include {BASELINE!r} (the baseline column)")
        attributions = _check_tuple("attributions", self.attributions, ATTACKABLE)
        auc = attributions if self.auc_attributions is None else (
            _check_tuple("auc_attributions", self.auc_attributions, attributions) if self.auc_attributions else ())
        for name, value in {"attacks": attacks, "attributions": attributions, "auc_attributions": auc,
                            "eps_multipliers": _check_multipliers(self.eps_multipliers, self.ifia.eps),
                            "seeds": check_seeds("seeds", self.seeds)}.items():
            object.__setattr__(self, name, value)
        for name in ("autoattack_steps", "autoattack_queries", "pgd_steps", "smoothgrad_samples",
                     "sensitivity_samples"):
            check_int(name, getattr(self, name), 1)
        check_positive("pgd_alpha", self.pgd_alpha)
        if check_real("smoothgrad_sigma", self.smoothgrad_sigma) < 0:
            raise ValueError(f"smoothgrad_sigma={self.smoothgrad_sigma!r} must be >= 0")
        if self.sensitivity_radius is not None:
            check_positive("sensitivity_radius", self.sensitivity_radius)
        if self.object_threshold is not None:
            check_range("object_threshold", check_real("object_threshold", self.object_threshold), 0, 1)

    @property
    def eps(self) -> float:
        """The ℓ∞ budget of every attack (the dataset's threat ε by default)."""
        return self.ifia.eps

    @property
    def radius(self) -> float:
        """The sensitivity radius r (ε unless set)."""
        return self.eps if self.sensitivity_radius is None else self.sensitivity_radius

    @property
    def input_shape(self) -> tuple:
        """(C, H, W) of the dataset's images."""
        return tuple(DATASETS[self.dataset].shape)

    @property
    def n_classes(self) -> int:
        return len(DATASETS[self.dataset].classes)

    def as_dict(self) -> dict:
        """The protocol as JSON-ready data (the IFIA settings nested)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


#: per scale: the dataset and the leaderboard's own settings; the IFIA settings are
#: :func:`rattrlib.evaluation.ifia_protocol`'s for that dataset and scale (cpu: 50 steps, 100 images attacked,
#: 1000 under AutoAttack and PGD, clean accuracy on the whole test split; paper: 100 steps, 1000 images, all).
#: Cost of the cpu preset, measured on the zoo's cpu PGD-AT model (1 thread, busy 2-core machine, CPU seconds):
#: AutoAttack ≈ 5.5 s per image it does not break (Square ≈ 50 %, FAB-T ≈ 33 %, APGD-T ≈ 16 %), ≈ 45 min on 1000
#: images at 47.5 % robust; the ensemble ≈ 0.03 / 0.06 / 0.09 s per attacked image, step and ε (saliency / IG /
#: SmoothGrad, all four attacks), ≈ 50 min for 90 attacked images × 50 steps × 4 ε × 3 attributions; clean 10k
#: images 5 s, PGD-40 33 s, sensitivities 8 s. A chapter scoring many models overrides n_pgd, n_eval, steps and
#: auc_attributions (:func:`protocol` takes them).
PRESETS = {
    "smoke": {"dataset": "fashion_mnist", "autoattack_steps": 10, "smoothgrad_samples": 4,
              "sensitivity_samples": 8, "seeds": (0,)},
    "cpu": {"dataset": "fashion_mnist", "autoattack_steps": 100, "smoothgrad_samples": 10,
            "sensitivity_samples": 50, "seeds": (0, 1, 2)},
    "paper": {"dataset": "cifar10", "autoattack_steps": 100, "smoothgrad_samples": 50,
              "sensitivity_samples": 200, "seeds": (0, 1, 2)},
}


def protocol(scale: str = "cpu", **overrides) -> LeaderboardProtocol:
    """The leaderboard protocol at ``scale`` (:data:`PRESETS`): smoke — a few Fashion-MNIST images and steps;
    cpu — Fashion-MNIST, stratified samples of the full test split; paper — CIFAR-10. ``overrides``: any
    :class:`LeaderboardProtocol` field (``dataset`` too) or :class:`~rattrlib.evaluation.IFIAProtocol` field
    (``eps``, ``steps``, ``n_eval``, …); None keeps the preset. PGD-40's α is the dataset's evaluation α
    (:func:`rattrlib.zoo.eval_pgd`). The attacks' gradient steps are fp32 unless ``precision`` says otherwise.
    """
    check_choice("scale", scale, SCALES)
    ifia_fields = {f.name for f in dataclasses.fields(IFIAProtocol)}
    own_fields = {f.name for f in dataclasses.fields(LeaderboardProtocol)} - {"ifia"}
    unknown = set(overrides) - ifia_fields - own_fields
    if unknown:
        raise ValueError(f"unknown protocol setting(s) {sorted(unknown)}; valid: {sorted(own_fields | ifia_fields)}")
    given = {key: value for key, value in overrides.items() if value is not None}
    settings = {**PRESETS[scale], **{k: v for k, v in given.items() if k in own_fields}}
    # fp32 unless asked: a leaderboard compares rows computed on different machines, so its protocol must not
    # depend on whether the host has bf16 units
    ifia = ifia_protocol(settings["dataset"], scale, **{"precision": "fp32",
                                                       **{k: v for k, v in given.items() if k in ifia_fields}})
    settings.setdefault("pgd_alpha", eval_pgd(settings["dataset"])["alpha"])
    if settings["dataset"] not in BLACK_BACKGROUND:
        settings.setdefault("object_threshold", None)
    return LeaderboardProtocol(ifia=ifia, **settings)


# ---------------------------------------------------------------------------------------------------- columns
def auc_condition(attribution: str) -> str:
    """The condition of the log-AUC over ε of ``attribution``'s worst-case top-k ∩ curve; like SSR's, a log-AUC is
    stored in its curve's metric (top-k ∩), so it is shown in that metric's units."""
    return f"{condition(WORST, attribution)} log-AUC"


def condition(attack: str, attribution: str, multiplier: float = 1.0) -> str:
    """The Measurements condition of ``attack`` (an :data:`ENSEMBLE` name or :data:`WORST`) on the maps of
    ``attribution`` at ``multiplier``·ε: ``"ifia_topk@saliency"``, ``"worst_case@smoothgrad×0.25"``."""
    name = f"{attack}@{attribution}"
    return name if multiplier == 1.0 else f"{name}×{multiplier:g}"


@dataclasses.dataclass(frozen=True)
class Column:
    """One leaderboard column: its label (the key of tables and ranks), the Measurements condition and metric
    it summarises, and its direction."""

    label: str
    under: str
    metric: str
    higher_is_better: bool


def columns(protocol: LeaderboardProtocol) -> list:
    """The columns of ``protocol``, in table order: accuracies; per attribution worst-case top-k ∩ and Kendall τ,
    the random baseline's, worst-case AA top-k and AA Kendall (with an ``object_threshold``), the log-AUC of
    worst-case top-k ∩ (``auc_attributions``); the image–gradient alignment; Max-/Avg-Sensitivity, LLE and RIS of
    saliency."""
    out = [Column("clean accuracy", "clean", "accuracy", True),
           Column("AutoAttack accuracy", "autoattack", "accuracy", True),
           Column(f"PGD-{protocol.pgd_steps} accuracy", "pgd", "accuracy", True)]
    for attribution in protocol.attributions:
        short = SHORT.get(attribution, attribution)
        out += [Column(f"worst top-k ∩ · {short}", condition(WORST, attribution), "topk_intersection", True),
                Column(f"worst Kendall τ · {short}", condition(WORST, attribution), "kendall_tau", True),
                Column(f"random top-k ∩ · {short}", condition(BASELINE, attribution), "topk_intersection", True),
                Column(f"random Kendall τ · {short}", condition(BASELINE, attribution), "kendall_tau", True)]
        if protocol.object_threshold is not None:
            out += [Column(f"worst AA top-k · {short}", condition(WORST, attribution), "aa_topk", True),
                    Column(f"worst AA Kendall · {short}", condition(WORST, attribution), "aa_kendall", True)]
        if attribution in protocol.auc_attributions:
            out.append(Column(f"log-AUC worst top-k ∩ · {short}", auc_condition(attribution), "topk_intersection",
                              True))
    out.append(Column(metric_label("alignment"), "clean", "alignment", True))
    for metric in STABILITY:
        out.append(Column(f"{metric_label(metric)} · saliency", STABILITY_CONDITION, metric,
                          bool(METRICS[metric].higher_is_better)))
    return out


# ---------------------------------------------------------------------------------------------------- checks
def _check_model(model, protocol: LeaderboardProtocol, device: torch.device) -> nn.Module:
    """An eval-mode copy of ``model`` on ``device``, after checking that it maps the dataset's images to one logit
    per class (a forward of two black images)."""
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise ValueError(f"model must be an nn.Module with parameters returning logits, got {type(model).__name__}")
    shape, k = protocol.input_shape, protocol.n_classes
    copied = copy.deepcopy(model).to(device).eval()
    try:
        with torch.no_grad():
            out = copied(torch.zeros(2, *shape, device=device))
    except Exception as err:  # noqa: BLE001 - re-raised with the expected shape
        raise ValueError(f"model must take {protocol.dataset} images of shape N×{'×'.join(map(str, shape))} "
                         f"(in [0, 1]); a forward of 2×{'×'.join(map(str, shape))} failed: "
                         f"{type(err).__name__}: {err}") from err
    if not isinstance(out, Tensor) or tuple(out.shape) != (2, k):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"model must return {k} logits per {protocol.dataset} image of shape "
                         f"{'×'.join(map(str, shape))}: for 2 images it returned {got}, expected (2, {k})")
    return copied


def _check_cost(training_cost) -> Optional[float]:
    if training_cost is None:
        return None
    return check_positive("training_cost", training_cost)


# ---------------------------------------------------------------------------------------------------- accuracy
def autoattack_correct(model: nn.Module, images: Tensor, labels: Tensor, *, eps: float, n_classes: int,
                       steps: int = 100, queries: int = 5000, seed: int = 0, batch_size: int = 256,
                       progress: bool = False) -> Tensor:
    """Per image (N,) bool: still classified as ``labels`` under AutoAttack (Croce & Hein 2020, "Reliable
    evaluation of adversarial robustness…", standard version, ℓ∞ ``eps``) — torchattacks'
    ``AutoAttack(model, norm="Linf", eps, version="standard", n_classes, seed)``: APGD-CE, APGD-T (n_classes − 1
    targets), FAB-T, Square (5000 queries), each on the images the previous ones left correct. ``steps`` sets the
    iterations of APGD-CE, APGD-T and FAB-T (the original standard version's 100; torchattacks 3.5.1 defaults to
    10), ``queries`` Square's (standard: 5000). torchattacks reseeds torch's global generator; it is restored
    after. Misclassified clean images count as errors."""
    check_int("n_classes", n_classes, AUTOATTACK_MIN_CLASSES)
    check_int("steps", steps, 1)
    check_int("queries", queries, 1)
    device = next(model.parameters()).device
    attack = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=n_classes,
                                     seed=seed)
    parts = getattr(getattr(attack, "_autoattack", None), "attacks", None)
    if parts is None:
        raise RuntimeError(f"torchattacks {torchattacks.__version__}: AutoAttack has no _autoattack.attacks to set "
                           f"the iterations of (written for 3.5.1)")
    for part in parts:
        if hasattr(part, "steps"):
            part.steps = steps
        if hasattr(part, "n_queries"):
            part.n_queries = queries
    correct = []
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        for start in tqdm(range(0, len(images), batch_size), desc="AutoAttack", disable=not progress, mininterval=2):
            x, y = images[start:start + batch_size].to(device), labels[start:start + batch_size].to(device)
            x_adv = attack(x, y)
            with torch.no_grad():
                correct.append((model(x_adv).argmax(1) == y).cpu())
    return torch.cat(correct)


def _accuracies(model: nn.Module, test: ImageDataset, protocol: LeaderboardProtocol, seed: int,
                measurements: Measurements, progress: bool) -> None:
    """Clean accuracy, and AutoAttack and PGD accuracy on the same images, per image."""
    clean_set = test.subset(protocol.ifia.n_clean, seed=seed)
    clean = (predict(model, clean_set.images) == clean_set.labels).numpy()
    measurements.add("", "clean", "accuracy", seed, clean)
    robust_set = test.subset(protocol.ifia.n_pgd, seed=seed)
    autoattack = autoattack_correct(model, robust_set.images, robust_set.labels, eps=protocol.eps,
                                    n_classes=protocol.n_classes, steps=protocol.autoattack_steps,
                                    queries=protocol.autoattack_queries, seed=seed,
                                    progress=progress)
    measurements.add("", "autoattack", "accuracy", seed, autoattack.numpy())
    pgd = PGD(model, protocol.eps, protocol.pgd_alpha, protocol.pgd_steps, random_start=True,
              generator=torch.Generator().manual_seed(seed))
    measurements.add("", "pgd", "accuracy", seed,
                     adversarial_correct(model, robust_set.images, robust_set.labels, pgd, progress=progress).numpy())


# ---------------------------------------------------------------------------------------------------- attributional
def _attribution_kwargs(protocol: LeaderboardProtocol, attribution: str, seed: int) -> dict:
    """The attribution's settings: IG's points, SmoothGrad's draws and σ, a fresh seeded generator where the
    method draws noise (every attack gets the same Monte-Carlo draws)."""
    kwargs = {}
    if attribution == "integrated_gradients":
        kwargs["n_steps"] = protocol.ifia.ig_steps
    if attribution == "smoothgrad":
        kwargs.update(n_samples=protocol.smoothgrad_samples, sigma=protocol.smoothgrad_sigma)
    if "generator" in inspect.signature(ATTRIBUTIONS[attribution]).parameters:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    return kwargs


def _build_attack(model: nn.Module, protocol: LeaderboardProtocol, attack: str, attribution: str,
                  multiplier: float, seed: int):
    """One ensemble attack on ``attribution`` at ``multiplier``·ε (α scaled alike)."""
    ifia = dataclasses.replace(protocol.ifia, eps=multiplier * protocol.eps, alpha=multiplier * protocol.ifia.alpha)
    kwargs = _attribution_kwargs(protocol, attribution, seed)
    if attack == BASELINE:
        return RandomSignNoise(model, ifia.eps, generator=torch.Generator().manual_seed(seed), attribution=attribution,
                               attribution_kwargs=kwargs, k=ifia.k)
    if attack == "manipulate":
        return Manipulate(model, attribution, kwargs, eps=ifia.eps, alpha=ifia.alpha, steps=ifia.steps, k=ifia.k,
                          beta=ifia.beta, internal_batch_size=500, precision=ifia.precision)
    return make_ifia(model, ifia, attribution, kwargs, objective=attack.removeprefix("ifia_"))


def _object_aware(report, data: ImageDataset, threshold: float) -> dict:
    """GALI's AA top-k and AA Kendall (eq. 10, 11) of one attack's run against the object mask of each attacked
    image (channel mean > ``threshold``), per image of ``data`` (NaN where not attacked: all of them when the
    model misclassified every image)."""
    attacked = np.flatnonzero(report.per_image["correct"].to_numpy(dtype=bool))
    out = {metric: np.full(len(data), np.nan) for metric in AWARE}
    if report.result is None or not attacked.size:
        return out
    result = report.result
    mask = data.images[attacked].mean(dim=1) > threshold
    values = {"aa_topk": aa_topk(mask, result.clean_map, result.adv_map, result.k),
              "aa_kendall": aa_kendall(mask, result.clean_map, result.adv_map)}
    for metric, value in values.items():
        out[metric][attacked] = value.double().numpy()
    return out


def _ensemble(model: nn.Module, data: ImageDataset, protocol: LeaderboardProtocol, attribution: str,
              multiplier: float, seed: int, n_correct: int, measurements: Measurements, progress: bool) -> dict:
    """Run the ensemble at ``multiplier``·ε; add each attack's per-image top-k ∩ and Kendall τ (and at ε their
    object-aware versions) and their worst case (minimum over the attacks, NaN-skipping) to ``measurements``.
    Returns the worst case per metric."""
    aware = multiplier == 1.0 and protocol.object_threshold is not None
    metrics = SIMILARITIES + (AWARE if aware else ())
    per_attack = {metric: [] for metric in metrics}
    for attack in protocol.attacks:
        under = condition(attack, attribution, multiplier)
        if attack == "manipulate" and n_correct < 2:  # its targets are the maps of other attacked images
            for metric in metrics:
                measurements.add("", under, metric, seed, np.full(len(data), np.nan))
            continue
        report = evaluate_attributional_robustness(
            model, data.images, data.labels, None, _build_attack(model, protocol, attack, attribution, multiplier,
                                                                 seed),
            k=protocol.ifia.k, batch_size=BATCH, progress=progress, seed=seed, name=under,
            keep_result=aware)
        report_measurements(report, measurements, "", under, seed, metrics=SIMILARITIES)
        values = {metric: report.per_image[metric].to_numpy(dtype=float) for metric in SIMILARITIES}
        if aware:
            values.update(_object_aware(report, data, protocol.object_threshold))
            for metric in AWARE:
                measurements.add("", under, metric, seed, values[metric])
        for metric in metrics:
            per_attack[metric].append(values[metric])
    worst = {metric: np.fmin.reduce(np.stack(values), axis=0) for metric, values in per_attack.items()}
    for metric, values in worst.items():
        measurements.add("", condition(WORST, attribution, multiplier), metric, seed, values)
    return worst


def _attributional(model: nn.Module, data: ImageDataset, protocol: LeaderboardProtocol, attribution: str,
                   seed: int, measurements: Measurements, progress: bool) -> None:
    """The ensemble at ε (and at every multiplier for a log-AUC attribution) and the log-AUC of the worst-case
    top-k ∩ per image."""
    n_correct = int((predict(model, data.images) == data.labels).sum())
    multipliers = protocol.eps_multipliers if attribution in protocol.auc_attributions else (1.0,)
    curve = [_ensemble(model, data, protocol, attribution, m, seed, n_correct, measurements,
                       progress)["topk_intersection"] for m in multipliers]
    if len(multipliers) > 1:
        eps = torch.tensor([m * protocol.eps for m in multipliers], dtype=torch.float64)
        auc = log_auc(eps, torch.from_numpy(np.stack(curve))).numpy()
        measurements.add("", auc_condition(attribution), "topk_intersection", seed, auc)


def _stability(model: nn.Module, data: ImageDataset, protocol: LeaderboardProtocol, seed: int,
               measurements: Measurements) -> None:
    """The XAI-evaluation stability metrics of saliency (true label), in chunks of :data:`BATCH` images:
    Max- and Avg-Sensitivity on the same U[−r, r] draws, the Local Lipschitz Estimate on N(0, r²) draws (its
    paper's and Quantus' sampler), RIS on U[−r, r] draws that keep the prediction; r =
    ``protocol.radius``, ``protocol.sensitivity_samples`` draws per image, seeded by ``seed``."""
    device = next(model.parameters()).device
    explain = Saliency(model).attribute
    generator = torch.Generator().manual_seed(seed)
    r, n = protocol.radius, protocol.sensitivity_samples
    values = {metric: [] for metric in STABILITY}
    for start in range(0, len(data), BATCH):
        x = data.images[start:start + BATCH].to(device)
        y = data.labels[start:start + BATCH].to(device)
        noise = sample_noise(x, n, r, generator=generator)
        values["max_sensitivity"].append(max_sensitivity(explain, x, y, noise=noise).cpu())
        values["avg_sensitivity"].append(avg_sensitivity(explain, x, y, noise=noise).cpu())
        values["local_lipschitz_estimate"].append(
            local_lipschitz_estimate(explain, x, y, radius=r, n_samples=n, generator=generator).cpu())
        values["relative_input_stability"].append(
            relative_input_stability(explain, x, y, radius=r, n_samples=n, generator=generator, model=model).cpu())
    for metric, parts in values.items():
        measurements.add("", STABILITY_CONDITION, metric, seed, torch.cat(parts).double().numpy())


def _measure(model: nn.Module, protocol: LeaderboardProtocol, seed: int, progress: bool) -> dict:
    """Every per-image value of one model and seed (row name left empty), with the wall and CPU seconds."""
    start, cpu = time.perf_counter(), time.process_time()
    measurements = Measurements()
    test = load_dataset(protocol.dataset, "test")
    _accuracies(model, test, protocol, seed, measurements, progress)
    data = test.subset(protocol.ifia.n_eval, seed=seed)
    for attribution in protocol.attributions:
        _attributional(model, data, protocol, attribution, seed, measurements, progress)
    measurements.add("", "clean", "alignment", seed, gradient_alignment(model, data.images, data.labels))
    _stability(model, data, protocol, seed, measurements)
    return {"frame": measurements.frame, "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu}


def _check_cached(value) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("frame"), pd.DataFrame) \
            or list(value["frame"].columns) != list(Measurements.COLUMNS):
        raise ValueError("not a leaderboard evaluation")


# ---------------------------------------------------------------------------------------------------- rows
@dataclasses.dataclass
class Row:
    """One method (or one user model) on the leaderboard.

    Attributes:
        name: the method's name.
        summary: one row per column label: ``mean``, ``ci_low``, ``ci_high`` (95 %, metric units: fractions for
            accuracy and top-k ∩), ``n_images`` (finite per-image values per seed, averaged over seeds),
            ``n_seeds``, ``scope`` ("seeds and images" or "images only (1 seed)"), ``under``, ``metric``,
            ``higher_is_better``.
        seeds: the evaluation (and training) seeds behind it; ``n_images``: test images attributionally
            evaluated per seed (``ifia.n_eval``).
        training_cost: CPU seconds per training epoch, if given.
        provenance: code fingerprints, protocol (dict), seeds, model fingerprints, versions, evaluation seconds.
        measurements: the per-image values (None for rows read back from JSON).
    """

    name: str
    summary: pd.DataFrame
    seeds: tuple
    n_images: int
    training_cost: Optional[float]
    provenance: dict
    measurements: Optional[Measurements] = None

    def value(self, column: str) -> tuple:
        """``(mean, ci_low, ci_high)`` of ``column`` (a label of :func:`columns`)."""
        if column not in self.summary.index:
            raise ValueError(f"column={column!r} is not a column of row {self.name!r}; choose one of "
                             f"{list(self.summary.index)}")
        r = self.summary.loc[column]
        return float(r["mean"]), float(r["ci_low"]), float(r["ci_high"])

    def as_dict(self) -> dict:
        """JSON-ready: name, seeds, counts, training cost, provenance and the summary by column label."""
        summary = {label: {k: (v if isinstance(v, str) else _json_number(v)) for k, v in r.items()}
                   for label, r in self.summary.to_dict(orient="index").items()}
        return {"name": self.name, "seeds": list(self.seeds), "n_images": self.n_images,
                "training_cost": self.training_cost, "provenance": self.provenance, "summary": summary}


def _json_number(value):
    """bools stay bools, numbers become floats (NaN → None, which JSON can hold)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    value = float(value)
    return value if math.isfinite(value) else None


def interval_within_bounds(metric: str, low: float, high: float) -> tuple:
    """``[low, high]`` cut to the value range of ``metric`` (``bounds``): a Student's t interval over three seed
    means can pass 100 %, and the mean it covers cannot, so the cut keeps its coverage."""
    bounds = METRICS[metric].bounds
    if bounds is None:
        return low, high
    return float(np.clip(low, *bounds)), float(np.clip(high, *bounds))


def summarise(measurements: Measurements, name: str, protocol: LeaderboardProtocol) -> pd.DataFrame:
    """The :class:`Row` summary of row ``name`` in ``measurements``: per column its mean and 95 % interval from
    :func:`~rattrlib.claims.contrast_interval` (one side, weight 1; seeded bootstrap with one seed)."""
    rows = {}
    for col in columns(protocol):
        table = measurements.side("", name, col.under, col.metric)
        r = contrast_interval([table], [1.0])
        low, high = interval_within_bounds(col.metric, r["low"], r["high"])
        rows[col.label] = {"mean": r["estimate"], "ci_low": low, "ci_high": high,
                           "n_images": images_per_seed(table, r["seeds"]),
                           "n_seeds": len(r["seeds"]), "scope": r["scope"], "under": col.under,
                           "metric": col.metric, "higher_is_better": col.higher_is_better}
    return pd.DataFrame.from_dict(rows, orient="index")


def _provenance(protocol: LeaderboardProtocol, seeds, models: list, seconds: list) -> dict:
    return {"code": code_fingerprint(EVALUATION_CODE), "leaderboard_code": code_fingerprint(LEADERBOARD_CODE),
            "protocol": protocol.as_dict(), "seeds": sorted(int(s) for s in seeds), "models": models,
            "evaluation_seconds": seconds, "rattrlib": __version__, "torch": torch.__version__,
            "torchattacks": torchattacks.__version__, "git_commit": git_commit()}


def _row(name: str, frame: pd.DataFrame, protocol: LeaderboardProtocol, training_cost: Optional[float],
         models: list, seconds: list) -> Row:
    frame = frame.assign(row=name)
    measurements = Measurements(frame)
    seeds = tuple(sorted(int(s) for s in frame["seed"].unique()))
    return Row(name=name, summary=summarise(measurements, name, protocol), seeds=seeds,
               n_images=protocol.ifia.n_eval, training_cost=training_cost,
               provenance=_provenance(protocol, seeds, models, seconds), measurements=measurements)


def evaluate(model: nn.Module, *, scale: str = "cpu", protocol: Optional[LeaderboardProtocol] = None,
             name: str = "my model", seed: int = 0, device: str = "auto", cache: Optional[ResultsCache] = None,
             training_cost: Optional[float] = None, progress: bool = False) -> Row:
    """Score ``model`` (any ``nn.Module`` mapping the dataset's N×C×H×W images in [0, 1] to logits; ReLUs as
    ``nn.ReLU`` modules for the attacks' softplus surrogate) on the leaderboard ``protocol`` (default: the
    preset of ``scale``), test subsets and attack randomness drawn with ``seed``. The input shape and the number
    of logits are checked first (a ``ValueError`` naming ``model`` and the expected shape), before any attack.
    The model is copied (its mode and device are left alone). Cached in ``cache`` under the model's weights,
    the protocol and the seed. ``training_cost``: CPU seconds per training epoch, carried into the table.
    Several seeds of one method: evaluate each (its model and ``seed``) and :func:`merge` the rows."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name={name!r} must be a non-empty string")
    check_int("seed", seed, 0)
    training_cost = _check_cost(training_cost)
    if protocol is None:
        protocol = _preset(scale)
    elif not isinstance(protocol, LeaderboardProtocol):
        raise ValueError(f"protocol must be a LeaderboardProtocol (leaderboard.protocol(scale)), got "
                         f"{type(protocol).__name__}")
    if cache is not None and not isinstance(cache, ResultsCache):
        raise ValueError(f"cache must be a ResultsCache or None, got {type(cache).__name__}")
    device = resolve_device(device)
    model = _check_model(model, protocol, device)
    fingerprint = model_fingerprint(model)
    # the code that computes a row is fingerprinted by the cache itself (results.CODE["leaderboard"])
    # the protocol without its list of seeds: one seed's evaluation does not depend on which others are run
    key = {"model": fingerprint, "protocol": dataclasses.replace(protocol, seeds=(seed,)),
           "version": LEADERBOARD_VERSION, "torchattacks": torchattacks.__version__}
    value = (cache or ResultsCache()).get_or_compute(
        "leaderboard", key, lambda: _measure(model, protocol, seed, progress), seed=seed, dataset=protocol.dataset,
        validate=_check_cached)
    return _row(name, value["frame"], protocol, training_cost, [fingerprint], [value["seconds"]])


_preset = protocol  # evaluate's ``protocol`` argument shadows the preset function


def merge(rows: Sequence[Row], name: Optional[str] = None) -> Row:
    """One row from the rows of one method's seeds (each from :func:`evaluate` with its model and seed): the
    per-image values pooled, so the interval becomes Student's t over the seeds. ``name`` defaults to the rows'
    common name; training cost: the mean of those given."""
    rows = list(rows)
    if not rows or not all(isinstance(r, Row) for r in rows):
        raise ValueError("rows must be a non-empty list of leaderboard Rows")
    if any(r.measurements is None for r in rows):
        raise ValueError("rows read back from JSON have no per-image values to merge; merge evaluated rows")
    protocols = {json.dumps(r.provenance["protocol"], sort_keys=True) for r in rows}
    if len(protocols) > 1:
        raise ValueError("rows were evaluated under different protocols; a leaderboard has one")
    seeds = [s for r in rows for s in r.seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"rows repeat a seed ({sorted(seeds)}): merge one row per seed")
    name = name or rows[0].name
    frame = pd.concat([r.measurements.frame for r in rows], ignore_index=True)
    costs = [r.training_cost for r in rows if r.training_cost is not None]
    protocol_ = _protocol_from_dict(rows[0].provenance["protocol"])
    return _row(name, frame, protocol_, float(np.mean(costs)) if costs else None,
                [m for r in rows for m in r.provenance["models"]],
                [s for r in rows for s in r.provenance["evaluation_seconds"]])


def _protocol_from_dict(data: dict) -> LeaderboardProtocol:
    data = dict(data)
    data["ifia"] = IFIAProtocol(**data["ifia"])
    return LeaderboardProtocol(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# ---------------------------------------------------------------------------------------------------- views
def _check_rows(rows) -> list:
    """``rows`` (Rows, or the stem/path of a written leaderboard) as a list of Rows with distinct names and one
    protocol."""
    if isinstance(rows, (str, Path)):
        rows = read(rows)
    rows = list(rows)
    if not rows or not all(isinstance(r, Row) for r in rows):
        raise ValueError("rows must be a non-empty list of leaderboard Rows (or the path of a written one)")
    names = [r.name for r in rows]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"rows repeat the names {repeated}; merge the seeds of a method into one row")
    if len({json.dumps(r.provenance.get("protocol"), sort_keys=True) for r in rows}) > 1:
        raise ValueError("rows were evaluated under different protocols; a leaderboard has one")
    return rows


def table(rows, *, display: bool = False, reference: str = "natural") -> pd.DataFrame:
    """The leaderboard: one row per method (index ``method``), per column its mean and 95 % interval — numeric
    columns ``<label>``, ``<label> · CI low``, ``<label> · CI high`` in metric units (sortable), or with
    ``display`` one text column ``mean [low, high]`` per label in display units (percent for accuracy and
    top-k ∩) — then ``images × seeds``, ``training cost (CPU s/epoch)`` and, where the ``reference`` row has a
    cost, ``cost ÷ <reference>``."""
    rows = _check_rows(rows)
    base = next((r.training_cost for r in rows if r.name == reference), None)
    records = []
    for r in rows:
        record = {}
        for label, s in r.summary.iterrows():
            if display:
                record[label] = (f"{format_value(s['metric'], s['mean'])} [{format_value(s['metric'], s['ci_low'])}, "
                                 f"{format_value(s['metric'], s['ci_high'])}]")
            else:
                record.update({label: s["mean"], f"{label} · CI low": s["ci_low"],
                               f"{label} · CI high": s["ci_high"]})
        record["images × seeds"] = f"{r.n_images} × {len(r.seeds)}"
        record["training cost (CPU s/epoch)"] = r.training_cost if r.training_cost is not None else np.nan
        if base is not None:
            record[f"cost ÷ {reference}"] = record["training cost (CPU s/epoch)"] / base
        records.append(record)
    return pd.DataFrame(records, index=pd.Index([r.name for r in rows], name="method"))


def ranks(rows, column: str) -> pd.DataFrame:
    """Rank of each method on ``column`` with its rank interval, best first.

    With each method's 95 % interval [l, h] oriented so that higher is better (negated for a lower-is-better
    metric; an interval that is NaN collapses to the mean):

    - ``best_rank`` = 1 + the number of other methods whose interval lies entirely above this one's (l_j > h):
      those are better whatever the truth inside the intervals;
    - ``worst_rank`` = 1 + the number of other methods whose interval is not entirely below this one's
      (h_j ≥ l): any of them may be better;
    - ``shares_top``: ``best_rank`` = 1 — no method is surely better, so the data do not separate it from the
      leader (the method with the best mean);
    - ``rank`` = 1 + the number of methods with a better mean: the order of the table, so a wide interval never
      lifts a method above a better mean; [``best_rank``, ``worst_rank``] is how far the data let it move.

    Methods without a mean (NaN) are listed last with NaN ranks."""
    rows = _check_rows(rows)
    values = np.array([r.value(column) for r in rows], dtype=np.float64)
    higher = bool(rows[0].summary.loc[column, "higher_is_better"])
    mean, low, high = values.T if higher else -values[:, [0, 2, 1]].T
    low, high = np.where(np.isnan(low), mean, low), np.where(np.isnan(high), mean, high)
    ok = np.isfinite(mean)
    out = pd.DataFrame({"mean": values[:, 0], "ci_low": values[:, 1], "ci_high": values[:, 2]},
                       index=pd.Index([r.name for r in rows], name="method"))
    if not ok.any():
        return out.assign(rank=np.nan, best_rank=np.nan, worst_rank=np.nan, shares_top=False)
    m, lo, hi = mean[ok], low[ok], high[ok]
    best = 1 + (lo[None, :] > hi[:, None]).sum(axis=1)
    worst = (hi[None, :] >= lo[:, None]).sum(axis=1)            # counts the method itself (h ≥ l)
    top = best == 1  # no method is surely better: it shares the top rank
    by_mean = 1 + (m[None, :] > m[:, None]).sum(axis=1)
    for name, part in {"rank": by_mean, "best_rank": best, "worst_rank": worst}.items():
        full = np.full(len(rows), np.nan)
        full[ok] = part
        out[name] = full
    out["shares_top"] = False
    out.loc[out.index[ok], "shares_top"] = top
    order = np.argsort(-np.where(ok, mean, -np.inf), kind="stable")
    return out.iloc[order]


def place(row: Row, rows, column: str = "worst top-k ∩ · IG") -> pd.DataFrame:
    """``row`` (e.g. from :func:`evaluate`) among ``rows`` (Rows, or the path of a written leaderboard), sorted by
    ``column`` as :func:`ranks` ranks them, with a ``yours`` column marking it."""
    if not isinstance(row, Row):
        raise ValueError(f"row must be a leaderboard Row (from leaderboard.evaluate), got {type(row).__name__}")
    others = _check_rows(rows)
    if any(r.name == row.name for r in others):
        raise ValueError(f"row name {row.name!r} is already on the leaderboard; evaluate with another name")
    out = ranks([*others, row], column)
    return out.assign(yours=out.index == row.name)


def write(rows, path_stem: Union[str, Path]) -> tuple:
    """Write the leaderboard as ``<path_stem>.csv`` (:func:`table`, numeric) and ``<path_stem>.json`` (every row's
    summary and provenance, and at the top the code fingerprint, protocol, seeds and columns). Returns the two
    paths."""
    rows = _check_rows(rows)
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, js = stem.parent / f"{stem.name}.csv", stem.parent / f"{stem.name}.json"
    first = rows[0].provenance
    payload = {"code": code_fingerprint(EVALUATION_CODE), "leaderboard_code": code_fingerprint(LEADERBOARD_CODE),
               "protocol": first["protocol"], "seeds": sorted({int(s) for r in rows for s in r.seeds}),
               "columns": [dataclasses.asdict(c) for c in columns(_protocol_from_dict(first["protocol"]))],
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": [r.as_dict() for r in rows]}
    for path, text in ((csv, table(rows).to_csv()), (js, json.dumps(payload, indent=1, allow_nan=False))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return csv, js


def read(path: Union[str, Path]) -> list:
    """The Rows of a leaderboard written by :func:`write` (``path``: its JSON, or the stem), without per-image
    values."""
    path = Path(path)
    if path.suffix != ".json":
        path = path.parent / f"{path.name}.json"
    payload = json.loads(path.read_text())
    rows = []
    for r in payload["rows"]:
        summary = pd.DataFrame.from_dict(r["summary"], orient="index")
        summary[["mean", "ci_low", "ci_high"]] = summary[["mean", "ci_low", "ci_high"]].astype(float)
        rows.append(Row(name=r["name"], summary=summary, seeds=tuple(r["seeds"]), n_images=r["n_images"],
                        training_cost=r["training_cost"], provenance=r["provenance"]))
    return rows


__all__ = ["ATTACKABLE", "BASELINE", "Column", "ENSEMBLE", "LEADERBOARD_ATTRIBUTIONS", "LEADERBOARD_VERSION",
           "LeaderboardProtocol", "PRESETS", "Row", "WORST", "autoattack_correct", "columns", "condition",
           "evaluate", "merge", "place", "protocol", "ranks", "read", "summarise", "table", "write"]
