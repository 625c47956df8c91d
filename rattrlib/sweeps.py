"""Sweeps of attributional attacks over attributions and budgets, for the SSR experiments (Wang et al. 2020, §5).

- :func:`attack_grid`: every (attack, attribution, ε) cell of Experiment I / II — each one run of
  :func:`~rattrlib.attacks.evaluate_attributional_robustness` — as one tidy frame of the SSR metrics
  (k-in, cor, cdl, cosd: ``topk_intersection``, ``spearman_rho``, ``center_of_mass_dislocation``,
  ``cosine_distance``) with t intervals;
- :func:`log_auc_table`: each curve aggregated over ε by :func:`~rattrlib.metrics.log_auc` (Fig. 2a), the
  numbers behind Fig. 3 / Fig. 4 and Tables 2–3 of the supplement;
- :func:`transfer_grid`: Experiment III (§5.3, Fig. 5b) — the perturbation found against one attribution
  (e.g. the saliency map) scored on the maps of the others;
- :func:`attack_cell`: one cell, with its adversarial images (for figures such as Fig. 2b / Fig. 5a).

>>> attacks = {"top-k": attack_factory("ifia_topk", steps=50, alpha_ratio=0.25),
...            "random": attack_factory("random_sign")}
>>> grid = attack_grid(model, x, y, attacks, ["saliency", "smoothgrad"], SSR_EPS, k=20, cache=ResultsCache())
>>> log_auc_table(grid, index="attribution")              # rows: attribution; columns: (attack, metric)

The module is called *sweeps* (not *experiments*) because that is what it does: it sweeps the existing attacks
and metrics over a grid of (attack, attribution, ε); it implements no attack, attribution or metric of its own.
Every cell is cached separately (:class:`~rattrlib.results.ResultsCache`), keyed by fingerprints of the model's
parameters and of the images, the built attack's class and hyperparameters, ε, k and the seed, so extending a
sweep (one more ε, one more attribution) computes only the new cells.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm import tqdm

from rattrlib.attacks import ATTACKS, SCORES, AttributionAttack, evaluate_attributional_robustness, map_scores, mean_ci
from rattrlib.attacks._common import check_images, check_k, check_labels, check_model, eval_mode
from rattrlib.attributions import ATTRIBUTIONS, attribution_map, get_attribution
from rattrlib.config import check_choice, check_eps, check_int, check_positive, check_range
from rattrlib.metrics import METRICS, log_auc
from rattrlib.results import ResultsCache, cache_key, data_fingerprint, model_fingerprint, tensor_fingerprint

#: bump when a cell's computation changes, so cached cells are recomputed
SWEEP_VERSION = 3

#: SSR's budgets, ε∞ ∈ {2, 4, 8, 16} on the 0–255 scale (§5.1), on rattr's [0, 1] scale
SSR_EPS = (2 / 255, 4 / 255, 8 / 255, 16 / 255)

#: SSR's four similarity metrics (§5): k-in, cor, cdl, cosd, by their :data:`~rattrlib.metrics.METRICS` names
SSR_METRICS = ("topk_intersection", "spearman_rho", "center_of_mass_dislocation", "cosine_distance")

#: score name (:data:`~rattrlib.attacks.SCORES`) → the metric function (for its declared direction and citation)
SCORE_FUNCTIONS = {name: METRICS[name] for name in SCORES}

#: the registry attacks that attack attribution maps (``PGD`` and ``SPSA`` attack predictions)
ATTRIBUTION_ATTACKS = ("ifia_topk", "ifia_mass_center", "ifia_targeted", "manipulate", "random_sign")

GRID_COLUMNS = ("attack", "attribution", "eps", "metric", "mean", "ci_low", "ci_high", "n", "n_attacked",
                "success_rate")
TRANSFER_COLUMNS = ("attack", "source", "attribution", "eps", "metric", "mean", "ci_low", "ci_high", "n",
                    "n_attacked", "success_rate")
#: columns that hold values rather than identify a curve (:func:`log_auc_table` groups by all the others)
VALUE_COLUMNS = ("mean", "ci_low", "ci_high", "n", "n_attacked", "success_rate")

#: ``factory(model, *, attribution, attribution_kwargs, eps, generator, k) -> AttributionAttack`` (k: the
#: sweep's evaluation top-k, which a factory may use as its attack's k)
AttackFactoryType = Callable[..., AttributionAttack]


# ----------------------------------------------------------------------------------------------------------
# attack factories
# ----------------------------------------------------------------------------------------------------------
class AttackFactory:
    """Builds a registry attack for one (attribution, ε) cell of a sweep; see :func:`attack_factory`."""

    def __init__(self, name: str, *, alpha: Optional[float] = None, alpha_ratio: Optional[float] = None,
                 **kwargs):
        check_choice("attack", name, ATTRIBUTION_ATTACKS)
        reserved = {"eps", "attribution", "attribution_kwargs", "generator"} & set(kwargs)
        if reserved:
            raise ValueError(f"{sorted(reserved)} are set by the sweep for every cell; do not give them here")
        if alpha is not None and alpha_ratio is not None:
            raise ValueError("give alpha (a fixed step) or alpha_ratio (α = ratio·ε), not both")
        if name == "random_sign" and (alpha is not None or alpha_ratio is not None):
            raise ValueError("random_sign takes one step of size ε; it has no alpha")
        self.name = name
        self.alpha = None if alpha is None else check_positive("alpha", alpha)
        self.alpha_ratio = None if alpha_ratio is None else check_positive("alpha_ratio", alpha_ratio)
        self.kwargs = dict(kwargs)

    def __call__(self, model: nn.Module, *, attribution: str, attribution_kwargs: Optional[dict], eps: float,
                 generator: Optional[torch.Generator] = None, k: Optional[int] = None) -> AttributionAttack:
        kwargs = dict(self.kwargs)
        if k is not None:
            kwargs.setdefault("k", k)
        if self.alpha is not None:
            kwargs["alpha"] = self.alpha
        elif self.alpha_ratio is not None:
            kwargs["alpha"] = self.alpha_ratio * eps
        return ATTACKS[self.name](model, attribution=attribution, attribution_kwargs=attribution_kwargs, eps=eps,
                                  generator=generator, **kwargs)

    def __repr__(self) -> str:
        extra = {"alpha": self.alpha, "alpha_ratio": self.alpha_ratio}
        params = ", ".join(f"{k}={v!r}" for k, v in {**self.kwargs, **extra}.items() if v is not None)
        return f"attack_factory({self.name!r}{', ' if params else ''}{params})"


def attack_factory(name: str, *, alpha: Optional[float] = None, alpha_ratio: Optional[float] = None,
                   **kwargs) -> AttackFactory:
    """A factory for :func:`attack_grid` from an attack's registry name (:data:`ATTRIBUTION_ATTACKS`).

    ``kwargs`` are the attack's hyperparameters (steps, k, beta, random_start, gamma, internal_batch_size…);
    the sweep sets ε, the attribution, its ``attribution_kwargs`` and a generator seeded with the sweep's seed,
    and the attack's own ``k`` (its top-k objective) defaults to the sweep's evaluation k.
    The step is ``alpha`` (fixed) or ``alpha_ratio``·ε (the same number of steps reaches every budget; SSR's
    sweep over ε ∈ {2, …, 16}/255 needs one of the two); neither: the attack's default α. ``"random_sign"``
    is the protocol's random baseline of the same ε. Hyperparameters are checked when the sweep builds its
    attacks, before any compute.
    """
    return AttackFactory(name, alpha=alpha, alpha_ratio=alpha_ratio, **kwargs)


# ----------------------------------------------------------------------------------------------------------
# checks (all before any compute)
# ----------------------------------------------------------------------------------------------------------
def check_eps_list(eps_list) -> tuple:
    """A non-empty, strictly increasing sequence of budgets ε ∈ (0, 1] (log-AUC needs ε > 0)."""
    if isinstance(eps_list, (str, bytes)) or not isinstance(eps_list, (Sequence, np.ndarray, Tensor)):
        raise ValueError(f"eps_list must be a sequence of budgets, got {type(eps_list).__name__}")
    values = [check_eps(float(e) if isinstance(e, (np.floating, Tensor)) else e) for e in list(eps_list)]
    if not values:
        raise ValueError("eps_list is empty: give at least one budget (SSR: ε ∈ {2, 4, 8, 16}/255)")
    if any(e <= 0 for e in values):
        raise ValueError(f"every ε must be > 0 (log-AUC is taken over log2 ε), got {values}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"eps_list must be strictly increasing (sorted, no repeats), got {values}")
    return tuple(values)


def _check_attributions(names, what: str = "attributions") -> tuple:
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise ValueError(f"{what} is empty")
    for name in names:
        check_choice("attribution", name, ATTRIBUTIONS)
    if len(set(names)) != len(names):
        raise ValueError(f"{what} repeat a name: {list(names)}")
    return names


def _check_attacks(attacks) -> dict:
    if not isinstance(attacks, Mapping) or not attacks:
        raise ValueError("attacks must be a non-empty dict {name: factory}, e.g. "
                         "{'top-k': attack_factory('ifia_topk', steps=50, alpha_ratio=0.25)}")
    for name, factory in attacks.items():
        if not isinstance(name, str):
            raise ValueError(f"attack names must be strings, got {name!r}")
        if not callable(factory):
            raise ValueError(f"attacks[{name!r}] must be a factory(model, *, attribution, attribution_kwargs, eps, "
                             f"generator, k) -> attack, got {type(factory).__name__}")
    return dict(attacks)


def _check_metrics(metrics) -> tuple:
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    if not metrics:
        raise ValueError("metrics is empty")
    for m in metrics:
        check_choice("metric", m, SCORES)
    return metrics


def _check_attribution_kwargs(attribution_kwargs, names: tuple) -> dict:
    if attribution_kwargs is None:
        return {}
    if not isinstance(attribution_kwargs, Mapping):
        raise ValueError("attribution_kwargs must be a dict {attribution name: {hyperparameter: value}}")
    unknown = set(attribution_kwargs) - set(names)
    if unknown:
        raise ValueError(f"attribution_kwargs names attributions not in the sweep: {sorted(unknown)} "
                         f"(sweep: {list(names)})")
    for name, kw in attribution_kwargs.items():
        if not isinstance(kw, Mapping):
            raise ValueError(f"attribution_kwargs[{name!r}] must be a dict, got {type(kw).__name__}")
    return {name: dict(kw) for name, kw in attribution_kwargs.items()}


def _check_common(model, images, labels, k, batch_size, confidence):
    check_model(model)
    images = check_images(images, "images")
    labels = check_labels(labels, images.shape[0], images.device)
    k = check_k(k, images.shape[2] * images.shape[3])
    check_int("batch_size", batch_size, 1)
    check_range("confidence", float(confidence), 0.0, 1.0, low_open=True)
    if float(confidence) >= 1.0:
        raise ValueError(f"confidence={confidence!r} must be < 1")
    return images, labels, k


def _build(factory, model, attack_name: str, attribution: str, kwargs: dict, eps: float, seed: int,
           k: int) -> AttributionAttack:
    try:
        attack = factory(model, attribution=attribution, attribution_kwargs=dict(kwargs) or None, eps=eps,
                         generator=torch.Generator().manual_seed(seed), k=k)
    except TypeError as err:
        raise ValueError(f"attack {attack_name!r} could not be built for attribution={attribution!r}, "
                         f"eps={eps!r}: {err}") from err
    if not isinstance(attack, AttributionAttack):
        raise ValueError(f"attacks[{attack_name!r}] returned a {type(attack).__name__}, not an attack on "
                         "attributions (IFIA, Manipulate, RandomSignNoise)")
    if attack.model is not model:
        raise ValueError(f"attacks[{attack_name!r}] built its attack on another model than the one swept")
    if attack.attribution != attribution:
        raise ValueError(f"attacks[{attack_name!r}] built an attack on {attack.attribution!r}, asked for "
                         f"{attribution!r}")
    if not math.isclose(float(getattr(attack, "eps", eps)), eps, rel_tol=0, abs_tol=1e-12):
        raise ValueError(f"attacks[{attack_name!r}] built an attack with eps={attack.eps!r}, asked for {eps!r}")
    return attack


# ----------------------------------------------------------------------------------------------------------
# cache keys
# ----------------------------------------------------------------------------------------------------------
def _jsonable(obj):
    """A JSON-ready description of a hyperparameter value (tensors by shape and hash, generators by name)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, Tensor):
        return {"tensor": list(obj.shape), "dtype": str(obj.dtype), "sha256": tensor_fingerprint(obj)}
    if isinstance(obj, torch.Generator):
        return "torch.Generator"
    return repr(obj)


