"""Saliency-based adversarial training: SAT, PGD-SAT, TRADES-SAT (Mangla, Singh & Balasubramanian, "On Saliency
Maps and Adversarial Robustness", ECML-PKDD 2020; poster and the authors' code, Puneet2000/SAT_ECML2020).

**Weak saliency** ``s ∈ {−1, +1}^{H×W}`` per training image (poster, "Leveraging bounding-boxes and
segmentation masks": ``s̃[i] = +1`` inside the box or mask, −1 elsewhere), computed once in ``prepare`` and looked
up by ``batch.index``. Sources (``saliency_source``):

- ``"mask"``: the dataset's masks (+1 on the object);
- ``"box"``: the dataset's boxes ``(x0, y0, x1, y1)``, x1/y1 exclusive: +1 on columns x0 ≤ c < x1 and rows
  y0 ≤ r < y1;
- ``"threshold"``: +1 where the image's own channel-mean intensity exceeds ``threshold`` — rattr's stand-in
  for datasets without annotations whose object is the bright pixels on a black background (MNIST,
  Fashion-MNIST); not in the paper;
- ``"maps"``: a teacher's saliency maps (the poster's CIFAR-100 table: SmoothGrad, IG, GBP maps of a teacher),
  given to the constructor as ``saliency_maps`` (N×H×W, or N×C×H×W reduced by ``Σ_c |·|``, aligned with the
  training set passed to ``fit``), +1 where the map is above its per-image ``quantile``. Or, so that the run
  can be a cached :class:`~rattrlib.train.TrainConfig` (zoo ``overrides``), ``saliency_teacher`` — a JSON
  description ``{"config": <teacher TrainConfig dict>, "seed": 0, "attribution": <registry name>,
  "kwargs": {...}}``: in ``prepare`` the teacher is trained or loaded from the results cache and
  :func:`teacher_saliency_maps` computes (or loads, cached under teacher config, seed, attribution, its kwargs
  and the training images' fingerprint) its maps of the true class on the training set given to ``fit``.

**Perturbation** (poster, "Saliency based Adversarial Training: Algorithm"), per component i of the C×H×W
image (s broadcast over channels)::

    δ_t[i] = ε · z[i]    with probability α_t      (z[i] a random sign)
    δ_t[i] = −ε · s[i]   with probability 1 − α_t

i.e. the negative saliency is the adversarial direction, and early in training the perturbation is mostly random
(as real adversarial perturbations are for an untrained net). The authors' code draws the choice per component
with P(mask) = 1 − a^{epoch/10}, a = 0.6, i.e. ``α_t = 0.6^{epoch/10}`` (1 at the first epoch) over 100 epochs.
``schedule`` (α_t as a function of training progress):

- ``"compressed"`` (default): ``α_t = decay^{t · horizon_epochs / decay_epochs}`` with t ∈ [0, 1) the continuous
  training progress (epochs done plus the fraction of this epoch's images seen, over all epochs): the authors'
  100-epoch curve squeezed into however many epochs the run has, so a 2-epoch cpu run still goes from α = 1
  to 0.6^{10} ≈ 0.006. (The authors' per-epoch rule would keep α_t = 1 — pure random-sign noise — through
  all of a run shorter than one of their epochs' worth of decay.)
- ``"epochs"``: ``α_t = decay^{epoch / decay_epochs}``, epoch counted from 0 — the authors' code exactly.
- ``"constant"``: ``α_t = alpha_t`` throughout (``alpha_t = 1`` is the poster's "+ Uniform-Noise"-style
  random-sign baseline; ``alpha_t = 0`` always uses the saliency).

**SAT** trains CE on ``clamp(x + δ_t, 0, 1)`` only (authors' code). **PGD-SAT** / **TRADES-SAT** (``combine``):

- ``"start"`` (default; rattr protocol): the inner PGD (CE) / TRADES (KL) attack starts from ``x + δ_t``
  instead of a uniform / Gaussian start;
- ``"alternate"`` (the authors' code, ``attack3``): per batch, with probability ``p_sat`` (0.5) the training point
  is ``x + δ_t`` itself and no attack is run, else the plain PGD / TRADES attack. This halves the attack cost —
  the poster's "PGD-SAT and TRADES-SAT require much less training time" holds for this variant, not for
  ``"start"``. Departure: the authors added ``−ε·(mask mix)`` to the PGD random start without re-projecting
  (up to 2ε away); here every training point is projected into the ε-ball and [0, 1].

PGD-SAT's outer loss is CE on the attacked batch; TRADES-SAT's is TRADES' ``CE(f(x)) + β·KL(f(x) ‖ f(x'))``
(authors' code, with their β = 1; rattr's default ``beta_trades`` = 6 as for TRADES). Randomness comes from
torch's global CPU RNG (saved in checkpoints).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rattrlib.attributions import ATTRIBUTIONS, attribution_map, get_attribution
from rattrlib.config import check_choice, check_eps, check_int, check_positive, check_real, check_unit_interval
from rattrlib.data import ImageDataset
from rattrlib.results import ResultsCache, data_fingerprint
from rattrlib.train.adversarial import PGDAT, linf_ascent, trades_attack, trades_loss, trades_start
from rattrlib.train.base import Batch, Progress, TrainingMethod
from rattrlib.train.cached import TrainConfig, train_cached

SALIENCY_SOURCES = ("mask", "box", "threshold", "maps")
SCHEDULES = ("compressed", "epochs", "constant")
COMBINES = ("start", "alternate")


# ----------------------------------------------------------------------------------------------------------
# weak saliency s ∈ {−1, +1}: N×H×W int8
# ----------------------------------------------------------------------------------------------------------
def _signs(inside: Tensor) -> Tensor:
    return inside.to(torch.int8) * 2 - 1


def saliency_from_masks(masks: Tensor) -> Tensor:
    """``s = +1`` where ``masks`` (N×H×W bool) is True, −1 elsewhere; N×H×W int8."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be N×H×W, got shape {tuple(masks.shape)}")
    return _signs(masks.bool())


