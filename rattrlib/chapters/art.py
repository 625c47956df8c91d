"""Chapter 04: Attributional Robustness Training (ART; Singh, Kumari, Mangla, Sinha, Balasubramanian &
Krishnamurthy, ECCV 2020) — settings, claims and the tables the notebook shows.

>>> settings = ARTSettings.resolve("smoke", seeds=[0, 1])
>>> chapter = ARTChapter(settings)
>>> chapter.table1()          # ART Table 1: IFIA on IG, random baseline, clean and PGD-40 accuracy, paper | ours
>>> chapter.verdicts()        # every claim of CLAIMS judged on the measurements gathered so far

Every number goes into one :class:`~rattrlib.claims.Measurements` (per image, per seed); tables show the mean over
seeds ± the spread of the per-seed means, and every claim is judged by :func:`rattrlib.claims.judge_all`. Models
and evaluations come from the zoo and :mod:`rattrlib.evaluation` (all cached); the per-image corruption accuracy
(Table 3) is cached here.

Which measurements share seeds: Table 1's Natural, PGD-AT and ART, Table 4, the targeted attack, Fig. 6 and ART's
stronger attacks use every seed; IG-NORM / IG-SUM-NORM (the RAR chapter's models), PGD-AT under the stronger
attacks, the β/λ/a ablation, Table 3, localisation, generation and the explorer use the first seed only. Claims
that compare a one-seed row with a many-seed row are judged on the first seed (dataset ``"first seed"``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown

from rattrlib.claims import RANDOM, Claim, Measurements, check_claims, claims_table, judge_all
from rattrlib.chapters._common import budget_sentence, display_scale, mean_spread, publish_verdicts
from rattrlib.corruptions import CORRUPTIONS
from rattrlib.data import load_dataset
from rattrlib.evaluation import (IFIAProtocol, adversarial_accuracy_zoo, attack_zoo_model, corruption_accuracy_zoo,
                                 evaluate_zoo_model, gradient_alignment, ifia_protocol, localise_zoo_model, report_measurements)
from rattrlib.published import art_table
from rattrlib.results import ResultsCache
from rattrlib.settings import (ChapterSettings, choice, int_check, optional, real_check, sequence_of, setting)
from rattrlib.zoo import eval_pgd, get_model, zoo_config

CLASSIFICATION = ("fashion_mnist", "mnist10k", "mnist", "cifar10", "svhn", "gtsrb", "flowers102")
LOCALISATION = ("fmnist_scenes32", "fmnist_scenes", "flowers102", "cub200")

#: ART's training budget in images seen: ≈ 100 epochs × the 50k CIFAR-10 training images (§5, WRN-28-10)
PAPER_IMAGES = 100 * 50_000

#: Table 1 rows → zoo methods (ART's PGD-7 / PGD-10 row is our PGD-AT; IG-NORM / IG-SUM-NORM are RAR's models)
MODELS = {"Natural": "natural", "PGD-AT": "pgd_at", "ART": "art", "IG-NORM": "ig_norm", "IG-SUM-NORM": "ig_sum_norm"}
#: the rows trained with every seed (the claims of Table 1, 4, Fig. 6, §5 rest on them)
SEEDED_ROWS = ("Natural", "PGD-AT", "ART")
#: the rows of Table 4, the targeted attack, Fig. 6, Table 3, the generation figure and the localisation
THREE = ("Natural", "PGD-AT", "ART")

#: measurement groups (the ``dataset`` of :class:`Measurements`): each has its own images and random baseline
FIRST_SEED = "first seed"
SALIENCY, GRADSHAP, TARGETED = "saliency maps", "GradSHAP maps", "targeted IFIA"
STRONG, ABLATED, CORRUPT, LOCALISE = "stronger attacks", "ablation", "corruptions", "localisation"

#: Table 4's attributions (GradSHAP: 5 samples per map, Captum's default; ART does not state its settings)
TABLE4_ATTRIBUTIONS = {"saliency": (SALIENCY, None), "gradient_shap": (GRADSHAP, {"n_samples": 5})}

#: ablation parameters: symbol, zoo hyperparameter, settings field
ABLATION = (("β", "beta", "betas"), ("λ", "lam", "lams"), ("a", "steps", "a_grid"))


# ------------------------------------------------------------------------------------------------ settings
#: the value of an image count that means every test image (None means the scale's preset, as for every parameter)
ALL = "all"
#: the value of ``n_pgd_ablation`` that means the IFIA protocol's own PGD image count at this scale
PROTOCOL = "protocol"


def count_or(word: str):
    """A check for an image count ≥ 1, or the string ``word`` (``"all"`` / ``"protocol"``)."""
    def check(name: str, value):
        return word if value == word else int_check(1)(name, value)
    return check


def images(value) -> Optional[int]:
    """An image count as the data and protocol functions take it: None for ``"all"`` / ``"protocol"``."""
    return None if value in (ALL, PROTOCOL) else value


@dataclasses.dataclass(frozen=True)
class ARTSettings(ChapterSettings):
    """Every parameter of the ART chapter; ``None`` = the scale's preset (:attr:`PRESETS`)."""

    dataset: str = setting(choice(*CLASSIFICATION), "classification data (Tables 1, 3, 4, Fig. 6, 8, §5)")
    loc_dataset: str = setting(choice(*LOCALISATION), "localisation / segmentation data (Table 2, §5)")
    beta: float = setting(real_check(0, 1e4, low_open=True), "ART's softplus β in training (Alg. 1; paper 50)")
    lam: float = setting(real_check(0, 100), "ART's λ, the weight of L_attr (paper 0.5)")
    a: int = setting(int_check(1), "ART's attack steps in training (paper 3)")
    eps: Optional[float] = setting(optional(real_check(0, 1, low_open=True)), "IFIA ℓ∞ budget (None: the dataset's)")
    attack_steps: int = setting(int_check(1), "IFIA steps (paper 100)")
    attack_beta: float = setting(real_check(0, 1e4, low_open=True), "softplus β of the attack's surrogate")
    ig_steps: int = setting(int_check(1), "IG points in the attack and the maps")
    k: int = setting(int_check(1), "top-k of the attack and of the intersection")
    n_eval: int = setting(int_check(2), "images attacked per model and seed (Table 1)")
    n_table4: int = setting(int_check(2), "images attacked per model and seed (Table 4, targeted attack)")
    betas: tuple = setting(sequence_of(real_check(0, 1e4, low_open=True)), "ablation grid of β (Fig. 8)")
    lams: tuple = setting(sequence_of(real_check(0, 100)), "ablation grid of λ (Fig. 8)")
    a_grid: tuple = setting(sequence_of(int_check(1)), "ablation grid of a (Fig. 8)")
    n_ablation: int = setting(int_check(2), "images attacked per ablation model")
    n_pgd_ablation: int | str = setting(count_or(PROTOCOL), "images under PGD-40 per ablation model, or "
                                        "\"protocol\" (the IFIA protocol's count at this scale)")
    strong_steps: tuple = setting(sequence_of(int_check(1)), "PGD steps of the stronger attacks (§5)")
    n_strong: int = setting(int_check(2), "test images under PGD-40, the stronger PGD and SPSA (§5)")
    spsa_steps: int = setting(int_check(1), "SPSA Adam steps")
    spsa_samples: int = setting(int_check(1), "SPSA directions per step")
    n_corrupt: int | str = setting(count_or(ALL), "test images per corruption and severity (Table 3), or \"all\"")
    n_loc: int | str = setting(count_or(ALL), "test scenes localised with gradient maps (Table 2), or \"all\"")
    n_seg: int | str = setting(count_or(ALL), "test scenes segmented with IG maps (§5), or \"all\"")
    n_align: int | str = setting(count_or(ALL), "test images of Fig. 6, or \"all\"")
    gen_steps: int = setting(int_check(1), "ℓ2 ascent steps of Fig. 4")
    loc_threshold: float = setting(real_check(0, 1), "WSOL: keep map pixels above this fraction of the maximum")
    n_show: int = setting(lambda name, v: int(real_check(1, 12)(name, int_check(1)(name, v))), "images per figure")

    _COMMON: ClassVar[dict] = {"dataset": "fashion_mnist", "loc_dataset": "fmnist_scenes32", "beta": 50.0,
                               "lam": 0.5, "eps": None, "attack_beta": 10.0, "k": 100, "loc_threshold": 0.2,
                               "n_show": 6}
    PRESETS: ClassVar[dict] = {
        "smoke": {**_COMMON, "seeds": (0, 1), "a": 1, "attack_steps": 3, "ig_steps": 3, "n_eval": 8, "n_table4": 8,
                  "betas": (50.0, 200.0), "lams": (0.75, 1.0), "a_grid": (1, 3), "n_ablation": 8,
                  "n_pgd_ablation": 32, "strong_steps": (5, 10), "n_strong": 16, "spsa_steps": 3,
                  "spsa_samples": 8, "n_corrupt": 32, "n_loc": 32, "n_seg": 32, "n_align": 64, "gen_steps": 5},
        "cpu": {**_COMMON, "seeds": (0, 1, 2), "a": 3, "attack_steps": 50, "ig_steps": 5, "n_eval": 100,
                "n_table4": 50, "betas": (50.0, 200.0), "lams": (0.5, 0.75, 1.0), "a_grid": (1, 3, 5),
                "n_ablation": 50, "n_pgd_ablation": 500, "strong_steps": (100, 500), "n_strong": 100,
                "spsa_steps": 50, "spsa_samples": 64, "n_corrupt": 500, "n_loc": ALL, "n_seg": 500,
                "n_align": 1000, "gen_steps": 60},
        "paper": {**_COMMON, "seeds": (0, 1, 2), "a": 3, "attack_steps": 100, "ig_steps": 10, "n_eval": 1000,
                  "n_table4": 1000, "betas": (10.0, 30.0, 50.0, 70.0, 100.0), "lams": (0.25, 0.5, 0.75, 1.0),
                  "a_grid": (1, 2, 3, 5, 7), "n_ablation": 1000, "n_pgd_ablation": PROTOCOL,
                  "strong_steps": (100, 500), "n_strong": 1000, "spsa_steps": 100, "spsa_samples": 128,
                  "n_corrupt": ALL, "n_loc": ALL, "n_seg": ALL, "n_align": ALL, "gen_steps": 60},
    }

    def __post_init__(self):
        super().__post_init__()
        self.protocol()                      # ε, steps, … of the attack validated before any compute

    def protocol(self, n_eval: Optional[int] = None, n_pgd: Optional[int] = None) -> IFIAProtocol:
        """The IFIA protocol of the chapter (Table 1), or with ``n_eval`` images attacked / ``n_pgd`` under PGD
        (None: the protocol's own at this scale)."""
        return ifia_protocol(self.dataset, self.scale, eps=self.eps, steps=self.attack_steps,
                             ig_steps=self.ig_steps, k=self.k, beta=self.attack_beta,
                             n_eval=n_eval or self.n_eval, n_pgd=n_pgd)

    def art_overrides(self, **changes) -> Optional[dict]:
        """Zoo overrides of the ART model: the chapter's β / λ / a with ``changes`` (None: the zoo preset)."""
        preset = zoo_config(self.dataset, "art", self.scale).hyperparameters
        values = {"beta": self.beta, "lam": self.lam, "steps": self.a, **changes}
        diff = {key: value for key, value in values.items() if value != preset[key]}
        return diff or None

    def overrides(self, row: str) -> Optional[dict]:
        return self.art_overrides() if row == "ART" else None


