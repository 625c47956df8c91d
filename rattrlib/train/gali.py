"""Teacher-aligned robust attribution training (Gali, Sarkar & Balasubramanian, "Empowering a Robust Model with
Stable and Object-Aligned Explanations", eq. 7–9). No public code exists; the choices below are rattr's."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import random
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rattrlib.attributions._core import target_gradient
from rattrlib.config import check_choice, check_int, check_nonnegative
from rattrlib.data import ImageDataset
from rattrlib.train.base import Batch, Progress
from rattrlib.results import _canonical
from rattrlib.train.cached import TrainConfig, train_cached
from rattrlib.train.rar import _LossIGRegularised, ig_l1

#: where the saliency-matching term compares the student's and the teacher's input gradients
ALIGN_POINTS = ("clean", "adversarial")


def state_dict_sha256(model: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of a model's state_dict: names, dtypes, shapes and values (CPU bytes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return digest.hexdigest()[:16]


#: a teacher or start model: the model itself, or the TrainConfig (or dict of its fields) that trains it
ModelSpec = Union[nn.Module, TrainConfig, dict]


def _as_config(spec, what: str):
    """A TrainConfig from a TrainConfig or a dict of its fields (a ``seed`` key is split off); None for a
    module. Raises ValueError otherwise."""
    if isinstance(spec, nn.Module):
        return None, None
    if isinstance(spec, TrainConfig):
        return spec, None
    if isinstance(spec, dict):
        fields = dict(spec)
        seed = fields.pop("seed", None)
        if seed is not None:
            check_int(f"{what} seed", seed, 0)
        try:
            return TrainConfig(**fields), seed
        except TypeError as err:
            raise ValueError(f"{what}={spec!r} is not a TrainConfig's fields: {err}") from None
    raise ValueError(f"{what} must be an nn.Module, a rattrlib.train.TrainConfig or a dict of its fields, "
                     f"got {type(spec).__name__}")


class TeacherAligned(_LossIGRegularised):
    """GALI eq. 9: ``min_θ CE(x') + λ_IG‖IG_CE(x → x')‖₁ + λ‖J_S − J_T‖²₂``, with x' from eq. 8:
    ``x' = argmax_{x' ∈ B∞(x, ε)} CE(x') + λ_IG‖IG_CE(x → x')‖₁`` (paper: λ_IG = 1).

    - ``IG_CE(x → x')``: integrated gradients of the CE loss along x → x' (baseline x), right Riemann
      (:func:`~rattrlib.train.rar.loss_integrated_gradients`) on the student's softplus(β) copy; ``m_inner``
      points inside the ascent (GALI: m = 10 on MNIST/F-MNIST, 5 on GTSRB/Flower), ``m_outer`` in the loss
      (RAR's code, which GALI builds on: 50).
    - ``J = ∇_x f_y`` (eq. 5–7), the input gradient of the true-class logit: the student's on its softplus copy
      with create_graph (so the term reaches θ), the teacher's on the teacher itself, detached.
      ``‖J_S − J_T‖²`` is summed over pixels, averaged over the batch. The paper writes J(x) "given an input
      image x": by default at the clean x (``align_on="clean"``); ``"adversarial"`` uses x'.
    - The teacher is a PGD-AT model (GALI §2), frozen and in eval mode, copied at construction (so its
      identity in :meth:`hyperparameters` matches what is used) and moved to the student's device in
      :meth:`prepare`.
    - "AT-start" (GALI Table 2): training starts from a robust checkpoint. ``start="teacher"`` loads the
      teacher's weights into the student in :meth:`prepare` (AT-start); ``start=<model or config>`` loads
      another checkpoint of the same architecture (RAR-start, ERAR-start); None trains from the given init.
      A run resumed from a checkpoint overwrites the start weights (``fit`` loads it after ``prepare``).

    ``teacher`` / ``start`` may be an ``nn.Module`` (for :func:`rattrlib.train.train` / ``fit``) or — so that a
    :class:`~rattrlib.train.TrainConfig` stays JSON-serialisable and the cache key identifies them — a
    ``TrainConfig`` (or a dict of its fields, optionally with ``"seed"``), resolved in :meth:`prepare` with
    :func:`~rattrlib.train.train_cached` (trained once, then loaded), seed ``teacher_seed`` unless the dict
    gives one, in the results cache ``results_cache`` (set by ``train_cached`` to its own cache; None → the
    default cache at ``$RATTR_HOME``). The zoo (:mod:`rattrlib.zoo`) passes the ``pgd_at`` model's config.

    Defaults: GALI's MNIST attack (ε = 0.3, α = 0.01, 40 steps, m = 10), λ = 1e-3 (their ablation's best).
    Logged terms per batch: ``ce`` (CE at x'), ``ig`` (mean ‖IG‖₁) and ``align`` (mean ‖J_S − J_T‖²), unweighted.
    """

    name = "teacher_aligned"

    #: where teacher / start configs are trained or loaded (set by :func:`rattrlib.train.train_cached`)
    results_cache = None

    def __init__(self, teacher: ModelSpec, eps: float = 0.3, alpha: float = 0.01, steps: int = 40,
                 lam: float = 1e-3, lam_ig: float = 1.0, m_inner: int = 10, m_outer: int = 50,
                 beta: Optional[float] = 50.0, align_on: str = "clean", start: Optional[ModelSpec] = None,
                 teacher_seed: int = 0, internal_batch_size: Optional[int] = None):
        self._init_common(eps, alpha, steps, m_inner, m_outer, beta, internal_batch_size)
        self.lam = check_nonnegative("lam", lam)
        self.lam_ig = check_nonnegative("lam_ig", lam_ig)
        self.align_on = check_choice("align_on", align_on, ALIGN_POINTS)
        self.teacher_seed = check_int("teacher_seed", teacher_seed, 0)
        self._teacher_config, self._teacher_config_seed = _as_config(teacher, "teacher")
        self._teacher = self._frozen(teacher) if self._teacher_config is None else None
        self._teacher_id = (self._identify_module(self._teacher) if self._teacher is not None
                            else self._identify_config(self._teacher_config, self._teacher_config_seed))
        if start is None or start == "teacher":
            self._start, self._start_config, self._start_config_seed, self._start_id = start, None, None, start
        else:
            config, seed = _as_config(start, "start")
            self._start_config, self._start_config_seed = config, seed
            self._start = self._frozen(start) if config is None else None
            self._start_id = (self._identify_module(self._start) if config is None
                              else self._identify_config(config, seed))

    @staticmethod
    def _frozen(model: nn.Module) -> nn.Module:
        frozen = copy.deepcopy(model).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        return frozen

    @staticmethod
    def _identify_module(model: nn.Module) -> dict:
        return {"module": type(model).__name__, "sha256": state_dict_sha256(model)}

    def _identify_config(self, config, seed) -> dict:
        return {"config": _canonical(dataclasses.asdict(config)),
                "seed": self.teacher_seed if seed is None else seed}

    def hyperparameters(self) -> dict:
        return {**self._common_hyperparameters(), "lam": self.lam, "lam_ig": self.lam_ig,
                "align_on": self.align_on, "teacher": self._teacher_id, "start": self._start_id}

    def _resolve(self, config, seed, device) -> nn.Module:
        """Train or load a configured model; the caller's RNG states are restored afterwards, so the student's
        run is the same whether the teacher had to be trained now or came from the cache."""
        states = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
                  torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
        try:
            model, _ = train_cached(config, seed=self.teacher_seed if seed is None else seed, device=device,
                                    cache=self.results_cache, progress=False)
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])
            if states[3] is not None:
                torch.cuda.set_rng_state_all(states[3])
        return self._frozen(model)

    def prepare(self, model: nn.Module, data: ImageDataset) -> None:
        device = next(model.parameters()).device
        if self._teacher is None:
            self._teacher = self._resolve(self._teacher_config, self._teacher_config_seed, device)
        self._teacher = self._teacher.to(device)
        start = self._teacher if self._start == "teacher" else self._start
        if start is None and self._start_config is not None:
            start = self._resolve(self._start_config, self._start_config_seed, device)
        if start is not None:
            model.load_state_dict(start.state_dict())

    @property
    def teacher(self) -> Optional[nn.Module]:
        """The frozen teacher (None until :meth:`prepare` when it was given as a config)."""
        return self._teacher

    def alignment(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """``‖J_S(x) − J_T(x)‖²₂`` per image (N,): J = ∇_x f_y; student on its surrogate with create_graph."""
        if self._teacher is None:
            raise RuntimeError("the teacher is not resolved yet: call prepare(model, data) first")
        teacher = self._teacher.to(x.device)
        j_s = target_gradient(self.surrogate(model), x.detach(), y, create_graph=True)
        j_t = target_gradient(teacher, x.detach(), y, create_graph=False)
        return (j_s - j_t).pow(2).flatten(1).sum(1)

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """x' of eq. 8: maximises ``Σ_n CE(x'_n) + λ_IG‖IG_CE(x_n → x'_n)‖₁`` (m_inner points)."""
        return self._maximise_ce_plus_ig(model, x, y, self.lam_ig)

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x, y = batch.x, batch.y
        x_adv = self.perturb(model, x, y)
        ce = F.cross_entropy(model(x_adv), y)
        ig = ig_l1(self.ig(model, x, x_adv, y, self.m_outer)).mean()
        align = self.alignment(model, x if self.align_on == "clean" else x_adv, y).mean()
        loss = ce + self.lam_ig * ig + self.lam * align
        return loss, {"ce": ce.item(), "ig": ig.item(), "align": align.item()}


__all__ = ["ALIGN_POINTS", "TeacherAligned", "state_dict_sha256"]
