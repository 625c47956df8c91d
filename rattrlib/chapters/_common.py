"""Pieces every chapter shares: the training-budget sentence a verdict rests on, where verdicts are saved for
the book's front page, the "mean ± seed spread" cells of the paper | ours tables, and the RAR/GALI protocol
constants (their top-k and the block of their tables each dataset is compared with)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Optional, Sequence

import math
import statistics

import pandas as pd

from rattrlib.claims import DISPLAY, Claim, Measurements, Verdict, format_value, metric_label, save_verdicts
from rattrlib.config import SCALES, check_choice, rattr_home
from rattrlib.data import load_dataset
from rattrlib.evaluation import IFIAProtocol, ifia_protocol
from rattrlib.settings import ChapterSettings, int_check, optional, real_check, setting
from rattrlib.train import TrainConfig


#: the block of RAR's / GALI's tables each dataset is compared with (MNIST-10k: full MNIST's)
PAPER_DATASET = {"fashion_mnist": "fashion_mnist", "mnist10k": "mnist", "mnist": "mnist"}
#: RAR's / GALI's top-k of the IFIA attack and of the intersection, per dataset
TOPK = {"fashion_mnist": 100, "mnist10k": 200, "mnist": 200}
#: the display name of each zoo method wherever a page shows several (the leaderboard, the explorer); the papers'
#: names, with the paper in brackets where the name alone is ambiguous
METHOD_NAMES = {"natural": "Natural", "pgd_at": "PGD-AT", "trades": "TRADES", "sat": "SAT", "pgd_sat": "PGD-SAT",
                "trades_sat": "TRADES-SAT", "art": "ART", "ssr": "SSR", "ig_norm": "IG-NORM (RAR)",
                "ig_sum_norm": "IG-SUM-NORM (RAR)", "teacher_aligned": "AT-start + Regularizer (GALI)"}

#: display names of the attribution maps (registry names of :data:`rattrlib.attributions.ATTRIBUTIONS`) where a map
#: is a table's row or a figure's legend entry
ATTRIBUTION_NAMES = {"saliency": "Saliency", "input_x_gradient": "Input × Gradient",
                     "integrated_gradients": "Integrated Gradients", "smoothgrad": "SmoothGrad",
                     "uniform_gradient": "Uniform Gradient", "gradient_shap": "GradientSHAP",
                     "guided_backprop": "Guided Backprop", "guided_gradcam_pp": "Guided Grad-CAM++"}


def display_scale(metric: str) -> float:
    """The factor from metric units to the tables' display units (:data:`rattrlib.claims.DISPLAY`: 100 for the
    percentage metrics, 1 otherwise)."""
    return DISPLAY.get(metric, (metric, 1.0))[1]


def column_label(metric: str, condition: str = "") -> str:
    """A table's column header: :func:`rattrlib.claims.metric_label` of ``metric`` (display units included), then
    `` · condition`` when given ("accuracy (%) · PGD-40", "top-k ∩ (%) · random")."""
    return metric_label(metric) + (f" · {condition}" if condition else "")


def indexed_summary(measurements: Measurements) -> pd.DataFrame:
    """:meth:`Measurements.summary` (mean over seeds of the per-seed means, ``seed_std``, ``n_seeds``, intervals)
    indexed by (dataset, row, under, metric), for :func:`mean_spread`."""
    return measurements.summary().set_index(["dataset", "row", "under", "metric"])


PLUS_MINUS = "\u00a0±\u00a0"  # "mean ± spread" with no-break spaces: a table cell never wraps inside it

#: the column of IFIA's success rate (the protocol reports it beside every IFIA number; the papers do not)
SUCCESS = "IFIA success (%)"


def success_cell(evaluations: dict, dataset: str, row: str, seeds) -> str:
    """IFIA's success rate (%: attacked images where a label-keeping iterate was found) of ``row`` on ``dataset``,
    mean ± std over the ``seeds`` evaluated (``evaluations``: {(dataset, row, seed): ModelEvaluation}); a seed
    without attacked images has no rate; "–" when no seed has one."""
    rates = [100 * evaluations[dataset, row, seed].ifia.summary.iloc[0]["success_rate"] for seed in seeds
             if (dataset, row, seed) in evaluations]
    rates = [r for r in rates if math.isfinite(r)]
    if not rates:
        return "–"
    mean = statistics.mean(rates)
    return f"{mean:.1f}" if len(rates) < 2 else f"{mean:.1f}{PLUS_MINUS}{statistics.stdev(rates):.1f}"


def mean_spread(metric: str, stats, digits: int = 1) -> str:
    """A table cell "mean ± seed spread" in display units (:func:`rattrlib.claims.format_value`); the spread (std of
    the per-seed means) only with ≥ 2 seeds. ``stats``: a row of :meth:`Measurements.summary` (``mean``,
    ``seed_std``, ``n_seeds``); "–" where nothing was measured."""
    mean = stats["mean"]
    if mean is None or not math.isfinite(mean):
        return "–"
    text = format_value(metric, mean, digits)
    return text if stats["n_seeds"] < 2 else f"{text}{PLUS_MINUS}{format_value(metric, stats['seed_std'], digits)}"


@dataclasses.dataclass(frozen=True)
class IFIASettings(ChapterSettings):
    """The RAR/GALI evaluation's settings shared by the chapters that use it (01, 02, 03): the IFIA top-k attack's
    ε, α, steps, IG points, softplus β, and the images attacked per model and seed. None for ε, α, steps and IG
    points means the dataset's RAR/GALI value at the chapter's scale (:func:`rattrlib.evaluation.ifia_protocol`)."""

    eps: Optional[float] = setting(optional(real_check(0, 1, low_open=True)),
                                   "IFIA and random-baseline ℓ∞ budget; None: the dataset's (F-MNIST 0.1, MNIST 0.3)")
    alpha: Optional[float] = setting(optional(real_check(0, 1, low_open=True)), "IFIA step; None: 0.01 (RAR/GALI)")
    attack_steps: Optional[int] = setting(optional(int_check(1)), "IFIA steps; None: the scale's (RAR/GALI 100)")
    ig_steps: Optional[int] = setting(optional(int_check(1)), "IG points in the attack and the maps")
    beta: float = setting(real_check(0, 1e4, low_open=True), "softplus β of the attack's smooth surrogate")
    n_eval: int = setting(int_check(2), "test images attacked per model and seed")

    def protocols(self) -> dict:
        """The IFIA protocol of each dataset the chapter evaluates (its own ``protocol`` with the chapter's k)."""
        raise NotImplementedError(f"{type(self).__name__} must say which datasets it evaluates")

    def resolved(self) -> dict:
        """ε, α, steps, IG points (and k, where the chapter leaves it None) of the attack, per dataset."""
        protocols = self.protocols()
        fields = {"eps": "eps", "alpha": "alpha", "attack_steps": "steps", "ig_steps": "ig_steps", "k": "k"}

        def text(attr: str) -> str:
            values = {d: f"{getattr(p, attr):g}" for d, p in protocols.items()}
            return (next(iter(values.values())) if len(set(values.values())) == 1
                    else ", ".join(f"{v} ({d})" for d, v in values.items()))

        return {name: text(attr) for name, attr in fields.items()}

    def ifia(self, dataset: str, k: int) -> IFIAProtocol:
        """The RAR/GALI evaluation of ``dataset`` at this scale with these settings and top-``k``."""
        return ifia_protocol(dataset, self.scale, eps=self.eps, alpha=self.alpha, steps=self.attack_steps,
                             ig_steps=self.ig_steps, k=k, beta=self.beta, n_eval=self.n_eval)


def images_seen(config: TrainConfig) -> int:
    """Training images a model saw: epochs × training images, plus those of the model it fine-tunes."""
    n = config.n_train or len(load_dataset(config.dataset, "train"))
    own = config.epochs * n
    return own + (images_seen(TrainConfig(**config.init)) if config.init else 0)


def _count(n: float) -> str:
    return f"{n / 1e6:.2g}M" if n >= 1e6 else f"{n / 1e3:.3g}k" if n >= 1e3 else f"{n:g}"


def budget_sentence(configs: Mapping[str, TrainConfig], paper_images: int, paper: str,
                    seeds: Sequence[int] = (0,)) -> str:
    """"Training budget (images seen): <row> <epochs> ep. × <images> = <images seen with its own objective>
    (<fraction> of <paper>'s <paper_images>), fine-tuning <start> (<its images>) …; n seeds." — the budget each
    verdict rests on."""
    if paper_images <= 0:
        raise ValueError(f"paper_images={paper_images!r} must be positive")
    parts = []
    for row, config in configs.items():
        own = images_seen(config) - (images_seen(TrainConfig(**config.init)) if config.init else 0)
        text = (f"{row} {config.epochs} ep. × {_count(own // config.epochs)} = {_count(own)} images with its own "
                f"objective ({100 * own / paper_images:.2g} % of {paper}'s {_count(paper_images)})")
        if config.init:
            text += f", fine-tuning {config.init['method']} ({_count(images_seen(TrainConfig(**config.init)))})"
        parts.append(text)
    return (f"Training budget (images seen): {'; '.join(parts)}; {len(seeds)} seed{'s' if len(seeds) > 1 else ''} "
            f"({', '.join(map(str, seeds))}).")


def verdicts_path(chapter: str, scale: str) -> Path:
    """Where a chapter's verdicts at ``scale`` are saved: ``$RATTR_HOME/verdicts/<scale>/<chapter>.json``."""
    check_choice("scale", scale, SCALES)
    return rattr_home() / "verdicts" / scale / f"{chapter}.json"


def publish_verdicts(verdicts: Sequence[Verdict], chapter: str, scale: str, declared: Sequence[Claim] = ()) -> Path:
    """Save ``verdicts`` for the book's front page of verdicts (``book/build.py`` collects them), with the
    ``declared`` claims of the chapter that were not judged (listed there as not judged at this scale)."""
    return save_verdicts(verdicts, verdicts_path(chapter, scale), chapter=chapter, scale=scale, declared=declared)


def declared_claims(claims: Sequence[Claim], datasets: Sequence[str]) -> tuple:
    """The claims a run declares: those measured on one of ``datasets`` (a claim's dataset key may extend the
    dataset name, e.g. ``"fashion_mnist · λ sweep"``). Passed to :func:`publish_verdicts` so that a declared claim
    whose rows were not run appears on the front page as not judged instead of vanishing."""
    wanted = set(datasets)
    return tuple(c for c in claims if c.dataset.split(" · ")[0] in wanted)


__all__ = ["ATTRIBUTION_NAMES", "METHOD_NAMES", "PAPER_DATASET", "PLUS_MINUS", "SUCCESS", "TOPK", "budget_sentence",
           "column_label", "declared_claims", "display_scale", "images_seen", "indexed_summary", "mean_spread",
           "publish_verdicts", "success_cell", "verdicts_path"]