# ------------------------------------------------------------------------------------------------ claims
_MARGIN_ORDER = "“higher” / “better”: an ordering, any difference in the claimed direction"
_MARGIN_SIZELESS = "“significantly”: the paper gives no size: judged as a direction only (margin 0)"
_MARGIN_SATURATE = ("“saturates”: comparable within 1 point, rattr's convention for 'comparable' (the paper gives "
                    "no band; Fig. 8 gives no numbers to fix another)")
_MARGIN_MASKING = ("ART §5 calls PGD-40 → 500 (37.58 → 37.18 %) “similar adversarial robustness”: a stronger "
                   "attack may cost at most the 0.4 point the paper itself loses — finer than one image of "
                   "n_strong = 100 (1 point): at cpu scale it holds only if (almost) no image's outcome changes")
_MARGIN_MAJORITY = ("an ordering of the mean accuracy over all corruptions and severities, a different quantity from "
                    "ART's “on a majority” (a count of corruptions, which a mean can pass while losing most of them); "
                    "the per-corruption columns of Table 3 show the count, without a verdict")
_T1 = ("ART achieves state-of-the-art attributional robustness on attribution attacks [16] when compared with "
       "baselines")
_T4 = ("We observe that ART achieves higher attributional robustness than Natural and PGD-10 models on Top-k "
       "intersection (IN) and Kendall's tau coefficient (K) measure")
