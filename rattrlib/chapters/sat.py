"""Chapter 06: SAT — Mangla, Singh & Balasubramanian, "On Saliency Maps and Adversarial Robustness" (ECML-PKDD
2020, poster; text in /work/shared/papers/SAT-mangla-saliency-adversarial-training-poster.txt).

The chapter's settings (:class:`SATSettings`), the poster's claims (:data:`CLAIMS`), the models of its two tables
(robustness with weak saliency from boxes / masks; SAT driven by teacher maps) trained per seed through the zoo,
their per-image PGD correctness (cached), the tables (paper | ours, mean ± seed spread), the measured training
time (ratios, no verdict: they are fixed by construction), the figures and the verdicts of the claims engine.

>>> settings = SATSettings.resolve("smoke")
>>> results = evaluate(settings)
>>> results.table("mask"); claims_table(verdicts(results))
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from rattrlib.chapters._common import budget_sentence, mean_spread, publish_verdicts
from rattrlib.claims import Claim, Measurements, check_claims, judge_all
from rattrlib.config import resolve_device, seed_everything
from rattrlib.data import load_dataset
from rattrlib.evaluation import adversarial_accuracy_config
from rattrlib.published import SAT_TIME_CLAIMS, sat_robustness, sat_saliency
from rattrlib.results import ResultsCache
from rattrlib.settings import ChapterSettings, choice, int_check, real_check, sequence_of, setting
from rattrlib.train import TrainConfig, train_cached
from rattrlib.train.cost import training_cost
from rattrlib.train.sat import COMBINES, sat_perturbation, saliency_from_maps, teacher_saliency_maps, weak_saliency
from rattrlib.zoo import THREATS, ZOO_DATASETS, zoo_config

#: zoo datasets with annotations, and the weak-saliency sources each has
SAT_DATASETS = {"fmnist_scenes32": ("box", "mask"), "fmnist_scenes": ("box", "mask"), "tiny_imagenet": ("box",),
                "cub200": ("box",), "flowers102": ("mask",)}
#: the poster's table for each annotation (boxes: Tiny-ImageNet, masks: Flower-17)
PAPER_SET = {"box": "tiny_imagenet", "mask": "flower17"}
PAPER_NAMES = {"box": "Tiny-Imagenet", "mask": "Flower-17"}
TEACHER_NAMES = {"natural": "Std.", "pgd_at": "Adv."}
MAP_NAMES = {"guided_backprop": "GBP", "smoothgrad": "S.Grad", "guided_gradcam_pp": "G.G.CAM++",
             "integrated_gradients": "I.Grad"}
#: the families of the robustness table: plain row, its "+ Uniform-Noise" row and its SAT row
FAMILIES = {"natural": ("Original", "Original + Uniform-Noise", "SAT"),
            "pgd": ("PGD", "PGD + Uniform-Noise", "PGD-SAT"),
            "trades": ("TRADES", "TRADES + Uniform-Noise", "TRADES-SAT")}
#: the condition every claim is judged under: per image, the fraction of the table's ε at which PGD fails
UNDER = "PGD, mean over the table's ε"
#: the teacher-map table's dataset label in the measurements (the robustness tables use the source: box, mask)
MAPS = "teacher maps"
#: α_t = 1 throughout: the SAT perturbation is pure random-sign noise (the poster's "+ Uniform-Noise" rows)
NOISE = {"schedule": "constant", "alpha_t": 1.0}

#: the poster gives no epochs; the authors' code trains 100 epochs from scratch (protocols.md, SAT). Images seen
#: per table: Tiny-ImageNet's 100k training images, Flower-17's 1360 images (its split is not given: all of them,
#: an upper bound), CIFAR-100's 50k.
PAPER_EPOCHS = 100
PAPER_IMAGES = {"box": PAPER_EPOCHS * 100_000, "mask": PAPER_EPOCHS * 1_360, MAPS: PAPER_EPOCHS * 50_000}


def _eps(name: str, value) -> float:
    return real_check(0, 16, low_open=True)(f"{name} (in /255)", value)


def _sources(name: str, value) -> tuple:
    return sequence_of(choice("box", "mask"))(name, value)


#: explicit parameter values for what None cannot say (None always means the scale's preset): every test image,
#: the zoo's own training subset / training attack, a map quantile of 1 − the objects' mean area
ALL, ZOO, AREA = "all", "zoo", "area"


def _or(word: str, check):
    """``check``, or the string ``word`` itself."""
    return lambda name, value: word if value == word else check(name, value)


def eval_images(settings: "SATSettings") -> Optional[int]:
    """The test images per PGD evaluation as the data subset takes it (None: all)."""
    return None if settings.n_eval == ALL else settings.n_eval


@dataclasses.dataclass(frozen=True)
class SATSettings(ChapterSettings):
    """The SAT chapter's parameters (None = the scale's preset in :attr:`PRESETS`)."""

    dataset: str = setting(choice(*SAT_DATASETS), "a zoo dataset with boxes and/or masks")
    sources: tuple = setting(_sources, "weak saliency of the robustness table: box, mask")
    families: tuple = setting(sequence_of(choice(*FAMILIES)), "robustness-table families: natural, pgd, trades")
    eps_table: tuple = setting(sequence_of(_eps), "PGD ε (/255) of the robustness table (poster: 1, 2, 3)")
    eps_saliency: tuple = setting(sequence_of(_eps), "PGD ε (/255) of the teacher-map table (poster: 1..4)")
    pgd_steps: int = setting(int_check(1), "evaluation PGD steps (poster: 5-step PGD)")
    pgd_alpha: float = setting(_eps, "evaluation PGD step (/255; authors' code 2/255, random start)")
    train_steps: int | str = setting(_or(ZOO, int_check(1)), "PGD / TRADES steps in training, or \"zoo\" (the zoo's)")
    train_alpha: float | str = setting(_or(ZOO, _eps), "their step (/255), or \"zoo\" (the zoo's)")
    combine: str = setting(choice(*COMBINES), "PGD-SAT / TRADES-SAT: alternate (authors' code) | start")
    n_train: int | str = setting(_or(ZOO, int_check(2)), "training images of every fine-tuned row, or \"zoo\" (the "
                                                          "zoo's subset)")
    n_eval: int | str = setting(_or(ALL, int_check(2)), "test images per PGD evaluation, or \"all\"")
    teachers: tuple = setting(sequence_of(choice(*TEACHER_NAMES)), "teachers of the maps: natural, pgd_at")
    attributions: tuple = setting(sequence_of(choice(*MAP_NAMES)), "teacher attributions of the maps table")
    sg_samples: int = setting(int_check(1), "SmoothGrad samples of the teacher maps")
    sg_sigma: float = setting(real_check(0, 1, low_open=True), "SmoothGrad noise σ ([0, 1] scale)")
    ig_steps: int = setting(int_check(1), "IG steps of the teacher maps")
    map_quantile: float | str = setting(_or(AREA, real_check(0, 0.99, low_open=True)),
                                        "a map counts +1 above this per-image quantile, or \"area\" (1 − the "
                                        "objects' mean area)")
    cost_batches: int = setting(int_check(1), "timed batches per method in the training-time table")
    fig_alphas: tuple = setting(sequence_of(real_check(0, 1)), "α_t values of the perturbation figure")
    n_show: int = setting(int_check(1), "images in the figures")

    PRESETS = {
        "smoke": {"seeds": (0, 1), "dataset": "fmnist_scenes32", "sources": ("box", "mask"),
                  "families": ("natural", "pgd"), "eps_table": (1, 2, 3), "eps_saliency": (1, 2, 3, 4),
                  "pgd_steps": 2, "pgd_alpha": 2.0, "train_steps": ZOO, "train_alpha": ZOO, "combine": "alternate",
                  "n_train": ZOO, "n_eval": 32, "teachers": ("natural", "pgd_at"),
                  "attributions": ("smoothgrad",), "sg_samples": 2, "sg_sigma": 0.15,
                  "ig_steps": 2, "map_quantile": AREA, "cost_batches": 1, "fig_alphas": (1.0, 0.5, 0.0), "n_show": 2},
        "cpu": {"seeds": (0, 1, 2), "dataset": "fmnist_scenes32", "sources": ("mask",),
                "families": ("natural", "pgd"), "eps_table": (1, 2, 3), "eps_saliency": (1, 2, 3, 4),
                "pgd_steps": 5, "pgd_alpha": 2.0, "train_steps": 3, "train_alpha": 1.0, "combine": "alternate",
                "n_train": 2000, "n_eval": 200, "teachers": ("natural", "pgd_at"), "attributions": ("smoothgrad",),
                "sg_samples": 4, "sg_sigma": 0.15, "ig_steps": 8, "map_quantile": AREA, "cost_batches": 4,
                "fig_alphas": (1.0, 0.5, 0.0), "n_show": 3},
        "paper": {"seeds": (0, 1, 2), "dataset": "fmnist_scenes32", "sources": ("box", "mask"),
                  "families": ("natural", "pgd", "trades"), "eps_table": (1, 2, 3), "eps_saliency": (1, 2, 3, 4),
                  "pgd_steps": 5, "pgd_alpha": 2.0, "train_steps": ZOO, "train_alpha": ZOO, "combine": "alternate",
                  "n_train": ZOO, "n_eval": ALL, "teachers": ("natural", "pgd_at"),
                  "attributions": tuple(MAP_NAMES), "sg_samples": 50, "sg_sigma": 0.15, "ig_steps": 50,
                  "map_quantile": AREA, "cost_batches": 20, "fig_alphas": (1.0, 0.5, 0.0), "n_show": 3},
    }

    def __post_init__(self):
        super().__post_init__()
        for i, source in enumerate(self.sources):
            if source not in SAT_DATASETS[self.dataset]:
                raise ValueError(f"sources[{i}]={source!r} is not valid for dataset {self.dataset!r}; choose from "
                                 f"{SAT_DATASETS[self.dataset]}")
        if (self.train_steps == ZOO) != (self.train_alpha == ZOO):
            raise ValueError(f"give train_steps and train_alpha together (got {self.train_steps!r} and "
                             f"{self.train_alpha!r})")
        if "natural" not in self.families:
            raise ValueError(f"families={self.families!r} must include 'natural' (Original, + Uniform-Noise, SAT)")
        if "pgd_at" in self.teachers and "pgd" not in self.families:
            raise ValueError("teachers include 'pgd_at' (the robustness table's PGD model): add 'pgd' to families")

    @property
    def source(self) -> str:
        """The source of the figures and the training-time table: masks where the dataset has them."""
        return self.sources[-1]

    @property
    def eps(self) -> float:
        return THREATS[ZOO_DATASETS[self.dataset].threat].eps

    def pgd(self, eps: float) -> dict:
        """The evaluation PGD at ``eps`` (/255): the poster's 5-step PGD, step ``pgd_alpha``, random start."""
        return {"eps": eps / 255, "alpha": self.pgd_alpha / 255, "steps": self.pgd_steps, "random_start": True}

    def map_kwargs(self, attribution: str) -> dict:
        return {"guided_backprop": {}, "guided_gradcam_pp": {"internal_batch_size": 100},
                "smoothgrad": {"n_samples": self.sg_samples, "sigma": self.sg_sigma, "internal_batch_size": 400},
                "integrated_gradients": {"n_steps": self.ig_steps, "internal_batch_size": 400}}[attribution]


