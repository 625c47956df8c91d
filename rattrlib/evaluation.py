"""The RAR / GALI evaluation of a zoo model, cached: clean accuracy, PGD accuracy, the IFIA top-k attack on
Integrated Gradients with the random-sign baseline, and GALI's attribution-aware (AA) scores.

>>> protocol = ifia_protocol("fashion_mnist", "cpu")
>>> ev = evaluate_zoo_model("fashion_mnist", "ig_norm", protocol, scale="cpu")
>>> ev.row()                                     # one table row: accuracies, top-k ∩, Kendall, success rate
>>> aa_scores(ev, reference_maps(ev, teacher))   # GALI eq. 10–11 against a teacher's maps (or an object mask)
>>> attack_zoo_model("fashion_mnist", "art", protocol, attribution="saliency")    # ART Table 4, one cell
>>> attack_zoo_model("fashion_mnist", "art", protocol, attack="targeted")         # ART §5 targeted attack
>>> adversarial_accuracy_zoo("fashion_mnist", "art", "spsa", {"steps": 50})      # ART §5 stronger attacks
>>> localise_zoo_model("fmnist_scenes32", "art", "saliency")                    # ART Table 2 (WSOL), Top-1 Seg

Settings (rattr protocol, "IFIA top-k"): RAR/GALI attack IG with ε = 0.1 (Fashion-MNIST) / 0.3 (MNIST),
α = 0.01, 100 steps, k = 100; the maps and the attack use IG with ``ig_steps`` right-Riemann points on a
softplus(β) copy. Only correctly classified images are attacked. PGD accuracy uses the zoo's evaluation PGD
(:func:`rattrlib.zoo.eval_pgd`: PGD-40, random start).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from rattrlib.attacks import (IFIA, PGD, SPSA, RandomSignNoise, RobustnessReport,
                              adversarial_correct, evaluate_attributional_robustness)
from rattrlib.attributions import ATTRIBUTIONS, Saliency, attribution_map, get_attribution
from rattrlib.attacks._common import eval_mode
from rattrlib.attacks.evaluate import mean_ci
from rattrlib.config import SCALES, check_choice, check_eps, check_int, check_positive, check_range
from rattrlib.corruptions import CORRUPTIONS, SEVERITIES, accuracy_table, corruption_correct
from rattrlib.data import ImageDataset, load_dataset
from rattrlib.metrics import aa_kendall, aa_topk, alignment, box_from_map, box_iou, mask_from_map, mask_iou
from rattrlib.models import predict
from rattrlib.precision import PRECISIONS, fastest_precision
from rattrlib.claims import RANDOM, Measurements
from rattrlib.results import ResultsCache
from rattrlib.zoo import THREATS, ZOO_DATASETS, eval_pgd, get_model, zoo_config

#: bump when the evaluation's behaviour changes, so cached evaluations are recomputed
EVALUATION_VERSION = 4


@dataclasses.dataclass(frozen=True)
class IFIAProtocol:
    """Settings of the attributional evaluation: IFIA top-k on IG (ε, α, steps, k, IG points ``ig_steps``,
    softplus ``beta``) over ``n_eval`` test images; PGD accuracy over ``n_pgd`` and clean accuracy over
    ``n_clean`` test images (None: all); ``precision`` of the IFIA gradient steps (:mod:`rattrlib.precision`;
    maps and scores stay fp32)."""

    eps: float
    alpha: float
    steps: int
    k: int = 100
    ig_steps: int = 10
    beta: float = 10.0
    n_eval: int = 200
    n_pgd: Optional[int] = 1000
    n_clean: Optional[int] = None
    precision: str = "fp32"

    def __post_init__(self):
        check_choice("precision", self.precision, PRECISIONS)
        check_eps(self.eps)
        check_positive("alpha", self.alpha)
        check_int("steps", self.steps, 1)
        check_int("k", self.k, 1)
        check_int("ig_steps", self.ig_steps, 1)
        check_range("beta", self.beta, 0, 1e4, low_open=True)
        check_int("n_eval", self.n_eval, 2)
        for name in ("n_pgd", "n_clean"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)


#: per scale: attack steps, IG points, images attacked, images under PGD (the paper row is RAR/GALI's setting;
#: neither states n_eval or the IG points inside the attack — 1000 images and m = 10 are rattr's choices)
PROTOCOL_SCALES = {
    "smoke": {"steps": 3, "ig_steps": 3, "n_eval": 8, "n_pgd": 32, "n_clean": 256},
    "cpu": {"steps": 50, "ig_steps": 5, "n_eval": 100, "n_pgd": 1000, "n_clean": None},
    "paper": {"steps": 100, "ig_steps": 10, "n_eval": 1000, "n_pgd": None, "n_clean": None},
}


def ifia_protocol(dataset: str, scale: str = "cpu", **overrides) -> IFIAProtocol:
    """The RAR/GALI evaluation of ``dataset`` at ``scale`` (:data:`PROTOCOL_SCALES`), with ``overrides``
    (any :class:`IFIAProtocol` field; None values are ignored). ε is the dataset's threat ε (MNIST 0.3,
    Fashion-MNIST 0.1, colour 8/255); α = 0.01 on the MNIST family, ε/8 otherwise. The IFIA gradient steps run in
    bf16 at the smoke and cpu scales on a machine without a GPU whose CPU has bf16 units
    (``benchmarks/results/precision.json``: mean top-k ∩ within 0.25 point of fp32, no success flag changed), in
    fp32 at the paper scale and elsewhere; the precision is part of the protocol, so of every cache key."""
    check_choice("scale", scale, SCALES)
    check_choice("dataset", dataset, sorted(ZOO_DATASETS))
    threat = ZOO_DATASETS[dataset].threat
    eps = THREATS[threat].eps
    settings = {"eps": eps, "alpha": 0.01 if threat in ("mnist", "fmnist") else eps / 8, **PROTOCOL_SCALES[scale],
                "precision": "fp32" if scale == "paper" or torch.cuda.is_available() else fastest_precision("cpu")}
    unknown = set(overrides) - {f.name for f in dataclasses.fields(IFIAProtocol)}
    if unknown:
        raise ValueError(f"unknown protocol setting(s) {sorted(unknown)}; valid: "
                         f"{[f.name for f in dataclasses.fields(IFIAProtocol)]}")
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return IFIAProtocol(**settings)


def report_measurements(report: RobustnessReport, measurements: Measurements, row: str, under: str, seed: int,
                        dataset: str = "", metrics=("topk_intersection", "kendall_tau")) -> Measurements:
    """Add the attacked images' per-image ``metrics`` of ``report`` to ``measurements`` as ``row`` under
    ``under`` (image ids: positions in the evaluated subset; NaN for images not attacked). The per-image
    columns carry the :data:`~rattrlib.metrics.METRICS` names."""
    for metric in metrics:
        measurements.add(row, under, metric, seed, report.per_image[metric].to_numpy(dtype=float),
                         dataset=dataset, images=report.per_image.index)
    return measurements


@dataclasses.dataclass
class ModelEvaluation:
    """One model under :class:`IFIAProtocol`: per-image correctness on clean and PGD images (bool arrays over the
    protocol's ``n_clean`` and ``n_pgd`` stratified subsets), the IFIA and random-sign reports (with their
    :class:`~rattrlib.attacks.AttackResult`), and the evaluated test images."""

    name: str
    clean_correct: np.ndarray
    pgd_correct: np.ndarray
    ifia: RobustnessReport
    random: RobustnessReport
    images: Tensor
    labels: Tensor

    @property
    def clean_accuracy(self) -> float:
        return float(np.mean(self.clean_correct))

    @property
    def pgd_accuracy(self) -> float:
        return float(np.mean(self.pgd_correct))

    @property
    def attacked(self) -> np.ndarray:
        """Positions (in ``images``) of the attacked, i.e. correctly classified, images; row i of
        ``ifia.result`` belongs to ``images[attacked[i]]``."""
        return np.flatnonzero(self.ifia.per_image["correct"].to_numpy())

    def row(self) -> dict:
        """The table row: clean and PGD accuracy (%), IFIA top-k ∩ (%) and Kendall τ (means), success rate (%),
        images attacked, and the random baseline's top-k ∩ and τ."""
        s, r = self.ifia.summary.iloc[0], self.random.summary.iloc[0]
        return {"clean acc. (%)": 100 * self.clean_accuracy, "PGD acc. (%)": 100 * self.pgd_accuracy,
                "top-k ∩ (%)": 100 * s["topk_intersection_mean"], "Kendall τ": s["kendall_tau_mean"],
                "success (%)": 100 * s["success_rate"], "attacked": int(s["n_attacked"]),
                "random top-k ∩ (%)": 100 * r["topk_intersection_mean"], "random Kendall τ": r["kendall_tau_mean"]}

    def measure(self, measurements: Measurements, row: str, seed: int, dataset: str = "",
                metrics=("topk_intersection", "kendall_tau")) -> Measurements:
        """Add this evaluation's per-image values to ``measurements`` as ``row``: ``accuracy`` under ``clean``
        and ``pgd``, and ``metrics`` under ``ifia_topk`` and ``random`` (the random-sign baseline)."""
        measurements.add(row, "clean", "accuracy", seed, self.clean_correct, dataset=dataset)
        measurements.add(row, "pgd", "accuracy", seed, self.pgd_correct, dataset=dataset)
        report_measurements(self.ifia, measurements, row, "ifia_topk", seed, dataset, metrics)
        return report_measurements(self.random, measurements, row, RANDOM, seed, dataset, metrics)