def saliency_from_boxes(boxes: Tensor, height: int, width: int) -> Tensor:
    """``s = +1`` on the pixels of each box ``(x0, y0, x1, y1)`` (columns x0 ≤ c < x1, rows y0 ≤ r < y1;
    x1/y1 exclusive, rattr's box convention), −1 elsewhere; boxes (N, 4) → N×H×W int8."""
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4), got shape {tuple(boxes.shape)}")
    boxes = boxes.double()
    cols = torch.arange(width, dtype=torch.float64).view(1, 1, width)
    rows = torch.arange(height, dtype=torch.float64).view(1, height, 1)
    x0, y0, x1, y1 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    return _signs((cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1))


def saliency_from_threshold(images: Tensor, threshold: float) -> Tensor:
    """``s = +1`` where the channel mean of the image (N×C×H×W in [0, 1]) is above ``threshold``; N×H×W int8."""
    return _signs(images.mean(1) > threshold)


def saliency_from_maps(maps: Tensor, quantile: float, chunk: int = 4096) -> Tensor:
    """``s = +1`` where a saliency map is above its own ``quantile`` (per image; the lower order statistic
    ``ceil(q·H·W)``), −1 elsewhere. ``maps``: N×H×W, or N×C×H×W reduced to ``Σ_c |·|`` first; N×H×W int8."""
    if maps.ndim == 4:
        maps = attribution_map(maps)
    if maps.ndim != 3:
        raise ValueError(f"saliency_maps must be N×H×W or N×C×H×W, got shape {tuple(maps.shape)}")
    n, h, w = maps.shape
    k = max(1, min(h * w, int(torch.tensor(quantile * h * w).ceil())))
    out = torch.empty(n, h, w, dtype=torch.int8)
    for start in range(0, n, chunk):
        flat = maps[start:start + chunk].detach().float().cpu().flatten(1)
        cut = flat.kthvalue(k, dim=1).values.unsqueeze(1)
        out[start:start + chunk] = _signs(flat > cut).view(-1, h, w)
    return out


