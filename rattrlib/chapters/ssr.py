"""Chapter 05: SSR (Wang, Wang, Ramkumar, Fredrikson, Mardziel & Datta, "Smoothed Geometry for Robust
Attribution", NeurIPS 2020) — settings, claims, measurements, tables and figures of ``notebooks/05_ssr.ipynb``.

Every number the paper reports is a log-AUC (Fig. 2a): a metric averaged over images at ε ∈ {2, 4, 8, 16}/255,
integrated over log2 ε by the trapezoid rule and divided by the log2 range. The rule is linear in the curve, so
the mean over images of the *per-image* log-AUCs equals the log-AUC of the means; the chapter therefore measures a
log-AUC per image (:func:`per_image_log_auc`) and lets the claims engine put an interval over seeds and images on it. A
log-AUC is in its metric's units, so a claim on it names the metric itself (``cosine_distance``) and the condition
``"<attack> log-AUC"``; the random-sign baseline's log-AUC is the condition ``"random"``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from rattrlib.attributions import attribution_map, get_attribution
from rattrlib.chapters._common import ATTRIBUTION_NAMES, METHOD_NAMES, budget_sentence, mean_spread, publish_verdicts
from rattrlib.claims import RANDOM, Claim, Measurements, check_claims, format_value, judge_all, metric_label
from rattrlib.config import resolve_device
from rattrlib.data import load_dataset
from rattrlib.plots import plot_attribution_grid
from rattrlib.results import ResultsCache, data_fingerprint, model_fingerprint
from rattrlib.settings import (ChapterSettings, choice, int_check, optional, real_check, sequence_of, setting)
from rattrlib import sweeps
from rattrlib.sweeps import SSR_METRICS, attack_cell, attack_factory, check_eps_list
from rattrlib.train.cost import training_cost
from rattrlib.train.ssr import SSR
from rattrlib.zoo import get_model, zoo_config

SSR_DATASETS = ("fashion_mnist", "fmnist_scenes32", "cifar10", "flowers102")
ATTRIBUTIONS = ("saliency", "integrated_gradients", "smoothgrad", "uniform_gradient")
SMOOTHED = ("smoothgrad", "uniform_gradient")
#: the rows of Experiments I and III (the maps, by display name), in the paper's order
ATTRIBUTION_ROWS = tuple(ATTRIBUTION_NAMES[a] for a in ATTRIBUTIONS)
ATTACKS = ("top-k", "manipulate")
#: the condition under which a log-AUC is stored (the random-sign baseline is the engine's ``"random"``)
UNDER = {"top-k": "top-k log-AUC", "manipulate": "manipulate log-AUC", "random": RANDOM}
#: the rows of Experiment II: row name → zoo method
NATURAL = METHOD_NAMES["natural"]
MODELS = {NATURAL: "natural", "SSR": "ssr", "PGD-AT": "pgd_at", "IG-NORM": "ig_norm"}

#: SSR trains ResNet-20 on CIFAR-10 (§5.1) without stating epochs. Assumed: He et al.'s ResNet-20 CIFAR-10 schedule,
#: 64k iterations × batch 128 ≈ 164 epochs × 50k images (an assumption, said so in the budget sentence's note).
PAPER_IMAGES = 64_000 * 128


def _eps(name, value):
    return real_check(0, 64 / 255, low_open=True)(name, value)


def _eps_list(name, value):
    """At least 2 budgets (a log-AUC needs them), each in (0, 64/255], strictly increasing."""
    if isinstance(value, (list, tuple)) and len(value) < 2:
        raise ValueError(f"{name}={value!r}: needs at least 2 budgets for the log-AUC")
    return check_eps_list(sequence_of(_eps, min_length=2)(name, value))


def _attrs(name, value):
    return sequence_of(choice(*ATTRIBUTIONS))(name, value)


def _pixel_share(height: int, width: int) -> int:
    """SSR's top-k as a share of the pixels: 20 of CIFAR-10's 32×32 (Fig. 3 caption)."""
    return max(1, round(20 * height * width / 1024))


@dataclasses.dataclass(frozen=True)
class SSRSettings(ChapterSettings):
    """The chapter's parameters (papermill), each checked by name before any model is trained or loaded."""

    datasets: tuple = setting(sequence_of(choice(*SSR_DATASETS)), "Experiment I datasets (natural models)")
    exp2_dataset: str = setting(choice(*SSR_DATASETS), "Experiments II-III dataset (natural, SSR, PGD-AT, IG-NORM)")
    eps_list: tuple = setting(_eps_list, "ℓ∞ budgets on [0, 1] (SSR: 2, 4, 8, 16 / 255)")
    attack_steps: int = setting(int_check(1), "signed steps of the top-k and manipulate attacks (SSR: 50)")
    alpha_ratio: float = setting(real_check(0, 1, low_open=True), "attack step α as a fraction of ε")
    k: Optional[int] = setting(optional(int_check(1)), "top-k; None: SSR's share, 20 of 1024 pixels")
    beta: float = setting(real_check(0, 1e4, low_open=True), "softplus β of the attacks' smooth surrogate")
    n_eval: int = setting(int_check(2), "test images per model and seed (correctly classified ones attacked)")
    n_accuracy: int = setting(int_check(10), "test images per model and seed for the clean accuracy")
    ig_steps: int = setting(int_check(1), "IG right-Riemann points (attack and maps)")
    n_samples: int = setting(int_check(1), "SmoothGrad / Uniform Gradient draws (attack and maps)")
    sigma: float = setting(real_check(0, 1, low_open=True), "SmoothGrad σ on [0, 1]")
    radius: Optional[float] = setting(optional(real_check(0, 1, low_open=True)),
                                      "Uniform Gradient r on [0, 1]; None: √3·σ (the same noise variance)")
    sigma_grid: tuple = setting(sequence_of(real_check(0, 1, low_open=True), min_length=0), "SmoothGrad σ sweep")
    radius_grid: tuple = setting(sequence_of(real_check(0, 1, low_open=True), min_length=0),
                                 "Uniform Gradient r sweep")
    sweep_eps: float = setting(_eps, "budget of the σ / r sweep")
    exp2_attributions: tuple = setting(_attrs, "attributions attacked in Experiment II")
    scale_s_grid: tuple = setting(sequence_of(real_check(0, 1e9, low_open=True), min_length=0),
                                  "SSR scales s trained besides the zoo's (one seed)")
    timing_batches: int = setting(int_check(1), "timed training steps per method")
    timing_batch_size: int = setting(int_check(1), "images per timed step (SSR: 32)")
    timing_threads: Optional[int] = setting(optional(int_check(1)), "torch threads while timing")
    n_show: int = setting(int_check(1), "images in the before/after figure")

    _COMMON: ClassVar[dict] = {"alpha_ratio": 0.25, "k": None, "beta": 10.0, "sigma": 0.1, "radius": None,
                               "sweep_eps": 8 / 255, "timing_threads": 1}
    PRESETS: ClassVar[dict] = {
        "smoke": {**_COMMON, "seeds": (0, 1), "datasets": ("fashion_mnist",), "exp2_dataset": "fashion_mnist",
                  "eps_list": (4 / 255, 16 / 255), "attack_steps": 2, "n_eval": 8, "n_accuracy": 64,
                  "ig_steps": 4, "n_samples": 4, "sigma_grid": (0.2,), "radius_grid": (0.1,),
                  "exp2_attributions": ("saliency",), "scale_s_grid": (), "timing_batches": 1,
                  "timing_batch_size": 8, "n_show": 2},
        "cpu": {**_COMMON, "seeds": (0, 1, 2), "datasets": ("fashion_mnist",), "exp2_dataset": "fashion_mnist",
                "eps_list": (2 / 255, 4 / 255, 8 / 255, 16 / 255), "attack_steps": 10, "n_eval": 16,
                "n_accuracy": 2000, "ig_steps": 8, "n_samples": 8, "sigma_grid": (0.05, 0.2),
                "radius_grid": (4 / 255, 0.1), "exp2_attributions": ("saliency", "integrated_gradients"),
                "scale_s_grid": (0.1, 1.0), "timing_batches": 4, "timing_batch_size": 32, "n_show": 3},
        "paper": {**_COMMON, "seeds": (0, 1, 2), "datasets": ("cifar10", "flowers102"), "exp2_dataset": "cifar10",
                  "eps_list": (2 / 255, 4 / 255, 8 / 255, 16 / 255), "attack_steps": 50, "n_eval": 500,
                  "n_accuracy": 10_000, "ig_steps": 50, "n_samples": 50, "sigma_grid": (0.05, 0.15, 0.2, 0.3),
                  "radius_grid": (2 / 255, 8 / 255, 16 / 255, 0.1), "exp2_attributions": ATTRIBUTIONS,
                  "scale_s_grid": (), "timing_batches": 4, "timing_batch_size": 32, "n_show": 3},
    }

    @property
    def uniform_radius(self) -> float:
        """Uniform Gradient's r: the parameter, or √3·σ — U(−r, r) has variance r²/3, SmoothGrad's σ² then."""
        return self.radius if self.radius is not None else math.sqrt(3) * self.sigma

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def resolved(self) -> dict:
        return {"k": f"SSR's share of the pixels: {_pixel_share(28, 28)} of 28×28, {_pixel_share(32, 32)} of 32×32",
                "radius": f"{self.uniform_radius:.4g} (√3·σ)"}

    def top_k(self, images) -> int:
        """The parameter, or SSR's share of the pixels (k = 20 of 32×32 on CIFAR-10, Fig. 3 caption)."""
        return self.k if self.k is not None else _pixel_share(images.shape[-2], images.shape[-1])

    def attribution_kwargs(self, sigma: Optional[float] = None, radius: Optional[float] = None) -> dict:
        return {"integrated_gradients": {"n_steps": self.ig_steps},
                "smoothgrad": {"sigma": sigma or self.sigma, "n_samples": self.n_samples},
                "uniform_gradient": {"radius": radius or self.uniform_radius, "n_samples": self.n_samples}}

    def attacks(self, random: bool = True) -> dict:
        """The top-k (Ghorbani) and manipulate (Dombrowski) attacks, and the random-sign baseline."""
        out = {a: attack_factory("ifia_topk" if a == "top-k" else "manipulate", steps=self.attack_steps,
                                 alpha_ratio=self.alpha_ratio, beta=self.beta) for a in ATTACKS}
        return {**out, "random": attack_factory("random_sign")} if random else out