# ----------------------------------------------------------------------------------------------------------------
# the claims, fixed before any run
# ----------------------------------------------------------------------------------------------------------------
def _numbers(table: pd.DataFrame, row: str) -> str:
    return " / ".join(f"{v:g}" for v in table.loc[row])


def _robustness_claims(source: str) -> list:
    paper = sat_robustness(PAPER_SET[source])
    where = f"Robustness table ({PAPER_NAMES[source]})"
    claims = []
    for family, (plain, noise, sat) in FAMILIES.items():
        says_plain = (SAT_TIME_CLAIMS["sat_vs_natural"] if family == "natural"
                      else SAT_TIME_CLAIMS["adversarial_sat_faster"])
        claims.append(Claim(
            id=f"sat.{source}.{family}.sat_vs_plain", paper="SAT", where=where, metric="accuracy", a=sat, b=plain,
            under=UNDER, dataset=source, margin=0.0,
            says=says_plain,
            margin_reason=f"'increase in robustness' / 'superior performance': the paper gives no size: judged as a "
                          f"direction only (0 points); poster's table, ε = 1 / 2 / 3 /255: {sat} "
                          f"{_numbers(paper, sat)} vs {plain} {_numbers(paper, plain)}"))
        claims.append(Claim(
            id=f"sat.{source}.{family}.sat_vs_noise", paper="SAT", where=where, metric="accuracy", a=sat, b=noise,
            under=UNDER, dataset=source, margin=0.0,
            says="Exploit bounding boxes or segmentation masks as weak saliency to efficiently improve model's "
                 "robustness",
            margin_reason=f"the table orders SAT above the same training with random-sign noise and gives no size: "
                          f"judged as a direction only (0 points); poster's table: {sat} {_numbers(paper, sat)} vs "
                          f"{noise} {_numbers(paper, noise)}"))
    return claims