# ----------------------------------------------------------------------------------------------------------
# one cell
# ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class GridCell:
    """One (attack, attribution, ε) run: the :class:`~rattrlib.attacks.RobustnessReport`'s ``summary`` (one
    row) and ``per_image`` frames, its ``config``, and for the attacked images (positions ``attacked`` in the
    swept images) the kept adversarial images ``x_adv`` (n×C×H×W, CPU), ``success`` flags and the attacked
    class ``label``."""

    attack: str
    attribution: str
    eps: float
    summary: pd.DataFrame
    per_image: pd.DataFrame
    config: dict
    attacked: np.ndarray
    x_adv: Tensor
    success: Tensor
    label: Tensor
    key: str = ""


def _rng_devices(model: nn.Module) -> list:
    device = next(model.parameters()).device
    return [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []


def _run_cell(model, images, labels, attack: AttributionAttack, attack_name: str, attribution: str, eps: float,
              k: int, *, cache: Optional[ResultsCache], seed: int, batch_size: int, confidence: float,
              dataset: str, progress: bool, fingerprints: tuple) -> GridCell:
    key = {"kind": "attack_cell", "version": SWEEP_VERSION, "model": fingerprints[0], "data": fingerprints[1],
           "attack": type(attack).__name__, "hyperparameters": _jsonable(attack.hyperparameters()),
           "attribution": attribution, "eps": eps, "k": k, "batch_size": batch_size, "confidence": float(confidence)}

    def compute() -> dict:
        with torch.random.fork_rng(devices=_rng_devices(model)):
            torch.manual_seed(seed)  # the attributions' own draws (e.g. SmoothGrad without a generator)
            report = evaluate_attributional_robustness(model, images, labels, None, attack, k=k,
                                                       batch_size=batch_size, progress=progress,
                                                       confidence=confidence, seed=seed, name=attack_name,
                                                       keep_result=True)
        res = report.result
        if res is None:
            empty = images[:0].detach().cpu()
            x_adv, success, label = empty, torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.long)
        else:
            x_adv, success, label = res.x_adv, res.success, res.label
        return {"summary": report.summary, "per_image": report.per_image, "config": report.config,
                "x_adv": x_adv, "success": success, "label": label}

    value = compute() if cache is None else cache.get_or_compute("attack_cell", key, compute, seed=seed,
                                                                 dataset=dataset)
    attacked = np.flatnonzero(value["per_image"]["correct"].to_numpy())
    return GridCell(attack=attack_name, attribution=attribution, eps=eps, summary=value["summary"],
                    per_image=value["per_image"], config=value["config"], attacked=attacked, x_adv=value["x_adv"],
                    success=value["success"], label=value["label"],
                    key=cache_key("attack_cell", key, seed, dataset))