# ------------------------------------------------------------------------------------------------------------
# claims
# ------------------------------------------------------------------------------------------------------------
SAYS_EXP1 = ("attributions with stochastic smoothing, Smooth Gradient and Uniform Gradient, are showing better "
             "robustness than Saliency Map and Integrated Gradient on most metrics")
SAYS_SG_UG = "Smooth Gradient does better on dataset with smaller sizes while Uniform does better on images with larger size"
SAYS_NAT = "SSR provides much better robustness nearly on all the metrics for all attribution methods"
SAYS_MADRY = "SSR provides comparable and sometimes even better robustness compared to Madry's adversarial training"
SAYS_IGNORM = "Though IG-NORM provides the best performance"
SAYS_COST = "it has high costs of training time and accuracy, while SSR and Madry's training have lower costs"
SAYS_TRANSFER = ("perturbation targeted on Saliency Map modifies Integrated Gradient in a more significant way than "
                 "it does on Smooth Gradient or Uniform Gradient")
NO_NUMBER = "an ordering ('better', 'much better', 'best'): the paper gives no size: judged as a direction only"
COMPARABLE = ("'comparable and sometimes even better': one-sided, SSR at most 1 point of cosd (0.01 on its [0, 1] "
              "scale) worse than PGD-AT — rattr's convention for 'comparable' (the paper gives no band; Fig. 4's "
              "bars are not finer)")


