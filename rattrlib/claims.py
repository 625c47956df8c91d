"""The claims engine: a paper's claim as data, judged on a confidence interval over seeds and images.

A :class:`Claim` names two *sides* — a row (a model) measured under a condition — a metric from the one metric
vocabulary (:data:`rattrlib.metrics.METRICS`; its direction is read from ``higher_is_better``), a relation and a
margin fixed from the paper's wording before any run. :func:`judge` takes the per-image, per-seed
:class:`Measurements` and returns a :class:`Verdict`:

* the difference ``d = sign · (mean_A − mean_B)`` (sign = +1 when higher is better), so ``d > 0`` means side A
  is better;
* its 95 % interval (:func:`contrast_interval`): per seed, the difference of the two sides' means over that
  seed's test images (paired: rows evaluated with the same seed see the same test subset; an image missing on
  one side, not attacked there, is skipped there); over S ≥ 2 seeds, Student's t on those S differences (training
  seeds and test images both vary between them); with one seed, a seeded paired bootstrap over its images, marked
  "images only";
* the verdict: **holds** (interval entirely on the claim's side of the margin), **does not hold** (entirely on
  the other side) or **inconclusive**.

Relations (``m`` = margin ≥ 0, in the metric's own units — fractions for top-k ∩ and accuracy):

==============  ===================  =====================  =========================
relation        claim                holds when             does not hold when
==============  ===================  =====================  =========================
``better``      A better than B      low > m                high < m
``not_worse``   A at most m worse    low > −m               high < −m
``comparable``  |A − B| ≤ m          −m ≤ low, high ≤ m     low > m or high < −m
==============  ===================  =====================  =========================

Attributional claims (a similarity metric under an attack) are judged twice: raw, and net of the
random-perturbation baseline (per image: value under the attack − value under ``random``, same ε and images),
so that a "holds" cannot come from a model whose maps move under any noise.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from scipy import stats

from rattrlib.metrics import METRICS as MAP_METRICS, SENSITIVITY_METRICS

#: the one metric vocabulary of claims and measurements: the scores of two maps (:data:`rattrlib.metrics.METRICS`)
#: and the explanation-robustness metrics of an explainer (:data:`rattrlib.metrics.SENSITIVITY_METRICS`), each
#: declaring ``higher_is_better``, ``cite`` and ``bounds``
METRICS = {**MAP_METRICS, **SENSITIVITY_METRICS}

RELATIONS = ("better", "not_worse", "comparable")
VERDICTS = ("holds", "does not hold", "inconclusive")
#: what the front page says of a declared claim whose rows were not run
NOT_JUDGED = "not judged at this scale"

#: the condition name of the random-perturbation baseline in :class:`Measurements`
RANDOM = "random"

#: metrics that compare a clean map with a perturbed one: equal to their best value when nothing is perturbed
SIMILARITY_METRICS = ("topk_intersection", "kendall_tau", "spearman_rho", "center_of_mass_dislocation",
                      "cosine_distance", "aa_topk", "aa_kendall", "aa_spearman")

#: the condition of clean maps scored against a reference model's clean map (GALI's goodness factor, eq. 10)
GOODNESS = "goodness"

#: conditions under which nothing is perturbed: no claim there is about attributional robustness
UNPERTURBED = ("clean", GOODNESS)

#: similarity metrics against a reference model's map (GALI's AA metrics): not fixed when nothing is perturbed
REFERENCE_METRICS = ("aa_topk", "aa_kendall", "aa_spearman")

#: display label and multiplier of each metric, applied by :func:`format_value` only
DISPLAY = {
    "accuracy": ("accuracy (%)", 100.0),
    "topk_intersection": ("top-k ∩ (%)", 100.0),
    "kendall_tau": ("Kendall τ", 1.0),
    "spearman_rho": ("Spearman ρ", 1.0),
    "center_of_mass_dislocation": ("centre-of-mass shift (px)", 1.0),
    "cosine_distance": ("cosine distance", 1.0),
    "aa_topk": ("AA top-k (%)", 100.0),
    "aa_kendall": ("AA Kendall", 1.0),
    "aa_spearman": ("AA Spearman", 1.0),
    "alignment": ("cos(x, ∇f)", 1.0),
    "box_iou": ("box IoU", 1.0),
    "mask_iou": ("mask IoU", 1.0),
    "gt_known_loc": ("GT-known Loc (%)", 100.0),
    "top1_loc": ("Top-1 Loc (%)", 100.0),
    "top1_seg": ("Top-1 Seg (%)", 100.0),
    "log_auc": ("log-AUC", 1.0),
    "max_sensitivity": ("Max-Sensitivity", 1.0),
    "avg_sensitivity": ("Avg-Sensitivity", 1.0),
    "local_lipschitz_estimate": ("Local Lipschitz Estimate", 1.0),
    "relative_input_stability": ("RIS", 1.0),
}


#: how a claim's statement names a condition (a condition not listed reads "under <condition>")
CONDITION_PHRASES = {
    "clean": "on clean inputs",
    GOODNESS: "on clean maps: the goodness factor against the reference model's map alone",
    RANDOM: "under random sign noise",
    "pgd": "under PGD",
    "pgd_longest": "under the longest PGD",
    "spsa": "under SPSA",
    "ifia_topk": "under the IFIA top-k attack",
    "targeted": "under the targeted attack",
    "corruptions": "under common corruptions",
    "saliency": "from saliency maps",
    "integrated_gradients": "from IG maps",
    # SSR's log-AUCs over ε (rattrlib.chapters.ssr.UNDER)
    "top-k log-AUC": "log-AUC over ε under the top-k attack",
    "manipulate log-AUC": "log-AUC over ε under the Manipulate attack",
}


def condition_phrase(under: str) -> str:
    """``under`` as the statement of a claim says it (:data:`CONDITION_PHRASES`)."""
    return CONDITION_PHRASES.get(under, f"under {under}")


def metric_label(metric: str) -> str:
    """The display label of ``metric`` (one formatter for every table)."""
    return DISPLAY.get(metric, (metric, 1.0))[0]


def format_value(metric: str, value: float, digits: int = 1) -> str:
    """``value`` (metric units) in display units: fractions of a percentage metric as points."""
    scale = DISPLAY.get(metric, (metric, 1.0))[1]
    if value is None or not math.isfinite(value):
        return "–"
    return f"{scale * value:.{digits if scale != 1.0 else max(digits, 3)}f}"


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of a paper, declared once in the library before any run.

    Attributes:
        id: short unique name (``"art.table1.topk_art_vs_pgd"``).
        paper: ``"RAR"``, ``"GALI"``, ``"ART"``, ``"SSR"`` or ``"SAT"``.
        where: the place in the paper (``"Table 1"``, ``"Fig. 8"``, ``"§5"``).
        says: the paper's wording, quoted.
        metric: a key of :data:`rattrlib.metrics.METRICS` (its ``higher_is_better`` gives the direction).
        a, b: the rows compared (model names of the chapter); side A is claimed better (or comparable).
        under: the condition of side A (``"clean"``, ``"pgd"``, ``"ifia_topk"``, …); ``under_b`` that of side B
            (default: the same).
        relation: one of :data:`RELATIONS`.
        margin: ≥ 0, in the metric's units (fractions for top-k ∩ and accuracy); ``margin_reason`` says how the
            paper's wording fixes it.
        dataset: the dataset the chapter measures it on ("" = the chapter's only one).
    """

    id: str
    paper: str
    where: str
    says: str
    metric: str
    a: str
    b: str
    under: str
    relation: str = "better"
    margin: float = 0.0
    margin_reason: str = "an ordering: any difference in the claimed direction"
    under_b: Optional[str] = None
    dataset: str = ""

    def __post_init__(self):
        for name in ("id", "paper", "where", "says", "a", "b", "under", "margin_reason"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"claim {self.id!r}: {name} must be a non-empty string, got {value!r}")
        if self.metric not in METRICS:
            raise ValueError(f"claim {self.id!r}: metric={self.metric!r} is not in the metric vocabulary; "
                             f"choose one of {sorted(METRICS)}")
        if METRICS[self.metric].higher_is_better is None:
            raise ValueError(f"claim {self.id!r}: metric {self.metric!r} has no direction of its own")
        if self.relation not in RELATIONS:
            raise ValueError(f"claim {self.id!r}: relation={self.relation!r}; choose one of {RELATIONS}")
        if isinstance(self.margin, bool) or not isinstance(self.margin, (int, float)) \
                or not math.isfinite(self.margin) or self.margin < 0:
            raise ValueError(f"claim {self.id!r}: margin={self.margin!r} must be a finite number >= 0")
        if (self.a, self.side_b_under) == (self.b, self.under):
            raise ValueError(f"claim {self.id!r}: both sides are row {self.a!r} under {self.under!r}; a claim "
                             f"compares two different measurements")
        if self.metric in SIMILARITY_METRICS and self.metric not in REFERENCE_METRICS and self.unperturbed:
            raise ValueError(f"claim {self.id!r}: {self.metric} under an unperturbed condition is its best value "
                             f"by construction; compare it under an attack")
        bounds = METRICS[self.metric].bounds
        if bounds is not None and self.relation in ("not_worse", "comparable") \
                and self.margin >= bounds[1] - bounds[0]:
            raise ValueError(f"claim {self.id!r}: margin {self.margin} spans the whole range {bounds} of "
                             f"{self.metric}, so the claim holds by construction")

    @property
    def side_b_under(self) -> str:
        return self.under_b or self.under

    @property
    def sign(self) -> float:
        """+1 when higher is better for the metric, −1 otherwise."""
        return 1.0 if METRICS[self.metric].higher_is_better else -1.0

    @property
    def unperturbed(self) -> bool:
        """True when either side is measured without a perturbation (:data:`UNPERTURBED`)."""
        return self.under in UNPERTURBED or self.side_b_under in UNPERTURBED

    @property
    def attributional(self) -> bool:
        """A similarity metric under a perturbation other than the random baseline: judged net of it too (a
        claim on unperturbed maps, e.g. GALI's goodness, has no random baseline to subtract)."""
        return (self.metric in SIMILARITY_METRICS and not self.unperturbed
                and RANDOM not in (self.under, self.side_b_under))

    def statement(self) -> str:
        """The claim in one line, in the book's vocabulary."""
        side_a = f"{self.a} {condition_phrase(self.under)}" if self.under_b else self.a
        side_b = f"{self.b} {condition_phrase(self.side_b_under)}" if self.under_b else self.b
        label = metric_label(self.metric)
        if self.relation == "better":
            text = f"{label}: {side_a} better than {side_b}"
        elif self.relation == "not_worse":
            text = f"{label}: {side_a} at most {format_value(self.metric, self.margin)} worse than {side_b}"
        else:
            text = f"{label}: {side_a} within {format_value(self.metric, self.margin)} of {side_b}"
        if not self.under_b:
            text += f" ({condition_phrase(self.under)})"
        return text