_L = ("the attributional and adversarial robustness of the model increases with increasing λ and saturates after "
      "0.75")
_A = ("the performance in terms of test accuracy, adversarial accuracy and attributional robustness saturates after "
      "3 attack steps")


def _claim(id_, where, says, metric, a, b, under, **kw) -> Claim:
    margin_reason = kw.pop("margin_reason", _MARGIN_ORDER)
    return Claim(id=f"art.{id_}", paper="ART", where=where, says=says, metric=metric, a=a, b=b, under=under,
                 margin_reason=margin_reason, **kw)


CLAIMS = check_claims([
    _claim("table1.topk_art_vs_pgd", "Table 1", _T1, "topk_intersection", "ART", "PGD-AT", "ifia_topk"),
    _claim("table1.kendall_art_vs_pgd", "Table 1", _T1, "kendall_tau", "ART", "PGD-AT", "ifia_topk"),
    _claim("table1.topk_art_vs_natural", "Table 1", _T1, "topk_intersection", "ART", "Natural", "ifia_topk"),
    _claim("table1.topk_art_vs_ig_norm", "Table 1", _T1, "topk_intersection", "ART", "IG-NORM", "ifia_topk",
           dataset=FIRST_SEED),
    _claim("table1.topk_art_vs_ig_sum_norm", "Table 1", _T1, "topk_intersection", "ART", "IG-SUM-NORM",
           "ifia_topk", dataset=FIRST_SEED),
    _claim("table1.clean_art_vs_pgd", "Table 1", "ART consistently achieves higher test accuracy than [31]",
           "accuracy", "ART", "PGD-AT", "clean"),
    _claim("table1.pgd_art_vs_natural", "Table 1",
           "has adversarial robustness significantly greater than that of the Natural model", "accuracy", "ART",
           "Natural", "pgd", margin_reason=_MARGIN_SIZELESS),
    _claim("table4.saliency_art_vs_pgd", "Table 4", _T4, "topk_intersection", "ART", "PGD-AT", "ifia_topk",
           dataset=SALIENCY),
    _claim("table4.gradshap_art_vs_pgd", "Table 4", _T4, "topk_intersection", "ART", "PGD-AT", "ifia_topk",
           dataset=GRADSHAP),
    _claim("fig6.alignment_art_vs_pgd", "Fig. 6",
           "ART trained model achieves higher cosine similarity than Natural and PGD-10", "alignment", "ART",
           "PGD-AT", "clean"),
    _claim("fig6.alignment_art_vs_natural", "Fig. 6",
           "ART trained model achieves higher cosine similarity than Natural and PGD-10", "alignment", "ART",
           "Natural", "clean"),
    _claim("s5.targeted_art_vs_pgd", "§5 targeted",
           "top-k intersection … on ART was … 70.64 as compared to … 31.81 on the PGD-10 adversarially trained "
           "model", "topk_intersection", "ART", "PGD-AT", "targeted", dataset=TARGETED),
    _claim("s5.no_masking_longer_pgd", "§5", "We observe similar adversarial robustness when we increase the "
           "number of steps in PGD-attack", "accuracy", "ART", "ART", "pgd_longest", under_b="pgd",
           relation="not_worse", margin=0.004, margin_reason=_MARGIN_MASKING, dataset=STRONG),
    _claim("s5.no_masking_spsa", "§5", "To show the absence of gradient masking … we evaluate our model on a "
           "gradient-free adversarial optimization algorithm [58]", "accuracy", "ART", "ART", "spsa",
           under_b="pgd", relation="not_worse", margin=0.004, margin_reason=_MARGIN_MASKING, dataset=STRONG),
    _claim("table3.corruptions_art_vs_pgd", "Table 3", "observe that ART performs better than other models on a "
           "majority of these perturbations", "accuracy", "ART", "PGD-AT", "corruptions",
           margin_reason=_MARGIN_MAJORITY, dataset=CORRUPT),
    _claim("table2.gt_known_art_vs_pgd", "Table 2", "Our approach results in higher GT-Known Loc and Top-1 Loc",
           "gt_known_loc", "ART", "PGD-AT", "saliency", dataset=LOCALISE),
    _claim("table2.gt_known_art_vs_natural", "Table 2", "Our approach results in higher GT-Known Loc and Top-1 Loc",
           "gt_known_loc", "ART", "Natural", "saliency", dataset=LOCALISE),
    _claim("table2.top1_loc_art_vs_pgd", "Table 2", "Our approach results in higher GT-Known Loc and Top-1 Loc",
           "top1_loc", "ART", "PGD-AT", "saliency", dataset=LOCALISE),
    _claim("s5.segmentation_ig_art_vs_pgd", "§5 segmentation", "attribution maps of ART can serve as a better "
           "prior for segmentation masks as compared to other baselines", "top1_seg", "ART", "PGD-AT",
           "integrated_gradients", dataset=LOCALISE),
    _claim("fig8.beta_reverses", "Fig. 8", "[robustness] initially increases with increasing β, but the trend "
           "reverses for higher values of β", "topk_intersection", "β=50", "β=200", "ifia_topk", dataset=ABLATED),
    _claim("fig8.lambda_rises", "Fig. 8", _L, "topk_intersection", "λ=0.75", "λ=0.5", "ifia_topk",
           dataset=ABLATED),
    _claim("fig8.lambda_saturates", "Fig. 8", _L, "topk_intersection", "λ=1", "λ=0.75", "ifia_topk",
           relation="comparable", margin=0.01, margin_reason=_MARGIN_SATURATE, dataset=ABLATED),
    _claim("fig8.lambda_saturates_pgd", "Fig. 8", _L, "accuracy", "λ=1", "λ=0.75", "pgd", relation="comparable",
           margin=0.01, margin_reason=_MARGIN_SATURATE, dataset=ABLATED),
    _claim("fig8.a3_vs_a1", "Fig. 8", _A, "topk_intersection", "a=3", "a=1", "ifia_topk", dataset=ABLATED),
    _claim("fig8.a_saturates", "Fig. 8", _A, "topk_intersection", "a=5", "a=3", "ifia_topk", relation="comparable",
           margin=0.01, margin_reason=_MARGIN_SATURATE, dataset=ABLATED),
    _claim("fig8.a_saturates_pgd", "Fig. 8", _A, "accuracy", "a=5", "a=3", "pgd", relation="comparable",
           margin=0.01, margin_reason=_MARGIN_SATURATE, dataset=ABLATED),
])