def _saliency_claims() -> list:
    paper = sat_saliency("cifar100")
    where = "CIFAR-100 table"
    claims = [Claim(
        id=f"sat.maps.{attribution}.adv_vs_std", paper="SAT", where=where, metric="accuracy",
        a=f"Adv. — {name}", b=f"Std. — {name}", under=UNDER, dataset=MAPS, margin=0.0,
        says="Better explanations improves performance of our trained models.",
        margin_reason=f"'improves': the paper gives no size: judged as a direction only (0 points); every attribution "
                      f"judged on its own pair; poster's table, ε = 1..4 /255: Adv. — {name} "
                      f"{_numbers(paper, f'Adv. — {name}')} vs Std. — {name} {_numbers(paper, f'Std. — {name}')}")
        for attribution, name in MAP_NAMES.items()]
    claims.append(Claim(
        id="sat.maps.adv_smoothgrad_vs_noise", paper="SAT", where=where, metric="accuracy", a="Adv. — S.Grad",
        b="Original + Uniform-Noise", under=UNDER, dataset=MAPS, margin=0.0,
        says="Show that the improvement becomes more pronounced when a better saliency map is used",
        margin_reason=f"one teacher-map row fixed in advance (the poster's best, Adv. — S.Grad), never the best of "
                      f"ours; the paper gives no size: judged as a direction only (0 points); poster's table: "
                      f"Adv. — S.Grad {_numbers(paper, 'Adv. — S.Grad')} vs Original + Uniform-Noise "
                      f"{_numbers(paper, 'Original + Uniform-Noise')}"))
    return claims