def attack_cell(model: nn.Module, images: Tensor, labels, factory: AttackFactoryType, attribution: str, eps: float,
                k: int, *, name: str = "attack", attribution_kwargs: Optional[dict] = None,
                cache: Optional[ResultsCache] = None, seed: int = 0, batch_size: int = 32, confidence: float = 0.95,
                dataset: str = "custom", progress: bool = False) -> GridCell:
    """One cell of :func:`attack_grid` (the same computation and cache entry) with its adversarial images:
    ``factory`` builds the attack on ``attribution`` (hyperparameters ``attribution_kwargs``) at budget
    ``eps``; returns a :class:`GridCell`."""
    images, labels, k = _check_common(model, images, labels, k, batch_size, confidence)
    (attribution,) = _check_attributions([attribution], "attribution")
    (eps,) = check_eps_list([eps])
    attack = _build(factory, model, name, attribution, dict(attribution_kwargs or {}), eps, seed, k)
    return _run_cell(model, images, labels, attack, name, attribution, eps, k, cache=cache, seed=seed,
                     batch_size=batch_size, confidence=confidence, dataset=dataset, progress=progress,
                     fingerprints=(model_fingerprint(model), data_fingerprint(images, labels)))


def _summary_rows(cell: GridCell, metrics: tuple, ids: dict) -> list:
    s = cell.summary.iloc[0]
    return [{**ids, "metric": m, "mean": float(s[f"{m}_mean"]), "ci_low": float(s[f"{m}_ci_low"]),
             "ci_high": float(s[f"{m}_ci_high"]), "n": int(s[f"{m}_n"]), "n_attacked": int(s["n_attacked"]),
             "success_rate": float(s["success_rate"])} for m in metrics]