def make_ifia(model: nn.Module, protocol: IFIAProtocol, attribution: str = "integrated_gradients",
              attribution_kwargs: Optional[dict] = None, objective: str = "topk") -> IFIA:
    """The protocol's IFIA attack (``objective`` "topk", or "targeted" for ART §5) on ``attribution`` of
    ``model``; IG gets the protocol's ``ig_steps`` unless ``attribution_kwargs`` say otherwise."""
    return IFIA(model, attribution, _attribution_kwargs(attribution, attribution_kwargs, protocol),
                objective=objective, eps=protocol.eps, alpha=protocol.alpha, steps=protocol.steps, k=protocol.k,
                beta=protocol.beta, internal_batch_size=500, precision=protocol.precision)


def _attribution_kwargs(attribution: str, kwargs: Optional[dict], protocol: IFIAProtocol) -> dict:
    check_choice("attribution", attribution, ATTRIBUTIONS)
    if attribution == "integrated_gradients":
        return {"n_steps": protocol.ig_steps, **(kwargs or {})}
    return dict(kwargs or {})


def evaluate_model(model: nn.Module, test: ImageDataset, pgd: dict, protocol: IFIAProtocol, *, name: str = "model",
                   seed: int = 0, progress: bool = True) -> ModelEvaluation:
    """Evaluate ``model`` on ``test``: clean accuracy on a stratified ``protocol.n_clean`` (None: all of it);
    PGD ``pgd`` — kwargs of :class:`~rattrlib.attacks.PGD` — on a stratified ``protocol.n_pgd``; IFIA and
    random sign on a stratified ``protocol.n_eval``; every subset drawn with ``seed``."""
    clean_set = test.subset(protocol.n_clean, seed=seed)
    with eval_mode(model):
        clean = (predict(model, clean_set.images) == clean_set.labels).numpy()
    pgd_set = test.subset(protocol.n_pgd, seed=seed)
    robust = adversarial_correct(model, pgd_set.images, pgd_set.labels,
                                 PGD(model, **pgd, generator=torch.Generator().manual_seed(seed))).numpy()
    ev_set = test.subset(protocol.n_eval, seed=seed)
    reports = {}
    for label, attack in {
        "IFIA top-k": make_ifia(model, protocol),
        "random sign": RandomSignNoise(model, protocol.eps, generator=torch.Generator().manual_seed(seed),
                                       attribution="integrated_gradients",
                                       attribution_kwargs={"n_steps": protocol.ig_steps}, k=protocol.k),
    }.items():
        reports[label] = evaluate_attributional_robustness(model, ev_set.images, ev_set.labels, None, attack,
                                                           k=protocol.k, batch_size=50, keep_result=True,
                                                           name=label, progress=progress, seed=seed)
    return ModelEvaluation(name, clean, robust, reports["IFIA top-k"], reports["random sign"], ev_set.images,
                           ev_set.labels)


