"""Attributional robustness of a model under one attack: per-image scores and a summary with confidence
intervals, in the form the book's tables use (RAR, Chen et al. 2019, §5; ART, Singh et al. 2020, §4)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import Tensor, nn
from tqdm import tqdm

from rattrlib.attacks._common import (SCORES, AttackResult, AttributionAttack, check_images, check_int, check_k,
                                      check_labels, check_model, eval_mode, map_scores, predict)
from rattrlib.attacks.registry import get_attack
from rattrlib.config import check_range


@dataclass
class RobustnessReport:
    """The outcome of :func:`evaluate_attributional_robustness`.

    Attributes:
        per_image: one row per input image (index = position in ``images``): ``label``, ``prediction``,
            ``correct``, ``success`` (nullable bool; NA for images not attacked), the scores
            ``topk_intersection`` (fraction), ``kendall_tau``, ``spearman_rho``, ``center_of_mass_dislocation``
            (pixels), ``cosine_distance`` (:data:`~rattrlib.attacks.SCORES`, the metric names), the attack's
            ``objective`` and ``best_step`` (nullable int; −1 = failed), NaN for images not attacked.
        summary: a one-row DataFrame (index = ``name``): ``n_images``, ``n_attacked`` (correctly classified,
            hence attacked), ``clean_accuracy``, ``n_success``, ``success_rate`` (over the attacked images),
            and for every score ``<score>_mean``, ``<score>_ci_low``, ``<score>_ci_high``, ``<score>_n``.
            ``pd.concat`` the summaries of several runs to make a table.
        config: the attack's repr and hyperparameters, the attribution, k, confidence, seed.
        result: the concatenated :class:`AttackResult` of the attacked images (on CPU) when asked for.
    """

    per_image: pd.DataFrame
    summary: pd.DataFrame
    config: dict = field(default_factory=dict)
    result: Optional[AttackResult] = None


def mean_ci(values, confidence: float = 0.95):
    """``(mean, low, high, n)`` of the finite entries of ``values``: Student-t interval
    ``mean ± t_{(1+c)/2, n−1} · s / √n`` (s the sample std, ddof = 1). n = 0 → all NaN; n = 1 → NaN bounds;
    zero spread → a zero-width interval."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def _cyclic_derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """``source[i]``: a random permutation without fixed points (a random cyclic order, each image → the next)."""
    order = torch.randperm(n, generator=generator)
    source = torch.empty(n, dtype=torch.long)
    source[order] = order.roll(-1)
    return source


def evaluate_attributional_robustness(model: nn.Module, images: Tensor, labels, attribution: Optional[str],
                                      attack: Union[AttributionAttack, str], *, k: int, batch_size: int = 32,
                                      progress: bool = True, attack_kwargs: Optional[dict] = None,
                                      confidence: float = 0.95, seed: int = 0, name: Optional[str] = None,
                                      keep_result: bool = False) -> RobustnessReport:
    """Attack the attribution maps of the correctly classified images and score clean vs attacked maps.

    Only images the model classifies correctly are attacked and enter the summary (as RAR's and ART's
    evaluation code do); the rest appear in ``per_image`` with NA scores. The attack keeps the clean prediction
    (= the true label here). Failed attacks (no label-preserving iterate) count with their clean image:
    top-k = 100 %, τ = ρ = 1, dislocation = cosine distance = 0 (rattr protocol). The metrics are recomputed
    from the returned clean/attacked maps at this function's ``k`` (RAR: attack k 200, evaluation k 100 on
    MNIST). Report with every number the ``n_attacked``, ``success_rate`` and a run of
    :class:`~rattrlib.attacks.RandomSignNoise` of the same ε (the protocol's random baseline).

    Targeted attacks (``attack.needs_target_map``) get as target the clean map of another attacked image, a
    seeded random cyclic shuffle of the attacked set (ART §5 "randomly shuffle the examples"; no image is its
    own target); at least 2 attacked images are needed.

    Args:
        model: N×C×H×W in [0, 1] → N×K logits (ReLU network for IFIA/Manipulate).
        images: N×C×H×W in [0, 1] (any device; batches move to the model's device). labels: (N,) true labels.
        attribution: registry name of the attribution. With an attack instance it must equal the attack's
            (or be None); with an attack name it is passed to the attack.
        attack: an :class:`AttributionAttack` built on ``model``, or a name of :data:`ATTACKS` built with
            ``get_attack(attack, model, attribution=attribution, **attack_kwargs)``.
        k: the top-k of the reported intersection, 1 ≤ k ≤ H·W.
        batch_size: images per attack call (the whole batch advances together).
        progress: a tqdm bar over batches.
        confidence: level of the t intervals in ``summary`` (default 0.95).
        seed: seeds the target shuffle.
        name: the summary row's index (default: the attack's class and objective).
        keep_result: also return the concatenated :class:`AttackResult` (x_adv, maps) on CPU.

    Returns: :class:`RobustnessReport`.
    """
    check_model(model)
    images = check_images(images, "images")
    labels = check_labels(labels, images.shape[0], images.device)
    k = check_k(k, images.shape[2] * images.shape[3])
    batch_size = check_int("batch_size", batch_size, 1)
    check_range("confidence", float(confidence), 0.0, 1.0, low_open=True)
    if float(confidence) >= 1.0:
        raise ValueError(f"confidence={confidence!r} must be < 1")
    if isinstance(attack, str):
        attack = get_attack(attack, model, attribution=attribution or "integrated_gradients",
                            **dict(attack_kwargs or {}))
    else:
        if attack_kwargs:
            raise ValueError("attack_kwargs is only used when attack is given by name")
        if not isinstance(attack, AttributionAttack):
            raise ValueError(f"attack must be an attack on attributions (IFIA, Manipulate, RandomSignNoise) or "
                             f"its registry name, got {type(attack).__name__}")
        if attack.model is not model:
            raise ValueError("attack was built on a different model than the one evaluated")
        if attribution is not None and attribution != attack.attribution:
            raise ValueError(f"attribution={attribution!r} but the attack uses {attack.attribution!r}")
    attribution = attack.attribution
    device = next(model.parameters()).device

    with eval_mode(model):
        prediction = torch.cat([predict(model, images[s:s + batch_size].to(device)).cpu()
                                for s in range(0, images.shape[0], batch_size)])
    labels_cpu = labels.cpu()
    correct = prediction == labels_cpu
    attacked = torch.nonzero(correct).flatten()
    n_att = int(attacked.numel())

    targets = None
    if attack.needs_target_map and n_att:
        if n_att < 2:
            raise ValueError("a targeted attack needs at least 2 correctly classified images (targets are the "
                             "maps of other images)")
        maps = torch.cat([attack.clean_maps(images[attacked[s:s + batch_size]].to(device)).cpu()
                          for s in range(0, n_att, batch_size)])
        targets = maps[_cyclic_derangement(n_att, torch.Generator().manual_seed(seed))]

    columns = {c: np.full(images.shape[0], np.nan) for c in (*SCORES, "objective")}
    success = pd.array([pd.NA] * images.shape[0], dtype="boolean")
    best_step = pd.array([pd.NA] * images.shape[0], dtype="Int64")
    kept = []
    starts = range(0, n_att, batch_size)
    for s in tqdm(starts, desc=f"{type(attack).__name__}", disable=not progress, mininterval=2):
        idx = attacked[s:s + batch_size]
        tb = None if targets is None else targets[s:s + batch_size].to(device)
        res = attack.perturb(images[idx].to(device), target_map=tb)
        scores = map_scores(res.clean_map, res.adv_map, k)
        where = idx.numpy()
        for c in SCORES:
            columns[c][where] = scores[c].detach().cpu().double().numpy()
        columns["objective"][where] = res.objective.detach().cpu().double().numpy()
        success[where] = res.success.cpu().numpy()
        best_step[where] = res.best_step.cpu().numpy()
        if keep_result:
            kept.append(AttackResult(**{f: (v.detach().cpu() if isinstance(v, Tensor) else v)
                                        for f, v in vars(res).items()}))

    per_image = pd.DataFrame({"label": labels_cpu.numpy(), "prediction": prediction.numpy(),
                              "correct": correct.numpy(), "success": success,
                              **{c: columns[c] for c in SCORES}, "objective": columns["objective"],
                              "best_step": best_step})
    per_image.index.name = "index"

    n_success = int(per_image["success"].sum()) if n_att else 0
    row = {"n_images": int(images.shape[0]), "n_attacked": n_att,
           "clean_accuracy": float(correct.float().mean()), "n_success": n_success,
           "success_rate": n_success / n_att if n_att else math.nan}
    att = per_image[per_image["correct"]]
    for c in SCORES:
        mean, low, high, n = mean_ci(att[c].to_numpy(), confidence)
        row.update({f"{c}_mean": mean, f"{c}_ci_low": low, f"{c}_ci_high": high, f"{c}_n": n})
    if name is None:
        name = type(attack).__name__ + (f"-{attack.objective}" if hasattr(attack, "objective") else "")
    summary = pd.DataFrame([row], index=pd.Index([name], name="attack"))
    config = {"attack": repr(attack), "attack_hyperparameters": attack.hyperparameters(),
              "attribution": attribution, "k": k, "confidence": float(confidence), "seed": seed,
              "ci": "Student t over attacked images (finite scores)"}
    return RobustnessReport(per_image=per_image, summary=summary, config=config,
                            result=AttackResult.concat(kept) if kept else None)