# ----------------------------------------------------------------------------------------------------------
# the grid
# ----------------------------------------------------------------------------------------------------------
def attack_grid(model: nn.Module, images: Tensor, labels, attacks: Mapping[str, AttackFactoryType],
                attributions: Sequence[str], eps_list: Sequence[float], k: int, *,
                attribution_kwargs: Optional[Mapping[str, dict]] = None, metrics: Sequence[str] = SSR_METRICS,
                cache: Optional[ResultsCache] = None, seed: int = 0, batch_size: int = 32, confidence: float = 0.95,
                dataset: str = "custom", progress: bool = False) -> pd.DataFrame:
    """SSR Experiment I / II (§5.1–5.2): attack every attribution at every budget with every attack.

    For each (attack, attribution, ε), ``attacks[attack](model, attribution=…, attribution_kwargs=…, eps=…,
    generator=…, k=…)`` builds an attack on the attribution's map (see :func:`attack_factory`; any callable with
    that signature returning an :class:`~rattrlib.attacks.AttributionAttack` on ``model`` will do) and
    :func:`~rattrlib.attacks.evaluate_attributional_robustness` runs it on the correctly classified images
    (failed attacks count with their clean map), scoring the clean vs attacked maps at top-``k``.

    Args:
        model: N×C×H×W in [0, 1] → logits (a ReLU network; the attacks use its softplus copy).
        images, labels: N×C×H×W in [0, 1] and (N,) true labels.
        attacks: ``{name: factory}``; include ``attack_factory("random_sign")`` for the protocol's random
            baseline. attributions: registry names (:data:`~rattrlib.attributions.ATTRIBUTIONS`).
        eps_list: budgets on the [0, 1] scale, > 0, strictly increasing (SSR: :data:`SSR_EPS`).
        k: top-k of the reported intersection (SSR: 20 on CIFAR-10, 80 Flower, 1000 ImageNet).
        attribution_kwargs: ``{attribution: hyperparameters}`` used by every attack on it (e.g. IG
            ``n_steps``, SmoothGrad ``sigma`` / ``n_samples``); the same for the attack's loss and its maps.
        metrics: which of :data:`~rattrlib.attacks.SCORES` to report (default: SSR's four).
        cache: a :class:`~rattrlib.results.ResultsCache`; each cell is stored under (model and data
            fingerprints, the attack's class and hyperparameters, ε, k, batch size, confidence, seed, dataset).
        seed: seeds every cell alike — the attack's generator (random start, random signs), torch's RNG for
            unseeded attribution draws, and the targets of targeted attacks — so curves over ε share draws.
        batch_size, confidence, progress: as in :func:`~rattrlib.attacks.evaluate_attributional_robustness`.
        dataset: the name stored with cached cells.

    Returns: a tidy frame, one row per (attack, attribution, ε, metric), columns :data:`GRID_COLUMNS`: the mean
    over attacked images with its Student-t interval, ``n`` finite scores, ``n_attacked`` and the attack's
    ``success_rate``. Top-k is a fraction (×100 for the book's %); cdl in pixels; cosd in [0, 1]. Higher k-in /
    cor, lower cdl / cosd = more robust. All inputs are checked, and all attacks built, before any compute.
    """
    images, labels, k = _check_common(model, images, labels, k, batch_size, confidence)
    attacks = _check_attacks(attacks)
    attributions = _check_attributions(attributions)
    eps_list = check_eps_list(eps_list)
    metrics = _check_metrics(metrics)
    kwargs = _check_attribution_kwargs(attribution_kwargs, attributions)
    built = {(a, attr, eps): _build(factory, model, a, attr, kwargs.get(attr, {}), eps, seed, k)
             for a, factory in attacks.items() for attr in attributions for eps in eps_list}
    fingerprints = (model_fingerprint(model), data_fingerprint(images, labels))

    rows = []
    for (a, attr, eps), attack in tqdm(built.items(), desc="attack grid", disable=not progress):
        cell = _run_cell(model, images, labels, attack, a, attr, eps, k, cache=cache, seed=seed,
                         batch_size=batch_size, confidence=confidence, dataset=dataset, progress=False,
                         fingerprints=fingerprints)
        rows += _summary_rows(cell, metrics, {"attack": a, "attribution": attr, "eps": eps})
    return pd.DataFrame(rows, columns=list(GRID_COLUMNS))