def exp1_label(dataset: str) -> str:
    return f"Exp. I {dataset}"


def exp2_label(dataset: str, attribution: str) -> str:
    return f"Exp. II {dataset} · {ATTRIBUTION_NAMES[attribution]}"


def exp3_label(dataset: str) -> str:
    return f"Exp. III {dataset} · from saliency"


def claims(settings: "SSRSettings") -> tuple:
    """SSR's claims for ``settings``' datasets, each judged on cosd (the metric of Fig. 3–5) log-AUCs.

    * Exp. I (§5.1): SmoothGrad / Uniform Gradient better than saliency / IG on a natural model, both attacks;
      SmoothGrad better than Uniform Gradient on small images, at matched smoothing (r = √3·σ, the same noise
      variance), on the first dataset (the paper's CIFAR-10 is the "smaller size"; rattr has no ImageNet-size set,
      so the "larger" half is not tested).
    * Exp. II (§5.2): SSR better than natural; SSR not worse than PGD-AT (margin 0.01 cosd); IG-NORM better than
      SSR; SSR's and PGD-AT's clean accuracy above IG-NORM's.
    * Exp. III (§5.3): a manipulate perturbation against saliency changes IG more than SmoothGrad / Uniform Gradient.
    """
    out = []
    cosd = "cosine_distance"
    for d in settings.datasets:
        for attack in ATTACKS:
            for smooth in SMOOTHED:
                for plain in ("saliency", "integrated_gradients"):
                    out.append(Claim(f"ssr.fig3.{d}.{smooth}_vs_{plain}.{attack}", "SSR", "§5.1, Fig. 3", SAYS_EXP1,
                                     cosd, ATTRIBUTION_NAMES[smooth], ATTRIBUTION_NAMES[plain], UNDER[attack],
                                     margin_reason=NO_NUMBER, dataset=exp1_label(d)))
    d0 = settings.datasets[0]
    for attack in ATTACKS:
        out.append(Claim(f"ssr.fig3.{d0}.smoothgrad_vs_uniform_matched.{attack}", "SSR", "§5.1, Fig. 3", SAYS_SG_UG,
                         cosd, ATTRIBUTION_NAMES["smoothgrad"], ATTRIBUTION_NAMES["uniform_gradient"], UNDER[attack],
                         margin_reason="an ordering on the smaller images; compared at the same noise variance "
                                       "(r = √3·σ)", dataset=exp1_label(d0)))
    d2 = settings.exp2_dataset
    for a in ("saliency", "integrated_gradients"):
        for attack in ATTACKS:
            out.append(Claim(f"ssr.fig4.{a}.ssr_vs_natural.{attack}", "SSR", "§5.2, Fig. 4", SAYS_NAT, cosd, "SSR",
                             NATURAL, UNDER[attack], margin_reason=NO_NUMBER, dataset=exp2_label(d2, a)))
            out.append(Claim(f"ssr.fig4.{a}.ssr_vs_pgd_at.{attack}", "SSR", "§5.2, Fig. 4", SAYS_MADRY, cosd, "SSR",
                             "PGD-AT", UNDER[attack], relation="not_worse", margin=0.01, margin_reason=COMPARABLE,
                             dataset=exp2_label(d2, a)))
    for attack in ATTACKS:
        out.append(Claim(f"ssr.fig4.saliency.ig_norm_vs_ssr.{attack}", "SSR", "§5.2, Fig. 4", SAYS_IGNORM, cosd,
                         "IG-NORM", "SSR", UNDER[attack], margin_reason=NO_NUMBER,
                         dataset=exp2_label(d2, "saliency")))
    for row in ("SSR", "PGD-AT"):
        out.append(Claim(f"ssr.fig4.accuracy.{row.lower()}_vs_ig_norm", "SSR", "§5.2", SAYS_COST, "accuracy", row,
                         "IG-NORM", "clean", margin_reason=NO_NUMBER, dataset=f"Exp. II {d2}"))
    for smooth in SMOOTHED:
        out.append(Claim(f"ssr.fig5b.{smooth}_vs_ig.manipulate", "SSR", "§5.3, Fig. 5", SAYS_TRANSFER, cosd,
                         ATTRIBUTION_NAMES[smooth], ATTRIBUTION_NAMES["integrated_gradients"], UNDER["manipulate"],
                         margin_reason=NO_NUMBER, dataset=exp3_label(d0)))
    return check_claims(out)


