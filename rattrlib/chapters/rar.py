"""Chapter 02, Robust Attribution Regularization (RAR; Chen, Wu, Rastogi, Liang & Jha, NeurIPS 2019; the blog
post in ``papers/``): its settings, its claims, and what the notebook shows.

The blog's main findings are judged with the claims engine (:mod:`rattrlib.claims`) on the zoo's natural,
PGD-AT, IG-NORM and IG-SUM-NORM models (one per training seed) under the RAR/GALI evaluation
(:func:`rattrlib.evaluation.evaluate_zoo_model`): clean and PGD-40 accuracy, top-k ∩ and Kendall's τ of the IG map
under the IFIA top-k attack, and the same under random sign noise of the same ε (the random baseline). The
published numbers are GALI's Table 1 (:func:`rattrlib.published.gali_table1`), which re-reports RAR's models.

>>> settings = RARSettings.resolve("cpu")
>>> result = evaluate(settings)            # trains (or loads) and evaluates every model, cached
>>> result.table("fashion_mnist")          # paper | ours, mean ± seed spread, random-baseline columns
>>> claims_table(result.verdicts())
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Optional

import pandas as pd

from rattrlib.chapters._common import (METHOD_NAMES, PAPER_DATASET, SUCCESS, TOPK, IFIASettings, budget_sentence,
                                      column_label, declared_claims, display_scale, mean_spread, publish_verdicts,
                                      success_cell)
from rattrlib.claims import RANDOM, Claim, Measurements, judge_all
from rattrlib.config import resolve_device
from rattrlib.data import load_dataset
from rattrlib.evaluation import IFIAProtocol, ModelEvaluation, evaluate_zoo_model
from rattrlib.published import gali_table1
from rattrlib.settings import choice, int_check, optional, sequence_of, setting
from rattrlib.zoo import eval_pgd, get_model, zoo_config

CHAPTER = "02_rar"
PAPER = "RAR"

#: datasets of the chapter (MNIST family: RAR's MNIST and Fashion-MNIST experiments)
RAR_DATASETS = ("fashion_mnist", "mnist10k", "mnist")
#: the rows: natural, Madry's PGD-AT, and RAR's two variants
RAR_METHODS = ("natural", "pgd_at", "ig_norm", "ig_sum_norm")
RAR_VARIANTS = ("ig_norm", "ig_sum_norm")

#: RAR's MNIST / Fashion-MNIST configs: 100k steps × batch 50 on 60k images (the natural model: 25k steps)
PAPER_IMAGES = 100_000 * 50
PAPER_IMAGES_NATURAL = 25_000 * 50

#: our rows → GALI Table 1's ("RAR" does not say which variant; placed beside IG-SUM-NORM, the blog's)
PAPER_ROWS = {"natural": "Nat", "pgd_at": "AT", "ig_sum_norm": "RAR"}

#: the table's columns: (metric, condition) → header
_CONDITION = {"clean": "clean", "pgd": "PGD-40", "ifia_topk": "IFIA", RANDOM: "random"}
COLUMNS = {(metric, under): column_label(metric, _CONDITION[under])
           for metric, under in [("accuracy", "clean"), ("accuracy", "pgd"), ("topk_intersection", "ifia_topk"),
                                 ("topk_intersection", RANDOM), ("kendall_tau", "ifia_topk"), ("kendall_tau", RANDOM)]}
#: the GALI Table 1 column of each (metric, condition); the paper has no random baseline
PAPER_COLUMNS = {("accuracy", "clean"): "clean_accuracy", ("accuracy", "pgd"): "adversarial_accuracy",
                 ("topk_intersection", "ifia_topk"): "topk", ("kendall_tau", "ifia_topk"): "kendall"}


@dataclasses.dataclass(frozen=True)
class RARSettings(IFIASettings):
    """Settings of chapter 02 (every papermill parameter; None = the scale's preset, or for the attack's ε, α,
    steps, IG points and k the dataset's RAR/GALI value)."""

    datasets: tuple = setting(sequence_of(choice(*RAR_DATASETS), distinct="dataset"),
                              "datasets (fashion_mnist, mnist10k offline; mnist downloads)")
    methods: tuple = setting(sequence_of(choice(*RAR_METHODS), distinct="method"), "rows: natural, pgd_at, ig_norm, ig_sum_norm")
    k: Optional[int] = setting(optional(int_check(1, 28 * 28)), "top-k; None: the dataset's (GALI: F-MNIST 100, MNIST 200)")
    n_show: int = setting(int_check(1, 10), "images in the before/after figure")

    PRESETS = {
        "smoke": {"seeds": (0, 1), "datasets": ("fashion_mnist",), "methods": RAR_METHODS, "eps": None,
                  "alpha": None, "attack_steps": None, "ig_steps": None, "k": None, "beta": 10.0, "n_eval": 8,
                  "n_show": 2},
        # three seeds of every model the claims rest on; Fashion-MNIST only, to keep the chapter near its old
        # cold time (MNIST-10k with three seeds would double it: add it with datasets=[..., "mnist10k"])
        "cpu": {"seeds": (0, 1, 2), "datasets": ("fashion_mnist",), "methods": RAR_METHODS, "eps": None,
                "alpha": None, "attack_steps": None, "ig_steps": None, "k": None, "beta": 10.0, "n_eval": 100,
                "n_show": 3},
        "paper": {"seeds": (0, 1, 2), "datasets": ("fashion_mnist", "mnist"), "methods": RAR_METHODS, "eps": None,
                  "alpha": None, "attack_steps": None, "ig_steps": None, "k": None, "beta": 10.0, "n_eval": 1000,
                  "n_show": 3},
    }

    def __post_init__(self):
        super().__post_init__()
        self.protocols()  # the attack settings of every dataset are valid, before any compute

    def protocol(self, dataset: str) -> IFIAProtocol:
        """The RAR/GALI evaluation of ``dataset`` at this scale, with this chapter's overrides (k per dataset)."""
        return self.ifia(dataset, self.k or TOPK[dataset])

    def protocols(self) -> dict:
        return {d: self.protocol(d) for d in self.datasets}


# ---------------------------------------------------------------------------------------------------- claims

FINDINGS = "blog, main findings"
SAYS_ACCURACY = "Compared with naturally trained models, RAR only results in a very small drop in test accuracy"
SAYS_ROBUST_PREDICTION = ("Our models yield comparable prediction robustness (sometimes even better), compared with "
                          "adversarially trained models")
SAYS_BETTER_THAN_NATURAL = "our method gives significantly better attribution robustness"
SAYS_BETTER_THAN_AT = "compared with adversarially trained models … while consistently improving attribution robustness"


def published_gap(dataset: str, metric_column: str, better: str, worse: str) -> float:
    """GALI Table 1's ``better − worse`` on ``metric_column`` for the block of ``dataset``, as a fraction."""
    table = gali_table1(PAPER_DATASET[dataset])
    return (table.loc[better, metric_column] - table.loc[worse, metric_column]) / 100


def whole_points_up(gap: float) -> float:
    """A gap (fraction) rounded up to whole percentage points, so the paper's own result sits inside the margin."""
    return math.ceil(round(100 * gap, 6)) / 100


def accuracy_claims(dataset: str, variant: str) -> tuple:
    """Blog findings 1 and 3 on accuracy, with margins read from the paper's own numbers: the authors call the
    drops they publish "very small" and "comparable", so a drop up to theirs (whole points, rounded up) keeps
    the claim; a larger one breaks it."""
    drop = whole_points_up(published_gap(dataset, "clean_accuracy", "Nat", "RAR"))
    deficit = whole_points_up(published_gap(dataset, "adversarial_accuracy", "AT", "RAR"))
    block = "F-MNIST" if PAPER_DATASET[dataset] == "fashion_mnist" else "MNIST"
    return (
        Claim(f"rar.{dataset}.clean_drop.{variant}", PAPER, f"{FINDINGS} (1)", SAYS_ACCURACY, "accuracy",
              METHOD_NAMES[variant], METHOD_NAMES["natural"], "clean", relation="not_worse", margin=drop, dataset=dataset,
              margin_reason=f"'very small drop': the drop published for RAR vs Nat in GALI's re-report ({block}, "
                            f"GALI Table 1: its RAR row is IG-SUM-NORM), rounded up to whole points"
                            + ("" if variant == "ig_sum_norm" else f" — GALI reports no {variant}, so IG-SUM-NORM's "
                               f"drop is applied to it too")),
        Claim(f"rar.{dataset}.pgd_vs_at.{variant}", PAPER, f"{FINDINGS} (3)", SAYS_ROBUST_PREDICTION, "accuracy",
              METHOD_NAMES[variant], METHOD_NAMES["pgd_at"], "pgd", relation="not_worse", margin=deficit, dataset=dataset,
              margin_reason=f"'comparable (sometimes even better)': one-sided; the PGD-accuracy deficit published "
                            f"for RAR vs AT in GALI's re-report ({block}, GALI Table 1: its RAR row is IG-SUM-NORM), "
                            f"rounded up to whole points"
                            + ("" if variant == "ig_sum_norm" else f" — GALI reports no {variant}, so IG-SUM-NORM's "
                               f"deficit is applied to it too")),
    )


def attribution_claims(dataset: str, variant: str) -> tuple:
    """Blog findings 2 and 3 on attribution robustness: better than natural and than PGD-AT under IFIA top-k
    (orderings, margin 0), on top-k ∩ and Kendall's τ — judged raw and net of the random baseline."""
    claims = []
    for metric in ("topk_intersection", "kendall_tau"):
        claims.append(Claim(f"rar.{dataset}.{metric}_vs_natural.{variant}", PAPER, f"{FINDINGS} (2)",
                            SAYS_BETTER_THAN_NATURAL, metric, METHOD_NAMES[variant], METHOD_NAMES["natural"],
                            "ifia_topk", dataset=dataset,
                            margin_reason="'significantly better': the paper gives no size: judged as a direction "
                                          "only (margin 0; significance is the CI)"))
        claims.append(Claim(f"rar.{dataset}.{metric}_vs_pgd_at.{variant}", PAPER, f"{FINDINGS} (3)",
                            SAYS_BETTER_THAN_AT, metric, METHOD_NAMES[variant], METHOD_NAMES["pgd_at"], "ifia_topk",
                            dataset=dataset,
                            margin_reason="'consistently improving': an ordering, margin 0"))
    return tuple(claims)


#: every claim of the chapter, per dataset and RAR variant (a claim whose rows were not run is skipped)
CLAIMS = tuple(c for d in RAR_DATASETS for v in RAR_VARIANTS
               for c in accuracy_claims(d, v) + attribution_claims(d, v))


# ---------------------------------------------------------------------------------------------- the results

@dataclasses.dataclass
class RARResult:
    """Every (dataset, method, seed) evaluation of the chapter, their per-image measurements and the seconds
    each took in this run (training or loading included)."""

    settings: RARSettings
    evaluations: dict
    measurements: Measurements
    seconds: dict

    def seed_evaluations(self, dataset: str, seed: Optional[int] = None) -> dict:
        """``{display name: ModelEvaluation}`` of one seed (default: the first), the input of the blog's figure."""
        seed = self.settings.seeds[0] if seed is None else seed
        return {METHOD_NAMES[m]: self.evaluations[dataset, m, seed] for m in self.settings.methods}

    def summary(self) -> pd.DataFrame:
        if not hasattr(self, "_summary"):
            self._summary = self.measurements.summary()
        return self._summary

    def table(self, dataset: str) -> pd.DataFrame:
        """Paper | ours per row and column of :data:`COLUMNS`: ours as mean ± seed spread (std of the per-seed
        means) in display units, the paper's GALI Table 1 value where it has one ("–" otherwise)."""
        summary = self.summary()
        summary = summary[summary["dataset"] == dataset].set_index(["row", "metric", "under"])
        paper = gali_table1(PAPER_DATASET[dataset])
        rows = {}
        for method in self.settings.methods:
            row = {}
            for (metric, under), header in COLUMNS.items():
                theirs = PAPER_COLUMNS.get((metric, under))
                published = paper.loc[PAPER_ROWS[method], theirs] if method in PAPER_ROWS and theirs else None
                row[(header, "paper")] = "–" if published is None else _paper_value(metric, published)
                row[(header, "ours")] = mean_spread(metric, summary.loc[(METHOD_NAMES[method], metric, under)])
            row[(SUCCESS, "paper")] = "–"
            row[(SUCCESS, "ours")] = success_cell(self.evaluations, dataset, method, self.settings.seeds)
            rows[METHOD_NAMES[method]] = row
        frame = pd.DataFrame(rows).T
        frame.columns = pd.MultiIndex.from_tuples(frame.columns)
        frame.index.name = "model"
        return frame

    def sparse_maps(self, dataset: str) -> tuple:
        """``(n, N)``: of the N attacked images (all seeds and rows), n have a clean IG map with fewer than k
        non-zero pixels — there top-k is filled by pixel position (ties broken towards the lower index)."""
        k = self.settings.protocol(dataset).k
        n = total = 0
        for (d, _, _), ev in self.evaluations.items():
            if d == dataset and ev.ifia.result is not None:
                nonzero = (ev.ifia.result.clean_map.flatten(1) != 0).sum(1)
                n += int((nonzero < k).sum())
                total += int(nonzero.numel())
        return n, total

    def protocol_note(self, dataset: str) -> str:
        """What differs from RAR/GALI's evaluation, and what the numbers of :meth:`table` rest on."""
        p = self.settings.protocol(dataset)
        pgd = eval_pgd(dataset)
        sparse, attacked = self.sparse_maps(dataset)
        data = ("MNIST-10k (an 8k train / 2k test subset of MNIST; paper: full MNIST)" if dataset == "mnist10k"
                else dataset)
        seeds = self.settings.seeds
        return (f"Protocol ({dataset}): data {data}; IFIA top-k on IG with ε = {p.eps:g}, α = {p.alpha:g}, "
                f"{p.steps} steps in {p.precision} (RAR/GALI 100; maps and scores in fp32), k = {p.k} (GALI: {TOPK[dataset]}), IG m = {p.ig_steps}, softplus "
                f"β = {p.beta:g}, on {p.n_eval} stratified test images per seed (GALI: not stated), attacked where "
                f"classified correctly; IFIA success is the share of attacked images where some iterate kept the "
                f"label, and an image where none did counts with its clean map (top-k ∩ 100 %); random baseline: "
                f"random sign noise of the same ε on the same images. "
                f"PGD-{pgd['steps']} (α = {pgd['alpha']:g}, random start) on {p.n_pgd or 'all'} test images "
                f"(GALI: PGD-100 on MNIST-family test sets); clean accuracy on {p.n_clean or 'all'}. Ours: mean ± "
                f"std over {len(seeds)} training seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}). "
                f"{sparse} of {attacked} attacked clean maps have fewer than k = {p.k} non-zero pixels: their "
                f"top-k set is completed by pixel position (lowest index first), so top-k ∩ there also counts "
                f"zero pixels that stay zero.")

    def budget(self, dataset: str) -> str:
        """The training budget the verdicts on ``dataset`` rest on, against RAR's (natural: 25k steps × 50;
        PGD-AT and RAR: 100k steps × 50)."""
        configs = {m: zoo_config(dataset, m, self.settings.scale, seed=self.settings.seeds[0])
                   for m in self.settings.methods}
        trained = {m: c for m, c in configs.items() if m != "natural"}
        parts = []
        if "natural" in configs:
            parts.append(budget_sentence({"natural": configs["natural"]}, PAPER_IMAGES_NATURAL, PAPER,
                                         self.settings.seeds))
        if trained:
            sentence = budget_sentence(trained, PAPER_IMAGES, PAPER, self.settings.seeds)
            parts.append(sentence.replace("Training budget (images seen): ", "Then ", 1) if parts else sentence)
        return f"[{dataset}] " + " ".join(parts)

    def verdicts(self) -> list:
        """Every claim whose rows were run, judged on the measurements (raw and net of the random baseline)."""
        if not hasattr(self, "_verdicts"):
            budget = " ".join(self.budget(d) for d in self.settings.datasets)
            self._verdicts = judge_all(CLAIMS, self.measurements, budget=budget)
        return self._verdicts

    def publish(self):
        """Save the verdicts for the book's front page."""
        return publish_verdicts(self.verdicts(), CHAPTER, self.settings.scale, declared=declared_claims(
            CLAIMS, {*self.settings.datasets, *RARSettings.PRESETS["paper"]["datasets"]}))

    def seconds_table(self) -> pd.DataFrame:
        """Seconds to train (or load) and evaluate each model in this run, per seed."""
        frame = pd.Series(self.seconds).unstack([0, 2]).reindex(list(self.settings.methods))
        frame.columns.names = ["dataset", "seed"]
        return frame.round(1)

    def training_cost(self) -> pd.DataFrame:
        """Per dataset and row: epochs, seconds per epoch and milliseconds per training image, from the training
        logs (mean over seeds) — the per-image cost ratio is the point, not the absolute seconds."""
        rows = {}
        for dataset in self.settings.datasets:
            for method in self.settings.methods:
                costs = [_training_cost(dataset, method, self.settings, seed) for seed in self.settings.seeds]
                rows[dataset, method] = pd.DataFrame(costs).mean()
        frame = pd.DataFrame(rows).T
        if "natural" in self.settings.methods:
            natural = frame.xs("natural", level=1)["ms/image"]
            frame["× natural"] = frame["ms/image"] / natural.reindex(frame.index.get_level_values(0)).to_numpy()
        return frame.round(2)


def _paper_value(metric: str, published: float) -> str:
    """GALI's percentages are in display units already; Kendall is a correlation."""
    return f"{published:.1f}" if display_scale(metric) != 1.0 else f"{published:.3f}"


def _training_cost(dataset: str, method: str, settings: RARSettings, seed: int) -> dict:
    _, logs = get_model(dataset, method, settings.scale, seed=seed, device=resolve_device(settings.device),
                        progress=False)
    config = zoo_config(dataset, method, settings.scale, seed=seed)
    n_images = config.n_train or len(load_dataset(dataset, "train"))
    seconds = sum(log["seconds"] for log in logs) / len(logs)
    return {"epochs": len(logs), "s/epoch": seconds, "ms/image": 1000 * seconds / n_images}


def evaluate(settings: RARSettings, progress: bool = False) -> RARResult:
    """Train (or load) and evaluate every (dataset, method, seed) of ``settings`` with the RAR/GALI evaluation
    (cached per model, protocol and seed), and collect the per-image measurements the claims are judged on."""
    device = resolve_device(settings.device)
    measurements, evaluations, seconds = Measurements(), {}, {}
    for dataset in settings.datasets:
        protocol = settings.protocol(dataset)
        for seed in settings.seeds:
            for method in settings.methods:
                start = time.perf_counter()
                ev: ModelEvaluation = evaluate_zoo_model(dataset, method, protocol, scale=settings.scale, seed=seed,
                                                         device=device, progress=progress)
                seconds[dataset, method, seed] = time.perf_counter() - start
                ev.measure(measurements, METHOD_NAMES[method], seed, dataset=dataset)
                evaluations[dataset, method, seed] = ev
    return RARResult(settings, evaluations, measurements, seconds)


__all__ = ["CLAIMS", "COLUMNS", "PAPER_IMAGES", "PAPER_IMAGES_NATURAL", "RARResult", "RARSettings", "RAR_DATASETS",
           "RAR_METHODS", "TOPK", "evaluate"]