# ------------------------------------------------------------------------------------------------ tables
def ours_cell(summary: pd.DataFrame, dataset: str, row: str, under: str, metric: str) -> str:
    """:func:`rattrlib.chapters._common.mean_spread` of one measured side of ``summary``
    (:meth:`Measurements.summary`); "–" if it was not measured."""
    sel = summary[(summary["dataset"] == dataset) & (summary["row"] == row) & (summary["under"] == under)
                  & (summary["metric"] == metric)]
    return "–" if sel.empty else mean_spread(metric, sel.iloc[0])


def paper_vs_ours(summary: pd.DataFrame, rows, columns: dict, paper: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One table: per row, for each column label ``(dataset, under, metric, paper column or None)`` the paper's
    value (display units) beside ours (mean ± seed spread)."""
    out = {}
    for label, (dataset, under, metric, paper_column) in columns.items():
        theirs = []
        for row in rows:
            value = np.nan
            if paper is not None and paper_column in paper.columns and row in paper.index:
                value = paper.loc[row, paper_column]
            theirs.append("–" if not np.isfinite(value) else f"{value:.2f}")
        out[(label, "paper")] = theirs
        out[(label, "ours")] = [ours_cell(summary, dataset_of(dataset, row), row, under, metric) for row in rows]
    return pd.DataFrame(out, index=list(rows))


def dataset_of(dataset, row: str) -> str:
    """``dataset`` may be a callable of the row (Table 1: IG-NORM rows live in the first-seed group)."""
    return dataset(row) if callable(dataset) else dataset


def paper_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """ART's row names → ours (its PGD-7 / PGD-10 row is our PGD-AT); Kendall ×100 → τ."""
    names = {"IG Norm": "IG-NORM", "IG-SUM Norm": "IG-SUM-NORM"}
    frame = frame.rename(index=lambda r: "PGD-AT" if r.startswith("PGD") else names.get(r, r)).copy()
    for column in [c for c in frame.columns if c.endswith("kendall_x100")]:
        frame[column] = frame[column] / 100
    return frame


def paper_dataset(dataset: str) -> str:
    return dataset if dataset in ("cifar10", "svhn", "gtsrb", "flowers102") else "cifar10"


# ------------------------------------------------------------------------------------------------ the chapter
class ARTChapter:
    """The chapter's computations on one :class:`ARTSettings`; every result lands in :attr:`measurements`."""

    def __init__(self, settings: ARTSettings):
        self.settings = settings
        self.measurements = Measurements()
        self.evaluations: dict = {}
        self.cache = ResultsCache()
        self._noted = set()

    # -- helpers
    @property
    def first(self) -> int:
        return self.settings.seeds[0]

    def _zoo(self, row: str, seed: int):
        s = self.settings
        return {"scale": s.scale, "seed": seed, "device": s.device, "overrides": s.overrides(row)}

    def _add_once(self, key, add):
        if key not in self._noted:
            self._noted.add(key)
            add()

    def summary(self) -> pd.DataFrame:
        return self.measurements.summary(n_boot=200)

    def _seeds(self) -> str:
        return ", ".join(map(str, self.settings.seeds))

    def _ifia(self, n: int) -> str:
        """The attack of Table 1 on ``n`` images with its random baseline, in one phrase."""
        p = self.settings.protocol()
        return (f"IFIA top-k, ε = {p.eps:g}, α = {p.alpha:g}, {p.steps} steps, k = {p.k}, on {n} test images per "
                f"model and seed; random columns: uniform random signs of the same ε on the same images")

    def configs(self, rows=SEEDED_ROWS, dataset: Optional[str] = None) -> dict:
        s = self.settings
        return {row: zoo_config(dataset or s.dataset, MODELS[row], s.scale, seed=self.first,
                                overrides=s.overrides(row) if dataset is None else None) for row in rows}

    def budget(self) -> str:
        """The training-budget sentence of the claims' models (ART: ≈ 100 epochs × 50k CIFAR-10 images)."""
        return budget_sentence(self.configs(), PAPER_IMAGES, "ART", self.settings.seeds)

    # -- Table 1
    def table1(self) -> pd.DataFrame:
        """ART Table 1: clean and PGD-40 accuracy and the IFIA top-k attack on IG with its random-sign baseline;
        Natural / PGD-AT / ART on every seed, IG-NORM / IG-SUM-NORM on the first."""
        s = self.settings
        protocol = s.protocol()
        for row, method in MODELS.items():
            for seed in (s.seeds if row in SEEDED_ROWS else s.seeds[:1]):
                ev = evaluate_zoo_model(s.dataset, method, protocol, progress=False, **self._zoo(row, seed))
                self.evaluations[row, seed] = ev
                if row in SEEDED_ROWS:
                    self._add_once(("t1", row, seed), lambda: ev.measure(self.measurements, row, seed))
                if seed == self.first and row in ("ART", "IG-NORM", "IG-SUM-NORM"):
                    self._add_once(("t1f", row), lambda: ev.measure(self.measurements, row, seed, FIRST_SEED))

        def group(row):
            return "" if row in SEEDED_ROWS else FIRST_SEED

        columns = {"top-k ∩ (%)": (group, "ifia_topk", "topk_intersection", "topk"),
                   "random top-k ∩ (%)": (group, RANDOM, "topk_intersection", None),
                   "Kendall τ": (group, "ifia_topk", "kendall_tau", "kendall_x100"),
                   "random Kendall τ": (group, RANDOM, "kendall_tau", None),
                   "clean acc. (%)": (group, "clean", "accuracy", "clean_accuracy"),
                   "PGD-40 acc. (%)": (group, "pgd", "accuracy", "pgd40_accuracy")}
        paper = paper_rows(art_table("Table 1", paper_dataset(s.dataset)))
        return paper_vs_ours(self.summary(), list(MODELS), columns, paper)

    def table1_note(self) -> Markdown:
        s, p = self.settings, self.settings.protocol()
        pgd = eval_pgd(s.dataset)
        return Markdown(
            f"*Protocol.* Ours: {s.dataset}, mean ± spread over seeds {', '.join(map(str, s.seeds))} (IG-NORM and "
            f"IG-SUM-NORM: seed {self.first} only); IFIA top-k on IG, ε = {p.eps:g}, α = {p.alpha:g}, {p.steps} "
            f"steps in {p.precision} (paper 100; maps and scores in fp32), IG m = {p.ig_steps}, k = {p.k}, attack softplus β = {p.beta:g}, on {p.n_eval} "
            f"test images per seed (paper 1000); the random row: uniform random signs of the same ε on the same "
            f"images. PGD-{pgd['steps']} ε = {pgd['eps']:g} on {p.n_pgd or 'all'} test images. Paper: ART Table 1, "
            f"{paper_dataset(s.dataset)} (WideResNets) — compare orderings, not values. {self.budget()}")

    def table4_note(self) -> Markdown:
        s = self.settings
        return Markdown(
            f"*Protocol.* Ours: {s.dataset}, mean ± spread over seeds {self._seeds()}; {self._ifia(s.n_table4)}; "
            f"maps: saliency ∇x f_y and GradSHAP (black baseline, 5 samples per map, seeded). Paper: ART Table 4, "
            f"CIFAR-10 (WideResNets, 1000 images) — compare orderings, not values. {self.budget()}")

    def maps_models(self) -> dict:
        return {row: self.evaluations[row, self.first] for row in THREE}

    # -- Table 4
    def table4(self) -> pd.DataFrame:
        """ART Table 4: the IFIA top-k attack and the random-sign baseline on saliency and GradSHAP maps, on
        ``n_table4`` images per seed."""
        s = self.settings
        protocol = s.protocol(n_eval=s.n_table4)
        for row in THREE:
            for seed in s.seeds:
                for attribution, (group, kwargs) in TABLE4_ATTRIBUTIONS.items():
                    for attack, under in (("topk", "ifia_topk"), ("random_sign", RANDOM)):
                        report = attack_zoo_model(s.dataset, MODELS[row], protocol, attribution=attribution,
                                                  attribution_kwargs=kwargs, attack=attack, progress=False,
                                                  **self._zoo(row, seed))
                        self._add_once(("t4", row, seed, attribution, attack), lambda: report_measurements(
                            report, self.measurements, row, under, seed, group))
        columns = {}
        for attribution, (group, _) in TABLE4_ATTRIBUTIONS.items():
            columns.update({f"{group}: top-k ∩ (%)": (group, "ifia_topk", "topk_intersection", f"{attribution}_topk"),
                            f"{group}: random top-k ∩ (%)": (group, RANDOM, "topk_intersection", None),
                            f"{group}: Kendall τ": (group, "ifia_topk", "kendall_tau", f"{attribution}_kendall_x100"),
                            f"{group}: random Kendall τ": (group, RANDOM, "kendall_tau", None)})
        return paper_vs_ours(self.summary(), THREE, columns, paper_rows(art_table("Table 4", "cifar10")))

    # -- Fig. 6
    def alignment(self) -> dict:
        """ART Fig. 6: cos(x, ∇x f_y(x)) per test image (y the true label), per row, pooled over seeds for the
        figure; per-image values per seed go to the measurements (metric ``alignment`` under ``clean``)."""
        s = self.settings
        pooled = {}
        for row in THREE:
            values = []
            for seed in s.seeds:
                data = load_dataset(s.dataset, "test").subset(images(s.n_align), seed=seed)
                model, _ = get_model(s.dataset, MODELS[row], progress=False, **self._zoo(row, seed))
                v = gradient_alignment(model, data.images.to(next(model.parameters()).device), data.labels)
                self._add_once(("align", row, seed), lambda: self.measurements.add(row, "clean", "alignment", seed, v))
                values.append(v)
            pooled[row] = np.concatenate(values)
        return pooled

    def alignment_table(self) -> pd.DataFrame:
        summary = self.summary()
        return pd.DataFrame({"cos(x, ∇f), mean ± seed spread": [ours_cell(summary, "", r, "clean", "alignment")
                                                               for r in THREE]}, index=list(THREE))

    def alignment_note(self) -> Markdown:
        s = self.settings
        return Markdown(
            f"*Protocol.* Ours: {s.dataset}, cos(x, ∇x f_y(x)) with y the true label on {s.n_align} test images per "
            f"seed (seeds {self._seeds()}); the table: mean ± spread of the per-seed means. Paper: ART Fig. 6, "
            f"CIFAR-10, distributions only (no numbers to set beside ours); alignment is a property of the clean "
            f"model, so it has no random baseline. {self.budget()}")

    # -- targeted attack
    def targeted(self) -> pd.DataFrame:
        """ART §5: IFIA with the targeted objective (each map pushed towards the clean map of a shuffled other
        image) and the random-sign baseline, on ``n_table4`` images per seed."""
        s = self.settings
        protocol = s.protocol(n_eval=s.n_table4)
        for row in THREE:
            for seed in s.seeds:
                for attack, under in (("targeted", "targeted"), ("random_sign", RANDOM)):
                    report = attack_zoo_model(s.dataset, MODELS[row], protocol, attack=attack, progress=False,
                                              **self._zoo(row, seed))
                    self._add_once(("tg", row, seed, attack), lambda: report_measurements(
                        report, self.measurements, row, under, seed, TARGETED))
        columns = {"top-k ∩ (%)": (TARGETED, "targeted", "topk_intersection", "topk"),
                   "random top-k ∩ (%)": (TARGETED, RANDOM, "topk_intersection", None),
                   "Kendall τ": (TARGETED, "targeted", "kendall_tau", "kendall_x100"),
                   "random Kendall τ": (TARGETED, RANDOM, "kendall_tau", None)}
        return paper_vs_ours(self.summary(), THREE, columns, paper_rows(art_table("targeted", "cifar10")))

    def targeted_note(self) -> Markdown:
        s = self.settings
        return Markdown(
            f"*Protocol.* Ours: {s.dataset}, mean ± spread over seeds {self._seeds()}; {self._ifia(s.n_table4)}; "
            f"targeted objective: the ℓ2 distance of the IG map to the clean map of a shuffled other image, without "
            f"Dombrowski et al.'s output-matching term (see above). Paper: ART §5, CIFAR-10, 1000 images — compare "
            f"orderings, not values. {self.budget()}")

    # -- stronger and gradient-free attacks
    def strong_attacks(self) -> pd.DataFrame:
        """ART §5: accuracy under PGD-40, longer PGD and SPSA on the same ``n_strong`` images; ART on every seed,
        PGD-AT on the first (a reference row; no claim rests on it)."""
        s = self.settings
        attacks = {"PGD-40": ("pgd", None, "pgd")}
        for steps in s.strong_steps:
            under = "pgd_longest" if steps == max(s.strong_steps) else f"pgd{steps}"
            attacks[f"PGD-{steps}"] = ("pgd", {"steps": steps}, under)
        attacks["SPSA"] = ("spsa", {"steps": s.spsa_steps, "samples": s.spsa_samples}, "spsa")
        for row, seeds in (("PGD-AT", s.seeds[:1]), ("ART", s.seeds)):
            for seed in seeds:
                for name, (attack, kwargs, under) in attacks.items():
                    correct = adversarial_accuracy_zoo(s.dataset, MODELS[row], attack, kwargs, n=s.n_strong,
                                                       progress=False, per_image=True, **self._zoo(row, seed))
                    self._add_once(("st", row, seed, name), lambda: self.measurements.add(
                        row, under, "accuracy", seed, correct, dataset=STRONG))
        columns = {name: (STRONG, under, "accuracy", name) for name, (_, _, under) in attacks.items()}
        return paper_vs_ours(self.summary(), ("PGD-AT", "ART"), columns, art_table("strong attacks", "cifar10"))

    def strong_note(self) -> Markdown:
        s, pgd = self.settings, eval_pgd(self.settings.dataset)
        return Markdown(
            f"*Protocol.* Ours: {s.dataset}, accuracy (%) on the same {s.n_strong} test images per seed under PGD "
            f"(ε = {pgd['eps']:g}, α = {pgd['alpha']:g}, random start) with 40 and "
            f"{' / '.join(map(str, s.strong_steps))} steps, and SPSA ({s.spsa_steps} Adam steps, {s.spsa_samples} "
            f"random directions per step); ART: mean ± spread over seeds {self._seeds()}, PGD-AT: seed {self.first} "
            f"(a reference row). Paper: ART §5, CIFAR-10 (ε = 8/255, WRN-28-10) — compare the drops, not the "
            f"values. {self.budget()}")

    # -- Table 3
    def corruption_correct(self, row: str) -> np.ndarray:
        """Per image, corruption and severity: still classified correctly? (bool n × corruptions × severities;
        :data:`rattrlib.corruptions.CORRUPTIONS`, noise seeded with the first seed), cached."""
        return corruption_accuracy_zoo(self.settings.dataset, MODELS[row], n=images(self.settings.n_corrupt),
                                       progress=False, cache=self.cache, per_image=True,
                                       **self._zoo(row, self.first))

    def table3(self) -> pd.DataFrame:
        """ART Table 3: accuracy (%) per corruption (mean over the five severities), paper | ours, first seed;
        per image the fraction of the 45 corrupted versions classified correctly goes to the measurements."""
        paper = paper_rows(art_table("Table 3", "cifar10"))
        frame = {}
        for row in THREE:
            correct = self.corruption_correct(row)
            self._add_once(("c", row), lambda: self.measurements.add(row, "corruptions", "accuracy", self.first,
                                                                     correct.mean(axis=(1, 2)), dataset=CORRUPT))
            for i, name in enumerate(CORRUPTIONS):
                frame[(name, "paper")] = frame.get((name, "paper"), []) + [paper.loc[row, name]]
                ours = display_scale("accuracy") * correct[:, i].mean()
                frame[(name, "ours")] = frame.get((name, "ours"), []) + [ours]
        table = pd.DataFrame(frame, index=list(THREE)).round(1).T
        return table.astype(object).where(table.notna(), "–")

    def table3_note(self) -> Markdown:
        s = self.settings
        return Markdown(
            f"*Protocol.* Ours: {s.dataset}, seed {self.first}, {s.n_corrupt} test images per corruption at each "
            f"of the five severities (CIFAR-10-C constants), {len(CORRUPTIONS)} of ART's 15 corruptions. Paper: ART "
            f"Table 3, CIFAR-10-C; its PGD-10 row has 14 values for 15 columns, and the missing one is assumed to be "
            f"speckle noise (shown as –). Compare orderings, not values. {self.budget()}")

    # -- Fig. 8
    def ablation(self) -> pd.DataFrame:
        """ART Fig. 8: ART models with one of β, λ, a varied (the others at the chapter's), first seed, IFIA on
        ``n_ablation`` images with its random baseline and PGD-40 on ``n_pgd_ablation``. Returns one row per
        model (the frame :func:`rattrlib.plots.plot_ablation` draws)."""
        s = self.settings
        protocol = s.protocol(n_eval=s.n_ablation, n_pgd=images(s.n_pgd_ablation))
        rows = []
        for symbol, key, field in ABLATION:
            for value in getattr(s, field):
                ev = evaluate_zoo_model(s.dataset, "art", protocol, scale=s.scale, seed=self.first, device=s.device,
                                        progress=False, overrides=s.art_overrides(**{key: value}))
                name = f"{symbol}={value:g}"
                self._add_once(("ab", name), lambda: ev.measure(self.measurements, name, self.first, ABLATED))
                r = ev.row()
                rows.append({"parameter": symbol, "value": value, "top-k ∩ (%)": r["top-k ∩ (%)"],
                             "random top-k ∩ (%)": r["random top-k ∩ (%)"], "Kendall τ ×100": 100 * r["Kendall τ"],
                             "random Kendall τ ×100": 100 * r["random Kendall τ"],
                             "clean acc. (%)": r["clean acc. (%)"], "PGD acc. (%)": r["PGD acc. (%)"],
                             "attacked": r["attacked"]})
        return pd.DataFrame(rows)

    def ablation_note(self) -> Markdown:
        s = self.settings
        return Markdown(
            f"*Protocol.* Ours: {s.dataset}, one ART model per grid value, seed {self.first}, with the other two "
            f"hyperparameters at β = {s.beta:g}, λ = {s.lam:g}, a = {s.a}; {self._ifia(s.n_ablation)} (dashed lines "
            f"in the figure); PGD-40 on {s.n_pgd_ablation} test images. Paper: ART Fig. 8, CIFAR-10, curves without "
            f"numbers. {self.budget()}")

    # -- Fig. 4
    def generation(self) -> dict:
        """ART Fig. 4 (Santurkar et al.'s recipe): class-Gaussian seeds, then ℓ2 ascent on the class logit of
        each model (first seed)."""
        from rattrlib.generation import class_conditional_seeds, generate_class_samples

        s = self.settings
        train = load_dataset(s.dataset, "train").subset(5000, seed=self.first)
        classes = torch.arange(len(train.classes))
        seeds = class_conditional_seeds(train.images, train.labels, classes,
                                        generator=torch.Generator().manual_seed(self.first))
        out = {"seed (class Gaussian)": seeds}
        for row in THREE:
            model, _ = get_model(s.dataset, MODELS[row], progress=False, **self._zoo(row, self.first))
            device = next(model.parameters()).device
            out[row] = generate_class_samples(model, classes.to(device), train.shape, steps=s.gen_steps,
                                              step_size=0.5, init=seeds.to(device)).cpu()
        return out

    def class_names(self) -> list:
        """The classification data's class names, in label order (Fig. 4's columns)."""
        return list(load_dataset(self.settings.dataset, "test").classes)

    # -- Table 2 and segmentation
    def localisation(self) -> dict:
        """ART Table 2 (gradient maps, ``n_loc`` scenes) and §5 segmentation (IG with 10 points, ``n_seg``
        scenes) on ``loc_dataset``, first seed; per-image GT-known Loc, Top-1 Loc and Top-1 Seg go to the
        measurements. Maps of the **predicted** class (``rattrlib.evaluation``), where ART §4.2 uses the true
        class's ∇x f(x)_y."""
        s = self.settings
        result = {}
        for row in THREE:
            for attribution, kwargs, n in (("saliency", None, images(s.n_loc)),
                                           ("integrated_gradients", {"n_steps": 10}, images(s.n_seg))):
                loc = localise_zoo_model(s.loc_dataset, MODELS[row], attribution, kwargs, n=n,
                                         threshold=s.loc_threshold, scale=s.scale, seed=self.first,
                                         device=s.device, progress=False)
                result[row, attribution] = loc
                correct = (loc.predictions == loc.labels).numpy()
                hit = (loc.box_iou >= 0.5).numpy()
                seg = (loc.mask_iou >= 0.5).numpy()
                for metric, values in (("gt_known_loc", hit), ("top1_loc", hit & correct),
                                       ("top1_seg", seg & correct), ("accuracy", correct)):
                    self._add_once(("loc", row, attribution, metric), lambda: self.measurements.add(
                        row, attribution, metric, self.first, values, dataset=LOCALISE))
        return result

    def table2(self) -> pd.DataFrame:
        columns = {"GT-known Loc (%)": (LOCALISE, "saliency", "gt_known_loc", "gt_known_loc"),
                   "Top-1 Loc (%)": (LOCALISE, "saliency", "top1_loc", "top1_loc"),
                   "Top-1 Acc (%)": (LOCALISE, "saliency", "accuracy", "top1_acc")}
        return paper_vs_ours(self.summary(), THREE, columns, paper_rows(art_table("Table 2", "cub200")))

    def segmentation_table(self) -> pd.DataFrame:
        columns = {"Top-1 Seg, IG (%)": (LOCALISE, "integrated_gradients", "top1_seg", "top1_seg_ig"),
                   "Top-1 Seg, gradient (%)": (LOCALISE, "saliency", "top1_seg", "top1_seg_saliency")}
        return paper_vs_ours(self.summary(), THREE, columns,
                             paper_rows(art_table("segmentation", "flowers102")))

    def loc_note(self) -> Markdown:
        s = self.settings
        configs = self.configs(THREE, dataset=s.loc_dataset)
        eps = configs["ART"].hyperparameters["eps"]
        return Markdown(
            f"*Protocol.* Gradient maps of the **predicted** class on {s.n_loc or 'all'} {s.loc_dataset} test "
            f"scenes (IG, 10 points, on {s.n_seg or 'all'}), threshold {s.loc_threshold:g}, seed {self.first} only. "
            f"Paper: ART Table 2, CUB-200, ResNet-50 and §5 Flowers (849 masks). Training: "
            + "; ".join(f"{row} {c.model} {c.epochs} ep. on {c.n_train or 'all'}"
                        + (f" from {c.init['method']}" if c.init else "") for row, c in configs.items())
            + f"; ART and PGD-AT ε = {eps * 255:g}/255 (paper 2/255).")

    def localisation_figure(self, loc: dict):
        """ART Fig. 5: the first ``n_show`` scenes, each model's gradient map with the true box (red) and the box
        from the map (green)."""
        from rattrlib.plots import plot_localisation

        shown = list(range(min(self.settings.n_show, len(loc["ART", "saliency"].labels))))
        scenes = load_dataset(self.settings.loc_dataset, "test").subset(images(self.settings.n_loc), seed=self.first)
        fig = plot_localisation(scenes.images[shown], {row: loc[row, "saliency"].maps[shown] for row in THREE},
                                scenes.boxes[shown], {row: loc[row, "saliency"].boxes[shown] for row in THREE})
        fig.suptitle(f"{self.settings.loc_dataset}: gradient map, true box (red) and box from the map (green)", y=1.02)
        return fig

    # -- explorer
    def explorer(self, n_images: int = 24):
        """The IFIA explorer (one test image, live ε / β / model / image controls) on the first seed's models."""
        from rattrlib.explorer import IFIAExplorer

        s = self.settings
        p = s.protocol()
        data = load_dataset(s.dataset, "test").subset(n_images, seed=self.first)
        models = {row: get_model(s.dataset, MODELS[row], progress=False, **self._zoo(row, self.first))[0]
                  for row in THREE}
        return IFIAExplorer(models, data.images, data.labels, class_names=data.classes, eps=p.eps,
                            eps_max=min(1.0, 3 * p.eps), beta=p.beta, k=p.k)

    @staticmethod
    def explorer_snapshots(explorer, rows=THREE) -> pd.DataFrame:
        """Run the explorer once per model (its static snapshot in the rendered book), showing each figure;
        returns the attack's numbers per model."""
        import matplotlib.pyplot as plt

        snapshot = {}
        for row in rows:
            if explorer.model.value == row:
                explorer.run()
            else:
                explorer.model.value = row      # a change of any control reruns the attack
            snapshot[row] = explorer.last
            explorer.figure()
            plt.show()
        digits = {"eps": 4, "beta": 2, "label kept": None, "top-k ∩ (%)": 1, "Kendall τ": 3, "seconds": 1}
        return pd.DataFrame({row: {key: r[key] if n is None else round(float(r[key]), n) for key, n in digits.items()}
                             for row, r in snapshot.items()}).T

    # -- verdicts
    def verdicts(self, publish: bool = True):
        """Every claim of :data:`CLAIMS` whose rows were measured, judged (95 % interval over seeds
        and images, raw and net of the random baseline), as the book's claims table; saved for the front page."""
        verdicts = judge_all(CLAIMS, self.measurements, budget=self.budget())
        if publish:
            publish_verdicts(verdicts, "04_art", self.settings.scale, declared=CLAIMS)
        return claims_table(verdicts)


__all__ = ["ABLATION", "ARTChapter", "ARTSettings", "CLAIMS", "CLASSIFICATION", "LOCALISATION", "MODELS",
           "PAPER_IMAGES", "ours_cell", "paper_rows", "paper_vs_ours"]