#: every claim of the chapter (judged where its rows were measured)
CLAIMS = check_claims([*_robustness_claims("box"), *_robustness_claims("mask"), *_saliency_claims()])


# ----------------------------------------------------------------------------------------------------------------
# the models
# ----------------------------------------------------------------------------------------------------------------
def natural_like(config: TrainConfig) -> TrainConfig:
    """Natural training with another run's budget and start: the poster's "Original" at SAT's epochs (the zoo's
    natural model has had fewer, and would flatter the SAT rows)."""
    return dataclasses.replace(config, method="natural", hyperparameters={})


def on_subset(settings: SATSettings, config: TrainConfig) -> TrainConfig:
    """``config`` trained on ``settings.n_train`` images ("zoo": the zoo's subset)."""
    return config if settings.n_train == ZOO else dataclasses.replace(config, n_train=settings.n_train)


def _zoo(settings: SATSettings, method: str, seed: int, overrides: Optional[dict] = None) -> TrainConfig:
    return on_subset(settings, zoo_config(settings.dataset, method, settings.scale, seed=seed, overrides=overrides))


def robustness_configs(settings: SATSettings, source: str, seed: int) -> dict:
    """The rows of the poster's robustness table (``settings.families``) as TrainConfigs, weak saliency from
    ``source``: Original, + Uniform-Noise (α_t = 1: random-sign noise), SAT, PGD, PGD + Uniform-Noise, PGD-SAT,
    TRADES, TRADES + Uniform-Noise, TRADES-SAT."""
    attack = {} if settings.train_steps == ZOO else {"steps": settings.train_steps,
                                                      "alpha": settings.train_alpha / 255}
    both = {"combine": settings.combine, **attack}
    specs = {"natural": {"Original + Uniform-Noise": ("sat", NOISE),
                         "SAT": ("sat", {"saliency_source": source})},
             "pgd": {"PGD": ("pgd_at", attack), "PGD + Uniform-Noise": ("pgd_sat", {**both, **NOISE}),
                     "PGD-SAT": ("pgd_sat", {**both, "saliency_source": source})},
             "trades": {"TRADES": ("trades", attack), "TRADES + Uniform-Noise": ("trades_sat", {**both, **NOISE}),
                        "TRADES-SAT": ("trades_sat", {**both, "saliency_source": source})}}
    configs = {}
    for family in settings.families:
        for row, (method, overrides) in specs[family].items():
            configs[row] = _zoo(settings, method, seed, overrides)
    configs = {"Original": natural_like(configs["SAT"]), **configs}
    return {row: configs[row] for family in settings.families for row in FAMILIES[family]}


