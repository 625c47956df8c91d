"""Explanation-robustness metrics of the XAI-evaluation community (Quantus' "robustness" category), batched:
Max-/Avg-Sensitivity, the Local Lipschitz Estimate and Relative Input Stability.

Each metric perturbs every image S times, re-explains the perturbed images with the *given* label ``y`` and
reduces a per-sample score over the S samples (max or mean), giving one value per image, shape (N,); lower
is more robust for all four. ``explain(x, y) -> maps`` is any callable returning one map per row (e.g.
``Saliency(model).attribute``, or a wrapper that normalises or takes ``attribution_map``); all S·N perturbed
images go through ``explain`` stacked in the batch dimension, ``internal_batch_size`` rows per call (all in
one call when None).

Conventions of Quantus 0.6.0 (read from its source) and the ones chosen here
--------------------------------------------------------------------------
With a = explain(x, y), a' = explain(x', y), δ = x' − x and ‖·‖ the L2 norm of the flattened row:

========================  ===========================  =============================  =======================
metric (Quantus class)    Quantus default noise, S     per-sample score               reduction
========================  ===========================  =============================  =======================
MaxSensitivity            δ ~ U[−0.2, 0.2] iid, S=200  ‖a − a'‖ / ‖a‖                 max over samples
AvgSensitivity            δ ~ U[−0.2, 0.2] iid, S=200  ‖a − a'‖ / ‖a‖                 mean over samples
LocalLipschitzEstimate    δ ~ N(0, 0.1²) iid, S=200    ‖a − a'‖ / (‖x − x'‖ + 1e-10)  max over samples
RelativeInputStability    δ ~ U[0.02, 0.2] iid, S=200  ‖(a − a')/a‖ / ‖(x − x')/x‖    max over samples
========================  ===========================  =============================  =======================

Common to all four in Quantus: a fresh noise draw per sample for the whole batch (``np.random``, every entry
independently), no clipping of x' to the image range, explanations of x' computed for the given label
``y_batch`` (not the prediction), ``abs=False``. Normalisation: off, except LLE (``normalise=True``,
``normalise_by_max`` with its default axes = *all* axes, batch included, so an image's LLE depends on the
other images of its batch). RIS replaces zero entries of a and of x by ``eps_min = 1e-6`` in the divisions
and adds ``eps_min`` to a denominator that is exactly 0. A perturbed sample whose predicted class
(argmax of the logits) differs from that of x is kept by default for the sensitivities and LLE
(``return_nan_when_prediction_changes=False``); for RIS (default True) the whole image becomes NaN as soon
as one of its S samples changes the prediction (``np.max``, not ``np.nanmax``).

Ours, chosen explicitly:

- **noise**: ``δ ~ U[−radius, radius]`` iid (the L∞ ball) with ``radius=0.2``, ``n_samples=200`` for the
  sensitivities (as Quantus); **LLE** Gaussian with σ = ``radius = 0.1`` (as Quantus); **RIS** differs: the
  symmetric ball ``U[−0.2, 0.2]`` — Quantus' one-sided U[0.02, 0.2] comes from passing ``upper_bound=0.2``
  while ``lower_bound`` keeps its default, not from the paper's neighbourhood N_x. Draws come from a seeded
  ``torch.Generator``; ``noise`` (S×N×…) passes them explicitly (how the tests feed Quantus and us the same).
- **norms**: L2 of the flattened row (``norm=2``; 1 and ∞ allowed), as Quantus' ``fro_norm`` /
  ``distance_euclidean``. Sensitivities are **relative** (÷‖a‖) as in Quantus; ``relative=False`` gives Yeh
  et al.'s definition. RIS uses ``max(‖(x − x')/x‖, eps_min)`` as in the paper (Quantus: + eps_min only
  when exactly 0; identical unless that norm is in (0, 1e-6)).
- **no normalisation** inside the metric: pass a normalising ``explain`` (per image). Quantus' LLE default
  (batch-wide max) is reproduced only with its ``batch_size=1``, which equals a per-image max.
- **prediction changes** (``prediction_change``, needs ``model``): ``"keep"`` (Quantus' default for the
  sensitivities and LLE; ours too), ``"nan"`` (Quantus' ``return_nan_when_prediction_changes=True``: NaN for
  the image if any sample flips), ``"skip"`` (drop the flipped samples; NaN if all flip). RIS defaults to
  ``"skip"``: the paper maximises over x' with ŷ(x') = ŷ(x), and Quantus' ``"nan"`` discards the whole image.
- explanations are detached; no gradient flows through these metrics.

They are **not** registered in :data:`~rattrlib.metrics.METRICS`: that registry holds scores of two maps
``fn(a, b) -> (N,)``, whereas these need the explainer and the inputs. They carry the same declarations
(``higher_is_better=False``, ``cite``, ``bounds``) and are listed in :data:`SENSITIVITY_METRICS`.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, Optional

import torch
from torch import Tensor

from rattrlib.config import check_choice, check_generator, check_int, check_positive

NORMS = (1, 2, math.inf)
PREDICTION_CHANGES = ("keep", "nan", "skip")
DISTRIBUTIONS = ("uniform", "gaussian")
LIPSCHITZ_EPS = 1e-10  # Quantus' ``lipschitz_constant`` stabiliser
SENSITIVITY_METRICS: dict[str, Callable] = {}
"""The four metrics by name; each carries ``higher_is_better`` (False), ``cite`` and ``bounds``."""


def _declare(cite: str):
    """Set the METRICS-style declarations (lower is better, unbounded above) and list the function."""

    def wrap(fn: Callable) -> Callable:
        fn.higher_is_better, fn.cite, fn.bounds = False, cite, (0.0, math.inf)
        SENSITIVITY_METRICS[fn.__name__] = fn
        return fn

    return wrap


# ------------------------------------------------------------------------------------------- checks
def _check_x_y(x, y) -> tuple[Tensor, Tensor]:
    """``x`` a floating (N, …) tensor with N ≥ 1; ``y`` an int or N integer labels → LongTensor (N,)."""
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2 or x.shape[0] == 0:
        desc = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a non-empty floating tensor (N, …) with N ≥ 1, got {desc}")
    n = x.shape[0]
    if isinstance(y, bool):
        raise ValueError("y must be an int or N integer labels, got a bool")
    if isinstance(y, numbers.Integral):
        return x, torch.full((n,), int(y), dtype=torch.long, device=x.device)
    y = torch.as_tensor(y, device=x.device)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool or tuple(y.shape) != (n,):
        raise ValueError(f"y must be an int or N={n} integer labels, got shape {tuple(y.shape)}, dtype {y.dtype}")
    return x, y.long()


def _check_common(explain, x, y, radius, n_samples, generator, noise, norm, model, prediction_change,
                  internal_batch_size):
    """Validate every argument before any compute; return ``x``, ``y`` and the number of samples S."""
    if not callable(explain):
        raise ValueError(f"explain must be a callable explain(x, y) -> maps, got {type(explain).__name__}")
    x, y = _check_x_y(x, y)
    check_positive("radius", radius)
    check_generator(generator)
    check_choice("norm", norm, NORMS)
    check_choice("prediction_change", prediction_change, PREDICTION_CHANGES)
    if prediction_change != "keep" and not callable(model):
        raise ValueError(f"model (returning logits) is needed for prediction_change={prediction_change!r}; "
                         "pass model=... or prediction_change='keep'")
    if internal_batch_size is not None:
        check_int("internal_batch_size", internal_batch_size, 1)
    if noise is None:
        return x, y, check_int("n_samples", n_samples, 1)
    if not isinstance(noise, Tensor) or noise.ndim != x.ndim + 1 or noise.shape[1:] != x.shape \
            or noise.shape[0] == 0:
        got = tuple(noise.shape) if isinstance(noise, Tensor) else type(noise).__name__
        raise ValueError(f"noise must be a tensor (S, *x.shape) = (S, {', '.join(map(str, x.shape))}) with "
                         f"S ≥ 1, got {got}")
    return x, y, noise.shape[0]


# ------------------------------------------------------------------------------------------- sampling
def sample_noise(x: Tensor, n_samples: int, radius: float, *, distribution: str = "uniform",
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """S perturbations of every image, shape (S, *x.shape), x's dtype and device.

    ``"uniform"``: iid U[−radius, radius] (the L∞ ball of Max-/Avg-Sensitivity and RIS); ``"gaussian"``:
    iid N(0, radius²) (Quantus' LLE). Drawn on the generator's device and moved, so a seeded CPU generator
    gives the same noise whatever device x is on.
    """
    check_int("n_samples", n_samples, 1)
    check_positive("radius", radius)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    check_generator(generator)
    device = x.device if generator is None else generator.device
    shape = (n_samples, *x.shape)
    if distribution == "uniform":
        u = torch.rand(shape, generator=generator, dtype=x.dtype, device=device)
        return ((2 * u - 1) * radius).to(x.device)
    return (radius * torch.randn(shape, generator=generator, dtype=x.dtype, device=device)).to(x.device)


# ------------------------------------------------------------------------------------------- engine
def _explain(explain: Callable, x: Tensor, y: Tensor) -> Tensor:
    """explain(x, y) detached, flattened to (rows, D); refuses an output without one map per row."""
    maps = explain(x, y)
    if not isinstance(maps, Tensor) or maps.ndim < 1 or maps.shape[0] != x.shape[0]:
        got = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f"explain must return a tensor with one map per row ({x.shape[0]} rows), got {got}")
    return maps.detach().reshape(x.shape[0], -1)


def _per_sample(score: Callable, explain, x, y, noise, model, prediction_change, internal_batch_size):
    """Scores of every (sample, image) pair, (S, N), and the mask of pairs whose prediction changed."""
    s, n = noise.shape[0], x.shape[0]
    a = _explain(explain, x, y)
    flat_noise = noise.reshape(s * n, *x.shape[1:])
    step = s * n if internal_batch_size is None else internal_batch_size
    check_pred = prediction_change != "keep"
    if check_pred:
        with torch.no_grad():
            pred = model(x).argmax(dim=1)
    scores, changed = [], []
    for lo in range(0, s * n, step):
        rows = torch.arange(lo, min(lo + step, s * n), device=x.device) % n
        xp = x[rows] + flat_noise[lo:lo + step]
        ap = _explain(explain, xp, y[rows])
        if ap.shape[1] != a.shape[1]:
            raise ValueError(f"explain returned maps of {ap.shape[1]} entries for perturbed inputs but "
                             f"{a.shape[1]} for x")
        scores.append(score(a[rows], ap, x[rows].reshape(len(rows), -1), xp.reshape(len(rows), -1)))
        if check_pred:
            with torch.no_grad():
                changed.append(model(xp).argmax(dim=1) != pred[rows])
    scores = torch.cat(scores).reshape(s, n)
    changed = torch.cat(changed).reshape(s, n) if check_pred else torch.zeros_like(scores, dtype=torch.bool)
    return scores, changed


def _reduce(scores: Tensor, changed: Tensor, prediction_change: str, how: str) -> Tensor:
    """Max or mean over samples (dim 0) with the chosen treatment of prediction-changing samples."""
    nan = torch.full_like(scores, math.nan)
    if prediction_change == "skip":
        if how == "max":
            out = scores.masked_fill(changed, -math.inf).amax(dim=0)
        else:
            out = scores.masked_fill(changed, 0.0).sum(dim=0) / (~changed).sum(dim=0)
        return torch.where(changed.all(dim=0), nan[0], out)
    out = scores.amax(dim=0) if how == "max" else scores.mean(dim=0)
    return torch.where(changed.any(dim=0), nan[0], out) if prediction_change == "nan" else out


def _run(score, how, explain, x, y, radius, n_samples, generator, noise, norm, model, prediction_change,
         internal_batch_size, distribution):
    x, y, _ = _check_common(explain, x, y, radius, n_samples, generator, noise, norm, model,
                            prediction_change, internal_batch_size)
    if noise is None:
        noise = sample_noise(x, n_samples, radius, distribution=distribution, generator=generator)
    noise = noise.to(device=x.device, dtype=x.dtype)
    scores, changed = _per_sample(score, explain, x, y, noise, model, prediction_change, internal_batch_size)
    return _reduce(scores, changed, prediction_change, how)


def _norm(v: Tensor, norm) -> Tensor:
    return torch.linalg.vector_norm(v, ord=norm, dim=1)


# ------------------------------------------------------------------------------------------- metrics
def _sensitivity_score(norm, relative: bool):
    def score(a, ap, xr, xp):
        diff = _norm(a - ap, norm)
        if not relative:
            return diff
        size = _norm(a, norm)
        return torch.where(size > 0, diff / size, torch.full_like(diff, float("nan")))
    return score


@_declare("Yeh et al. 2019 (NeurIPS), §3 SENS_MAX; Quantus MaxSensitivity (÷‖Φ(x)‖)")
def max_sensitivity(explain: Callable, x: Tensor, y, *, radius: float = 0.2, n_samples: int = 200,
                    generator: Optional[torch.Generator] = None, noise: Optional[Tensor] = None, norm=2,
                    relative: bool = True, model: Optional[Callable] = None, prediction_change: str = "keep",
                    internal_batch_size: Optional[int] = None) -> Tensor:
    """Max-Sensitivity ``max_{x' : ‖x' − x‖∞ ≤ r} ‖Φ(x') − Φ(x)‖ / ‖Φ(x)‖`` (Yeh et al. 2019, SENS_MAX), by
    Monte Carlo over ``n_samples`` draws of U[−radius, radius] (or the given ``noise``, S×N×…).

    ``relative=False`` drops the ÷‖Φ(x)‖ (Yeh's definition; Quantus divides). ``norm``: 1, 2 or ∞ on the
    flattened maps. ``model``/``prediction_change``: see the module docstring. Returns (N,) ≥ 0, lower is
    better; NaN where Φ(x) = 0 (relative) or by ``prediction_change``.
    """
    return _run(_sensitivity_score(norm, relative), "max", explain, x, y, radius, n_samples, generator, noise,
                norm, model, prediction_change, internal_batch_size, "uniform")


@_declare("Yeh et al. 2019 (NeurIPS), §3 SENS_AVG; Quantus AvgSensitivity (÷‖Φ(x)‖)")
def avg_sensitivity(explain: Callable, x: Tensor, y, *, radius: float = 0.2, n_samples: int = 200,
                    generator: Optional[torch.Generator] = None, noise: Optional[Tensor] = None, norm=2,
                    relative: bool = True, model: Optional[Callable] = None, prediction_change: str = "keep",
                    internal_batch_size: Optional[int] = None) -> Tensor:
    """Avg-Sensitivity ``E_{x' ~ U(B∞(x, r))} ‖Φ(x') − Φ(x)‖ / ‖Φ(x)‖`` (Yeh et al. 2019, SENS_AVG), the mean
    over ``n_samples`` draws (or the given ``noise``). Same arguments and output as :func:`max_sensitivity`;
    with ``prediction_change="skip"`` the mean is over the kept samples.
    """
    return _run(_sensitivity_score(norm, relative), "mean", explain, x, y, radius, n_samples, generator, noise,
                norm, model, prediction_change, internal_batch_size, "uniform")


@_declare("Alvarez-Melis & Jaakkola 2018, §3 local Lipschitz estimate L̂(x); Quantus LocalLipschitzEstimate")
def local_lipschitz_estimate(explain: Callable, x: Tensor, y, *, radius: float = 0.1, n_samples: int = 200,
                             generator: Optional[torch.Generator] = None, noise: Optional[Tensor] = None,
                             norm=2, model: Optional[Callable] = None, prediction_change: str = "keep",
                             internal_batch_size: Optional[int] = None) -> Tensor:
    """Local Lipschitz Estimate ``max_{x'} ‖Φ(x) − Φ(x')‖ / (‖x − x'‖ + 1e-10)`` (Alvarez-Melis & Jaakkola
    2018, L̂(x) over a neighbourhood of x), with x' = x + δ, δ ~ N(0, radius²) iid (Quantus' sampler; pass
    ``noise`` for another). ``norm`` applies to numerator and denominator. Returns (N,) ≥ 0, lower is
    better.
    """

    def score(a, ap, xr, xp):
        return _norm(a - ap, norm) / (_norm(xr - xp, norm) + LIPSCHITZ_EPS)

    return _run(score, "max", explain, x, y, radius, n_samples, generator, noise, norm, model,
                prediction_change, internal_batch_size, "gaussian")


@_declare("Agarwal et al. 2022, 'Rethinking stability…', RIS; Quantus RelativeInputStability")
def relative_input_stability(explain: Callable, x: Tensor, y, *, radius: float = 0.2, n_samples: int = 200,
                             generator: Optional[torch.Generator] = None, noise: Optional[Tensor] = None,
                             norm=2, eps_min: float = 1e-6, model: Optional[Callable] = None,
                             prediction_change: str = "skip",
                             internal_batch_size: Optional[int] = None) -> Tensor:
    """Relative Input Stability ``max_{x'} ‖(Φ(x) − Φ(x'))/Φ(x)‖ / max(‖(x − x')/x‖, ε_min)`` over x' with
    the same prediction as x (Agarwal et al. 2022, RIS), divisions elementwise, zero entries of Φ(x) and of x
    replaced by ``eps_min`` (as Quantus).

    x' = x + δ, δ ~ U[−radius, radius] (or the given ``noise``). The default ``prediction_change="skip"``
    needs ``model``; ``"keep"`` needs none. Returns (N,) ≥ 0, lower is better; NaN where every sample
    changes the prediction.
    """
    check_positive("eps_min", eps_min)

    def score(a, ap, xr, xp):
        num = _norm((a - ap) / torch.where(a == 0, eps_min, a), norm)
        den = _norm((xr - xp) / torch.where(xr == 0, eps_min, xr), norm)
        return num / den.clamp_min(eps_min)

    return _run(score, "max", explain, x, y, radius, n_samples, generator, noise, norm, model,
                prediction_change, internal_batch_size, "uniform")