def check_claims(claims: Sequence[Claim]) -> tuple:
    """``claims`` as a tuple, refusing duplicate ids."""
    claims = tuple(claims)
    ids = [c.id for c in claims]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"claim ids must be unique; repeated: {duplicated}")
    return claims


class Measurements:
    """Per-image values of every (row, condition, metric, seed), the input of :func:`judge`.

    A long table with columns ``dataset``, ``row``, ``under``, ``metric``, ``seed``, ``image`` (the image's
    position in the seed's evaluation subset: the same image for every row of that seed) and ``value`` (metric
    units; NaN where the image was not evaluated, e.g. not attacked because misclassified)."""

    COLUMNS = ("dataset", "row", "under", "metric", "seed", "image", "value")

    def __init__(self, frame: Optional[pd.DataFrame] = None):
        self.parts: list[pd.DataFrame] = []
        if frame is not None:
            self.parts.append(frame[list(self.COLUMNS)])

    def add(self, row: str, under: str, metric: str, seed: int, values, *, dataset: str = "",
            images: Optional[Iterable[int]] = None) -> "Measurements":
        """Add one row's per-image ``values`` of ``metric`` under ``under`` for ``seed`` (image ids default to
        positions 0…N−1)."""
        if metric not in METRICS:
            raise ValueError(f"metric={metric!r} is not in the metric vocabulary; choose one of {sorted(METRICS)}")
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        index = np.arange(values.size) if images is None else np.asarray(list(images))
        if index.shape != values.shape:
            raise ValueError(f"images has {index.size} ids for {values.size} values")
        self.parts.append(pd.DataFrame({"dataset": dataset, "row": row, "under": under, "metric": metric,
                                        "seed": int(seed), "image": index, "value": values}))
        return self

    @property
    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame(columns=list(self.COLUMNS))
        frame = pd.concat(self.parts, ignore_index=True)
        self.parts = [frame]
        return frame

    def side(self, dataset: str, row: str, under: str, metric: str) -> pd.DataFrame:
        """image × seed values of one side (NaN where missing)."""
        f = self.frame
        sel = f[(f["dataset"] == dataset) & (f["row"] == row) & (f["under"] == under) & (f["metric"] == metric)]
        if sel.empty:
            have = sorted(set(zip(f["row"], f["under"], f["metric"])))
            raise KeyError(f"no measurements of row {row!r} under {under!r} for {metric!r} "
                           f"(dataset {dataset!r}); have {have[:12]}{' …' if len(have) > 12 else ''}")
        if sel.duplicated(["seed", "image"]).any():
            raise ValueError(f"row {row!r} under {under!r} ({metric}) has repeated (seed, image) entries")
        return sel.pivot(index="image", columns="seed", values="value")

    def summary(self, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
        """Mean over seeds of the per-seed means of each (dataset, row, under, metric), with its seed spread (std
        of the per-seed means), its interval (:func:`contrast_interval`) and the counts."""
        rows = []
        for key, group in self.frame.groupby(["dataset", "row", "under", "metric"], sort=False):
            table = group.pivot(index="image", columns="seed", values="value")
            mean, low, high = mean_interval(table, confidence=confidence, n_boot=n_boot, seed=seed)
            finite = np.isfinite(table.to_numpy())
            usable = finite.any(axis=0)                     # seeds with at least one value
            per_seed = np.array([np.mean(col[ok]) for col, ok in zip(table.to_numpy().T, finite.T) if ok.any()])
            rows.append({**dict(zip(("dataset", "row", "under", "metric"), key)), "mean": mean, "ci_low": low,
                         "ci_high": high, "seed_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
                         "n_images": images_per_seed(table),
                         "n_seeds": int(usable.sum())})
        return pd.DataFrame(rows)


def images_per_seed(table: pd.DataFrame, seeds=None) -> int:
    """The "images" of "n (images × seeds)": finite values per seed of an image × seed table (restricted to the
    columns ``seeds`` when given), averaged over the seeds that have any and rounded half up; 0 when none has —
    one count for tables, verdicts and the leaderboard alike."""
    finite = np.isfinite((table if seeds is None else table[list(seeds)]).to_numpy(dtype=np.float64))
    counts = finite.sum(axis=0)[finite.any(axis=0)]
    return math.floor(counts.mean() + 0.5) if counts.size else 0


def _replicate_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """values: images × sides of one seed. Returns n_boot × sides means over resampled images (same draws for
    every side; NaN entries skipped)."""
    n = values.shape[0]
    draws = rng.integers(0, n, size=(n_boot, n))
    picked = values[draws]                                   # n_boot × n × sides
    finite = np.isfinite(picked)
    counts = finite.sum(axis=1)
    sums = np.where(finite, picked, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _seed_values(tables: Sequence[pd.DataFrame]) -> dict:
    """seed → images × sides values over the images any side measured, for the seeds where every side has at
    least one finite value (a seed without — e.g. Kendall τ of constant maps — says nothing and is left out)."""
    seeds = sorted(set(tables[0].columns))
    for t in tables[1:]:
        if sorted(set(t.columns)) != seeds:
            raise ValueError(f"the sides were measured on different seeds: {seeds} vs {sorted(set(t.columns))}")
    out = {}
    for s in seeds:
        images = sorted(set().union(*[set(t.index[np.isfinite(t[s].to_numpy())]) for t in tables]))
        values = np.stack([t[s].reindex(images).to_numpy(dtype=np.float64) for t in tables], axis=1)
        if values.size and np.isfinite(values).any(axis=0).all():
            out[s] = values
    return out


def contrast_interval(tables: Sequence[pd.DataFrame], weights: Sequence[float], *, confidence: float = 0.95,
                      n_boot: int = 2000, seed: int = 0) -> dict:
    """The interval of ``Σ_j weights[j] · mean_j`` over sides measured on the same seeds (``tables[j]``: an
    image × seed frame of side j; a difference A − B is weights (1, −1)).

    The estimate is the mean over seeds of the per-seed contrast (each side's mean over its own finite images,
    every seed weighted equally). With S ≥ 2 seeds the interval is Student's t on the S per-seed contrasts
    (df = S − 1): their spread already holds both training-seed and test-image noise, and the per-seed
    contrast pairs the sides on that seed's images. With one seed it is a seeded percentile bootstrap over the
    seed's images (the same draws for every side: paired), which speaks for evaluation noise only.

    Why not a two-stage (seeds, then images) percentile bootstrap: simulated on null claims with 3 seeds it
    called a difference 9–15 % of the time instead of 2.5 % when seed noise dominates (with 3 seeds its 2.5th
    percentile is about the worst seed), and was 1.5× too wide when only image noise exists (stage 2 adds the
    image noise the seed means already carry). ``tests/test_claims.py`` checks the calibration of this one.

    Returns ``{"means": per-side estimates, "estimate", "low", "high", "seeds": seeds used, "scope"}`` with
    scope ``"seeds and images"`` or ``"images only (1 seed)"``; NaN when no seed is usable."""
    weights = np.asarray(weights, dtype=np.float64)
    by_seed = _seed_values(tables)
    used = list(by_seed)
    nan = {"means": np.full(len(tables), np.nan), "estimate": math.nan, "low": math.nan, "high": math.nan,
           "seeds": used, "scope": "no usable seed"}
    if not used:
        return nan
    means = np.stack([np.nanmean(v, axis=0) for v in by_seed.values()])      # seeds × sides
    contrasts = means @ weights
    estimate = float(contrasts.mean())
    if len(used) >= 2:
        spread = float(contrasts.std(ddof=1))
        half = float(stats.t.ppf((1 + confidence) / 2, len(used) - 1)) * spread / math.sqrt(len(used))
        low, high, scope = estimate - half, estimate + half, "seeds and images"
    else:
        replicates = _replicate_means(by_seed[used[0]], n_boot, np.random.default_rng(seed)) @ weights
        low, high = _percentiles(replicates, confidence)
        scope = "images only (1 seed)"
    return {"means": means.mean(axis=0), "estimate": estimate, "low": low, "high": high, "seeds": used,
            "scope": scope}


def mean_interval(table: pd.DataFrame, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple:
    """``(mean, low, high)`` of one side (an image × seed frame), by :func:`contrast_interval`."""
    r = contrast_interval([table], [1.0], confidence=confidence, n_boot=n_boot, seed=seed)
    return r["estimate"], r["low"], r["high"]


def _percentiles(values: np.ndarray, confidence: float) -> tuple:
    if not np.isfinite(values).any():
        return math.nan, math.nan
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return float(low), float(high)


def decide(relation: str, margin: float, low: float, high: float) -> str:
    """The verdict of an interval [low, high] for the signed difference (positive = side A better)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    if relation == "better":
        return "holds" if low > margin else "does not hold" if high < margin else "inconclusive"
    if relation == "not_worse":
        return "holds" if low > -margin else "does not hold" if high < -margin else "inconclusive"
    if relation == "comparable":
        if -margin <= low and high <= margin:
            return "holds"
        return "does not hold" if low > margin or high < -margin else "inconclusive"
    raise ValueError(f"relation={relation!r}; choose one of {RELATIONS}")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A claim judged on measurements: the signed difference (positive = side A better, metric units), its
    interval, the counts it rests on, the verdict, and the same net of the random baseline where it applies."""

    claim: Claim
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    n_images: int
    n_seeds: int
    verdict: str
    net_difference: Optional[float] = None
    net_ci_low: Optional[float] = None
    net_ci_high: Optional[float] = None
    net_verdict: Optional[str] = None
    confidence: float = 0.95
    budget: str = ""
    #: what the interval speaks for: "seeds and images" (t over per-seed differences) or "images only (1 seed)"
    scope: str = "seeds and images"

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "claim"}
        out.update({f"claim_{f.name}": getattr(self.claim, f.name) for f in dataclasses.fields(self.claim)})
        return out


def _net(measurements: Measurements, dataset: str, row: str, under: str, metric: str) -> pd.DataFrame:
    """Per image: value under ``under`` minus value under the random baseline (same images and seeds)."""
    return measurements.side(dataset, row, under, metric) - measurements.side(dataset, row, RANDOM, metric)


def _difference(tables, sign, confidence, n_boot, seed) -> dict:
    return contrast_interval(tables, [sign, -sign], confidence=confidence, n_boot=n_boot, seed=seed)


def judge(claim: Claim, measurements: Measurements, *, confidence: float = 0.95, n_boot: int = 2000,
          seed: int = 0, budget: str = "") -> Verdict:
    """Judge ``claim`` on ``measurements`` (see the module docstring); the bootstrap is seeded with ``seed``.
    ``budget`` is the training-budget sentence the verdict rests on (shown with it)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must be in (0, 1)")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot={n_boot!r} must be an int >= 100")
    tables = [measurements.side(claim.dataset, claim.a, claim.under, claim.metric),
              measurements.side(claim.dataset, claim.b, claim.side_b_under, claim.metric)]
    raw = _difference(tables, claim.sign, confidence, n_boot, seed)
    net = {}
    if claim.attributional:
        nets = [_net(measurements, claim.dataset, claim.a, claim.under, claim.metric),
                _net(measurements, claim.dataset, claim.b, claim.side_b_under, claim.metric)]
        r = _difference(nets, claim.sign, confidence, n_boot, seed)
        net = {"net_difference": r["estimate"], "net_ci_low": r["low"], "net_ci_high": r["high"],
               "net_verdict": decide(claim.relation, claim.margin, r["low"], r["high"])}
    used = raw["seeds"]
    return Verdict(claim=claim, mean_a=float(raw["means"][0]), mean_b=float(raw["means"][1]),
                   difference=raw["estimate"], ci_low=raw["low"], ci_high=raw["high"],
                   n_images=min(images_per_seed(t, used) for t in tables), n_seeds=len(used), scope=raw["scope"],
                   verdict=decide(claim.relation, claim.margin, raw["low"], raw["high"]), confidence=confidence,
                   budget=budget, **net)


def judge_all(claims: Sequence[Claim], measurements: Measurements, *, budget: str = "", **kwargs) -> list:
    """:func:`judge` every claim whose two sides were measured; a claim whose rows are missing is skipped
    (a chapter run on a subset of its models) — :func:`claims_table` lists only what was judged."""
    verdicts = []
    frame = measurements.frame
    have = set(zip(frame["dataset"], frame["row"], frame["under"], frame["metric"]))
    for claim in check_claims(claims):
        sides = {(claim.dataset, claim.a, claim.under, claim.metric),
                 (claim.dataset, claim.b, claim.side_b_under, claim.metric)}
        if not sides <= have:
            continue
        if claim.attributional and not {(claim.dataset, r, RANDOM, claim.metric) for r in (claim.a, claim.b)} <= have:
            raise ValueError(f"claim {claim.id!r} is about attributional robustness: measure the random baseline "
                             f"(under {RANDOM!r}) of rows {claim.a!r} and {claim.b!r} too")
        verdicts.append(judge(claim, measurements, budget=budget, **kwargs))
    return verdicts


def _interval_text(metric: str, diff: float, low: float, high: float, margin: float) -> str:
    """"difference [low, high]" with 2 decimals, or more where a bound would read as equal to a threshold of the
    verdict (0 or ± the margin) that it is not equal to."""
    thresholds = (0.0, margin, -margin)
    digits = 2
    while digits < 5 and any(b != t and format_value(metric, b, digits) == format_value(metric, t, digits)
                             for b in (low, high) for t in thresholds):
        digits += 1
    return (f"{format_value(metric, diff, digits)} [{format_value(metric, low, digits)}, "
            f"{format_value(metric, high, digits)}]")


def claims_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """The one renderer of verdicts: claim · paper says · ours (A vs B, difference [95 % CI], n images × n seeds)
    · verdict, and net of the random baseline where it applies."""
    rows = []
    for v in verdicts:
        c = v.claim
        rows.append({
            "claim": f"{c.where}: {c.statement()}" + (f" [{c.dataset}]" if c.dataset else ""),
            "paper says": f"“{c.says}”",
            "margin": f"{format_value(c.metric, c.margin, 2)} — {c.margin_reason}",
            "ours: A vs B": f"{format_value(c.metric, v.mean_a)} vs {format_value(c.metric, v.mean_b)}",
            "difference [95 % CI]": _interval_text(c.metric, v.difference, v.ci_low, v.ci_high, c.margin),
            "n (images × seeds)": f"{v.n_images} × {v.n_seeds}" + ("" if v.n_seeds != 1 else " (images only)"),
            "verdict": v.verdict,
            "net of random [95 % CI]": ("–" if v.net_verdict is None else
                                        _interval_text(c.metric, v.net_difference, v.net_ci_low,
                                                       v.net_ci_high, c.margin)),
            "verdict net of random": v.net_verdict or "–",
        })
    if not rows:  # an empty table would render as a bare header
        rows = [{"claim": "(none)", "verdict": "no claim of this part was judged with these settings"}]
    return pd.DataFrame(rows).set_index("claim")


def not_judged(claims: Sequence[Claim], verdicts: Sequence[Verdict]) -> list:
    """The claims of ``claims`` that have no verdict (their rows were not run at this scale or with these
    parameters)."""
    judged = {v.claim.id for v in verdicts}
    return [c for c in claims if c.id not in judged]


def save_verdicts(verdicts: Sequence[Verdict], path: Path, *, chapter: str, scale: str,
                  declared: Sequence[Claim] = ()) -> Path:
    """Write ``verdicts`` as JSON for the book's front page of verdicts (:func:`verdicts_frontpage`), with the
    ``declared`` claims that were not judged, so the page can list them instead of dropping them silently."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"chapter": chapter, "scale": scale, "verdicts": [v.as_dict() for v in verdicts],
               "not_judged": [dataclasses.asdict(c) for c in not_judged(declared, verdicts)]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=float))
    tmp.replace(path)
    return path