def evaluate_zoo_model(dataset: str, method: str, protocol: IFIAProtocol, *, scale: str = "cpu", seed: int = 0,
                       device: str = "auto", cache: Optional[ResultsCache] = None, progress: bool = True,
                       overrides: Optional[dict] = None) -> ModelEvaluation:
    """:func:`evaluate_model` of the zoo model (dataset, method, scale, seed, hyperparameter ``overrides``) on
    the test split, trained or loaded by :func:`rattrlib.zoo.get_model`; the evaluation itself is cached under
    the model's config, the protocol and the seed."""
    config = zoo_config(dataset, method, scale, seed=seed, overrides=overrides)
    cache = cache or ResultsCache()

    def compute() -> ModelEvaluation:
        model, _ = get_model(dataset, method, scale, seed=seed, device=device, progress=progress, cache=cache,
                             overrides=overrides)
        return evaluate_model(model, load_dataset(dataset, "test"), eval_pgd(dataset), protocol, name=method,
                              seed=seed, progress=progress)

    key = {"model": config, "protocol": protocol, "pgd": eval_pgd(dataset), "version": EVALUATION_VERSION}
    return cache.get_or_compute("evaluation", key, compute, seed=seed, dataset=dataset)


#: attacks of :func:`attack_zoo_model`: IFIA top-k, IFIA targeted (ART §5, shuffled targets), random sign noise
ZOO_ATTRIBUTION_ATTACKS = ("topk", "targeted", "random_sign")