def map_quantile(settings: SATSettings) -> float:
    """The per-image quantile above which a teacher map counts +1: ``settings.map_quantile``, else 1 − the
    objects' mean area (masks, else boxes), so the maps mark as many pixels as the annotations do."""
    if settings.map_quantile != AREA:
        return settings.map_quantile
    data = load_dataset(settings.dataset, "train")
    area = weak_saliency(data, SAT_DATASETS[settings.dataset][-1]).eq(1).float().mean().item()
    return round(1 - area, 2)


def teacher_configs(settings: SATSettings, seed: int) -> dict:
    """The teachers of the maps: the zoo's natural model ("Std.") and the robustness table's PGD model ("Adv.")."""
    teachers = {"natural": zoo_config(settings.dataset, "natural", settings.scale, seed=seed)}
    if "pgd" in settings.families:
        teachers["pgd_at"] = robustness_configs(settings, settings.source, seed)["PGD"]
    return {t: teachers[t] for t in settings.teachers}


def saliency_configs(settings: SATSettings, seed: int) -> dict:
    """The rows of the poster's CIFAR-100 table: Original and + Uniform-Noise (the robustness table's models), SAT
    with the dataset's masks (not in the poster), and SAT driven by each teacher's maps, on the same subset."""
    base = robustness_configs(settings, settings.source, seed)
    configs = {"Original": base["Original"], "Original + Uniform-Noise": base["Original + Uniform-Noise"]}
    if "mask" in SAT_DATASETS[settings.dataset]:
        configs["SAT — mask"] = _zoo(settings, "sat", seed, {"saliency_source": "mask"})
    quantile = map_quantile(settings)
    for teacher, config in teacher_configs(settings, seed).items():
        for attribution in settings.attributions:
            spec = {"config": dataclasses.asdict(config), "seed": seed, "attribution": attribution,
                    "kwargs": settings.map_kwargs(attribution)}
            configs[f"{TEACHER_NAMES[teacher]} — {MAP_NAMES[attribution]}"] = _zoo(
                settings, "sat", seed, {"saliency_source": "maps", "saliency_teacher": spec, "quantile": quantile})
    return configs


def pgd_correct(settings: SATSettings, config: TrainConfig, eps: float, seed: int, *,
                cache: Optional[ResultsCache] = None, progress: bool = False) -> np.ndarray:
    """Per test image (bool, ``settings.n_eval`` stratified images drawn with ``seed``): is the model of
    ``config`` still right under the evaluation PGD at ``eps`` (/255)? Trains or loads the model on a cache miss;
    cached by :func:`rattrlib.evaluation.adversarial_accuracy_config` (config, attack, n, seed)."""
    return adversarial_accuracy_config(config, "pgd", settings.pgd(eps), n=eval_images(settings), seed=seed,
                                       device=settings.device, cache=cache, progress=progress, per_image=True)