def weak_saliency(data: ImageDataset, source: str, *, threshold: float = 0.1,
                  saliency_maps: Optional[Tensor] = None, quantile: float = 0.5) -> Tensor:
    """Weak saliency ``s ∈ {−1, +1}`` (N×H×W int8) of every image of ``data`` from ``source`` (see the module
    docstring). Raises ``ValueError`` when the data lacks the masks/boxes asked for or the maps do not match."""
    check_choice("saliency_source", source, SALIENCY_SOURCES)
    n, _, h, w = data.images.shape
    if source == "mask":
        if data.masks is None:
            raise ValueError(f"saliency_source='mask' but dataset {data.name!r} has no masks; use 'box', "
                             "'threshold' or 'maps'")
        return saliency_from_masks(data.masks)
    if source == "box":
        if data.boxes is None:
            raise ValueError(f"saliency_source='box' but dataset {data.name!r} has no boxes; use 'mask', "
                             "'threshold' or 'maps'")
        return saliency_from_boxes(data.boxes, h, w)
    if source == "threshold":
        return saliency_from_threshold(data.images, threshold)
    if saliency_maps is None:
        raise ValueError("saliency_source='maps' needs saliency_maps")
    if saliency_maps.shape[0] != n or tuple(saliency_maps.shape[-2:]) != (h, w):
        raise ValueError(f"saliency_maps of shape {tuple(saliency_maps.shape)} do not match the {n} training "
                         f"images of size {h}×{w} (give one map per image of the data passed to fit)")
    return saliency_from_maps(saliency_maps, quantile)


#: bump when teacher maps are computed differently, so cached maps are recomputed
TEACHER_MAPS_VERSION = 1


def check_saliency_teacher(spec) -> dict:
    """Validate a ``saliency_teacher`` description (module docstring) and return it in canonical form
    ``{"config": dict, "seed": int, "attribution": str, "kwargs": dict}``; raises ``ValueError``."""
    if not isinstance(spec, dict):
        raise ValueError(f"saliency_teacher must be a dict with keys config, attribution (and seed, kwargs); "
                         f"got {type(spec).__name__}")
    unknown = set(spec) - {"config", "seed", "attribution", "kwargs"}
    if unknown or "config" not in spec or "attribution" not in spec:
        raise ValueError("saliency_teacher needs keys 'config' (a TrainConfig or its dict) and 'attribution', "
                         f"optionally 'seed' and 'kwargs'; got keys {sorted(spec)}")
    config = spec["config"]
    if isinstance(config, TrainConfig):
        config = dataclasses.asdict(config)
    if not isinstance(config, dict):
        raise ValueError(f"saliency_teacher['config'] must be a TrainConfig or its dict, got {type(config).__name__}")
    TrainConfig(**config)  # validates the teacher's config
    check_choice("attribution", spec["attribution"], ATTRIBUTIONS)
    kwargs = dict(spec.get("kwargs") or {})
    if "generator" in kwargs:
        raise ValueError("saliency_teacher['kwargs'] cannot hold a generator: noisy attributions are seeded "
                         "from saliency_teacher['seed']")
    return {"config": config, "seed": check_int("seed", spec.get("seed", 0), 0),
            "attribution": spec["attribution"], "kwargs": kwargs}