def attack_zoo_model(dataset: str, method: str, protocol: IFIAProtocol, *, attribution: str = "integrated_gradients",
                     attribution_kwargs: Optional[dict] = None, attack: str = "topk", scale: str = "cpu",
                     seed: int = 0, device: str = "auto", cache: Optional[ResultsCache] = None,
                     progress: bool = True, overrides: Optional[dict] = None) -> RobustnessReport:
    """One attributional attack on one zoo model, cached: ``attack`` (:data:`ZOO_ATTRIBUTION_ATTACKS`) on the
    maps of ``attribution`` (registry name; ``attribution_kwargs`` JSON-like; a method whose constructor takes a
    ``generator`` — SmoothGrad, GradientSHAP — gets one seeded with ``seed``) over the same ``protocol.n_eval``
    stratified test images as :func:`evaluate_zoo_model`, with its ε, α, steps, k and softplus β. ART Table 4
    (saliency, GradSHAP) and §5 (targeted: each image's target is the clean map of another attacked image, a
    seeded shuffle). Returns the :class:`~rattrlib.attacks.RobustnessReport` with its attack result kept."""
    check_choice("attack", attack, ZOO_ATTRIBUTION_ATTACKS)
    kwargs = _attribution_kwargs(attribution, attribution_kwargs, protocol)
    config = zoo_config(dataset, method, scale, seed=seed, overrides=overrides)
    cache = cache or ResultsCache()

    def compute() -> RobustnessReport:
        model, _ = get_model(dataset, method, scale, seed=seed, device=device, progress=progress, cache=cache,
                             overrides=overrides)
        build = dict(kwargs)
        if "generator" in inspect.signature(ATTRIBUTIONS[attribution]).parameters:
            build["generator"] = torch.Generator().manual_seed(seed)
        if attack == "random_sign":
            runner = RandomSignNoise(model, protocol.eps, generator=torch.Generator().manual_seed(seed),
                                     attribution=attribution, attribution_kwargs=build, k=protocol.k)
        else:
            runner = make_ifia(model, protocol, attribution, build, objective=attack)
        ev_set = load_dataset(dataset, "test").subset(protocol.n_eval, seed=seed)
        return evaluate_attributional_robustness(model, ev_set.images, ev_set.labels, None, runner, k=protocol.k,
                                                 batch_size=50, keep_result=True, progress=progress, seed=seed,
                                                 name=f"{attack} on {attribution}")

    key = {"model": config, "protocol": protocol, "attribution": attribution, "attribution_kwargs": kwargs,
           "attack": attack, "version": EVALUATION_VERSION}
    return cache.get_or_compute("attribution_attack", key, compute, seed=seed, dataset=dataset)