# ----------------------------------------------------------------------------------------------------------------
# evaluation, tables, verdicts
# ----------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class SATResults:
    """Per-image measurements of every table (``measurements``: accuracy under :data:`UNDER`, dataset label = the
    table: box, mask or :data:`MAPS`), the per-ε accuracies per seed (``per_eps``: label, row, eps, seed,
    accuracy as a fraction) and the seed-0 configs of each table (for the budget sentence)."""

    settings: SATSettings
    measurements: Measurements
    per_eps: pd.DataFrame
    configs: dict

    def table(self, label: str) -> pd.DataFrame:
        """Paper | ours per ε (accuracy %, ours = mean ± std over seeds) for the table ``label``."""
        paper = sat_saliency("cifar100") if label == MAPS else sat_robustness(PAPER_SET[label])
        frame = self.per_eps[self.per_eps["label"] == label]
        stats = frame.groupby(["row", "eps"], sort=False)["accuracy"].agg(["mean", "std", "count"])
        stats = stats.rename(columns={"std": "seed_std", "count": "n_seeds"}).fillna({"seed_std": 0.0})
        rows = list(dict.fromkeys(frame["row"]))
        columns = {}
        for eps in dict.fromkeys(frame["eps"]):
            column = f"ε={eps:g}/255"
            theirs = paper[f"eps_{eps:g}"] if f"eps_{eps:g}" in paper else pd.Series(dtype=float)
            columns[(column, "paper")] = [f"{theirs[r]:.2f}" if r in theirs.index else "–" for r in rows]
            columns[(column, "ours")] = [mean_spread("accuracy", stats.loc[(r, eps)]) for r in rows]
        return pd.DataFrame(columns, index=pd.Index(rows, name="row"))

    def budget(self, label: str) -> str:
        """The training-budget sentence of the table ``label`` (its SAT-family rows, as a fraction of the paper's
        images seen)."""
        shown = {row: c for row, c in self.configs[label].items() if row in
                 ("SAT", "PGD-SAT", "TRADES-SAT", "Adv. — S.Grad", "Std. — S.Grad")}
        paper = {"box": "the poster's Tiny-ImageNet run", "mask": "the poster's Flower-17 run",
                 MAPS: "the poster's CIFAR-100 run"}[label]
        return budget_sentence(shown, PAPER_IMAGES[label], paper, self.settings.seeds)


def evaluate(settings: SATSettings, *, progress: bool = False) -> SATResults:
    """Train (or load) every model of both tables for every seed and measure its per-image PGD correctness at
    each ε (all cached). Returns a :class:`SATResults`."""
    seed_everything(settings.seeds[0])
    cache = ResultsCache()
    measurements, rows, configs = Measurements(), [], {}
    for seed in settings.seeds:
        tables = {source: (robustness_configs(settings, source, seed), settings.eps_table)
                  for source in settings.sources}
        tables[MAPS] = (saliency_configs(settings, seed), settings.eps_saliency)
        for label, (table, eps_list) in tables.items():
            configs.setdefault(label, table)
            for row, config in table.items():
                correct = np.stack([pgd_correct(settings, config, e, seed, cache=cache, progress=progress)
                                    for e in eps_list])
                measurements.add(row, UNDER, "accuracy", seed, correct.mean(axis=0), dataset=label)
                rows += [{"label": label, "row": row, "eps": e, "seed": seed, "accuracy": c.mean()}
                         for e, c in zip(eps_list, correct)]
    return SATResults(settings, measurements, pd.DataFrame(rows), configs)


def verdicts(results: SATResults) -> list:
    """Every claim of :data:`CLAIMS` whose rows were measured, judged by the claims engine with the training
    budget of its table."""
    out = []
    for label in dict.fromkeys(results.per_eps["label"]):
        claims = [c for c in CLAIMS if c.dataset == label]
        out += judge_all(claims, results.measurements, budget=results.budget(label))
    return out


def publish(results: SATResults, judged: list):
    """Save the verdicts for the book's front page, with every declared claim (:data:`CLAIMS`): one whose rows
    were not run is listed there as not judged."""
    return publish_verdicts(judged, "06_sat", results.settings.scale, declared=CLAIMS)