def teacher_saliency_maps(teacher, attribution: str, kwargs: Optional[dict], data: ImageDataset, *,
                          seed: int = 0, device: str = "auto", cache: Optional[ResultsCache] = None,
                          batch_size: int = 100, progress: bool = False) -> Tensor:
    """Saliency maps ``Σ_c |A(x)_c|`` (N×H×W float32, CPU) of the **true class** of every image of ``data``,
    by the attribution ``attribution`` (a name in :data:`rattrlib.attributions.ATTRIBUTIONS`, with ``kwargs``)
    of a teacher — the poster's CIFAR-100 table ("Using better saliency maps for training").

    ``teacher``: a :class:`~rattrlib.train.TrainConfig` (or its dict), trained or loaded with seed ``seed`` by
    :func:`~rattrlib.train.train_cached`, in eval mode. Methods that take a ``generator`` (SmoothGrad, …) get one
    seeded with ``seed``. Cached in ``cache`` (default ``$RATTR_HOME/results``) under the teacher config, seed,
    attribution, kwargs, batch size and the fingerprint of ``data``'s images and labels; the caller's RNG
    states are left as they were. ``batch_size``: images per attribution call.
    """
    spec = check_saliency_teacher({"config": teacher, "seed": seed, "attribution": attribution,
                                   "kwargs": kwargs or {}})
    batch_size = check_int("batch_size", batch_size, 1)
    cache = cache or ResultsCache()
    config = TrainConfig(**spec["config"])
    key = {"kind": "teacher_saliency_maps", "version": TEACHER_MAPS_VERSION, "teacher": config,
           "attribution": attribution, "kwargs": spec["kwargs"], "batch_size": batch_size,
           "data": data_fingerprint(data.images, data.labels)}

    def compute() -> Tensor:
        states = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
        try:
            model, _ = train_cached(config, seed=seed, device=device, cache=cache, progress=progress)
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            target = next(model.parameters()).device
            extra = dict(spec["kwargs"])
            if "generator" in ATTRIBUTIONS[attribution].__init__.__code__.co_varnames:
                extra["generator"] = torch.Generator().manual_seed(seed)
            method = get_attribution(attribution, model, **extra)
            maps = [attribution_map(method.attribute(data.images[i:i + batch_size].to(target),
                                                     data.labels[i:i + batch_size].to(target))).float().cpu()
                    for i in range(0, len(data), batch_size)]
            return torch.cat(maps)
        finally:
            torch.set_rng_state(states[0])
            if states[1] is not None:
                torch.cuda.set_rng_state_all(states[1])

    return cache.get_or_compute("teacher_saliency_maps", key, compute, seed=seed, dataset=config.dataset)


# ----------------------------------------------------------------------------------------------------------
# the SAT perturbation and its schedule
# ----------------------------------------------------------------------------------------------------------
def sat_perturbation(s: Tensor, shape: tuple, alpha_t: float, eps: float, *,
                     return_random: bool = False):
    """The SAT perturbation ``δ_t`` (poster, "Algorithm"): per component i of an N×C×H×W batch, ``ε·z[i]``
    (z a random sign) with probability ``alpha_t``, else ``−ε·s[i]``.

    ``s``: weak saliency ±1, N×H×W (broadcast over channels) or N×C×H×W, any dtype, on the output's device.
    Random draws come from torch's global CPU RNG (then moved to ``s``'s device). Returns δ (float32, N×C×H×W,
    every entry ±ε), and with ``return_random`` also the bool N×C×H×W tensor of components that took the random
    sign. ``alpha_t = 0`` gives exactly ``−ε·s``; ``alpha_t = 1`` a uniformly random sign everywhere.
    """
    alpha_t = check_unit_interval("alpha_t", alpha_t)
    n, c, h, w = shape
    s = s.view(n, 1, h, w) if s.ndim == 3 else s
    s = s.to(torch.float32).expand(n, c, h, w)
    use_random = (torch.rand(n, c, h, w) < alpha_t).to(s.device)
    z = (torch.randint(0, 2, (n, c, h, w), dtype=torch.int8) * 2 - 1).to(device=s.device, dtype=torch.float32)
    delta = eps * torch.where(use_random, z, -s)
    return (delta, use_random) if return_random else delta


def sat_alpha(schedule: str, *, t: float, epoch: int, decay: float = 0.6, decay_epochs: float = 10.0,
              horizon_epochs: float = 100.0, alpha_t: Optional[float] = None) -> float:
    """α_t, the probability of a random-sign component (see the module docstring): ``"compressed"``:
    ``decay^{t·horizon_epochs/decay_epochs}`` (t ∈ [0, 1] the training progress); ``"epochs"``:
    ``decay^{epoch/decay_epochs}`` (the authors' code); ``"constant"``: ``alpha_t``."""
    check_choice("schedule", schedule, SCHEDULES)
    if schedule == "constant":
        return float(alpha_t)
    exponent = (t * horizon_epochs if schedule == "compressed" else epoch) / decay_epochs
    return float(decay ** exponent)