#: gradient-based attacks of :func:`adversarial_accuracy_zoo`
ACCURACY_ATTACKS = {"pgd": PGD, "spsa": SPSA}


def adversarial_accuracy_zoo(dataset: str, method: str, attack: str, attack_kwargs: Optional[dict] = None, *,
                             n: Optional[int] = 1000, scale: str = "cpu", seed: int = 0, device: str = "auto",
                             cache: Optional[ResultsCache] = None, progress: bool = True,
                             overrides: Optional[dict] = None, per_image: bool = False):
    """Accuracy (fraction) of a zoo model under ``attack`` ("pgd" or "spsa", ART §5's stronger and gradient-free
    attacks) on ``n`` stratified test images (None: all), cached. ``attack_kwargs`` go to the attack's constructor
    on top of the dataset's evaluation threat (:func:`rattrlib.zoo.eval_pgd`: ε, and for PGD α, 40 steps and the
    random start), e.g. ``{"steps": 500}`` or SPSA's ``{"steps": 50, "samples": 128}``. With ``per_image``: the
    bool array (n,) of images still classified correctly (the claims engine's input) instead of its mean."""
    config = zoo_config(dataset, method, scale, seed=seed, overrides=overrides)
    cache = cache or ResultsCache()

    def load_model() -> nn.Module:
        return get_model(dataset, method, scale, seed=seed, device=device, progress=progress, cache=cache,
                         overrides=overrides)[0]

    correct = _cached_adversarial_correct(config, load_model, attack, attack_kwargs, n=n, seed=seed, cache=cache,
                                          progress=progress)
    return correct if per_image else float(np.mean(correct))


def adversarial_accuracy_config(config, attack: str = "pgd", attack_kwargs: Optional[dict] = None, *,
                                n: Optional[int] = 1000, seed: int = 0, device: str = "auto",
                                cache: Optional[ResultsCache] = None, progress: bool = True,
                                per_image: bool = False):
    """:func:`adversarial_accuracy_zoo` for any :class:`~rattrlib.train.TrainConfig` (e.g. a zoo config with
    another training subset): accuracy (fraction) of the model ``train_cached(config)`` under ``attack`` on
    ``n`` stratified test images of ``config.dataset`` (None: all), cached under the same key as
    :func:`adversarial_accuracy_zoo`, so the two share results for the same config; ``per_image`` as there."""
    from rattrlib.train import TrainConfig, train_cached

    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    cache = cache or ResultsCache()

    def load_model() -> nn.Module:
        return train_cached(config, seed=seed, device=device, cache=cache, progress=progress)[0]

    correct = _cached_adversarial_correct(config, load_model, attack, attack_kwargs, n=n, seed=seed, cache=cache,
                                          progress=progress)
    return correct if per_image else float(np.mean(correct))