def protocol_note(settings: SATSettings) -> str:
    """The protocol differences of the robustness table (markdown), placed under it."""
    seed = settings.seeds[0]
    configs = robustness_configs(settings, settings.source, seed)
    natural = zoo_config(settings.dataset, "natural", settings.scale, seed=seed)
    attack = configs["PGD"].hyperparameters if "PGD" in configs else None
    n_train = len(load_dataset(settings.dataset, "train"))
    trained = (f"PGD-{attack['steps']} / TRADES-{attack['steps']} of step {attack['alpha'] * 255:g}/255 at "
               f"ε = {attack['eps'] * 255:g}/255" if attack else "no adversarial rows")
    start = f"fine-tuning the zoo's natural model ({natural.epochs} ep. on {natural.n_train or n_train})"
    return (f"**Protocol.** Data {settings.dataset} ({n_train} training images; 32×32 composites with exact boxes "
            f"and masks; poster: Tiny-ImageNet with boxes and Flower-17 with masks at 32 px in the authors' code); "
            f"ResNet-20 (poster: the authors' ResNets); every row trains on "
            f"{configs['SAT'].n_train or n_train} images"
            f"{', ' + start if configs['SAT'].init else ''}; adversarial rows {trained} (the poster states no "
            f"training ε; the authors' code: ε = 8/255, 5 steps of 2/255); α_t: the authors' 0.6^(epoch/10) over 100 "
            f"epochs compressed into the run; TRADES β = 6 (authors' SAT code: 1); PGD-SAT / TRADES-SAT combine = "
            f"{settings.combine!r}; evaluation PGD-{settings.pgd_steps}, step {settings.pgd_alpha:g}/255, random "
            f"start, on {settings.n_eval or 'all'} test images per seed (poster: the full validation sets); ours = "
            f"mean ± std over seeds {', '.join(map(str, settings.seeds))}.")


def training_time(settings: SATSettings) -> pd.DataFrame:
    """Measured seconds per epoch of every method, back to back on the same batches (batch 128, from the natural
    model of the first seed), and the ratio to its reference (natural for SAT, PGD / TRADES for their SAT
    variants, with both ``combine`` modes) — :func:`rattrlib.train.cost.training_cost`. No verdict: SAT costs
    one forward/backward on x + δ (≈ natural by design), and PGD-SAT "alternate" skips the attack on about half
    of the batches (faster by construction)."""
    seed = settings.seeds[0]
    device = str(resolve_device(settings.device))
    configs = robustness_configs(dataclasses.replace(settings, families=tuple(FAMILIES)), settings.source, seed)
    other = "start" if settings.combine == "alternate" else "alternate"
    timed = {"natural": configs["Original"], "SAT": configs["SAT"]}
    for family in ("PGD", "TRADES"):
        timed[family] = configs[family]
        for combine in (settings.combine, other):
            config = configs[f"{family}-SAT"]
            timed[f"{family}-SAT ({combine})"] = dataclasses.replace(
                config, hyperparameters={**config.hyperparameters, "combine": combine})
    start, _ = train_cached(zoo_config(settings.dataset, "natural", settings.scale, seed=seed), seed=seed,
                            device=device, progress=False)
    data, cache, rows = load_dataset(settings.dataset, "train"), ResultsCache(), {}
    for name, config in timed.items():
        cost = training_cost(config, batches=settings.cost_batches, batch_size=128, start=start, seed=seed,
                             device=device, data=data, cache=cache)
        reference = "natural" if name in ("natural", "SAT") else name.split("-")[0].split(" ")[0]
        rows[name] = {"s / epoch": cost["seconds_per_epoch"], "images / s": cost["images_per_second"],
                      "reference": reference,
                      "load avg. start / end": f"{cost['load_average_start']:.1f} / {cost['load_average_end']:.1f}"}
    frame = pd.DataFrame(rows).T
    frame[["s / epoch", "images / s"]] = frame[["s / epoch", "images / s"]].astype(float)
    frame["× reference"] = [frame.loc[n, "s / epoch"] / frame.loc[frame.loc[n, "reference"], "s / epoch"]
                            for n in frame.index]
    return frame.round(2)


