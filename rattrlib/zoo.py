"""The model zoo: one trained model per (dataset, method, scale, seed), trained once and then loaded from the
results cache (:func:`rattrlib.train.train_cached`; resumable, provenance-stamped).

>>> model, logs = get_model("fashion_mnist", "pgd_at", scale="cpu")      # trains on first use, then loads
>>> zoo_config("fashion_mnist", "pgd_at", "cpu")                          # the TrainConfig behind it

**Scales.** ``smoke``: seconds — 256 training images, one epoch, 2 attack steps; only checks that everything
runs. ``cpu``: what a 2-core CPU affords per chapter (shared/reference/cpu-performance.md), sizes in
:data:`CPU_BUDGETS`: every method but natural **fine-tunes the zoo's natural model** (``TrainConfig.init``;
``teacher_aligned`` starts from its teacher, as GALI's AT-start) — the papers train from scratch for 30–80
epochs, which a chapter cannot afford; e.g. Fashion-MNIST natural 3 epochs, PGD-AT 1 epoch of PGD-10 on 20k,
IG-NORM 1 epoch on 2k (3-step inner ascent, m = 5 / 10, batch 64); ResNet-20 for colour data. ``paper``: the papers' settings (networks, ε, steps, λ, batch
size, optimiser, training length converted to epochs), as far as rattr's :class:`~rattrlib.train.TrainConfig`
expresses them — it has no learning-rate schedule, so a paper's step schedule becomes its main constant rate
(stated per dataset in :data:`ZOO_DATASETS`).

**Threat models** (ℓ∞, [0, 1] scale; training and evaluation), per dataset family: MNIST ε = 0.3 (RAR/GALI
train with PGD-40, α = 0.01), Fashion-MNIST ε = 0.1 (PGD-20, α = 0.01), colour data ε = 8/255 (PGD-7,
α = 2/255; RAR/GALI GTSRB and Flower, ART CIFAR-10 with PGD-10), localisation data ε = 2/255 (ART's CUB).
Evaluation (:func:`eval_pgd`, RAR/GALI): PGD-40 with random start, α = 0.01 on MNIST / Fashion-MNIST
(2/255 colour, 0.5/255 localisation). GALI's appendix evaluates with 100 steps; RAR's configs use 40.

``teacher_aligned`` (GALI eq. 9) takes as teacher the ``pgd_at`` model of the same dataset, scale and seed and
starts from its weights ("AT-start", GALI Table 2): its config names the teacher's TrainConfig, so the cache key
identifies it; :func:`get_model` trains (or loads) the teacher first.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import pandas as pd
from torch import nn

from rattrlib.config import SCALES, check_choice
from rattrlib.results import ResultsCache
from rattrlib.train import TrainConfig, train_cached

#: every method name of the training issue, first-order then second-order
ZOO_METHODS = ("natural", "pgd_at", "trades", "sat", "pgd_sat", "trades_sat",
               "art", "ssr", "ig_norm", "ig_sum_norm", "teacher_aligned")
FIRST_ORDER_ATTACK = ("pgd_at", "trades", "pgd_sat", "trades_sat")
SAT_FAMILY = ("sat", "pgd_sat", "trades_sat")
IG_FAMILY = ("ig_norm", "ig_sum_norm", "teacher_aligned")


@dataclasses.dataclass(frozen=True)
class Threat:
    """An ℓ∞ threat model on the [0, 1] scale: ε; the papers' training PGD (α, steps); the cpu-scale training PGD
    (``cpu_alpha``, ``cpu_steps``); the evaluation PGD (``eval_alpha``, ``eval_steps``, random start)."""

    eps: float
    alpha: float
    steps: int
    cpu_alpha: float
    cpu_steps: int
    eval_alpha: float
    eval_steps: int = 40


THREATS = {
    # Madry / RAR / GALI MNIST: PGD-40, α = 0.01; cpu PGD-10 with α = 2.5ε/10 (Madry et al.'s rule)
    "mnist": Threat(0.3, 0.01, 40, 0.075, 10, 0.01),
    # RAR / GALI Fashion-MNIST: PGD-20, α = 0.01; cpu PGD-10, α = 2.5ε/10
    "fmnist": Threat(0.1, 0.01, 20, 0.025, 10, 0.01),
    # RAR / GALI GTSRB and Flower, Madry CIFAR-10: PGD-7, α = 2/255 (ART's CIFAR-10 baseline: PGD-10)
    "rgb": Threat(8 / 255, 2 / 255, 7, 2 / 255, 7, 2 / 255),
    # ART CUB WSOL: ε = 2/255, PGD-7 (α not stated: 0.5/255)
    "loc": Threat(2 / 255, 0.5 / 255, 7, 0.5 / 255, 7, 0.5 / 255),
}


@dataclasses.dataclass(frozen=True)
class ZooDataset:
    """What the zoo needs to know about a dataset.

    threat: key of :data:`THREATS`. budget: key of :data:`CPU_BUDGETS`. cpu_model / paper_model: names in
    :data:`rattrlib.models.MODELS`. paper: ``{"epochs", "batch_size", "lr", "optimiser"}`` plus per-method
    ``"epochs_<method>"`` overrides. paper_steps: training PGD steps at paper scale (None: the threat's).
    m_inner: IG points inside the ascent at paper scale. sat_source: weak-saliency source of the SAT family
    (None: the data has neither annotations nor a black background — SAT then needs teacher maps, given to
    :func:`rattrlib.train.train` directly). ig_lam: (IG-NORM λ, IG-SUM-NORM λ). ssr_scale: SSR's s.
    source: where the paper settings come from.
    """

    threat: str
    budget: str
    cpu_model: str
    paper_model: str
    paper: dict
    sat_source: Optional[str]
    ig_lam: tuple[float, float]
    ssr_scale: float
    m_inner: int = 10
    paper_steps: Optional[int] = None
    source: str = ""


def _steps_epochs(steps: int, batch: int, n: int) -> int:
    return max(1, round(steps * batch / n))


# RAR's MNIST / Fashion-MNIST configs: batch 50, Adam 1e-4, 25k natural / 100k steps of 60k images.
_RAR_MNIST = {"epochs": _steps_epochs(100_000, 50, 60_000), "epochs_natural": _steps_epochs(25_000, 50, 60_000),
              "batch_size": 50, "lr": 1e-4, "optimiser": "adam"}

ZOO_DATASETS: dict[str, ZooDataset] = {
    "mnist": ZooDataset(
        "mnist", "mnist_large", "mnist_cnn", "mnist_cnn",
        {**_RAR_MNIST, "epochs_teacher_aligned": _steps_epochs(90_000, 50, 60_000)}, "threshold", (1.0, 0.1), 10.0,
        source="RAR configs (MNIST); GALI appendix 10.3 for teacher_aligned (90k steps, batch 50, Adam 1e-4)"),
    "mnist10k": ZooDataset(
        "mnist", "mnist_small", "mnist_cnn", "mnist_cnn",
        {**_RAR_MNIST, "epochs_teacher_aligned": _steps_epochs(90_000, 50, 60_000)}, "threshold", (1.0, 0.1), 10.0,
        source="as mnist (epochs counted on 60k images, kept for the 8k split)"),
    "fashion_mnist": ZooDataset(
        "fmnist", "mnist_large", "mnist_cnn", "mnist_cnn",
        {**_RAR_MNIST, "epochs_teacher_aligned": _steps_epochs(100_000, 32, 60_000)}, "threshold", (1.0, 0.1),
        # SSR s = 0.3, measured (cpu preset, β_s = 0.3, 1 epoch on 10k from the natural model, whose mean λ_max
        # is ≈ 3.9 against CE ≈ 0.22): s = 10 collapsed to 44.8 % clean accuracy (CE 7.4); s = 1: 87.4 %, penalty
        # 0.95 ≈ 2× CE; s = 0.3: 89.6 %, penalty 0.27 ≈ CE 0.28, lowest λ_max; s = 0.1: 91.4 %, penalty 0.09
        # (2k test images; the SSR chapter re-measures this table)
        0.3, source="RAR configs (Fashion-MNIST); GALI appendix 10.2 (100k steps, batch 32, Adam 1e-4); "
                    "SSR s chosen so β_s·s·λ_max ≈ CE (SSR chapter)"),
    "cifar10": ZooDataset(
        "rgb", "rgb32", "resnet20", "wrn28_10", {"epochs": 100, "batch_size": 128, "lr": 0.01, "optimiser": "sgd"},
        None, (1.0, 1.0), 1e6, m_inner=5, paper_steps=10,
        source="ART §5 (WRN-28-10, PGD-10, SGD 0.1 stepped down at epochs 50/80 over ~100 epochs: constant "
               "0.01 here); SSR s = 1e6 (CIFAR-10, ResNet-20)"),
    "svhn": ZooDataset(
        "rgb", "rgb32", "resnet20", "wrn40_2", {"epochs": 100, "batch_size": 128, "lr": 0.01, "optimiser": "sgd"},
        None, (1.0, 1.0), 1e6, m_inner=5, paper_steps=10, source="ART §5 (WRN-40-2, ε = 8/255, PGD-10)"),
    "gtsrb": ZooDataset(
        "rgb", "rgb32", "resnet20", "rar_resnet",
        {"epochs": _steps_epochs(70_000, 64, 39_209), "batch_size": 64, "lr": 0.01, "optimiser": "sgd"},
        None, (1.0, 1.0), 1e6, m_inner=5,
        source="RAR GTSRB configs (70k steps, batch 64, momentum SGD 0.01 after a 500-step 0.001 warm-up, "
               "λ = 1, m = 50 / inner 5); GALI appendix 10.4"),
    "flowers102": ZooDataset(
        "rgb", "rgb64", "resnet20", "rar_resnet",
        {"epochs": _steps_epochs(70_000, 16, 2_040), "batch_size": 16, "lr": 0.01, "optimiser": "sgd"},
        "mask", (0.1, 0.1), 1e6, m_inner=5,
        source="RAR Flower configs (70k steps, batch 16, SGD 0.01, λ = 0.1; RAR used Flower-17 at 128 px); "
               "SAT uses the segmentation masks"),
    "tiny_imagenet": ZooDataset(
        "rgb", "rgb64", "resnet20", "resnet50", {"epochs": 100, "batch_size": 64, "lr": 1e-3, "optimiser": "adam"},
        "box", (0.1, 0.1), 1e6, m_inner=5,
        source="SAT code (Adam 1e-3, batch 64, 100 epochs, boxes as weak saliency); ResNet-50 is rattr's "
               "choice (SAT used its own ResNets at 32 px)"),
    "cub200": ZooDataset(
        "loc", "rgb64", "resnet20", "vgg_gap", {"epochs": 100, "batch_size": 32, "lr": 0.01, "optimiser": "sgd"},
        "box", (0.1, 0.1), 1e6, m_inner=5,
        source="ART §4.2 (VGG-GAP, ε = 2/255, PGD-7; ART fine-tuned ImageNet weights, here from scratch; "
               "optimiser settings rattr's)"),
    "fmnist_scenes": ZooDataset(
        "loc", "rgb64", "resnet20", "rar_resnet", {"epochs": 30, "batch_size": 64, "lr": 1e-3, "optimiser": "adam"},
        "mask", (0.1, 0.1), 1e6, m_inner=5,
        source="rattr's offline localisation stand-in: no paper; settings rattr's (ε = 2/255 as ART's CUB)"),
    "fmnist_scenes32": ZooDataset(
        "loc", "scenes32", "resnet20", "rar_resnet", {"epochs": 30, "batch_size": 64, "lr": 1e-3, "optimiser": "adam"},
        "mask", (0.1, 0.1), 1e6, m_inner=5,
        source="the composite set at 32 px, the cpu-scale localisation data (a quarter of the 64 px compute); "
               "settings as fmnist_scenes"),
}

#: cpu scale: (epochs, training images or None for all) per method, per dataset size class
_FIRST = ("natural", "pgd_at", "trades", "sat", "pgd_sat", "trades_sat")
CPU_BUDGETS: dict[str, dict[str, tuple[int, Optional[int]]]] = {
    # 60k MNIST-size images, MNIST CNN (benchmarks/results/train_methods.json: natural ≈ 1900 img/s, PGD-10
    # ≈ 210, ART ≈ 105, SSR ≈ 145, IG-NORM / GALI ≈ 25); sized so a chapter trains its models in minutes
    "mnist_large": {"natural": (3, None), "pgd_at": (1, 20_000), "trades": (1, 20_000), "sat": (2, None),
                    "pgd_sat": (1, 20_000), "trades_sat": (1, 20_000), "art": (1, 10_000), "ssr": (1, 10_000),
                    "ig_norm": (1, 2_000), "ig_sum_norm": (1, 2_000), "teacher_aligned": (1, 2_000)},
    # 8k MNIST-size images (mnist10k): more epochs for about the same minutes
    "mnist_small": {"natural": (8, None), "pgd_at": (3, None), "trades": (3, None), "sat": (4, None),
                    "pgd_sat": (3, None), "trades_sat": (3, None), "art": (1, None), "ssr": (1, None),
                    "ig_norm": (1, 2_000), "ig_sum_norm": (1, 2_000), "teacher_aligned": (1, 2_000)},
    # 32×32×3, ResNet-20 (natural 747 img/s, PGD-7 136, ART 36, IG-NORM k3 9)
    "rgb32": {"natural": (8, 50_000), "pgd_at": (2, 50_000), "trades": (2, 50_000), "sat": (8, 50_000),
              "pgd_sat": (2, 50_000), "trades_sat": (2, 50_000), "art": (1, 10_000), "ssr": (1, 5_000),
              "ig_norm": (1, 3_000), "ig_sum_norm": (1, 3_000), "teacher_aligned": (1, 3_000)},
    # 64×64×3, ResNet-20: about 4× the cost per image of 32×32
    "rgb64": {"natural": (10, 10_000), "pgd_at": (2, 10_000), "trades": (2, 10_000), "sat": (10, 10_000),
              "pgd_sat": (2, 10_000), "trades_sat": (2, 10_000), "art": (1, 3_000), "ssr": (1, 2_000),
              "ig_norm": (1, 1_000), "ig_sum_norm": (1, 1_000), "teacher_aligned": (1, 1_000)},
    # the 10k-scene 32×32×3 set, ResNet-20: natural from scratch, the rest fine-tune it (SAT two epochs, TRADES /
    # TRADES-SAT one: the SAT chapter trains 23 models within its 30-minute cpu budget on 2 cores). ART gets
    # PGD-AT's budget (2 epochs on all scenes): ART Table 2 compares the two, so neither may see more images
    "scenes32": {"natural": (10, None), "pgd_at": (2, None), "trades": (1, None), "sat": (2, None),
                 "pgd_sat": (2, None), "trades_sat": (1, None), "art": (2, None), "ssr": (1, 5_000),
                 "ig_norm": (1, 1_000), "ig_sum_norm": (1, 1_000), "teacher_aligned": (1, 1_000)},
}

#: cpu scale: batch size of the second-order IG trainers (their subsets are small; more, smaller steps)
CPU_IG_BATCH = 64

#: cpu scale: fraction of training over which PGD-AT and IG-NORM / IG-SUM-NORM ramp ε up (per threat). MNIST's
#: ε = 0.3 trained for a few hundred steps from a natural model collapses to chance accuracy without it.
CPU_EPS_WARMUP = {"mnist": 0.5}

SMOKE = {"epochs": 1, "n_train": 256, "batch_size": 64, "lr": 1e-3, "optimiser": "adam"}


def _check(dataset: str, method: str, scale: str) -> ZooDataset:
    check_choice("scale", scale, SCALES)
    check_choice("method", method, ZOO_METHODS)
    check_choice("dataset", dataset, sorted(ZOO_DATASETS))
    return ZOO_DATASETS[dataset]


def eval_pgd(dataset: str) -> dict:
    """The evaluation PGD of ``dataset`` (RAR/GALI): ``{"eps", "alpha", "steps", "random_start"}`` for
    :class:`rattrlib.attacks.PGD` — MNIST ε = 0.3, Fashion-MNIST 0.1, α = 0.01, 40 steps, random start."""
    check_choice("dataset", dataset, sorted(ZOO_DATASETS))
    threat = THREATS[ZOO_DATASETS[dataset].threat]
    return {"eps": threat.eps, "alpha": threat.eval_alpha, "steps": threat.eval_steps, "random_start": True}


def _attack(threat: Threat, scale: str, paper_steps: int, *, second_order: bool = False) -> dict:
    """ε, α, steps of a training attack. paper: the paper's; cpu: the threat's cpu PGD, or for the second-order
    (IG) trainers a 3-step ascent with α = 2.5ε/3 (cpu-performance.md's "IG-NORM k3"); smoke: 2 steps of ε/2."""
    if scale == "smoke":
        return {"eps": threat.eps, "alpha": threat.eps / 2, "steps": 2}
    if scale == "paper":
        return {"eps": threat.eps, "alpha": threat.alpha, "steps": paper_steps}
    if second_order:
        return {"eps": threat.eps, "alpha": 2.5 * threat.eps / 3, "steps": 3}
    return {"eps": threat.eps, "alpha": threat.cpu_alpha, "steps": threat.cpu_steps}


def _hyperparameters(info: ZooDataset, dataset: str, method: str, scale: str, seed: int) -> dict:
    threat = THREATS[info.threat]
    paper_steps = info.paper_steps or threat.steps
    if method == "natural":
        return {}
    warmup = CPU_EPS_WARMUP.get(info.threat, 0.0) if scale == "cpu" else 0.0
    if method in FIRST_ORDER_ATTACK or method in SAT_FAMILY:
        hp = _attack(threat, scale, paper_steps)
        if method == "pgd_at" and warmup:
            hp["eps_warmup"] = warmup
        if method in ("trades", "trades_sat"):
            hp["beta_trades"] = 6.0
        if method in SAT_FAMILY:
            if info.sat_source is None:
                raise ValueError(f"no zoo preset for {method!r} on {dataset!r}: the dataset has no boxes, masks "
                                 "or black background to give a weak saliency; train SAT with "
                                 "saliency_source='maps' and a teacher's maps via rattrlib.train.train")
            hp["saliency_source"] = info.sat_source
            if method == "sat":
                hp.pop("alpha"), hp.pop("steps")
        return hp
    if method == "art":
        steps = 1 if scale == "smoke" else 3
        return {"eps": threat.eps, "alpha": 0.625 * threat.eps if steps == 3 else threat.eps, "steps": steps,
                "beta": 50.0, "lam": 0.5}
    if method == "ssr":
        return {"beta_s": 0.3, "scale_s": info.ssr_scale}
    # IG family: RAR (and GALI) inner ascent; cpu: 3 steps, m = 5 inside / 10 outside (cpu-performance.md)
    hp = _attack(threat, scale, paper_steps, second_order=True)
    hp["m_inner"], hp["m_outer"] = {"smoke": (2, 3), "cpu": (5, 10), "paper": (info.m_inner, 50)}[scale]
    hp["beta"] = 50.0
    if method == "ig_norm":
        hp["lam"] = info.ig_lam[0]
    elif method == "ig_sum_norm":
        hp["lam"] = info.ig_lam[1]
    else:
        teacher = zoo_config(dataset, "pgd_at", scale)
        hp.update(lam=1e-3, lam_ig=1.0, start="teacher", teacher_seed=seed,
                  teacher=dataclasses.asdict(teacher))
    if method != "teacher_aligned" and warmup:
        hp["eps_warmup"] = warmup
    return hp


def zoo_config(dataset: str, method: str, scale: str = "cpu", *, seed: int = 0,
               overrides: Optional[dict] = None) -> TrainConfig:
    """The :class:`~rattrlib.train.TrainConfig` of the zoo model (dataset, method, scale): network, epochs,
    batch size, optimiser and learning rate, training subset, and the method's hyperparameters (presets in
    :data:`ZOO_DATASETS`, :data:`THREATS`, :data:`CPU_BUDGETS`, :data:`SMOKE`). ``seed`` matters only for
    ``teacher_aligned`` (its teacher is the ``pgd_at`` model of the same seed). Raises ``ValueError`` listing
    the valid values for an unknown dataset, method or scale, or where no preset makes sense (the SAT family
    on data without any weak saliency). ``overrides`` replace preset hyperparameters of the method (a variant
    of a zoo model, e.g. GALI's λ sweep ``{"lam": 1e-2}`` or RAR-start ``{"start": <config dict>}``); an
    unknown name is rejected by the method's constructor."""
    info = _check(dataset, method, scale)
    hp = {**_hyperparameters(info, dataset, method, scale, seed), **(overrides or {})}
    if scale == "smoke":
        train = dict(SMOKE)
        model = info.cpu_model
    elif scale == "cpu":
        epochs, n_train = CPU_BUDGETS[info.budget][method]
        lr = 1e-4 if method == "teacher_aligned" else 1e-3  # AT-start: fine-tune, as GALI's 1e-4
        batch = CPU_IG_BATCH if method in IG_FAMILY else 128
        train = {"epochs": epochs, "n_train": n_train, "batch_size": batch, "lr": lr, "optimiser": "adam"}
        if method not in ("natural", "teacher_aligned"):  # fine-tune the natural model (teacher_aligned: its start)
            train["init"] = dataclasses.asdict(zoo_config(dataset, "natural", scale))
        model = info.cpu_model
    else:
        paper = info.paper
        train = {"epochs": paper.get(f"epochs_{method}", paper["epochs"]), "n_train": None,
                 "batch_size": paper["batch_size"], "lr": paper["lr"], "optimiser": paper["optimiser"]}
        model = info.paper_model
    return TrainConfig(dataset=dataset, model=model, method=method, hyperparameters=hp, **train)


def get_model(dataset: str, method: str, scale: str = "cpu", seed: int = 0, device: str = "auto",
              progress: bool = True, cache: Optional[ResultsCache] = None,
              overrides: Optional[dict] = None) -> tuple[nn.Module, list[dict]]:
    """The zoo model ``(dataset, method, scale, seed)`` in eval mode on ``device``, and its per-epoch training
    logs: loaded from the results cache (``$RATTR_HOME/results``, or ``cache``) when it was trained before,
    else trained now with :func:`zoo_config`'s settings (resumable after an interruption) and stored. For
    ``teacher_aligned`` the ``pgd_at`` teacher of the same dataset/scale/seed is trained or loaded first (into
    ``cache``); :class:`~rattrlib.train.gali.TeacherAligned` then resolves it from its config in the default
    cache (``$RATTR_HOME/results``), so with a custom ``cache`` the teacher may be trained a second time there."""
    config = zoo_config(dataset, method, scale, seed=seed, overrides=overrides)
    if method == "teacher_aligned":
        get_model(dataset, "pgd_at", scale, seed=seed, device=device, progress=progress, cache=cache)
    return train_cached(config, seed=seed, device=device, cache=cache, progress=progress)


def zoo_table(scale: str = "cpu", datasets=None, methods=None) -> pd.DataFrame:
    """The presets as a table, one row per (dataset, method): model, epochs, n_train, init (the method whose
    model it fine-tunes), batch size, optimiser,
    lr and the method's hyperparameters (teacher configs abbreviated). Pairs without a preset are skipped."""
    check_choice("scale", scale, SCALES)
    rows = []
    for dataset in datasets or ZOO_DATASETS:
        for method in methods or ZOO_METHODS:
            try:
                c = zoo_config(dataset, method, scale)
            except ValueError:
                continue
            hp = dict(c.hyperparameters)
            if "teacher" in hp:
                hp["teacher"] = f"pgd_at@{scale}"
            rows.append({"dataset": dataset, "method": method, "model": c.model, "epochs": c.epochs,
                         "n_train": c.n_train or "all", "init": c.init["method"] if c.init else "", "batch_size": c.batch_size, "optimiser": c.optimiser, "lr": c.lr,
                         "hyperparameters": ", ".join(f"{k}={_fmt(v)}" for k, v in hp.items())})
    return pd.DataFrame(rows)


def _fmt(v) -> str:
    """Floats that are small multiples of 1/510 as "k/255" (8/255, 0.5/255), others with 4 significant digits."""
    if isinstance(v, float):
        k = v * 255
        if 0 < k <= 16 and abs(2 * k - round(2 * k)) < 1e-6:
            return f"{round(2 * k) / 2:g}/255"
        return f"{v:.4g}"
    return str(v)


__all__ = ["CPU_BUDGETS", "SMOKE", "THREATS", "Threat", "ZOO_DATASETS", "ZOO_METHODS", "ZooDataset", "eval_pgd",
           "get_model", "zoo_config", "zoo_table"]