def corruption_accuracy_zoo(dataset: str, method: str, *, n: Optional[int] = 1000, scale: str = "cpu",
                            seed: int = 0, device: str = "auto", cache: Optional[ResultsCache] = None,
                            progress: bool = True, overrides: Optional[dict] = None, per_image: bool = False):
    """ART Table 3 for a zoo model, cached: :func:`rattrlib.corruptions.corruption_correct` (every corruption
    and severity, noise seeded with ``seed``) on ``n`` stratified test images (None: all). Returns its table
    (:func:`rattrlib.corruptions.accuracy_table`: one row per corruption, one column per severity and ``mean``,
    fractions), or with ``per_image`` the bool array n × corruptions × severities (the claims engine's input)."""
    if n is not None:
        check_int("n", n, 1)
    config = zoo_config(dataset, method, scale, seed=seed, overrides=overrides)
    cache = cache or ResultsCache()

    def compute() -> np.ndarray:
        model, _ = get_model(dataset, method, scale, seed=seed, device=device, progress=progress, cache=cache,
                             overrides=overrides)
        data = load_dataset(dataset, "test").subset(n, seed=seed)
        return corruption_correct(model, data.images, data.labels, generator=torch.Generator().manual_seed(seed))

    key = {"model": config, "n": n, "corruptions": list(CORRUPTIONS), "severities": list(SEVERITIES),
           "version": EVALUATION_VERSION}
    correct = cache.get_or_compute("corruption_correct", key, compute, seed=seed, dataset=dataset)
    return correct if per_image else accuracy_table(correct)


def _cached_adversarial_correct(config, load_model, attack: str, attack_kwargs: Optional[dict], *,
                                n: Optional[int], seed: int, cache: ResultsCache, progress: bool) -> np.ndarray:
    """The cached per-image correctness (bool array) of the model of ``config`` (built by ``load_model()`` only on a cache miss) under
    ``attack`` with the dataset's evaluation threat updated by ``attack_kwargs``, on ``n`` stratified test images.
    Bad settings fail before any model is trained or loaded."""
    check_choice("attack", attack, ACCURACY_ATTACKS)
    if n is not None:
        check_int("n", n, 1)
    threat = eval_pgd(config.dataset)
    settings = dict(threat) if attack == "pgd" else {"eps": threat["eps"]}
    settings.update(attack_kwargs or {})
    ACCURACY_ATTACKS[attack](nn.Linear(1, 2), **settings)  # bad settings fail here, before any training

    def compute() -> np.ndarray:
        model = load_model()
        runner = ACCURACY_ATTACKS[attack](model, **settings, generator=torch.Generator().manual_seed(seed))
        data = load_dataset(config.dataset, "test").subset(n, seed=seed)
        return adversarial_correct(model, data.images, data.labels, runner, batch_size=100,
                                   progress=progress).numpy()

    key = {"model": config, "attack": attack, "settings": settings, "n": n, "version": EVALUATION_VERSION}
    return cache.get_or_compute("adversarial_accuracy", key, compute, seed=seed, dataset=config.dataset)