# ----------------------------------------------------------------------------------------------------------
# transfer (Experiment III)
# ----------------------------------------------------------------------------------------------------------
def _transfer_scores(model: nn.Module, x: Tensor, x_adv: Tensor, label: Tensor, success: Tensor, target: str,
                     kwargs: dict, k: int, seed: int, batch_size: int) -> dict:
    """Per-image scores (numpy arrays) of ``target``'s maps of x vs x_adv for the attacked class; failed
    images score as their clean map (the protocol's rule)."""
    device = next(model.parameters()).device
    takes_generator = "generator" in inspect.signature(ATTRIBUTIONS[target].__init__).parameters
    out = {c: [] for c in SCORES}
    with eval_mode(model):
        for b, s in enumerate(range(0, x.shape[0], batch_size)):
            xb, ab = x[s:s + batch_size].to(device), x_adv[s:s + batch_size].to(device)
            yb, ok = label[s:s + batch_size].to(device), success[s:s + batch_size].to(device)
            maps = []
            for inputs in (xb, ab):
                kw = dict(kwargs)
                if takes_generator:  # common random numbers: the same draws for the clean and the attacked image
                    kw["generator"] = torch.Generator().manual_seed(seed * 1_000_003 + b)
                maps.append(attribution_map(get_attribution(target, model, **kw).attribute(inputs, yb)))
            clean, adv = maps
            adv = torch.where(ok.view(-1, 1, 1), adv, clean)
            for c, v in map_scores(clean, adv, k).items():
                out[c].append(v.detach().cpu().double().numpy())
    return {c: np.concatenate(v) if v else np.zeros(0) for c, v in out.items()}