def load_verdicts(paths: Iterable[Path]) -> pd.DataFrame:
    """Every saved verdict of ``paths`` as one frame (one row per claim); declared claims that were not judged
    have ``verdict`` "not judged at this scale" and no numbers."""
    rows = []
    for path in paths:
        payload = json.loads(Path(path).read_text())
        where = {"chapter": payload["chapter"], "scale": payload["scale"]}
        rows += [{**where, **v} for v in payload["verdicts"]]
        rows += [{**where, **{f"claim_{k}": v for k, v in c.items()}, "verdict": NOT_JUDGED}
                 for c in payload.get("not_judged", [])]
    return pd.DataFrame(rows)


def _none_if_nan(value):
    """A frame of several claims holds NaN where one claim had None (``under_b``)."""
    return None if isinstance(value, float) and math.isnan(value) else value


def verdicts_frontpage(frame: pd.DataFrame, scale: str) -> str:
    """The book's front page of verdicts (Markdown): every judged claim of every chapter in one table — paper,
    where and a link to the chapter, claim, verdict raw and net of the random baseline, the counts — with a tally of
    both verdicts, the training budget each chapter's verdicts rest on, and the declared claims not judged."""
    lines = [f"# What reproduces at `scale={scale}`", "",
             "Every claim the chapters judge, in one table. A verdict is read off a 95 % interval over training "
             "seeds and images (Student's t over per-seed paired differences; one seed: a bootstrap over its images, "
             "marked 'images only'): **holds** when the interval lies on the "
             "claim's side of its margin, **does not hold** when it lies on the other side, **inconclusive** "
             "otherwise. Claims about attributional robustness are also judged net of random noise of the same "
             "ε: a claim that holds raw but not net rests on maps that any noise of that size moves. Each verdict "
             "rests on the training budget its chapter states (listed under the table), a fraction of the paper's: "
             "a \"does not hold\" at this scale is a finding about that budget, not a refutation of the paper.", ""]
    if frame.empty:
        return "\n".join(lines + ["No chapter has saved verdicts at this scale yet.", ""])
    judged, skipped = frame[frame["verdict"] != NOT_JUDGED], frame[frame["verdict"] == NOT_JUDGED]
    raw = judged["verdict"].value_counts()
    net = (judged["net_verdict"].dropna() if "net_verdict" in judged else pd.Series(dtype=object)).value_counts()
    lines += [f"**{len(judged)}** of {len(frame)} declared claims judged: "
              + " · ".join(f"**{raw.get(v, 0)}** {v}" for v in VERDICTS)
              + f". Net of random noise, the {int(net.sum())} about attributional robustness: "
              + " · ".join(f"**{net.get(v, 0)}** {v}" for v in VERDICTS)
              + f". **{len(skipped)}** {NOT_JUDGED} (listed at the end).", ""]
    lines += ["| source (chapter) | claim | verdict | net of random | images × seeds |",
              "|---|---|---|---|---|"]
    for _, r in judged.iterrows():
        net_verdict = r.get("net_verdict")
        counts = f"{int(r['n_images'])} × {int(r['n_seeds'])}" + (" (images only)" if int(r["n_seeds"]) == 1 else "")
        lines.append(f"| {_source_and_claim(r)} | {r['verdict']} | "
                     f"{net_verdict if isinstance(net_verdict, str) else '–'} | {counts} |")
    lines += ["", "## The training budgets these verdicts rest on", ""]
    for chapter, rows in judged.groupby("chapter", sort=False):
        budgets = [b for b in dict.fromkeys(rows["budget"].fillna("")) if b] if "budget" in rows else []
        lines += [f"- {_chapter_link(rows.iloc[0])}: {' '.join(budgets) or 'not stated'}"]
    if len(skipped):
        lines += ["", f"## Declared, {NOT_JUDGED}", "",
                  "Claims whose models or settings this scale does not run (each chapter says why).", "",
                  "| source (chapter) | claim |", "|---|---|"]
        lines += [f"| {_source_and_claim(r)} |" for _, r in skipped.iterrows()]
    return "\n".join(lines + [""])


def _source_and_claim(row: pd.Series) -> str:
    """The first two cells of a front-page row: "paper, where (chapter link) | statement [dataset]"."""
    claim = Claim(**{f.name: _none_if_nan(row[f"claim_{f.name}"]) for f in dataclasses.fields(Claim)})
    return (f"{claim.paper}, {claim.where} ({_chapter_link(row)}) | {claim.statement()}"
            + (f" [{claim.dataset}]" if claim.dataset else ""))


def _chapter_link(row: pd.Series) -> str:
    return f"[{row['chapter']}](chapters/{row['chapter']})"


__all__ = ["Claim", "DISPLAY", "Measurements", "RANDOM", "RELATIONS", "VERDICTS", "Verdict", "check_claims",
           "claims_table", "contrast_interval", "decide", "format_value", "images_per_seed", "judge", "judge_all",
           "mean_interval", "load_verdicts", "metric_label", "not_judged", "save_verdicts", "verdicts_frontpage"]
