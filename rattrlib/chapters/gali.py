"""Chapter 03, GALI (Gali, Sarkar & Balasubramanian, "Empowering a Robust Model with Stable and Object-Aligned
Explanations"): teacher-aligned RAR and the attribution-aware (AA) metrics — its settings, its claims, and what the
notebook shows.

Rows (GALI Table 1 → rattr's zoo): **Nat** = ``natural``, **AT** = ``pgd_at`` (also the teacher), **RAR** =
``ig_sum_norm``, **AT-start + Regularizer** = ``teacher_aligned`` started from the AT weights, **RAR-start +
Regularizer** = ``teacher_aligned`` started from the RAR weights (same AT teacher). Each is evaluated with the
RAR/GALI protocol (:func:`rattrlib.evaluation.evaluate_zoo_model`: clean and PGD-40 accuracy, IFIA top-k on IG,
random sign noise of the same ε as the baseline), per training seed. The AA scores (GALI eq. 10–12) are computed
here per image, for the IFIA run **and** the random run, against three references: the AT teacher's IG map (Table 1;
its goodness factors alone are Table 3), a TRADES model's IG map (Table 4) and the object mask (Table 5). The λ sweep
(Fig. 5) retrains AT-start + Regularizer per λ.

>>> settings = GALISettings.resolve("cpu")
>>> result = evaluate(settings)             # trains (or loads) and evaluates every model, cached
>>> result.table1("fashion_mnist")          # paper | ours, mean ± seed spread, a random-noise row per model
>>> claims_table(result.verdicts("fashion_mnist"))
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from rattrlib.chapters._common import (PAPER_DATASET, SUCCESS, TOPK, IFIASettings, budget_sentence, column_label,
                                      declared_claims, display_scale, indexed_summary, mean_spread, publish_verdicts,
                                      success_cell)
from rattrlib.claims import GOODNESS, RANDOM, Claim, Measurements, format_value, judge_all
from rattrlib.config import resolve_device
from rattrlib.data import load_dataset
from rattrlib.evaluation import IFIAProtocol, ModelEvaluation, evaluate_zoo_model, object_masks, reference_maps
from rattrlib.metrics import aa_kendall, aa_spearman, aa_topk
from rattrlib.plots import plot_maps_before_after
from rattrlib.published import gali_table1, gali_table3, gali_table4, gali_table5
from rattrlib.settings import choice, int_check, real_check, sequence_of, setting
from rattrlib.zoo import eval_pgd, get_model, zoo_config

CHAPTER = "03_gali"
PAPER = "GALI"

#: datasets of the chapter (GALI's MNIST-family experiments; mnist10k is the offline 8k/2k subset of MNIST)
GALI_DATASETS = ("fashion_mnist", "mnist10k", "mnist")
#: GALI's training budget of the teacher-aligned models in images seen: appendix 10.2 (Fashion-MNIST: 100k steps
#: × batch 32) and 10.3 (MNIST: 90k steps × batch 50)
PAPER_STEPS = {"fashion_mnist": (100_000, 32), "mnist": (90_000, 50)}
PAPER_IMAGES = {d: steps * batch for d, (steps, batch) in PAPER_STEPS.items()}

AT_REG, RAR_REG = "AT-start + Regularizer", "RAR-start + Regularizer"
#: GALI's rows → zoo methods
ROWS = {"Nat": "natural", "AT": "pgd_at", AT_REG: "teacher_aligned", "RAR": "ig_sum_norm", RAR_REG: "teacher_aligned"}
#: GALI's own names of the rows where they differ (MNIST block of Table 1; appendix Tables 4 and 5)
TABLE1_NAMES = {"mnist": {RAR_REG: "RAR+Regularizer"}, "fashion_mnist": {}}
APPENDIX_NAMES = {AT_REG: "AT+Regularizer", RAR_REG: "RAR+Regularizer", "RAR": "RAR", "AT": "AT"}

#: the AA metrics (GALI eq. 10, 11, 12) → the functions that compute them per image
AA_METRICS = {"aa_topk": aa_topk, "aa_kendall": aa_kendall, "aa_spearman": aa_spearman}
#: the condition under which the unattacked AA values are stored (:data:`rattrlib.claims.GOODNESS`): the clean
#: map on both sides, so similarity 1 and the value is the goodness factor alone (GALI Table 3)


def trades_key(dataset: str) -> str:
    """Measurements key of Table 4 (a TRADES model's map as reference) for ``dataset``."""
    return f"{dataset} · TRADES as reference"


def object_key(dataset: str) -> str:
    """Measurements key of Table 5 (the object as reference) for ``dataset``."""
    return f"{dataset} · object as reference"


def table_keys(dataset: str) -> tuple:
    """The measurements keys of ``dataset``'s tables: Tables 1 and 3 (``dataset``), Table 4, Table 5."""
    return dataset, trades_key(dataset), object_key(dataset)


def sweep_key(dataset: str) -> str:
    """Measurements key of the λ sweep (Fig. 5) on ``dataset``."""
    return f"{dataset} · λ sweep"


def sweep_row(lam: float) -> str:
    """The row name of AT-start + Regularizer trained with ``lam``."""
    return f"λ = {lam:g}"


# -------------------------------------------------------------------------------------------------- settings

def check_lams(name: str, value) -> tuple:
    """At least two distinct λ values in [0, 10], sorted."""
    return tuple(sorted(sequence_of(real_check(0, 10), min_length=2, distinct="λ")(name, value)))


_COMMON = {"eps": None, "alpha": None, "attack_steps": None, "ig_steps": None, "k_fashion_mnist": 100,
           "k_mnist": 200, "beta": 10.0, "mask_threshold": 0.1}


@dataclasses.dataclass(frozen=True)
class GALISettings(IFIASettings):
    """Settings of chapter 03 (every papermill parameter; None = the scale's preset, or for the attack's ε, α,
    steps and IG points the dataset's RAR/GALI value)."""

    datasets: tuple = setting(sequence_of(choice(*GALI_DATASETS), distinct="dataset"), "datasets (fashion_mnist, mnist10k offline; mnist downloads)")
    k_fashion_mnist: int = setting(int_check(1, 28 * 28), "top-k on Fashion-MNIST (GALI §10.2: 100)")
    k_mnist: int = setting(int_check(1, 28 * 28), "top-k on MNIST and MNIST-10k (GALI §10.3: 200)")
    lams: tuple = setting(check_lams, "λ grid of the sweep (GALI Fig. 5)")
    sweep_dataset: str = setting(choice(*GALI_DATASETS), "dataset of the λ sweep")
    sweep_seeds: int = setting(int_check(1), "how many of the seeds the λ sweep is trained with (the first ones)")
    mask_threshold: float = setting(real_check(0, 1), "Table 5's object mask: image intensity above this")
    n_show: int = setting(int_check(1, 10), "images in the before/after figure")

    PRESETS = {
        "smoke": {**_COMMON, "seeds": (0, 1), "datasets": ("fashion_mnist",), "n_eval": 32,
                  "lams": (0.0, 1e-3, 1e-2), "sweep_dataset": "fashion_mnist", "sweep_seeds": 1, "n_show": 2},
        # three seeds of every model the claims rest on, Fashion-MNIST only (as the RAR chapter, whose natural,
        # PGD-AT and RAR models and evaluations this chapter then loads from the cache); the λ sweep on one seed
        "cpu": {**_COMMON, "seeds": (0, 1, 2), "datasets": ("fashion_mnist",), "n_eval": 100,
                "lams": (0.0, 1e-3, 1e-2), "sweep_dataset": "fashion_mnist", "sweep_seeds": 1, "n_show": 3},
        "paper": {**_COMMON, "seeds": (0, 1, 2), "datasets": ("fashion_mnist", "mnist"), "n_eval": 1000,
                  "lams": (0.0, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2), "sweep_dataset": "fashion_mnist",
                  "sweep_seeds": 3, "n_show": 3},
    }

    def __post_init__(self):
        super().__post_init__()
        for dataset in {*self.datasets, self.sweep_dataset}:
            self.protocol(dataset)  # the attack settings of every dataset are valid, before any compute

    def k(self, dataset: str) -> int:
        """Top-k of the attack, the intersection and the AA goodness factor on ``dataset``."""
        return self.k_fashion_mnist if dataset == "fashion_mnist" else self.k_mnist

    def protocol(self, dataset: str) -> IFIAProtocol:
        """The RAR/GALI evaluation of ``dataset`` at this scale (the same as the RAR chapter's, so the shared
        models' evaluations come from the cache)."""
        return self.ifia(dataset, self.k(dataset))

    def protocols(self) -> dict:
        return {dataset: self.protocol(dataset) for dataset in self.datasets}

    @property
    def sweep_seed_list(self) -> tuple:
        return self.seeds[:self.sweep_seeds]


def row_overrides(dataset: str, row: str, scale: str) -> Optional[dict]:
    """Zoo hyperparameter overrides of a row: RAR-start + Regularizer starts from the RAR model of the same seed
    (the teacher's seed, which the start config inherits)."""
    if row == RAR_REG:
        return {"start": dataclasses.asdict(zoo_config(dataset, "ig_sum_norm", scale))}
    return None


# ---------------------------------------------------------------------------------------------------- claims

SAYS_TRADEOFF = ("attributionally robust models have stabler attributions than adversarially trained models")
SAYS_AT_ATTRIBUTION = ("a robust attribution regularizer boosts the model's attributional robustness substantially")
SAYS_AT_RETAIN = ("a saliency alignment regularizer in a baseline adversarial robustness training framework, such as "
                  "AT [18] allows the model to retain its adversarial robustness")
SAYS_RAR_ADVERSARIAL = ("including a saliency alignment regularizer in a baseline attributional robustness training "
                        "framework, such as RAR [7] … not only improves adversarial accuracy significantly")
SAYS_RAR_RETAIN = "but it also helps the model retain its attributional robustness"
SAYS_AA = ("We notice the attributional robustness of a model trained using the baseline attributionally robust "
           "methods, such as RAR [7] … drops under these Attribution Aware evaluation schemes. … We also observe "
           "that a model's attributional robustness when trained using our method improves significantly under "
           "these schemes.")
SAYS_SPEARMAN = ("Training with this methodology has improved … attributional robustness, i.e., in terms of metrics "
                 "used in literature like Top-K intersection, Kendall and Spearman correlations, and their "
                 "corresponding attribution aware metrics")
SAYS_OBJECT = ("we also studied the alignment of the attribution with the object itself, i.e., we take the input "
               "itself as reference … We report these results in Table 5, supporting our claim.")
SAYS_GOODNESS = ("We provide results with the adversarially trained model as a reference network in table [3] which "
                 "shows that attribution maps generated from our model are of better quality and more interpretable "
                 "compared to the attribution maps generated from the baseline attributionally robust models.")
SAYS_TRADES = ("We show our results with TRADES as the reference in Table 4 and show that our training strategy shows "
               "superior performance here too.")
SAYS_LAMBDA = ("a model's adversarial and attributional robustness improves with increasing values of λ up to a "
               "certain point and then drops gradually … with the best value in the vicinity of 0.001")

ORDERING = "an ordering: any difference in the claimed direction (margin 0; significance is the CI)"
SIZELESS = ("'{word}': the paper gives no size: judged as a direction only (margin 0; significance is the CI)")
RETAIN = ("'retain': no loss beyond 1 point, rattr's convention for 'comparable' (the paper gives no band; GALI's "
          "own rows lose nothing on this pair)")


def _block(dataset: str) -> str:
    return "F-MNIST" if PAPER_DATASET[dataset] == "fashion_mnist" else "MNIST"


def _published(dataset: str, row: str, column: str) -> str:
    """GALI Table 1's value of ``row`` in ``column`` (display units) as text."""
    paper = PAPER_DATASET[dataset]
    value = gali_table1(paper).loc[TABLE1_NAMES[paper].get(row, row), column]
    return f"{value:.2f}" if "kendall" not in column else f"{value:.4f}"


#: GALI's appendix tables beside Table 1, by name
APPENDIX_TABLES = {"Table 3": gali_table3, "Table 4": gali_table4, "Table 5": gali_table5}


def _numbers(dataset: str, a: str, b: str, column: str, table: str = "Table 1") -> str:
    label = {"adversarial_accuracy": "Adv. Acc.", "topk": "Top-K", "aa_topk": "AA-Top-K",
             "goodness_topk": "Top-K (%)"}[column]
    if table in APPENDIX_TABLES:
        paper, names = APPENDIX_TABLES[table](PAPER_DATASET[dataset]), APPENDIX_NAMES if table != "Table 3" else {}
        va, vb = (f"{paper.loc[names.get(r, r), column]:.2f}" for r in (a, b))
    else:
        va, vb = _published(dataset, a, column), _published(dataset, b, column)
    return f"; GALI {table}, {_block(dataset)} {label}: {a} {va} vs {b} {vb}"


def table1_claims(dataset: str) -> tuple:
    """GALI Table 1 and §5's statements on ``dataset``: orderings (margin 0) where GALI says "improves" / "boosts"
    / "stabler" (with "significantly" / "substantially": no size given, so a direction only), not-worse by 1 point
    where it says "retain". GALI's text says nothing of the Nat row, so the former "Nat's AA-Top-K is the lowest"
    claims (a paraphrase of Table 1, and for AT structural: AT is its own reference, goodness factor 1) are gone."""
    d, pre = dataset, f"gali.{dataset}"
    significantly = SIZELESS.format(word="significantly")
    return (
        Claim(f"{pre}.rar_topk_vs_at", PAPER, "Abstract; Table 1", SAYS_TRADEOFF, "topk_intersection", "RAR", "AT",
              "ifia_topk", margin_reason=ORDERING + _numbers(d, "RAR", "AT", "topk"), dataset=d),
        Claim(f"{pre}.atreg_topk_vs_at", PAPER, "§5; Table 1", SAYS_AT_ATTRIBUTION, "topk_intersection", AT_REG,
              "AT", "ifia_topk", dataset=d,
              margin_reason=SIZELESS.format(word="substantially") + _numbers(d, AT_REG, "AT", "topk")),
        Claim(f"{pre}.atreg_pgd_vs_at", PAPER, "§5; Table 1", SAYS_AT_RETAIN, "accuracy", AT_REG, "AT", "pgd",
              relation="not_worse", margin=0.01,
              margin_reason=RETAIN + _numbers(d, AT_REG, "AT", "adversarial_accuracy"), dataset=d),
        Claim(f"{pre}.rarreg_pgd_vs_rar", PAPER, "§5; Table 1", SAYS_RAR_ADVERSARIAL, "accuracy", RAR_REG, "RAR",
              "pgd", margin_reason=significantly + _numbers(d, RAR_REG, "RAR", "adversarial_accuracy"), dataset=d),
        Claim(f"{pre}.rarreg_topk_vs_rar", PAPER, "§5; Table 1", SAYS_RAR_RETAIN, "topk_intersection", RAR_REG,
              "RAR", "ifia_topk", relation="not_worse", margin=0.01,
              margin_reason=RETAIN + _numbers(d, RAR_REG, "RAR", "topk"), dataset=d),
        Claim(f"{pre}.rarreg_aatopk_vs_rar", PAPER, "§5 (AA metrics); Table 1", SAYS_AA, "aa_topk", RAR_REG, "RAR",
              "ifia_topk", margin_reason=significantly + _numbers(d, RAR_REG, "RAR", "aa_topk"), dataset=d),
        Claim(f"{pre}.atreg_aatopk_vs_at", PAPER, "§5 (AA metrics); Table 1", SAYS_AA, "aa_topk", AT_REG, "AT",
              "ifia_topk", margin_reason=significantly + _numbers(d, AT_REG, "AT", "aa_topk"), dataset=d),
        Claim(f"{pre}.rarreg_aaspearman_vs_rar", PAPER, "§2, eq. 12", SAYS_SPEARMAN, "aa_spearman", RAR_REG, "RAR",
              "ifia_topk", margin_reason=ORDERING + "; GALI publishes no AA-Spearman number", dataset=d),
    )


def table3_claims(dataset: str) -> tuple:
    """GALI Table 3 (goodness of the clean map against the AT model's): RAR-start + Regularizer's against RAR's,
    on Top-K. As in GALI, the reference is the regulariser's own teacher, so the claim asks whether the training
    objective was met (the Table 4 claims, against a TRADES model it never saw, are the informative ones).
    AT-start + Regularizer is not claimed against RAR: it starts from the reference model itself, so a short
    fine-tune keeps its goodness near 1 by construction."""
    return (Claim(f"gali.{dataset}.rarreg_goodness_vs_rar", PAPER, "§6; Table 3", SAYS_GOODNESS, "aa_topk",
                  RAR_REG, "RAR", GOODNESS, dataset=dataset,
                  margin_reason=ORDERING + " (the reference is the regulariser's own teacher, as in GALI: "
                  "this measures its objective; Table 4 is the test on an unseen reference)"
                  + _numbers(dataset, RAR_REG, "RAR", "goodness_topk", "Table 3")),)


def table4_claims(dataset: str) -> tuple:
    """GALI Table 4 (a TRADES model's map as reference): each regularised model against its start, on AA-Top-K."""
    key, pre = trades_key(dataset), f"gali.{dataset}.trades"
    return tuple(Claim(f"{pre}.{tag}_aatopk_vs_{start.lower()}", PAPER, "§6; Table 4", SAYS_TRADES, "aa_topk", reg,
                       start, "ifia_topk", dataset=key,
                       margin_reason=ORDERING + _numbers(dataset, reg, start, "aa_topk", "Table 4"))
                 for tag, reg, start in (("atreg", AT_REG, "AT"), ("rarreg", RAR_REG, "RAR")))


def table5_claims(dataset: str) -> tuple:
    """GALI Table 5 (the object as reference): each regularised model against its start, on AA-Top-K."""
    key, pre = object_key(dataset), f"gali.{dataset}.object"
    return (
        Claim(f"{pre}.atreg_aatopk_vs_at", PAPER, "§6; Table 5", SAYS_OBJECT, "aa_topk", AT_REG, "AT", "ifia_topk",
              margin_reason=ORDERING + _numbers(dataset, AT_REG, "AT", "aa_topk", "Table 5"), dataset=key),
        Claim(f"{pre}.rarreg_aatopk_vs_rar", PAPER, "§6; Table 5", SAYS_OBJECT, "aa_topk", RAR_REG, "RAR",
              "ifia_topk", margin_reason=ORDERING + _numbers(dataset, RAR_REG, "RAR", "aa_topk", "Table 5"),
              dataset=key),
    )


def sweep_claims(dataset: str) -> tuple:
    """GALI Fig. 5 / §6 "Effect of λ": robustness rises from λ = 0 to λ ≈ 10⁻³ and falls after it (at 10⁻², the
    end of GALI's search interval), on PGD accuracy (adversarial) and top-k ∩ (attributional)."""
    key, pre = sweep_key(dataset), f"gali.{dataset}.lambda"
    best, none, high = sweep_row(1e-3), sweep_row(0.0), sweep_row(1e-2)
    claims = []
    for metric, under, tag in (("accuracy", "pgd", "pgd"), ("topk_intersection", "ifia_topk", "topk")):
        claims.append(Claim(f"{pre}.{tag}_rises", PAPER, "§6; Fig. 5", SAYS_LAMBDA, metric, best, none, under,
                            margin_reason=ORDERING + "; 'improves with increasing λ' from λ = 0", dataset=key))
        claims.append(Claim(f"{pre}.{tag}_drops", PAPER, "§6; Fig. 5", SAYS_LAMBDA, metric, best, high, under,
                            margin_reason=ORDERING + "; 'then drops' by λ = 0.01", dataset=key))
    return tuple(claims)


#: every claim of the chapter, per dataset (a claim whose rows were not run is skipped by the claims engine)
CLAIMS = tuple(c for d in GALI_DATASETS
               for c in table1_claims(d) + table3_claims(d) + table4_claims(d) + table5_claims(d) + sweep_claims(d))

#: the fine-tune rule, fixed before any run: a claim comparing a teacher-aligned fine-tune with its own start model
#: (AT-start + Regularizer vs AT, RAR-start + Regularizer vs RAR) or two fine-tunes of one start (the λ sweep) is
#: judged only when the fine-tune saw at least this many epochs' worth of the dataset's full training set with its
#: own objective; below that the two sides are nearly the same weights and the claim is close to true (or false)
#: by construction, so its numbers are shown without a verdict (GALI: 100k × 32 images ≈ 53 epochs of F-MNIST)
MIN_FINE_TUNE_EPOCHS = 1.0


def claim_dataset(claim: Claim) -> str:
    """The dataset a claim is measured on (its key may be the Table 4, Table 5 or λ-sweep key of that dataset)."""
    return next(d for d in GALI_DATASETS if claim.dataset in (*table_keys(d), sweep_key(d)))


def compares_with_start(claim: Claim) -> bool:
    """Does ``claim`` compare a fine-tune with its own start model, or two fine-tunes of one start?"""
    pairs = ((AT_REG, "AT"), (RAR_REG, "RAR"))
    return claim.dataset == sweep_key(claim_dataset(claim)) or (claim.a, claim.b) in pairs


def fine_tune_epochs(dataset: str, scale: str) -> float:
    """Epoch-equivalents of ``dataset``'s full training set that the teacher-aligned fine-tune sees with its own
    objective at ``scale`` (its epochs × training images / the full set)."""
    config = zoo_config(dataset, "teacher_aligned", scale)
    n = len(load_dataset(dataset, "train"))
    return config.epochs * (config.n_train or n) / n


def fine_tune_too_short(claim: Claim, scale: str) -> Optional[str]:
    """Why the fine-tune rule (:data:`MIN_FINE_TUNE_EPOCHS`) leaves ``claim`` unjudged at ``scale``; None when it
    is judged."""
    if not compares_with_start(claim):
        return None
    dataset = claim_dataset(claim)
    epochs = fine_tune_epochs(dataset, scale)
    if epochs >= MIN_FINE_TUNE_EPOCHS:
        return None
    return (f"not judged: the fine-tune saw {epochs:.2g} epochs' worth of {dataset}'s training images (the rule, "
            f"fixed before any run, asks ≥ {MIN_FINE_TUNE_EPOCHS:g}): a fine-tune this short barely moves its "
            f"start model, so the comparison is close to decided by construction")


# -------------------------------------------------------------------------------------- AA scores per image

def aa_values(report, reference: torch.Tensor, goodness: bool = False) -> dict:
    """Per attacked image of ``report`` (a :class:`~rattrlib.attacks.RobustnessReport` with its result kept):
    ``{metric: (values, image ids)}`` of GALI's AA-Top-K, AA-Kendall and AA-Spearman (eq. 10–12) of the clean vs
    perturbed maps against ``reference`` (one map or bool object mask per attacked image); with ``goodness`` the
    clean map on both sides (similarity 1), i.e. the goodness factor alone (GALI Table 3)."""
    result = report.result
    if result is None:
        raise ValueError(f"{report.summary.index[0]}: no test image was classified correctly, so none was "
                         f"attacked; raise n_eval")
    if reference.shape != result.clean_map.shape:
        raise ValueError(f"reference has shape {tuple(reference.shape)}, the maps {tuple(result.clean_map.shape)}")
    images = np.flatnonzero(report.per_image["correct"].to_numpy())
    clean = result.clean_map
    other = clean if goodness else result.adv_map
    out = {}
    for metric, fn in AA_METRICS.items():
        extra = (result.k,) if metric == "aa_topk" else ()
        out[metric] = (fn(reference, clean, other, *extra).numpy(), images)
    return out


def measure_aa(measurements: Measurements, evaluation: ModelEvaluation, reference: torch.Tensor, row: str,
               seed: int, dataset: str) -> Measurements:
    """Add the AA metrics of the IFIA run (under ``ifia_topk``) and of the random-sign run (under ``random``: the
    same ε, images and reference) to ``measurements``, and the unattacked ones (the goodness factors) under
    :data:`GOODNESS`."""
    if evaluation.ifia.result is None:
        raise ValueError(f"{row} (seed {seed}, {dataset}): no test image was classified correctly, so none was "
                         f"attacked and there are no AA scores; raise n_eval")
    ifia_images = np.flatnonzero(evaluation.ifia.per_image["correct"].to_numpy())
    random_images = np.flatnonzero(evaluation.random.per_image["correct"].to_numpy())
    if not np.array_equal(ifia_images, random_images):
        raise ValueError(f"{row}: the IFIA and random runs attacked different images")
    runs = (("ifia_topk", evaluation.ifia, False), (RANDOM, evaluation.random, False),
            (GOODNESS, evaluation.ifia, True))
    for under, report, goodness in runs:
        for metric, (values, images) in aa_values(report, reference, goodness).items():
            measurements.add(row, under, metric, seed, values, dataset=dataset, images=images)
    return measurements


# ---------------------------------------------------------------------------------------------- the results

#: Table 1's columns: (metric, condition) → (header, GALI Table 1 column or None)
TABLE1_COLUMNS = {
    ("accuracy", "clean"): (column_label("accuracy", "clean"), "clean_accuracy"),
    ("accuracy", "pgd"): (column_label("accuracy", "PGD-40"), "adversarial_accuracy"),
    ("topk_intersection", None): (column_label("topk_intersection"), "topk"),
    ("kendall_tau", None): (column_label("kendall_tau"), "kendall"),
    ("spearman_rho", None): (column_label("spearman_rho"), None),
    ("aa_topk", None): (column_label("aa_topk"), "aa_topk"),
    ("aa_kendall", None): (column_label("aa_kendall"), "aa_kendall"),
    ("aa_spearman", None): (column_label("aa_spearman"), None),
}
#: Table 3's columns (goodness: the clean map against the AT teacher's, nothing perturbed)
TABLE3_COLUMNS = {
    ("aa_topk", GOODNESS): ("Top-K ∩ with the AT map (%)", "goodness_topk"),
    ("aa_kendall", GOODNESS): ("Kendall τ with the AT map", "goodness_kendall"),
    ("aa_spearman", GOODNESS): ("Spearman ρ with the AT map", "goodness_spearman"),
}
#: Table 4's columns (a TRADES model's map as reference)
TABLE4_COLUMNS = {
    ("aa_topk", None): (column_label("aa_topk"), "aa_topk"),
    ("aa_kendall", None): (column_label("aa_kendall"), "aa_kendall"),
    ("aa_spearman", None): (column_label("aa_spearman"), None),
    ("aa_topk", GOODNESS): ("goodness: clean top-k with the TRADES map (%)", None),
}
#: Table 5's columns (object as reference)
TABLE5_COLUMNS = {
    ("aa_topk", None): (column_label("aa_topk"), "aa_topk"),
    ("aa_kendall", None): (column_label("aa_kendall"), "aa_kendall"),
    ("aa_spearman", None): (column_label("aa_spearman"), None),
    ("aa_topk", GOODNESS): ("goodness: clean top-k on the object (%)", None),
}
#: the λ sweep's columns
_CONDITION = {"clean": "clean", "pgd": "PGD-40", "ifia_topk": "IFIA", RANDOM: "random"}
SWEEP_COLUMNS = {(metric, under): column_label(metric, _CONDITION[under])
                 for metric, under in [("accuracy", "clean"), ("accuracy", "pgd"), ("topk_intersection", "ifia_topk"),
                                       ("topk_intersection", RANDOM), ("kendall_tau", "ifia_topk"),
                                       ("kendall_tau", RANDOM), ("aa_topk", "ifia_topk"), ("aa_topk", RANDOM),
                                       ("aa_kendall", "ifia_topk"), ("aa_kendall", RANDOM)]}

NOISE = "  ↳ random ε-noise"


def _paper_value(metric: str, published: float) -> str:
    """GALI's percentages are in display units already; correlations as they are."""
    return f"{published:.1f}" if display_scale(metric) != 1.0 else f"{published:.3f}"


@dataclasses.dataclass
class GALIResult:
    """Every (dataset, row, seed) evaluation of the chapter and of its λ sweep ((λ, seed)), the per-image
    measurements the claims are judged on, and the seconds each model took in this run (training included)."""

    settings: GALISettings
    evaluations: dict
    sweep: dict
    measurements: Measurements
    seconds: dict

    def summary(self) -> pd.DataFrame:
        """Per (dataset, row, condition, metric): ``mean`` over seeds of the per-seed means, ``seed_std`` (std
        of the per-seed means) and ``n_seeds`` — what the tables show (the claims get their intervals from
        :func:`rattrlib.claims.judge`)."""
        if not hasattr(self, "_summary"):
            self._summary = indexed_summary(self.measurements)
        return self._summary

    def _table(self, key: str, rows, columns: dict, paper: Optional[pd.DataFrame], names: dict) -> pd.DataFrame:
        """Paper | ours per row (mean ± seed spread), with a random-noise row under each model for every
        similarity column (attacked by random sign noise of the same ε instead of IFIA) when the table has one."""
        summary = self.summary()
        attacked = any(under is None for _, under in columns)
        out = {}
        for row in rows:
            for noise in (False, True) if attacked else (False,):
                line = {}
                for (metric, under), (header, theirs) in columns.items():
                    condition = under or (RANDOM if noise else "ifia_topk")
                    if noise and under is not None:
                        line[(header, "ours")] = ""
                    else:
                        line[(header, "ours")] = mean_spread(metric, summary.loc[(key, row, condition, metric)])
                    if theirs is not None:
                        name = names.get(row, row)
                        published = (paper.loc[name, theirs] if paper is not None and name in paper.index
                                     and not noise else None)
                        line[(header, "paper")] = "–" if published is None else _paper_value(metric, published)
                out[row + (NOISE if noise else "")] = line
        frame = pd.DataFrame(out).T
        frame.columns = pd.MultiIndex.from_tuples(frame.columns)
        order = [(h, s) for h, theirs in columns.values() for s in (("paper", "ours") if theirs else ("ours",))]
        frame = frame[order]
        frame.index.name = "model"
        return frame

    def table1_caption(self, dataset: str) -> str:
        """The line above Table 1 of ``dataset``: which block of GALI's Table 1 it is compared with."""
        block = "F-MNIST" if PAPER_DATASET[dataset] == "fashion_mnist" else "MNIST, full 60k/10k"
        return f"{dataset}  (paper: GALI Table 1, {block})"

    def table1(self, dataset: str) -> pd.DataFrame:
        """GALI Table 1 | ours (the AT teacher's IG map as reference of the AA metrics), with IFIA's success rate
        per model (GALI reports none; a random-noise row has none)."""
        paper = PAPER_DATASET[dataset]
        frame = self._table(dataset, ROWS, TABLE1_COLUMNS, gali_table1(paper), TABLE1_NAMES[paper])
        frame[(SUCCESS, "paper")] = ["–" if row in ROWS else "" for row in frame.index]
        frame[(SUCCESS, "ours")] = [success_cell(self.evaluations, dataset, row, self.settings.seeds)
                                    if row in ROWS else "" for row in frame.index]
        return frame

    def table3(self, dataset: str) -> pd.DataFrame:
        """GALI Table 3 | ours: the goodness of each model's clean IG map against the AT teacher's (AT itself is
        left out: its own reference, goodness 1 by construction)."""
        return self._table(dataset, [AT_REG, RAR_REG, "RAR", "Nat"], TABLE3_COLUMNS,
                           gali_table3(PAPER_DATASET[dataset]), {})

    def table4(self, dataset: str) -> pd.DataFrame:
        """GALI Table 4 | ours (a TRADES model's IG map as reference), with a random-noise row per model."""
        return self._table(trades_key(dataset), [AT_REG, RAR_REG, "RAR", "AT", "Nat"], TABLE4_COLUMNS,
                           gali_table4(PAPER_DATASET[dataset]), APPENDIX_NAMES)

    def table5(self, dataset: str) -> pd.DataFrame:
        """GALI Table 5 | ours (the object mask as reference), with a random-noise row per model."""
        return self._table(object_key(dataset), [AT_REG, RAR_REG, "RAR", "AT", "Nat"], TABLE5_COLUMNS,
                           gali_table5(PAPER_DATASET[dataset]), APPENDIX_NAMES)

    def sweep_table(self) -> pd.DataFrame:
        """The λ sweep: one row per λ (mean ± seed spread over the sweep's seeds)."""
        summary = self.summary()
        key = sweep_key(self.settings.sweep_dataset)
        frame = pd.DataFrame({sweep_row(lam): {header: mean_spread(metric, summary.loc[(key, sweep_row(lam), under,
                                                                                         metric)])
                                               for (metric, under), header in SWEEP_COLUMNS.items()}
                              for lam in self.settings.lams}).T
        frame.index.name = "AT-start + Regularizer"
        return frame

    def plot_sweep(self):
        """GALI Fig. 5: clean and PGD accuracy, top-k ∩ and AA top-k (left, %), Kendall τ and AA Kendall (right)
        against λ, each attributional one with its random baseline (dashed), means over the sweep's seeds with
        their spread."""
        summary = self.summary()
        key = sweep_key(self.settings.sweep_dataset)
        lams = self.settings.lams
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
        panels = ([("accuracy", "clean"), ("accuracy", "pgd"), ("topk_intersection", "ifia_topk"),
                   ("topk_intersection", RANDOM), ("aa_topk", "ifia_topk"), ("aa_topk", RANDOM)],
                  [("kendall_tau", "ifia_topk"), ("kendall_tau", RANDOM), ("aa_kendall", "ifia_topk"),
                   ("aa_kendall", RANDOM)])
        for ax, panel in zip(axes, panels):
            for metric, under in panel:
                stats = [summary.loc[(key, sweep_row(lam), under, metric)] for lam in lams]
                scale = display_scale(metric)
                ax.errorbar(range(len(lams)), [scale * s["mean"] for s in stats],
                            yerr=[scale * s["seed_std"] for s in stats], marker="o", capsize=3,
                            label=SWEEP_COLUMNS[(metric, under)], linestyle="--" if under == RANDOM else "-")
            ax.set_xticks(range(len(lams)), [f"{lam:g}" for lam in lams])
            ax.set_xlabel("λ (saliency-matching weight)")
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: off the data
        axes[0].set_ylabel("%")
        axes[1].set_ylabel("correlation")
        seeds = self.settings.sweep_seed_list
        fig.suptitle(f"AT-start + Regularizer on {self.settings.sweep_dataset}: effect of λ "
                     f"({len(seeds)} seed{'s' if len(seeds) > 1 else ''})")
        fig.tight_layout()
        return fig

    def plot_maps(self, dataset: str, seed: Optional[int] = None):
        """GALI Fig. 3/4: IG maps before / after the IFIA attack for AT, RAR and the two regularised models."""
        seed = self.settings.seeds[0] if seed is None else seed
        shown = {row: self.evaluations[dataset, row, seed] for row in ("AT", "RAR", RAR_REG, AT_REG)}
        fig = plot_maps_before_after(shown, n_show=self.settings.n_show)
        fig.suptitle(f"{dataset}, seed {seed}: IG map before / after the IFIA top-k attack "
                     f"(ε = {self.settings.protocol(dataset).eps:g})", y=1.02)
        return fig

    def protocol_note(self, dataset: str) -> str:
        """What differs from GALI's evaluation (appendix 10.2 / 10.3), and what the tables rest on."""
        p = self.settings.protocol(dataset)
        pgd = eval_pgd(dataset)
        seeds = self.settings.seeds
        data = ("MNIST-10k (an 8k train / 2k test subset of MNIST; GALI: full MNIST)" if dataset == "mnist10k"
                else dataset)
        return (f"Protocol ({dataset}): data {data}; IFIA top-k on IG with ε = {p.eps:g}, α = {p.alpha:g}, "
                f"{p.steps} steps in {p.precision} (GALI 100; maps and scores in fp32), k = {p.k} (GALI: {TOPK[dataset]}), IG m = {p.ig_steps}, softplus "
                f"β = {p.beta:g}, on {p.n_eval} stratified test images per seed, attacked where classified "
                f"correctly; IFIA success is the share of attacked images where some iterate kept the label, and an "
                f"image where none did counts with its clean map (top-k ∩ 100 %); '↳ random ε-noise' rows: random "
                f"sign noise of the same ε on the same images, scored with the same metrics and references (GALI "
                f"reports no random baseline). AA metrics (eq. 10–12): "
                f"Table 1 takes the AT teacher's IG map of the same seed as reference (so AT's AA scores equal its "
                f"plain ones; Table 3 is their goodness factor alone, on the clean maps), Table 4 the IG map of the "
                f"TRADES model of the same seed (rattr's zoo TRADES, trained like the AT teacher), Table 5 the object "
                f"mask (intensity > {self.settings.mask_threshold:g}). "
                f"PGD-{pgd['steps']} (α = {pgd['alpha']:g}, random start) on {p.n_pgd or 'all'} test images "
                f"(GALI: PGD-100); clean accuracy on {p.n_clean or 'all'}. Ours: mean ± std over {len(seeds)} "
                f"training seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}).")

    def table_note(self, dataset: str, table: str) -> str:
        """The protocol line under GALI's Table 3, 4 or 5 of ``dataset`` (what Table 1's note does not say)."""
        p, seeds = self.settings.protocol(dataset), ", ".join(map(str, self.settings.seeds))
        common = (f"Ours: {dataset}, mean ± std over seeds {seeds}, the IFIA attack and images of Table 1 "
                  f"({p.n_eval} test images per seed, attacked where classified correctly)")
        notes = {
            "Table 3": (f"Ours: {dataset}, mean ± std over seeds {seeds}; each model's clean IG map against the AT "
                        f"teacher's of the same seed, on the {p.n_eval} test images of Table 1 classified "
                        f"correctly; nothing is perturbed, so there is no random row. Paper: GALI appendix Table 3 "
                        f"(Top-K as a fraction there, in % here)."),
            "Table 4": (f"{common}; reference R: the IG map of the zoo's TRADES model of the same seed; "
                        f"'↳ random ε-noise' rows: random sign noise of the same ε scored against the same R. "
                        f"Paper: GALI appendix Table 4 (TRADES as reference)."),
            "Table 5": (f"{common}; reference R: the object mask (intensity > {self.settings.mask_threshold:g}); "
                        f"'↳ random ε-noise' rows: random sign noise of the same ε scored against the same mask. "
                        f"Paper: GALI appendix Table 5."),
        }
        if table not in notes:
            raise ValueError(f"table={table!r}: one of {sorted(notes)}")
        return f"Protocol ({table}): {notes[table]}"

    def sweep_note(self) -> str:
        """The protocol line under the λ sweep's table."""
        s = self.settings
        p, seeds = s.protocol(s.sweep_dataset), s.sweep_seed_list
        return (f"Protocol (λ sweep): AT-start + Regularizer on {s.sweep_dataset} with λ ∈ "
                f"{{{', '.join(f'{lam:g}' for lam in s.lams)}}}, seed{'s' if len(seeds) > 1 else ''} "
                f"{', '.join(map(str, seeds))} (mean ± std where several); the attack, images and AA reference (the "
                f"AT teacher's IG map) of Table 1, {p.n_eval} test images; random columns: random sign noise of the "
                f"same ε on the same images. Paper: GALI Fig. 5 (curves without numbers).")

    def budget(self, dataset: str, seeds: Optional[tuple] = None, rows: tuple = (AT_REG, RAR_REG)) -> str:
        """The training budget the verdicts on ``dataset`` rest on: the regularised models' images seen against
        GALI's (appendix 10.2 / 10.3)."""
        scale, seeds = self.settings.scale, seeds or self.settings.seeds
        configs = {row: zoo_config(dataset, ROWS[row], scale, seed=seeds[0], overrides=row_overrides(dataset, row,
                                                                                                     scale))
                   for row in rows}
        paper = PAPER_DATASET[dataset]
        fine_tune, teacher = configs[rows[0]], zoo_config(dataset, "pgd_at", scale)
        steps, batch = PAPER_STEPS[paper]
        return (f"[{dataset}] " + budget_sentence(configs, PAPER_IMAGES[paper], PAPER, seeds)
                + f" Fine-tuned from the AT{' / RAR' if RAR_REG in rows else ''} model of each seed: {_steps(fine_tune)} Adam steps of batch "
                  f"{fine_tune.batch_size} at lr {fine_tune.lr:g} (GALI: {steps // 1000}k steps of batch {batch} "
                  f"at lr 1e-4); the AT teacher: {teacher.epochs} ep. on {teacher.n_train or 'all'} images.")

    def sweep_budget(self) -> str:
        """The training budget of the λ sweep (AT-start + Regularizer per λ, on the sweep's seeds)."""
        return self.budget(self.settings.sweep_dataset, self.settings.sweep_seed_list, (AT_REG,))

    def verdicts(self, dataset: Optional[str] = None) -> list:
        """The claims whose rows were run, judged raw and net of the random baseline; ``dataset`` selects one
        dataset's (Tables 1, 3, 4, 5 and, on the sweep dataset, Fig. 5)."""
        if not hasattr(self, "_verdicts"):
            verdicts = []
            run = {*self.settings.datasets, self.settings.sweep_dataset}
            judged = [c for c in CLAIMS if claim_dataset(c) in run
                      and fine_tune_too_short(c, self.settings.scale) is None]
            for d in self.settings.datasets:
                budget = self.budget(d)
                mine = [c for c in judged if c.dataset in table_keys(d)]
                verdicts += judge_all(mine, self.measurements, budget=budget)
            d = self.settings.sweep_dataset
            lam_claims = [c for c in judged if c.dataset == sweep_key(d)]
            verdicts += judge_all(lam_claims, self.measurements,
                                  budget=self.sweep_budget())
            self._verdicts = verdicts
        if dataset is None:
            return self._verdicts
        return [v for v in self._verdicts if v.claim.dataset in table_keys(dataset)]

    def withheld(self) -> list:
        """The measured claims that the fine-tune rule (:data:`MIN_FINE_TUNE_EPOCHS`) leaves without a verdict."""
        have = set(zip(*(self.measurements.frame[k] for k in ("dataset", "row", "under", "metric"))))
        return [c for c in CLAIMS
                if {(c.dataset, c.a, c.under, c.metric), (c.dataset, c.b, c.side_b_under, c.metric)} <= have
                and fine_tune_too_short(c, self.settings.scale)]

    def withheld_table(self, part: str = "tables") -> pd.DataFrame:
        """The claims left without a verdict by the fine-tune rule — of Tables 1 and 3–5 (``part="tables"``) or of the
        λ sweep (``"sweep"``): GALI's wording, our means of both sides (mean over seeds of the per-seed means) and
        why there is no verdict."""
        if part not in ("tables", "sweep"):
            raise ValueError(f"part={part!r} must be 'tables' or 'sweep'")
        frame = self.measurements.frame
        sweeps = {sweep_key(d) for d in GALI_DATASETS}
        claims = [c for c in self.withheld() if (c.dataset in sweeps) == (part == "sweep")]

        def mean(claim: Claim, row: str, under: str) -> str:
            side = frame[(frame["dataset"] == claim.dataset) & (frame["row"] == row) & (frame["under"] == under)
                         & (frame["metric"] == claim.metric)]
            return format_value(claim.metric, side.groupby("seed")["value"].mean().mean())

        rows = {f"{c.where}: {c.statement()} [{c.dataset}]": {
                    "paper says": f"“{c.says}”", "ours: A vs B": f"{mean(c, c.a, c.under)} vs "
                                                                  f"{mean(c, c.b, c.side_b_under)}",
                    "verdict": fine_tune_too_short(c, self.settings.scale)} for c in claims}
        if not rows:  # an empty table would render as a bare header
            rows = {"(none)": {"paper says": "–", "ours: A vs B": "–",
                               "verdict": f"no claim of the {part} is withheld at this scale"}}
        table = pd.DataFrame.from_dict(rows, orient="index", columns=["paper says", "ours: A vs B", "verdict"])
        table.index.name = "claim"
        return table

    def sweep_verdicts(self) -> list:
        return [v for v in self.verdicts() if v.claim.dataset == sweep_key(self.settings.sweep_dataset)]

    def publish(self):
        """Save every verdict for the book's front page."""
        return publish_verdicts(self.verdicts(), CHAPTER, self.settings.scale, declared=declared_claims(
            CLAIMS, {*self.settings.datasets, *GALISettings.PRESETS["paper"]["datasets"]}))

    def seconds_table(self) -> pd.DataFrame:
        """Seconds to train (or load) and evaluate each model in this run, per seed ("–" where a row has no such
        seed: the λ sweep runs on the first)."""
        frame = pd.Series(self.seconds).unstack(-1).round(1)
        frame.columns.name = "seed"
        return frame.astype(object).where(frame.notna(), "–")


def _steps(config) -> int:
    """Optimiser steps of a training config (its epochs × batches of its training subset)."""
    n = config.n_train or len(load_dataset(config.dataset, "train"))
    return config.epochs * -(-n // config.batch_size)


def _evaluate_row(settings: GALISettings, dataset: str, row: str, seed: int, device: str, progress: bool,
                  overrides: Optional[dict] = None) -> ModelEvaluation:
    return evaluate_zoo_model(dataset, ROWS[row], settings.protocol(dataset), scale=settings.scale, seed=seed,
                              device=device, progress=progress, overrides=overrides)


def evaluate(settings: GALISettings, progress: bool = False) -> GALIResult:
    """Train (or load) and evaluate every (dataset, row, seed) of ``settings`` and the λ sweep (cached per model,
    protocol and seed); collect per image the accuracies, top-k ∩, τ, ρ under IFIA and random noise, and the AA
    metrics against the AT teacher (key ``dataset``), a TRADES model (key :func:`trades_key`) and the object (key
    :func:`object_key`)."""
    device = resolve_device(settings.device)
    measurements, evaluations, sweep, seconds = Measurements(), {}, {}, {}
    metrics = ("topk_intersection", "kendall_tau", "spearman_rho")
    for dataset in settings.datasets:
        protocol = settings.protocol(dataset)
        for seed in settings.seeds:
            teacher, _ = get_model(dataset, "pgd_at", settings.scale, seed=seed, device=device, progress=progress)
            trades, _ = get_model(dataset, "trades", settings.scale, seed=seed, device=device, progress=progress)
            for row in ROWS:
                start = time.perf_counter()
                ev = _evaluate_row(settings, dataset, row, seed, device, progress,
                                   row_overrides(dataset, row, settings.scale))
                seconds[dataset, row, seed] = time.perf_counter() - start
                evaluations[dataset, row, seed] = ev
                ev.measure(measurements, row, seed, dataset=dataset, metrics=metrics)
                measure_aa(measurements, ev, reference_maps(ev, teacher, protocol), row, seed, dataset)
                measure_aa(measurements, ev, reference_maps(ev, trades, protocol), row, seed, trades_key(dataset))
                measure_aa(measurements, ev, object_masks(ev, settings.mask_threshold), row, seed,
                           object_key(dataset))
    dataset, key = settings.sweep_dataset, sweep_key(settings.sweep_dataset)
    for seed in settings.sweep_seed_list:
        teacher, _ = get_model(dataset, "pgd_at", settings.scale, seed=seed, device=device, progress=progress)
        for lam in settings.lams:
            start = time.perf_counter()
            ev = _evaluate_row(settings, dataset, AT_REG, seed, device, progress, {"lam": lam})
            seconds[key, sweep_row(lam), seed] = time.perf_counter() - start
            sweep[lam, seed] = ev
            ev.measure(measurements, sweep_row(lam), seed, dataset=key)
            measure_aa(measurements, ev, reference_maps(ev, teacher, settings.protocol(dataset)), sweep_row(lam),
                       seed, key)
    return GALIResult(settings, evaluations, sweep, measurements, seconds)


__all__ = ["AA_METRICS", "CLAIMS", "MIN_FINE_TUNE_EPOCHS", "compares_with_start", "fine_tune_epochs",
           "fine_tune_too_short", "GALIResult", "GALISettings", "GALI_DATASETS", "PAPER_IMAGES", "ROWS", "TOPK",
           "aa_values", "evaluate", "measure_aa", "object_key", "row_overrides", "sweep_claims",
           "sweep_key", "sweep_row", "table1_claims", "table3_claims", "table4_claims", "table5_claims", "table_keys",
           "trades_key"]