def transfer_scores(model: nn.Module, images: Tensor, labels, attacks: Mapping[str, AttackFactoryType], source: str,
                    targets: Sequence[str], eps_list: Sequence[float], k: int, *,
                    attribution_kwargs: Optional[Mapping[str, dict]] = None, cache: Optional[ResultsCache] = None,
                    seed: int = 0, batch_size: int = 32, confidence: float = 0.95, dataset: str = "custom",
                    progress: bool = False) -> dict:
    """SSR Experiment III (§5.3, Fig. 5b), per image: perturbations found against ``source`` scored on other maps.

    For each attack and ε, the attack on ``source`` is run exactly as in :func:`attack_grid` (the same cell and
    cache entry), then for every attribution in ``targets`` the maps of the clean images and of the kept
    adversarial images are computed with that attribution (``attribution_kwargs[target]``), for the attacked
    class, and compared with every metric of :data:`SCORE_FUNCTIONS` at top-``k``. Images where the source attack
    failed score as their clean map. Stochastic targets (SmoothGrad, Uniform Gradient, GradSHAP) use the same
    noise draws for the clean and the attacked image (common random numbers, a generator seeded from ``seed`` per
    batch, replacing any generator given), so the score measures the perturbation, not the Monte-Carlo noise.

    With ``target == source`` and a deterministic attribution (saliency, IG) the scores equal
    :func:`attack_grid`'s; for a stochastic source they differ slightly, because the direct evaluation draws
    independent noise for the clean and the attacked map.

    Returns ``{(attack, eps, target): {"cell": the source attack's GridCell, metric: per-image array over the
    attacked images (positions ``cell.attacked``)}}``; the scores of each (cell, target) are cached.
    Arguments otherwise as in :func:`attack_grid`.
    """
    images, labels, k = _check_common(model, images, labels, k, batch_size, confidence)
    attacks = _check_attacks(attacks)
    (source,) = _check_attributions([source], "source")
    targets = _check_attributions(targets, "targets")
    eps_list = check_eps_list(eps_list)
    kwargs = _check_attribution_kwargs(attribution_kwargs, tuple(dict.fromkeys((source, *targets))))
    built = {(a, eps): _build(factory, model, a, source, kwargs.get(source, {}), eps, seed, k)
             for a, factory in attacks.items() for eps in eps_list}
    fingerprints = (model_fingerprint(model), data_fingerprint(images, labels))

    out = {}
    for (a, eps), attack in tqdm(built.items(), desc="transfer scores", disable=not progress):
        cell = _run_cell(model, images, labels, attack, a, source, eps, k, cache=cache, seed=seed,
                         batch_size=batch_size, confidence=confidence, dataset=dataset, progress=False,
                         fingerprints=fingerprints)
        x_clean = images[torch.as_tensor(cell.attacked, dtype=torch.long, device=images.device)]
        for target in targets:
            key = {"kind": "transfer", "version": SWEEP_VERSION, "cell": cell.key, "target": target,
                   "target_kwargs": _jsonable(kwargs.get(target, {})), "k": k, "batch_size": batch_size}

            def compute(target=target):
                return _transfer_scores(model, x_clean, cell.x_adv, cell.label, cell.success, target,
                                        kwargs.get(target, {}), k, seed, batch_size)

            scores = compute() if cache is None else cache.get_or_compute("transfer", key, compute, seed=seed,
                                                                          dataset=dataset)
            out[(a, eps, target)] = {"cell": cell, **scores}
    return out