# ----------------------------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------------------------
def _panel(ax, image: torch.Tensor, title: str = "", signed: bool = False) -> None:
    ax.imshow(image.numpy(), cmap=None if image.ndim == 3 else "gray", vmin=-1 if signed else 0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def plot_perturbation(settings: SATSettings):
    """Training images with their weak saliency s̃ (white = +1), the SAT perturbation εδ_t from the masks at
    ``settings.fig_alphas`` (first channel; grey = 0, white = +ε, black = −ε) and x − 16ε·s̃ (α_t = 0, ε
    magnified 16× to be visible) — the poster's "Algorithm" and "Leveraging bounding-boxes"."""
    show = load_dataset(settings.dataset, "train").subset(settings.n_show, seed=settings.seeds[0])
    weak = {s: weak_saliency(show, s) for s in SAT_DATASETS[settings.dataset]}
    torch.manual_seed(settings.seeds[0])
    eps, source = settings.eps, SAT_DATASETS[settings.dataset][-1]
    deltas = {a: sat_perturbation(weak[source], tuple(show.images.shape), a, eps) for a in settings.fig_alphas}
    titles = ["image", *[f"{s} s̃" for s in weak], *[f"εδ, α_t = {a:g}" for a in settings.fig_alphas],
              "x − 16ε·s̃ (α_t = 0)"]
    fig, axes = plt.subplots(len(show), len(titles), figsize=(1.7 * len(titles), 1.8 * len(show)), squeeze=False)
    for i in range(len(show)):
        panels = [show.images[i].permute(1, 2, 0), *[weak[s][i].float() for s in weak],
                  *[deltas[a][i, 0] / (2 * eps) + 0.5 for a in settings.fig_alphas],
                  (show.images[i] - 16 * eps * weak[source][i].float()).clamp(0, 1).permute(1, 2, 0)]
        for j, panel in enumerate(panels):
            _panel(axes[i, j], panel, titles[j] if i == 0 else "", signed="s̃" in titles[j])
        axes[i, 0].set_ylabel(show.classes[int(show.labels[i])], fontsize=8)
    fig.suptitle(f"{settings.dataset}: weak saliency and the SAT perturbation (ε = {eps * 255:g}/255, "
                 f"source {source!r})", fontsize=9)
    fig.tight_layout()
    return fig


def plot_teacher_maps(settings: SATSettings):
    """The teachers' maps as weak saliency (s̃ = +1 in white: the top 1 − quantile of Σ|map| per image) for the
    first training images of the subset, beside the mask."""
    seed = settings.seeds[0]
    n_train = robustness_configs(settings, settings.source, seed)["SAT"].n_train
    subset = load_dataset(settings.dataset, "train").subset(n_train, seed=seed)
    k, quantile = min(settings.n_show, len(subset)), map_quantile(settings)
    panels = {"image": subset.images[:k].permute(0, 2, 3, 1)}
    if "mask" in SAT_DATASETS[settings.dataset]:
        panels["mask"] = weak_saliency(subset, "mask")[:k].float()
    for teacher, config in teacher_configs(settings, seed).items():
        for attribution in settings.attributions:
            maps = teacher_saliency_maps(config, attribution, settings.map_kwargs(attribution), subset, seed=seed,
                                         device=str(resolve_device(settings.device)))
            panels[f"{TEACHER_NAMES[teacher]} {MAP_NAMES[attribution]}"] = saliency_from_maps(maps[:k],
                                                                                              quantile).float()
    fig, axes = plt.subplots(k, len(panels), figsize=(1.5 * len(panels), 1.6 * k), squeeze=False)
    for j, (title, panel) in enumerate(panels.items()):
        for i in range(k):
            _panel(axes[i, j], panel[i], title if i == 0 else "", signed=panel.ndim == 3)
    fig.suptitle(f"weak saliency s̃ from teacher maps (top {100 * (1 - quantile):.0f}% of Σ|map| per image)",
                 fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["CLAIMS", "FAMILIES", "MAPS", "MAP_NAMES", "NOISE", "PAPER_IMAGES", "SATResults", "SATSettings",
           "SAT_DATASETS", "TEACHER_NAMES", "UNDER", "evaluate", "map_quantile", "natural_like", "pgd_correct",
           "plot_perturbation", "plot_teacher_maps", "protocol_note", "publish", "robustness_configs", "saliency_configs",
           "teacher_configs", "training_time", "verdicts"]