# ----------------------------------------------------------------------------------------------------------
# the methods
# ----------------------------------------------------------------------------------------------------------
class SAT(TrainingMethod):
    """SAT: ``CE(f(clamp(x + δ_t, 0, 1)), y)`` with the saliency perturbation δ_t (module docstring).

    Args:
        eps: ε ∈ [0, 1] (default 0.3, MNIST scale; the poster used 8/255 and 1/255 on colour data).
        saliency_source: ``"mask" | "box" | "threshold" | "maps"`` (default ``"threshold"``).
        threshold: intensity threshold ∈ [0, 1] for ``"threshold"`` (default 0.1).
        saliency_maps: N×H×W (or N×C×H×W) tensor for ``"maps"``, one per training image (not JSON: use
            :func:`rattrlib.train.train` directly, not a cached ``TrainConfig``); its SHA-256 enters
            :meth:`hyperparameters`.
        saliency_teacher: for ``"maps"`` instead of ``saliency_maps``: ``{"config": <teacher TrainConfig or
            dict>, "seed": 0, "attribution": <name>, "kwargs": {...}}`` (JSON, so a cached ``TrainConfig`` /
            zoo override can carry it); the maps come from :func:`teacher_saliency_maps` in :meth:`prepare`.
        quantile: per-image quantile ∈ (0, 1) a teacher map must exceed to count as +1 (default 0.5).
        schedule: ``"compressed" | "epochs" | "constant"`` (default ``"compressed"``).
        decay: a ∈ (0, 1] of ``α_t = a^{…}`` (0.6); decay_epochs: > 0 (10); horizon_epochs: > 0 (100, the
            authors' run length, used by ``"compressed"``).
        alpha_t: the constant α_t ∈ [0, 1] for ``schedule="constant"`` (required there, unused otherwise).

    Logged terms: ``ce_sat``, ``alpha_t`` (batch mean of the α_t used).
    """

    name = "sat"

    def __init__(self, eps: float = 0.3, saliency_source: str = "threshold", threshold: float = 0.1,
                 saliency_maps: Optional[Tensor] = None, quantile: float = 0.5, schedule: str = "compressed",
                 decay: float = 0.6, decay_epochs: float = 10.0, horizon_epochs: float = 100.0,
                 alpha_t: Optional[float] = None, saliency_teacher: Optional[dict] = None):
        self.eps = check_eps(eps)
        self.saliency_source = check_choice("saliency_source", saliency_source, SALIENCY_SOURCES)
        self.threshold = check_unit_interval("threshold", threshold)
        given = (saliency_maps is not None) + (saliency_teacher is not None)
        if (given == 1) != (saliency_source == "maps") or given == 2:
            raise ValueError("give exactly one of saliency_maps / saliency_teacher exactly when "
                             f"saliency_source='maps' (got saliency_source={saliency_source!r}, saliency_maps "
                             f"{'given' if saliency_maps is not None else 'None'}, saliency_teacher "
                             f"{'given' if saliency_teacher is not None else 'None'})")
        if saliency_maps is not None and not isinstance(saliency_maps, Tensor):
            raise ValueError(f"saliency_maps must be a tensor, got {type(saliency_maps).__name__}")
        self.saliency_maps = saliency_maps
        self.saliency_teacher = None if saliency_teacher is None else check_saliency_teacher(saliency_teacher)
        self.quantile = check_real("quantile", quantile)
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"quantile={quantile!r} is outside (0, 1)")
        self.schedule = check_choice("schedule", schedule, SCHEDULES)
        self.decay = check_real("decay", decay)
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"decay={decay!r} is outside (0, 1]")
        self.decay_epochs = check_positive("decay_epochs", decay_epochs)
        self.horizon_epochs = check_positive("horizon_epochs", horizon_epochs)
        if schedule == "constant":
            if alpha_t is None:
                raise ValueError("schedule='constant' needs alpha_t in [0, 1]")
            self.alpha_t = check_unit_interval("alpha_t", alpha_t)
        else:
            if alpha_t is not None:
                raise ValueError(f"alpha_t is only used with schedule='constant' (schedule={schedule!r})")
            self.alpha_t = None
        self._saliency: Optional[Tensor] = None
        self._n_train = 0
        self._epoch, self._seen = -1, 0

    def hyperparameters(self) -> dict:
        out = {"eps": self.eps, "saliency_source": self.saliency_source, "schedule": self.schedule,
               "decay": self.decay, "decay_epochs": self.decay_epochs, "horizon_epochs": self.horizon_epochs}
        if self.saliency_source == "threshold":
            out["threshold"] = self.threshold
        if self.saliency_source == "maps" and self.saliency_teacher is not None:
            out.update(quantile=self.quantile, saliency_teacher=self.saliency_teacher)
        elif self.saliency_source == "maps":
            blob = self.saliency_maps.detach().cpu().contiguous().float().numpy().tobytes()
            out.update(quantile=self.quantile, saliency_maps_sha256=hashlib.sha256(blob).hexdigest())
        if self.schedule == "constant":
            out["alpha_t"] = self.alpha_t
        return out

    #: where a ``saliency_teacher`` and its maps are trained / computed or loaded (set by ``train_cached``)
    results_cache: Optional[ResultsCache] = None

    def prepare(self, model: nn.Module, data: ImageDataset) -> None:
        maps = self.saliency_maps
        if self.saliency_teacher is not None:
            t = self.saliency_teacher
            maps = teacher_saliency_maps(t["config"], t["attribution"], t["kwargs"], data, seed=t["seed"],
                                         device=str(next(model.parameters()).device), cache=self.results_cache)
        self._saliency = weak_saliency(data, self.saliency_source, threshold=self.threshold,
                                       saliency_maps=maps, quantile=self.quantile)
        self._n_train = len(data)
        self._epoch, self._seen = -1, 0

    def saliency(self, index: Tensor) -> Tensor:
        """The weak saliency (N×H×W int8, ±1) of the training images at ``index`` (after :meth:`prepare`)."""
        if self._saliency is None:
            raise RuntimeError(f"{type(self).__name__}.prepare(model, data) must run before the first loss")
        return self._saliency[index.cpu()]

    def current_alpha(self, progress: Progress, batch_size: int) -> float:
        """α_t for the next batch of ``batch_size`` images; advances the within-epoch image count."""
        if progress.epoch != self._epoch:
            self._epoch, self._seen = progress.epoch, 0
        fraction = min(self._seen / max(self._n_train, 1), 1.0)
        self._seen += batch_size
        t = (progress.epoch + fraction) / progress.epochs
        return sat_alpha(self.schedule, t=t, epoch=progress.epoch, decay=self.decay,
                         decay_epochs=self.decay_epochs, horizon_epochs=self.horizon_epochs, alpha_t=self.alpha_t)

    def sat_images(self, batch: Batch, progress: Progress) -> tuple[Tensor, float]:
        """``(clamp(x + δ_t, 0, 1), α_t)`` for ``batch``."""
        alpha_t = self.current_alpha(progress, batch.x.shape[0])
        s = self.saliency(batch.index).to(batch.x.device)
        delta = sat_perturbation(s, tuple(batch.x.shape), alpha_t, self.eps).to(batch.x.dtype)
        return (batch.x + delta).clamp(0.0, 1.0), alpha_t

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x_sat, alpha_t = self.sat_images(batch, progress)
        loss = F.cross_entropy(model(x_sat), batch.y)
        return loss, {"ce_sat": loss.item(), "alpha_t": alpha_t}