def transfer_grid(model: nn.Module, images: Tensor, labels, attacks: Mapping[str, AttackFactoryType], source: str,
                  targets: Sequence[str], eps_list: Sequence[float], k: int, *,
                  attribution_kwargs: Optional[Mapping[str, dict]] = None, metrics: Sequence[str] = SSR_METRICS,
                  cache: Optional[ResultsCache] = None, seed: int = 0, batch_size: int = 32,
                  confidence: float = 0.95, dataset: str = "custom", progress: bool = False) -> pd.DataFrame:
    """SSR Experiment III (§5.3, Fig. 5b): :func:`transfer_scores` summarised per (attack, ε, target, metric).

    Returns a tidy frame, columns :data:`TRANSFER_COLUMNS` (``attribution`` = the target; ``n_attacked`` and
    ``success_rate`` are the source attack's): each metric's mean over the attacked images with its
    ``confidence`` interval. Arguments as in :func:`transfer_scores` plus ``metrics`` (names in
    :data:`SCORE_FUNCTIONS`).
    """
    metrics = _check_metrics(metrics)
    scores = transfer_scores(model, images, labels, attacks, source, targets, eps_list, k,
                             attribution_kwargs=attribution_kwargs, cache=cache, seed=seed, batch_size=batch_size,
                             confidence=confidence, dataset=dataset, progress=progress)
    return summarise_transfer(scores, source, metrics, confidence)


def summarise_transfer(scores: dict, source: str, metrics: Sequence[str] = SSR_METRICS,
                       confidence: float = 0.95) -> pd.DataFrame:
    """:func:`transfer_scores`'s per-image scores as :func:`transfer_grid`'s frame (columns
    :data:`TRANSFER_COLUMNS`): each metric's mean over the attacked images with its ``confidence`` interval."""
    metrics = _check_metrics(metrics)
    rows = []
    for (a, eps, target), per_image in scores.items():
        s = per_image["cell"].summary.iloc[0]
        for m in metrics:
            mean, low, high, n = mean_ci(per_image[m], confidence)
            rows.append({"attack": a, "source": source, "attribution": target, "eps": eps, "metric": m,
                         "mean": mean, "ci_low": low, "ci_high": high, "n": n,
                         "n_attacked": int(s["n_attacked"]), "success_rate": float(s["success_rate"])})
    return pd.DataFrame(rows, columns=list(TRANSFER_COLUMNS))