#: the claims at the book's scale
CLAIMS = claims(SSRSettings.resolve("cpu"))


# ------------------------------------------------------------------------------------------------------------
# per-image log-AUC
# ------------------------------------------------------------------------------------------------------------
def per_image_log_auc(eps, values) -> np.ndarray:
    """SSR Fig. 2a per image: ``values`` (budgets × images) integrated over log2 ε by the trapezoid rule and
    divided by the log2 range. Linear in the values, so its mean over images is the log-AUC of the mean curve."""
    x = np.log2(np.asarray(eps, dtype=np.float64))
    v = np.asarray(values, dtype=np.float64)
    if x.size < 2 or v.shape[0] != x.size:
        raise ValueError(f"need ≥ 2 budgets and one row of values per budget, got {x.size} and {v.shape}")
    area = ((v[1:] + v[:-1]) / 2 * np.diff(x)[:, None]).sum(axis=0)
    return area / (x[-1] - x[0])


def _curves(cells: dict, eps: tuple, metric: str, ids: dict) -> list:
    return [{**ids, "attack": a, "attribution": attr, "eps": e, "metric": metric,
             "mean": float(np.nanmean(c.per_image.loc[c.per_image["correct"], metric]))}
            for (a, attr), cs in cells.items() for e, c in zip(eps, cs)]


def _add_log_aucs(measurements: Measurements, cells: dict, eps: tuple, seed: int, dataset: str, row_of) -> None:
    for (attack, attr), cs in cells.items():
        for metric in SSR_METRICS:
            values = np.stack([c.per_image[metric].to_numpy(dtype=np.float64) for c in cs])
            measurements.add(row_of(attack, attr), UNDER[attack], metric, seed, per_image_log_auc(eps, values),
                             dataset=dataset)


def grid_cells(model, data, settings: SSRSettings, attributions, seed: int, dataset: str, cache: ResultsCache,
               attribution_kwargs: Optional[dict] = None, eps_list=None, attacks: Optional[dict] = None) -> dict:
    """{(attack, attribution): [GridCell per ε]} — the cells of :func:`rattrlib.sweeps.attack_grid` (the same
    cache entries), kept whole for their per-image scores."""
    kwargs = attribution_kwargs or settings.attribution_kwargs()
    x, y = data.images, data.labels
    return {(a, attr): [attack_cell(model, x, y, factory, attr, e, settings.top_k(x), name=a,
                                    attribution_kwargs=kwargs.get(attr, {}), cache=cache, seed=seed, dataset=dataset)
                        for e in (eps_list or settings.eps_list)]
            for a, factory in (attacks or settings.attacks()).items() for attr in attributions}


@dataclasses.dataclass
class SSRResults:
    """What the notebook shows: per-image log-AUCs of every experiment (``measurements``), the mean curves over ε
    (``curves``), the models of the first seed, the σ / r sweep, the s table, the timing table."""

    settings: SSRSettings
    measurements: Measurements
    curves: pd.DataFrame
    models: dict
    test: dict
    sweep: pd.DataFrame = None
    s_table: pd.DataFrame = None
    cost: pd.DataFrame = None
    transfer: pd.DataFrame = None


def _natural(settings, d, seed):
    model, _ = get_model(d, "natural", settings.scale, seed=seed, device=settings.torch_device, progress=False)
    return model


def _clean_correct(model, data, seed, dataset, cache) -> np.ndarray:
    key = {"model": model_fingerprint(model), "data": data_fingerprint(data.images, data.labels)}

    def compute():
        device = next(model.parameters()).device
        with torch.no_grad():
            pred = torch.cat([model(data.images[i:i + 500].to(device)).argmax(1).cpu()
                              for i in range(0, len(data.images), 500)])
        return (pred == data.labels.cpu()).numpy().astype(np.float64)

    return cache.get_or_compute("clean_correct", key, compute, seed=seed, dataset=dataset)


def experiment1(settings: SSRSettings, results: SSRResults, cache: ResultsCache) -> None:
    """§5.1: every attribution of each dataset's natural model under both attacks and the random baseline."""
    curves = []
    for seed in settings.seeds:
        for d in settings.datasets:
            model = _natural(settings, d, seed)
            data = load_dataset(d, "test").subset(settings.n_eval, seed=seed)
            cells = grid_cells(model, data, settings, ATTRIBUTIONS, seed, d, cache)
            _add_log_aucs(results.measurements, cells, settings.eps_list, seed, exp1_label(d),
                          lambda a, attr: ATTRIBUTION_NAMES[attr])
            curves += [r for m in SSR_METRICS for r in _curves(cells, settings.eps_list, m,
                                                                  {"experiment": exp1_label(d), "seed": seed})]
            if seed == settings.seeds[0]:
                results.models[(NATURAL, d)], results.test[d] = model, data
    results.curves = pd.concat([results.curves, pd.DataFrame(curves)], ignore_index=True)


def _s_rows(settings) -> dict:
    preset = zoo_config(settings.exp2_dataset, "ssr", settings.scale).hyperparameters["scale_s"]
    return {f"SSR s={s:g}": s for s in settings.scale_s_grid if not math.isclose(s, preset)}