class _CombinedSAT(SAT):
    """SAT's perturbation combined with an inner attack (``combine``: ``"start"`` | ``"alternate"``)."""

    def __init__(self, eps: float, alpha: float, steps: int, combine: str, p_sat: float, **sat_kwargs):
        super().__init__(eps=eps, **sat_kwargs)
        self.alpha = check_positive("alpha", alpha)
        self.steps = check_int("steps", steps, 1)
        self.combine = check_choice("combine", combine, COMBINES)
        self.p_sat = check_unit_interval("p_sat", p_sat)

    def hyperparameters(self) -> dict:
        out = {**super().hyperparameters(), "alpha": self.alpha, "steps": self.steps, "combine": self.combine}
        if self.combine == "alternate":
            out["p_sat"] = self.p_sat
        return out

    def _coin(self) -> bool:
        """True with probability ``p_sat`` (global CPU RNG): this batch trains on x + δ_t without an attack."""
        return bool(torch.rand(()) < self.p_sat)


class PGDSAT(_CombinedSAT):
    """PGD-SAT: CE on PGD images whose attack starts from ``x + δ_t`` (``combine="start"``), or, per batch, on
    ``x + δ_t`` with probability ``p_sat`` and on plain PGD images otherwise (``combine="alternate"``, the
    authors' code). PGD: ``steps`` signed CE-ascent steps of size ``alpha`` in the ε-ball (Madry et al. 2018).

    Args: the SAT arguments, and ``alpha`` > 0 (0.01), ``steps`` ≥ 1 (40), ``combine`` (``"start"``),
    ``p_sat`` ∈ [0, 1] (0.5). Logged: ``ce_adv``, ``alpha_t``, ``sat_only`` (1 for a batch trained on
    x + δ_t without an attack).
    """

    name = "pgd_sat"

    def __init__(self, eps: float = 0.3, alpha: float = 0.01, steps: int = 40, combine: str = "start",
                 p_sat: float = 0.5, **sat_kwargs):
        super().__init__(eps, alpha, steps, combine, p_sat, **sat_kwargs)

    def perturb(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, float, bool]:
        """``(x_adv, α_t, sat_only)`` for ``batch``."""
        x_sat, alpha_t = self.sat_images(batch, progress)
        if self.combine == "alternate":
            if self._coin():
                return x_sat, alpha_t, True
            return PGDAT(self.eps, self.alpha, self.steps).perturb(model, batch.x, batch.y), alpha_t, False
        y = batch.y
        x_adv = linf_ascent(model, batch.x, x_sat, lambda logits: F.cross_entropy(logits, y, reduction="sum"),
                            eps=self.eps, alpha=self.alpha, steps=self.steps)
        return x_adv, alpha_t, False

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x_adv, alpha_t, sat_only = self.perturb(model, batch, progress)
        loss = F.cross_entropy(model(x_adv), batch.y)
        return loss, {"ce_adv": loss.item(), "alpha_t": alpha_t, "sat_only": float(sat_only)}