# ----------------------------------------------------------------------------------------------------------
# log-AUC over ε
# ----------------------------------------------------------------------------------------------------------
def log_auc_table(frame: pd.DataFrame, *, value: str = "mean", index: Optional[str] = None) -> pd.DataFrame:
    """SSR Fig. 2a / Fig. 3: each curve of a sweep aggregated over ε by :func:`~rattrlib.metrics.log_auc`.

    A curve is the set of rows sharing every column except ``eps`` and the value columns
    (:data:`VALUE_COLUMNS`): (attack, attribution, metric) for :func:`attack_grid`, plus ``source`` for
    :func:`transfer_grid`, plus any column you add (e.g. ``model`` when concatenating several models' grids).
    Each curve's ``value`` column (default: the mean over images, as SSR: "firstly taking the average scores
    over all evaluated images and then aggregating ... over ε") is integrated over ``log2 ε`` by the trapezoid
    rule and divided by the ``log2 ε`` range, so the result stays in the metric's units.

    Returns a tidy frame (the curve's columns, ``log_auc``, ``n_eps``, ``eps_min``, ``eps_max`` and
    ``higher_is_better`` of the metric), or with ``index`` (e.g. ``"attribution"``) a wide table of
    ``log_auc``: one row per value of ``index``, one column per combination of the other curve columns (e.g.
    (attack, metric)) — the layout of SSR Fig. 3's bars and the supplement's Table 2.
    Raises ``ValueError`` for a curve with fewer than 2 budgets or with a repeated ε.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a DataFrame from attack_grid or transfer_grid, got {type(frame).__name__}")
    missing = {"eps", "metric", value} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks the column(s) {sorted(missing)}")
    if value not in VALUE_COLUMNS:
        raise ValueError(f"value={value!r} is not a value column; choose one of {VALUE_COLUMNS}")
    groups = [c for c in frame.columns if c not in VALUE_COLUMNS and c != "eps"]
    if index is not None and index not in groups:
        raise ValueError(f"index={index!r} is not a curve column; choose one of {groups}")
    if frame.empty:
        raise ValueError("frame is empty")
    rows = []
    for ids, curve in frame.groupby(groups, sort=False, dropna=False):
        ids = ids if isinstance(ids, tuple) else (ids,)
        curve = curve.sort_values("eps")
        eps = curve["eps"].to_numpy(dtype=np.float64)
        label = dict(zip(groups, ids))
        if np.unique(eps).size != eps.size:
            raise ValueError(f"curve {label} has a repeated ε: {eps.tolist()}")
        if eps.size < 2:
            raise ValueError(f"curve {label} has {eps.size} budget(s); log-AUC needs at least 2")
        auc = float(log_auc(torch.tensor(eps), torch.tensor(curve[value].to_numpy(dtype=np.float64))))
        fn = SCORE_FUNCTIONS.get(label.get("metric"))
        rows.append({**label, "log_auc": auc, "n_eps": int(eps.size), "eps_min": float(eps[0]),
                     "eps_max": float(eps[-1]), "higher_is_better": None if fn is None else fn.higher_is_better})
    table = pd.DataFrame(rows)
    if index is None:
        return table
    others = [c for c in groups if c != index]
    wide = table.set_index(groups)["log_auc"]
    return wide.unstack(others) if others else wide.to_frame("log_auc")


__all__ = ["ATTRIBUTION_ATTACKS", "AttackFactory", "GRID_COLUMNS", "GridCell", "SCORE_FUNCTIONS", "SSR_EPS",
           "SSR_METRICS", "SWEEP_VERSION", "TRANSFER_COLUMNS", "VALUE_COLUMNS", "attack_cell", "attack_factory",
           "attack_grid", "check_eps_list", "log_auc_table", "summarise_transfer", "transfer_grid",
           "transfer_scores"]