def experiment2(settings: SSRSettings, results: SSRResults, cache: ResultsCache) -> None:
    """§5.2: natural, SSR, PGD-AT and IG-NORM (every seed) and SSR at other s (first seed, saliency only)."""
    d = settings.exp2_dataset
    for seed in settings.seeds:
        data = load_dataset(d, "test").subset(settings.n_eval, seed=seed)
        acc_data = load_dataset(d, "test").subset(settings.n_accuracy, seed=seed)
        rows = {name: (method, None) for name, method in MODELS.items()}
        if seed == settings.seeds[0]:
            rows.update({name: ("ssr", {"scale_s": s}) for name, s in _s_rows(settings).items()})
        for name, (method, overrides) in rows.items():
            model, _ = get_model(d, method, settings.scale, seed=seed, device=settings.torch_device, progress=False,
                                 overrides=overrides)
            attrs = settings.exp2_attributions if name in MODELS else ("saliency",)
            cells = grid_cells(model, data, settings, attrs, seed, d, cache)
            for attr in attrs:
                _add_log_aucs(results.measurements, {k: v for k, v in cells.items() if k[1] == attr},
                              settings.eps_list, seed, exp2_label(d, attr), lambda a, _, n=name: n)
            results.measurements.add(name, "clean", "accuracy", seed, _clean_correct(model, acc_data, seed, d, cache),
                                     dataset=f"Exp. II {d}")
            if seed == settings.seeds[0]:
                results.models[(name, d)] = model
        results.test.setdefault(f"exp2 {seed}", data)


def experiment3(settings: SSRSettings, results: SSRResults, cache: ResultsCache) -> None:
    """§5.3: the attacks (and the random baseline) against the natural model's saliency map, scored on every map;
    per image, each curve over ε is reduced to its log-AUC for the claims."""
    d = settings.datasets[0]
    grids = []
    for seed in settings.seeds:
        model = _natural(settings, d, seed)
        data = load_dataset(d, "test").subset(settings.n_eval, seed=seed)
        scores = sweeps.transfer_scores(model, data.images, data.labels, settings.attacks(), "saliency",
                                        ATTRIBUTIONS, settings.eps_list, settings.top_k(data.images),
                                        attribution_kwargs=settings.attribution_kwargs(), cache=cache, seed=seed,
                                        dataset=d)
        grids.append(sweeps.summarise_transfer(scores, "saliency").assign(seed=seed))
        for attack in settings.attacks():
            for target in ATTRIBUTIONS:
                per_eps = [scores[(attack, e, target)] for e in settings.eps_list]
                for metric in SSR_METRICS:
                    values = np.stack([s[metric] for s in per_eps])
                    results.measurements.add(ATTRIBUTION_NAMES[target], UNDER[attack], metric, seed,
                                             per_image_log_auc(settings.eps_list, values),
                                             dataset=exp3_label(d), images=per_eps[0]["cell"].attacked)
    results.transfer = pd.concat(grids, ignore_index=True)


def sigma_radius_sweep(settings: SSRSettings, results: SSRResults, cache: ResultsCache) -> None:
    """SmoothGrad σ and Uniform Gradient r at ``sweep_eps`` on the first dataset's natural model (first seed)."""
    d, seed = settings.datasets[0], settings.seeds[0]
    model, data = results.models[(NATURAL, d)], results.test[d]
    rows = []
    for name, values in (("smoothgrad", {*settings.sigma_grid, settings.sigma}),
                         ("uniform_gradient", {*settings.radius_grid, settings.uniform_radius})):
        for v in sorted(values):
            kw = settings.attribution_kwargs(sigma=v, radius=v)
            attacks = {a: f for a, f in settings.attacks().items() if a in ("top-k", "random")}
            cells = grid_cells(model, data, settings, [name], seed, d, cache, attribution_kwargs=kw,
                               eps_list=(settings.sweep_eps,), attacks=attacks)
            for (a, _), (cell,) in cells.items():
                att = cell.per_image[cell.per_image["correct"]]
                rows += [{"attribution": ATTRIBUTION_NAMES[name], "value": v, "attack": a, "metric": m,
                          "mean": float(np.nanmean(att[m]))} for m in SSR_METRICS]
    results.sweep = pd.DataFrame(rows)


def s_table(settings: SSRSettings, cache: ResultsCache) -> pd.DataFrame:
    """The choice of s (first seed): CE and penalty of the last epoch, and λ_max on 256 training images."""
    d, seed, device = settings.exp2_dataset, settings.seeds[0], settings.torch_device
    probe = load_dataset(d, "train").subset(256, seed=seed)
    rows = {}
    variants = {NATURAL: ("natural", None), f"SSR s={zoo_config(d, 'ssr', settings.scale).hyperparameters['scale_s']:g} (zoo)":
                ("ssr", None), **{n: ("ssr", {"scale_s": s}) for n, s in _s_rows(settings).items()}}
    for name, (method, overrides) in variants.items():
        model, logs = get_model(d, method, settings.scale, seed=seed, device=device, progress=False,
                                overrides=overrides)
        key = {"model": model_fingerprint(model), "data": data_fingerprint(probe.images, probe.labels)}
        lam = cache.get_or_compute("ssr_lambda_max", key, lambda m=model: _lambda_stats(m, probe, device),
                                   seed=seed, dataset=d)
        hp = zoo_config(d, method, settings.scale, overrides=overrides).hyperparameters
        rows[name] = {"CE (last epoch mean)": logs[-1]["ce"],
                      "β_s·s·λ_max (epoch mean)": hp.get("beta_s", 0.0) * logs[-1].get("reg", 0.0) if method == "ssr"
                      else 0.0, "λ_max mean": lam[0], "λ_max median": lam[1]}
    return pd.DataFrame(rows).T.round(3)