class TRADESSAT(_CombinedSAT):
    """TRADES-SAT: TRADES' ``CE(f(x), y) + β·KL(f(x) ‖ f(x'))`` (Zhang et al. 2019, eq. 5) where x' is the
    KL-ascent attack started from ``x + δ_t`` (``combine="start"``), or, per batch, ``x' = x + δ_t`` with
    probability ``p_sat`` and the plain TRADES attack otherwise (``combine="alternate"``, the authors' code).

    Args: the SAT arguments, ``alpha`` (0.01), ``steps`` (40), ``beta_trades`` > 0 (6.0; the authors' SAT code
    used 1), ``combine`` (``"start"``), ``p_sat`` (0.5). Logged: ``ce``, ``kl``, ``alpha_t``, ``sat_only``.
    """

    name = "trades_sat"

    def __init__(self, eps: float = 0.3, alpha: float = 0.01, steps: int = 40, beta_trades: float = 6.0,
                 combine: str = "start", p_sat: float = 0.5, **sat_kwargs):
        super().__init__(eps, alpha, steps, combine, p_sat, **sat_kwargs)
        self.beta_trades = check_positive("beta_trades", beta_trades)

    def hyperparameters(self) -> dict:
        return {**super().hyperparameters(), "beta_trades": self.beta_trades}

    def perturb(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, float, bool]:
        """``(x', α_t, sat_only)`` for ``batch``."""
        x_sat, alpha_t = self.sat_images(batch, progress)
        start = x_sat
        if self.combine == "alternate":
            if self._coin():
                return x_sat, alpha_t, True
            start = trades_start(batch.x)
        x_adv = trades_attack(model, batch.x, start, eps=self.eps, alpha=self.alpha, steps=self.steps)
        return x_adv, alpha_t, False

    def loss(self, model: nn.Module, batch: Batch, progress: Progress) -> tuple[Tensor, dict[str, float]]:
        x_adv, alpha_t, sat_only = self.perturb(model, batch, progress)
        loss, ce, kl = trades_loss(model, batch.x, batch.y, x_adv, self.beta_trades)
        return loss, {"ce": ce.item(), "kl": kl.item(), "alpha_t": alpha_t, "sat_only": float(sat_only)}
