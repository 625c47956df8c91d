"""The fragility primer (chapter 01): the IFIA top-k attack on a natural model's Integrated Gradients, beside
random sign noise of the same ε (Ghorbani, Abid & Zou, AAAI 2019, as RAR's blog retells it).

>>> s = FragilitySettings.resolve("cpu")
>>> result = evaluate(s)                      # per seed: the zoo's natural model under the RAR/GALI protocol
>>> summary_table(result), claims_table(result.verdicts)
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from rattrlib.claims import Claim, Measurements, claims_table, format_value, judge_all, metric_label
from rattrlib.chapters._common import METHOD_NAMES, IFIASettings, budget_sentence, publish_verdicts
from rattrlib.evaluation import IFIAProtocol, ModelEvaluation, evaluate_zoo_model
from rattrlib.published import gali_table1
from rattrlib.settings import choice, int_check, setting
from rattrlib.zoo import zoo_config

CHAPTER = "01_fragility"
#: the row of the chapter's one model (its display name)
NATURAL = METHOD_NAMES["natural"]
DATASETS = ("fashion_mnist", "mnist10k", "mnist")

#: the primer's one claim, as RAR's blog states Ghorbani et al.'s finding
CLAIMS = (
    Claim(id="fragility.ifia_beats_random", paper="Ghorbani et al. (via RAR)", where="RAR blog, Fig. 3",
          says="for existing deep models, one can generate minimal input perturbations that substantially change "
               "model attributions, while keeping their (correct) predictions intact",
          metric="topk_intersection", a=NATURAL, under="random", b=NATURAL, under_b="ifia_topk",
          relation="better", margin=0.0,
          margin_reason="'substantially change': the paper gives no size: judged as a direction only (margin 0), "
                        "against random noise of the same ε: the attack must lower top-k ∩ more than random sign "
                        "noise does"),
    Claim(id="fragility.ifia_beats_random_kendall", paper="Ghorbani et al. (via RAR)", where="RAR blog, Fig. 3",
          says="the saliency maps, computed via IG, show that attributions of the naturally trained model are very "
               "fragile",
          metric="kendall_tau", a=NATURAL, under="random", b=NATURAL, under_b="ifia_topk",
          relation="better", margin=0.0, margin_reason="as above, for the rank correlation over all pixels"),
)

#: GALI's natural model (Table 1): RAR's settings, 25k steps × batch 50 on 60k images
PAPER_IMAGES = 25_000 * 50


@dataclasses.dataclass(frozen=True)
class FragilitySettings(IFIASettings):
    """The primer's settings: the dataset, the IFIA protocol's overrides (None: the RAR/GALI protocol of the
    scale, shared with the RAR chapter so its evaluations are reused) and the figure size."""

    dataset: str = setting(choice(*DATASETS), "fashion_mnist, mnist10k (offline) or mnist (download)")
    k: int = setting(int_check(1), "top-k of the attack and the intersection")
    n_show: int = setting(int_check(1), "images in the figure")

    PRESETS = {
        "smoke": {"n_eval": 8, "seeds": (0, 1), "dataset": "fashion_mnist", "k": 100, "beta": 10.0, "n_show": 4},
        "cpu": {"n_eval": 100, "seeds": (0, 1, 2), "dataset": "fashion_mnist", "k": 100, "beta": 10.0, "n_show": 6},
        "paper": {"n_eval": 1000, "seeds": (0, 1, 2), "dataset": "fashion_mnist", "k": 100, "beta": 10.0, "n_show": 6},
    }

    def __post_init__(self):
        super().__post_init__()
        self.protocol  # the protocol's own checks, before any compute

    @property
    def protocol(self) -> IFIAProtocol:
        return self.ifia(self.dataset, self.k)

    def protocols(self) -> dict:
        return {self.dataset: self.protocol}


@dataclasses.dataclass
class FragilityResult:
    settings: FragilitySettings
    evaluations: dict          # seed → ModelEvaluation of the natural model
    measurements: Measurements
    verdicts: list

    @property
    def first(self) -> ModelEvaluation:
        return self.evaluations[self.settings.seeds[0]]


def evaluate(settings: FragilitySettings, progress: bool = True) -> FragilityResult:
    """The natural zoo model of every seed under the protocol (cached), its measurements and the verdicts
    (saved for the book's front page)."""
    evaluations, measurements = {}, Measurements()
    for seed in settings.seeds:
        ev = evaluate_zoo_model(settings.dataset, "natural", settings.protocol, scale=settings.scale, seed=seed,
                                device=settings.device, progress=progress)
        ev.measure(measurements, NATURAL, seed)
        evaluations[seed] = ev
    verdicts = judge_all(CLAIMS, measurements, budget=budget(settings))
    publish_verdicts(verdicts, CHAPTER, settings.scale, declared=CLAIMS)
    return FragilityResult(settings, evaluations, measurements, verdicts)


def budget(settings: FragilitySettings) -> str:
    return budget_sentence({"natural": zoo_config(settings.dataset, "natural", settings.scale)}, PAPER_IMAGES,
                           "GALI Table 1", settings.seeds)


def summary_table(result: FragilityResult) -> pd.DataFrame:
    """IFIA vs random sign: mean [95 % CI] over seeds and attacked images of top-k ∩ and Kendall τ, with GALI's
    natural model beside them (Fashion-MNIST and MNIST only)."""
    summary = result.measurements.summary()
    rows = {}
    for under, name in (("ifia_topk", "IFIA top-k"), ("random", "random sign (baseline)")):
        row = {}
        for metric in ("topk_intersection", "kendall_tau"):
            s = summary[(summary["under"] == under) & (summary["metric"] == metric)].iloc[0]
            row[f"{metric_label(metric)} ours"] = (f"{format_value(metric, s['mean'])} [{format_value(metric, s['ci_low'])}, "
                                             f"{format_value(metric, s['ci_high'])}]")
            row["n (images × seeds)"] = f"{s['n_images']} × {s['n_seeds']}"
        rows[name] = row
    paper = _paper_row(result.settings.dataset)
    if paper is not None:
        rows["IFIA top-k"].update({f"{metric_label('topk_intersection')} paper": f"{paper['topk']:.2f}",
                                   f"{metric_label('kendall_tau')} paper": f"{paper['kendall']:.4f}"})
    table = pd.DataFrame(rows).T
    success = [ev.ifia.summary.iloc[0]["success_rate"] for ev in result.evaluations.values()]
    table["attack success (%)"] = [f"{100 * sum(success) / len(success):.0f}", "–"]
    return table.fillna("–")


def _paper_row(dataset: str):
    name = {"fashion_mnist": "fashion_mnist", "mnist": "mnist"}.get(dataset)
    return None if name is None else gali_table1(name).loc["Nat"]


def protocol_note(settings: FragilitySettings) -> str:
    """The protocol difference with GALI Table 1's natural row, for under the table."""
    p, c = settings.protocol, zoo_config(settings.dataset, "natural", settings.scale)
    return (f"Protocol: {settings.dataset}, the zoo's natural {c.model} ({c.epochs} epochs, Adam; seeds "
            f"{', '.join(map(str, settings.seeds))}); IFIA top-k on IG with ε = {p.eps:g}, α = {p.alpha:g}, "
            f"{p.steps} steps in {p.precision} (GALI/RAR: 100; maps and scores in fp32), k = {p.k}, IG m = {p.ig_steps} right-Riemann points on a softplus "
            f"β = {p.beta:g} copy; {p.n_eval} stratified test images per seed, of which the correctly classified "
            f"are attacked (GALI: the test set). A failed attack counts with its clean map. Random sign: the same ε, "
            f"images and maps. Paper: GALI Table 1, 'Nat' (RAR's natural model).")


__all__ = ["CLAIMS", "CHAPTER", "FragilityResult", "FragilitySettings", "budget", "claims_table", "evaluate",
           "protocol_note", "summary_table"]