def _lambda_stats(model, probe, device):
    lam, _ = SSR().top_eigenvalue(model, probe.images.to(device), create_graph=False)
    lam = lam.detach()
    return float(lam.mean()), float(lam.median())


def cost_table(settings: SSRSettings, results: SSRResults, cache: ResultsCache) -> pd.DataFrame:
    """Seconds per epoch of each method, timed here back to back (first seed; no verdict: one timing run)."""
    d = settings.exp2_dataset
    pgd = zoo_config(d, "pgd_at", settings.scale)
    timed = {NATURAL: zoo_config(d, "natural", settings.scale), "SSR": zoo_config(d, "ssr", settings.scale),
             f"PGD-AT ({pgd.hyperparameters['steps']} steps, zoo)": pgd,
             "PGD-AT (30 steps, SSR's Madry)": zoo_config(d, "pgd_at", settings.scale, overrides={
                 "steps": 30, "alpha": 2.5 * pgd.hyperparameters["eps"] / 30}),
             "IG-NORM (zoo)": zoo_config(d, "ig_norm", settings.scale)}
    train = load_dataset(d, "train")
    column = "CPU s/epoch" if settings.torch_device.type == "cpu" else "wall s/epoch"
    rows = {}
    for name, cfg in timed.items():
        c = training_cost(cfg, batches=settings.timing_batches, batch_size=settings.timing_batch_size,
                          start=results.models[(NATURAL, d)], data=train, seed=settings.seeds[0],
                          device=str(settings.torch_device), threads=settings.timing_threads, cache=cache)
        rows[name] = {"CPU s/epoch": c["cpu_seconds_per_epoch"], "wall s/epoch": c["seconds_per_epoch"],
                      "load avg. (start → end)": f"{c['load_average_start']:.1f} → {c['load_average_end']:.1f}"}
    table = pd.DataFrame(rows).T
    table = table.astype({"CPU s/epoch": float, "wall s/epoch": float})
    table.insert(2, f"× {NATURAL}", table[column] / table.loc[NATURAL, column])
    return table.round({"CPU s/epoch": 1, "wall s/epoch": 1, f"× {NATURAL}": 2})


def evaluate(settings: SSRSettings, cache: Optional[ResultsCache] = None) -> SSRResults:
    """Experiments I–III over ``settings.seeds`` (every cell cached), the σ / r sweep and the timing table."""
    cache = cache or ResultsCache()
    results = SSRResults(settings, Measurements(), pd.DataFrame(), {}, {})
    experiment1(settings, results, cache)
    experiment2(settings, results, cache)
    experiment3(settings, results, cache)
    sigma_radius_sweep(settings, results, cache)
    results.s_table = s_table(settings, cache)
    results.cost = cost_table(settings, results, cache)
    return results


# ------------------------------------------------------------------------------------------------------------
# tables, notes, verdicts
# ------------------------------------------------------------------------------------------------------------
def log_auc_table(results: SSRResults, dataset: str, metrics=SSR_METRICS, rows=None) -> pd.DataFrame:
    """log-AUC over ε of each (metric, row) under each attack and the random baseline (columns): mean over seeds
    ± seed std (no ± with one seed)."""
    s = results.measurements.summary()
    s = s[(s["dataset"] == dataset) & s["metric"].isin(metrics)]
    s = s.assign(text=[mean_spread(r["metric"], r) for r in s.to_dict("records")],
                 label=[metric_label(m) for m in s["metric"]])
    table = s.pivot(index=["label", "row"], columns="under", values="text")
    table = table.reindex(columns=[UNDER[a] for a in (*ATTACKS, "random") if UNDER[a] in table.columns])
    order = [r for r in (rows or dict.fromkeys(s["row"])) if r in set(s["row"])]
    index = pd.MultiIndex.from_tuples([(metric_label(m), r) for m in metrics for r in order],
                                      names=["metric (log-AUC)", "row"])
    table = table.reindex(index).fillna("–")
    table.columns.name = None
    return table


def accuracy_table(results: SSRResults) -> pd.DataFrame:
    d = f"Exp. II {results.settings.exp2_dataset}"
    s = results.measurements.summary()
    s = s[(s["dataset"] == d) & (s["metric"] == "accuracy")].set_index("row")
    return pd.DataFrame({metric_label("accuracy"): [mean_spread("accuracy", r) for r in s.to_dict("records")],
                         "images × seeds": [f"{i} × {n}" for i, n in zip(s["n_images"], s["n_seeds"])]},
                        index=s.index)


def budget(settings: SSRSettings) -> str:
    d = settings.exp2_dataset
    configs = {name: zoo_config(d, method, settings.scale) for name, method in MODELS.items()}
    return (budget_sentence(configs, PAPER_IMAGES, "SSR", settings.seeds) + " SSR states no epoch count; its "
            "budget is assumed to be He et al.'s ResNet-20 CIFAR-10 schedule (64k iterations × 128 images).")