def gradient_alignment(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> np.ndarray:
    """ART Fig. 6 / Etmann et al.: ``cos(x, ∇x f_y(x))`` per image (y = the true label), as a float array (N,)."""
    device = next(model.parameters()).device
    saliency = Saliency(model)
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        out.append(alignment(x.flatten(1), saliency.attribute(x, y).flatten(1)).cpu())
    return torch.cat(out).double().numpy()


@dataclasses.dataclass
class Localisation:
    """Weakly supervised localisation and segmentation from attribution maps (ART §4.2 and §5) on a dataset with
    boxes and masks: per image the label, the prediction, the processed map of the predicted class (N×H×W),
    the estimated box and mask, and their IoUs with the ground truth."""

    labels: Tensor
    predictions: Tensor
    maps: Tensor
    boxes: Tensor
    gt_boxes: Tensor
    box_iou: Tensor
    mask_iou: Tensor
    settings: dict

    def scores(self) -> dict:
        """GT-known Loc, Top-1 Loc, Top-1 Acc and Top-1 Seg in % (IoU ≥ 0.5)."""
        correct = self.predictions == self.labels
        hit, seg = self.box_iou >= 0.5, self.mask_iou >= 0.5
        return {"GT-known Loc (%)": 100 * hit.double().mean().item(),
                "Top-1 Loc (%)": 100 * (hit & correct).double().mean().item(),
                "Top-1 Acc (%)": 100 * correct.double().mean().item(),
                "Top-1 Seg (%)": 100 * (seg & correct).double().mean().item()}


def evaluate_localisation(model: nn.Module, data: ImageDataset, attribution: str = "saliency",
                          attribution_kwargs: Optional[dict] = None, *, threshold: float = 0.2, smooth: int = 3,
                          clip_percentiles: Optional[tuple] = (2, 98), batch_size: int = 100,
                          progress: bool = True) -> Localisation:
    """ART's WSOL pipeline (protocol "Downstream tasks") on ``data`` (it must have boxes and masks): the map
    (:func:`~rattrlib.attributions.attribution_map`, Σ_c|·|) of ``attribution`` for the **predicted** class →
    per-image percentile clipping → min-max → ``smooth``×``smooth`` mean filter → ``map > threshold·max`` →
    largest connected component → its box (:func:`~rattrlib.metrics.box_from_map`); the segmentation mask is the
    thresholded map without the component step (:func:`~rattrlib.metrics.mask_from_map`)."""
    if data.boxes is None or data.masks is None:
        raise ValueError(f"dataset {data.name!r} has no boxes and masks to localise against")
    method = get_attribution(attribution, model, **(attribution_kwargs or {}))
    device = next(model.parameters()).device
    options = {"threshold": threshold, "smooth": smooth, "clip_percentiles": clip_percentiles}
    predictions = predict(model, data.images)
    maps, boxes, masks = [], [], []
    for start in tqdm(range(0, len(data), batch_size), desc="localisation", disable=not progress, mininterval=2):
        x = data.images[start:start + batch_size].to(device)
        m = attribution_map(method.attribute(x, predictions[start:start + batch_size].to(device))).cpu()
        maps.append(m)
        boxes.append(box_from_map(m, **options))
        masks.append(mask_from_map(m, **options))
    maps, boxes, masks = torch.cat(maps), torch.cat(boxes), torch.cat(masks)
    return Localisation(labels=data.labels.clone(), predictions=predictions, maps=maps, boxes=boxes,
                        gt_boxes=data.boxes.clone(), box_iou=box_iou(boxes, data.boxes),
                        mask_iou=mask_iou(masks, data.masks), settings={"attribution": attribution, **options})


def localise_zoo_model(dataset: str, method: str, attribution: str = "saliency",
                       attribution_kwargs: Optional[dict] = None, *, n: Optional[int] = None, threshold: float = 0.2,
                       smooth: int = 3, clip_percentiles: Optional[tuple] = (2, 98), scale: str = "cpu",
                       seed: int = 0, device: str = "auto", cache: Optional[ResultsCache] = None,
                       progress: bool = True) -> Localisation:
    """:func:`evaluate_localisation` of a zoo model on ``n`` stratified test images (None: all), cached."""
    check_range("threshold", threshold, 0, 1)
    if n is not None:
        check_int("n", n, 1)
    config = zoo_config(dataset, method, scale, seed=seed)
    cache = cache or ResultsCache()

    def compute() -> Localisation:
        model, _ = get_model(dataset, method, scale, seed=seed, device=device, progress=progress, cache=cache)
        data = load_dataset(dataset, "test").subset(n, seed=seed)
        return evaluate_localisation(model, data, attribution, attribution_kwargs, threshold=threshold,
                                     smooth=smooth, clip_percentiles=clip_percentiles, progress=progress)

    key = {"model": config, "attribution": attribution, "attribution_kwargs": attribution_kwargs or {}, "n": n,
           "threshold": threshold, "smooth": smooth, "clip_percentiles": clip_percentiles,
           "version": EVALUATION_VERSION}
    return cache.get_or_compute("localisation", key, compute, seed=seed, dataset=dataset)


def reference_maps(evaluation: ModelEvaluation, teacher: nn.Module, protocol: IFIAProtocol) -> Tensor:
    """GALI's reference map R for each attacked image: the ``teacher``'s IG map (same attribution and m as the
    evaluation) of the class the evaluated model kept. (n_attacked × H × W.)"""
    device = next(teacher.parameters()).device
    x = evaluation.images[evaluation.attacked].to(device)
    label = evaluation.ifia.result.label.to(device)
    return make_ifia(teacher, protocol).clean_maps(x, label).cpu()


def object_masks(evaluation: ModelEvaluation, threshold: float = 0.1) -> Tensor:
    """GALI Table 5's reference, the object itself: the attacked images segmented by thresholding their
    (channel-mean) intensity at ``threshold`` — the digit or garment on its black background. Bool N×H×W."""
    check_range("threshold", threshold, 0, 1)
    return evaluation.images[evaluation.attacked].mean(dim=1) > threshold


def aa_scores(evaluation: ModelEvaluation, reference: Tensor) -> dict:
    """GALI's attribution-aware scores of the IFIA run against ``reference`` (float maps or a bool mask, one
    per attacked image): ``{"AA top-k (%)", "AA Kendall", "goodness top-k (%)", "goodness Kendall"}`` — the
    means of eq. 10 and eq. 11 and of their goodness factors (R vs the clean map)."""
    result = evaluation.ifia.result
    if reference.shape != result.clean_map.shape:
        raise ValueError(f"reference has shape {tuple(reference.shape)}, the attacked maps "
                         f"{tuple(result.clean_map.shape)}")
    clean, adv, k = result.clean_map, result.adv_map, result.k
    aa_k, aa_t = aa_topk(reference, clean, adv, k), aa_kendall(reference, clean, adv)
    good_k, good_t = aa_topk(reference, clean, clean, k), aa_kendall(reference, clean, clean)  # similarity = 1
    return {"AA top-k (%)": 100 * mean_ci(aa_k.numpy())[0], "AA Kendall": mean_ci(aa_t.numpy())[0],
            "goodness top-k (%)": 100 * mean_ci(good_k.numpy())[0], "goodness Kendall": mean_ci(good_t.numpy())[0]}


def results_table(evaluations: dict, paper: Optional[pd.DataFrame] = None, columns: Optional[dict] = None,
                  decimals: int = 2) -> pd.DataFrame:
    """``{row name: {column: value}}`` (ours) beside ``paper`` (same row names; ``columns`` maps our column
    names to the paper frame's) as one frame with two-level columns (metric, paper | ours). Rows the paper
    lacks show NaN there."""
    ours = pd.DataFrame(evaluations).T
    if paper is None:
        return ours.round(decimals)
    columns = columns or {}
    parts = {}
    for col in ours.columns:
        theirs = paper[columns[col]].reindex(ours.index) if col in columns else pd.Series(np.nan, ours.index)
        parts[(col, "paper")] = theirs
        parts[(col, "ours")] = ours[col]
    return pd.DataFrame(parts).astype(float).round(decimals)


__all__ = ["ACCURACY_ATTACKS", "EVALUATION_VERSION", "IFIAProtocol", "Localisation", "ModelEvaluation",
           "PROTOCOL_SCALES", "report_measurements", "ZOO_ATTRIBUTION_ATTACKS", "aa_scores", "adversarial_accuracy_config",
           "adversarial_accuracy_zoo", "attack_zoo_model", "corruption_accuracy_zoo", "evaluate_localisation",
           "evaluate_model", "evaluate_zoo_model", "gradient_alignment", "ifia_protocol", "localise_zoo_model",
           "make_ifia", "object_masks", "reference_maps", "results_table"]
