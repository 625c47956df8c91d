"""The RAR / GALI evaluation of a zoo model, cached: clean accuracy, PGD accuracy, the IFIA top-k attack on
Integrated Gradients with the random-sign baseline, and GALI's attribution-aware (AA) scores.

>>> protocol = ifia_protocol("fashion_mnist", "cpu")
>>> ev = evaluate_zoo_model("fashion_mnist", "ig_norm", protocol, scale="cpu")
>>> ev.row()                                     # one table row: accuracies, top-k ∩, Kendall, success rate
>>> aa_scores(ev, reference_maps(ev, teacher))   # GALI eq. 10–11 against a teacher's maps (or an object mask)

Settings (rattr protocol, "IFIA top-k"): RAR/GALI attack IG with ε = 0.1 (Fashion-MNIST) / 0.3 (MNIST),
α = 0.01, 100 steps, k = 100; the maps and the attack use IG with ``ig_steps`` right-Riemann points on a
softplus(β) copy. Only correctly classified images are attacked. PGD accuracy uses the zoo's evaluation PGD
(:func:`rattrlib.zoo.eval_pgd`: PGD-40, random start).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from rattrlib.attacks import (IFIA, PGD, RandomSignNoise, RobustnessReport, evaluate_attributional_robustness,
                              pgd_accuracy)
from rattrlib.attacks.evaluate import mean_ci
from rattrlib.config import SCALES, check_choice, check_eps, check_int, check_positive, check_range
from rattrlib.data import ImageDataset, load_dataset
from rattrlib.metrics import aa_kendall, aa_topk
from rattrlib.models import accuracy
from rattrlib.results import ResultsCache
from rattrlib.zoo import THREATS, ZOO_DATASETS, eval_pgd, get_model, zoo_config

#: bump when the evaluation's behaviour changes, so cached evaluations are recomputed
EVALUATION_VERSION = 1


@dataclasses.dataclass(frozen=True)
class IFIAProtocol:
    """Settings of the attributional evaluation: IFIA top-k on IG (ε, α, steps, k, IG points ``ig_steps``,
    softplus ``beta``) over ``n_eval`` test images; PGD accuracy over ``n_pgd`` and clean accuracy over
    ``n_clean`` test images (None: all)."""

    eps: float
    alpha: float
    steps: int
    k: int = 100
    ig_steps: int = 10
    beta: float = 10.0
    n_eval: int = 200
    n_pgd: Optional[int] = 1000
    n_clean: Optional[int] = None

    def __post_init__(self):
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
    Fashion-MNIST 0.1, colour 8/255); α = 0.01 on the MNIST family, ε/8 otherwise."""
    check_choice("scale", scale, SCALES)
    check_choice("dataset", dataset, sorted(ZOO_DATASETS))
    threat = ZOO_DATASETS[dataset].threat
    eps = THREATS[threat].eps
    settings = {"eps": eps, "alpha": 0.01 if threat in ("mnist", "fmnist") else eps / 8, **PROTOCOL_SCALES[scale]}
    unknown = set(overrides) - {f.name for f in dataclasses.fields(IFIAProtocol)}
    if unknown:
        raise ValueError(f"unknown protocol setting(s) {sorted(unknown)}; valid: "
                         f"{[f.name for f in dataclasses.fields(IFIAProtocol)]}")
    settings.update({key: value for key, value in overrides.items() if value is not None})
    return IFIAProtocol(**settings)


@dataclasses.dataclass
class ModelEvaluation:
    """One model under :class:`IFIAProtocol`: accuracies (fractions), the IFIA and random-sign reports (with
    their :class:`~rattrlib.attacks.AttackResult`), and the evaluated test images."""

    name: str
    clean_accuracy: float
    pgd_accuracy: float
    ifia: RobustnessReport
    random: RobustnessReport
    images: Tensor
    labels: Tensor

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
                "top-k ∩ (%)": 100 * s["topk_mean"], "Kendall τ": s["kendall_mean"],
                "success (%)": 100 * s["success_rate"], "attacked": int(s["n_attacked"]),
                "random top-k ∩ (%)": 100 * r["topk_mean"], "random Kendall τ": r["kendall_mean"]}


def make_ifia(model: nn.Module, protocol: IFIAProtocol) -> IFIA:
    """The protocol's IFIA top-k attack on IG of ``model``."""
    return IFIA(model, "integrated_gradients", {"n_steps": protocol.ig_steps}, objective="topk", eps=protocol.eps,
                alpha=protocol.alpha, steps=protocol.steps, k=protocol.k, beta=protocol.beta,
                internal_batch_size=500)


def evaluate_model(model: nn.Module, test: ImageDataset, pgd: dict, protocol: IFIAProtocol, *, name: str = "model",
                   seed: int = 0, progress: bool = True) -> ModelEvaluation:
    """Evaluate ``model`` on ``test``: clean accuracy on a stratified ``protocol.n_clean`` (None: all of it);
    PGD ``pgd`` — kwargs of :class:`~rattrlib.attacks.PGD` — on a stratified ``protocol.n_pgd``; IFIA and
    random sign on a stratified ``protocol.n_eval``; every subset drawn with ``seed``."""
    device = next(model.parameters()).device
    clean_set = test.subset(protocol.n_clean, seed=seed)
    clean = accuracy(model, clean_set.images.to(device), clean_set.labels.to(device))
    pgd_set = test.subset(protocol.n_pgd, seed=seed)
    robust = pgd_accuracy(model, pgd_set.images, pgd_set.labels,
                          PGD(model, **pgd, generator=torch.Generator().manual_seed(seed)))
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


__all__ = ["EVALUATION_VERSION", "IFIAProtocol", "ModelEvaluation", "PROTOCOL_SCALES", "aa_scores",
           "evaluate_model", "evaluate_zoo_model", "ifia_protocol", "make_ifia", "object_masks", "reference_maps",
           "results_table"]