def protocol_note(settings: SSRSettings, experiment: str) -> str:
    """The protocol differences under each table: Experiment ``"I"``, ``"II"``, ``"III"``, or ``"s"`` (the choice
    of s)."""
    common = (f"{settings.n_eval} test images per model and seed (SSR: 500), the correctly classified ones "
              f"attacked; seeds {', '.join(map(str, settings.seeds))}; {settings.attack_steps} signed steps of "
              f"{settings.alpha_ratio:g}·ε (SSR's manipulate: 50), softplus β = {settings.beta:g}; IG m = "
              f"{settings.ig_steps}, SmoothGrad σ = {settings.sigma:g} and Uniform Gradient r = "
              f"{settings.uniform_radius:.3g} (the same noise variance) with {settings.n_samples} draws; "
              f"ε = {', '.join(f'{e * 255:g}' for e in settings.eps_list)} /255; cells: mean over seeds ± seed std.")
    d2 = settings.exp2_dataset
    notes = {
        "I": f"Protocol difference: natural models of {', '.join(settings.datasets)} with the zoo's networks "
             f"(SSR: ResNet-20 on CIFAR-10 and Flower, ResNet-50 on ImageNet); " + common,
        "II": f"Protocol difference: {d2}; SSR s = {zoo_config(d2, 'ssr', settings.scale).hyperparameters['scale_s']:g}"
              f" (paper 1e6), β_s = 0.3; PGD-AT ℓ∞ ε = {zoo_config(d2, 'pgd_at', settings.scale).hyperparameters['eps']:g}"
              f" (SSR: Madry ℓ2 δ = 0.25, 30 steps); IG-NORM λ = "
              f"{zoo_config(d2, 'ig_norm', settings.scale).hyperparameters['lam']:g} (SSR: γ = 0.1); at cpu scale "
              f"the regularised models fine-tune the natural model (SSR: from scratch); the 'SSR s=…' rows are one "
              f"seed; " + common,
        "III": f"Protocol difference: perturbations against the saliency map of the natural {settings.datasets[0]} "
               f"model, scored on each map with the same noise draws for the clean and the perturbed image (SSR: "
               f"200 ImageNet images, ResNet-50); 'random' rows: a random-sign perturbation of the same ε; " + common,
        "s": f"Protocol: {d2}, seed {settings.seeds[0]}; one model per row (SSR rows: β_s = 0.3 and the row's s, "
             f"fine-tuning the natural model as in the zoo); CE and the penalty β_s·s·λ_max: means over the last "
             f"training epoch, from the training log; λ_max: the largest eigenvalue of the input Hessian after "
             f"training, mean and median over 256 training images. Paper: SSR uses s = 1e6 for its CIFAR-10 "
             f"ResNet-20 and gives no such table.",
    }
    if experiment not in notes:
        raise ValueError(f"experiment={experiment!r}: one of {sorted(notes)}")
    return notes[experiment]


def verdicts(results: SSRResults) -> list:
    return judge_all(claims(results.settings), results.measurements, budget=budget(results.settings))


def publish(results: SSRResults, judged: list):
    """Save the verdicts for the book's front page, with the claims declared at this scale (:func:`claims`): a
    declared claim whose rows were not run is listed there as not judged."""
    return publish_verdicts(judged, "05_ssr", results.settings.scale, declared=claims(results.settings))


# ------------------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------------------
def _axis_label(metric: str) -> str:
    """Figures plot metric units (top-k ∩ as a fraction, not the tables' %)."""
    return "top-k ∩ (fraction)" if metric == "topk_intersection" else metric_label(metric)


def plot_log_auc(results: SSRResults):
    """Fig. 2a from our numbers: top-k attack, saliency vs SmoothGrad, mean over images and seeds per ε."""
    d = results.settings.datasets[0]
    c = results.curves[(results.curves["experiment"] == exp1_label(d)) & (results.curves["attack"] == "top-k")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, metric in zip(axes, ["topk_intersection", "cosine_distance"]):
        for attr, colour in (("saliency", "black"), ("smoothgrad", "tab:blue")):
            curve = c[(c["attribution"] == attr) & (c["metric"] == metric)].groupby("eps")["mean"].mean()
            lx = np.log2(curve.index.to_numpy() * 255)
            auc = per_image_log_auc(curve.index, curve.to_numpy()[:, None])[0]
            ax.plot(lx, curve, marker="o", color=colour, label=f"{ATTRIBUTION_NAMES[attr]}: log-AUC {auc:.3f}")
            ax.fill_between(lx, 0, curve, color=colour, alpha=0.15)
        crowded = len(lx) > 1 and np.diff(lx).min() < 0.1 * (lx.max() - lx.min())  # budgets close on the log axis
        ax.set_xticks(lx, [f"{e * 255:.3g}" for e in curve.index], rotation=45 if crowded else 0,
                      ha="right" if crowded else "center")
        ax.set_xlabel("ε (/255, log2 axis)"); ax.set_ylabel(_axis_label(metric)); ax.legend(fontsize=8)
    axes[0].set_title(f"{d}, top-k attack: the area under each curve / the log2 range")
    fig.tight_layout()
    return fig


def plot_cosd_bars(results: SSRResults, dataset: str, title: str):
    """Fig. 3 / 4 style: cosd log-AUC per row and attack (mean ± seed std); dots: the random baseline."""
    s = results.measurements.summary()
    s = s[(s["dataset"] == dataset) & (s["metric"] == "cosine_distance")]
    rows = list(dict.fromkeys(s["row"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 3.2))
    pos = np.arange(len(rows))
    for i, attack in enumerate(ATTACKS):
        t = s[s["under"] == UNDER[attack]].set_index("row").reindex(rows)
        ax.bar(pos + (i - 0.5) * 0.38, t["mean"], 0.38, yerr=t["seed_std"], label=f"{attack} attack", capsize=2)
    r = s[s["under"] == RANDOM].set_index("row").reindex(rows)
    ax.scatter(pos, r["mean"], color="black", zorder=3, label="random sign")
    ax.set_xticks(pos, rows, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("cosd log-AUC ↓"); ax.set_title(title); ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sweep_table(results: SSRResults) -> pd.DataFrame:
    """The σ / r sweep as a table: one row per (attribution, σ or r), the mean score per (attack, metric) in display
    units (:func:`rattrlib.claims.format_value`; one seed, so no spread)."""
    sweep = results.sweep.assign(label=[metric_label(m) for m in results.sweep["metric"]],
                                 text=[format_value(m, v) for m, v in zip(results.sweep["metric"],
                                                                        results.sweep["mean"])],
                                 radius=[f"{v:.3g}" for v in results.sweep["value"]])
    table = sweep.pivot_table(index=["attribution", "radius"], columns=["attack", "label"], values="text",
                              aggfunc="first")
    table.index.names = ["attribution", "σ or r"]
    table.columns.names = ["attack", "metric"]
    return table


def plot_sweep(results: SSRResults):
    sweep = results.sweep
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, metric in zip(axes, ["topk_intersection", "cosine_distance"]):
        for (name, attack), c in sweep[sweep["metric"] == metric].groupby(["attribution", "attack"]):
            ax.plot(c["value"], c["mean"], marker="o", linestyle="-" if attack == "top-k" else ":",
                    label=f"{name}, {attack}")
        ax.set_xscale("log"); ax.minorticks_off()
        ticks = sorted(sweep["value"].unique())
        ax.set_xticks(ticks, [f"{v:.3g}" for v in ticks], fontsize=8, rotation=45)
        ax.set_xlabel("σ (SmoothGrad) or r (Uniform Gradient), [0, 1] scale")
        ax.set_ylabel(_axis_label(metric))
    fig.suptitle(f"{results.settings.datasets[0]}: ε = {results.settings.sweep_eps * 255:g}/255, seed "
                 f"{results.settings.seeds[0]}")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)  # one legend, off the data
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plot_transfer(results: SSRResults):
    t = results.transfer
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, metric in zip(axes, ["topk_intersection", "cosine_distance"]):
        for attr in ATTRIBUTIONS:
            c = t[(t["attack"] == "manipulate") & (t["attribution"] == attr) & (t["metric"] == metric)]
            c = c.groupby("eps")["mean"].mean()
            ax.plot(np.log2(c.index * 255), c, marker="o", label=ATTRIBUTION_NAMES[attr])
        r = t[(t["attack"] == "random") & (t["metric"] == metric)].groupby("eps")["mean"].mean()
        ax.plot(np.log2(r.index * 255), r, color="grey", linestyle=":", label="random sign (mean of maps)")
        ax.set_xticks(np.log2(np.array(c.index) * 255), [f"{e * 255:g}" for e in c.index])
        ax.set_xlabel("ε (/255)"); ax.set_ylabel(_axis_label(metric)); ax.legend(fontsize=7)
    axes[0].set_title("manipulate attack on saliency, scored on each map (mean over seeds)")
    fig.tight_layout()
    return fig


def plot_before_after(results: SSRResults):
    """Fig. 2b: saliency of the natural and the SSR model before / after their own manipulate attack."""
    settings = results.settings
    d, seed = settings.exp2_dataset, settings.seeds[0]
    data = results.test[f"exp2 {seed}"]
    x, y = data.images, data.labels
    eps = max([e for e in settings.eps_list if e <= 8 / 255 + 1e-12] or [settings.eps_list[0]])
    cells = {n: attack_cell(results.models[(n, d)], x, y, settings.attacks()["manipulate"], "saliency", eps,
                            settings.top_k(x), name="manipulate", cache=ResultsCache(), seed=seed, dataset=d)
             for n in (NATURAL, "SSR")}
    common = sorted(set(cells[NATURAL].attacked) & set(cells["SSR"].attacked))[:settings.n_show]
    maps, titles = {}, []
    device = settings.torch_device
    for name, cell in cells.items():
        pos = [int(np.flatnonzero(cell.attacked == i)[0]) for i in common]
        lab = cell.label[pos].to(device)
        sal = get_attribution("saliency", results.models[(name, d)])
        maps[f"{name}: clean"] = attribution_map(sal.attribute(x[common].to(device), lab))
        maps[f"{name}: attacked"] = attribution_map(sal.attribute(cell.x_adv[pos].to(device), lab))
        per = cell.per_image.loc[common]
        titles.append([f"k-in {format_value('topk_intersection', t, 0)}%, cosd {c:.2f}"
                       for t, c in zip(per.topk_intersection, per.cosine_distance)])
    fig = plot_attribution_grid(x[common], maps, titles=[f"nat: {a}\nSSR: {b}" for a, b in zip(*titles)])
    fig.suptitle(f"saliency before / after the manipulate attack, ε = {eps * 255:g}/255", y=1.02)
    return fig


__all__ = ["ATTRIBUTIONS", "ATTRIBUTION_ROWS", "CLAIMS", "MODELS", "NATURAL", "PAPER_IMAGES", "SSRResults",
           "SSRSettings", "accuracy_table", "budget", "claims", "cost_table", "evaluate", "log_auc_table", "per_image_log_auc",
           "plot_before_after", "plot_cosd_bars", "plot_log_auc", "plot_sweep", "plot_transfer", "protocol_note",
           "publish", "sweep_table", "verdicts"]
