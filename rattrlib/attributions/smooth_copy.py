"""The softplus(β) surrogate of a ReLU network, sharing its parameters (for second-order terms)."""

from __future__ import annotations

import copy
import math
import numbers

from torch import nn

from rattrlib.config import check_range

#: ``nn.Softplus`` switches to the identity where ``β·z > threshold``. At 40 the switch is invisible in float64
#: (``log1p(e^{-40}) ≈ 4e-18``), the second derivative there is ``β·e^{-40}`` ≈ 0, and ``e^{40}`` does not
#: overflow float32 (torch's default 20 leaves a 2e-9 jump, visible in float64 gradient checks).
SOFTPLUS_THRESHOLD = 40.0


class _FollowMode:
    """Forward pre-hook of a smooth copy: give every copied module its original's training flag."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __call__(self, module, args):
        for new, old in self.pairs:
            new.training = old.training


def smooth_copy(model: nn.Module, beta: float, *, threshold: float = SOFTPLUS_THRESHOLD) -> nn.Module:
    """A copy of ``model`` with every ``nn.ReLU`` module replaced by ``nn.Softplus(beta)``, same parameters.

    ``softplus_β(z) = log(1 + e^{βz}) / β`` → ReLU as β → ∞ (the gap is at most ``log 2 / β``); unlike ReLU it
    has a nonzero second derivative, which attacks on attributions and attributional regularisers need
    (Ghorbani et al. 2019 §3; Dombrowski et al. 2019; ART, Singh et al. 2020, eq. 5–6 use β = 50; RAR's code
    β ≈ 1). rattr's protocol: evaluate attributions on this copy, labels and cross-entropy on the ReLU model.

    Sharing: the copy is structural (each module is shallow-copied, containers rebuilt), so it holds the SAME
    ``Parameter`` and buffer objects (and the same parameter/buffer dictionaries) as ``model``: an optimiser
    step, ``load_state_dict`` or any in-place change of the original is seen by the copy, gradients through the
    copy accumulate in the original's ``.grad``, and a BatchNorm in train mode updates the shared running
    statistics. Hook registries are copied, so hooks added to the copy do not touch the original. A module used
    twice in ``model`` is one module in the copy. The copy follows the original's train/eval mode: before every
    forward of the copy each copied module takes the ``training`` flag of its original (so ``copy.eval()`` alone
    has no effect; set the mode on the original).

    Only ``nn.ReLU`` modules (and subclasses) are replaced. A ``torch.nn.functional.relu`` / ``torch.relu`` call
    inside some ``forward`` cannot be replaced and stays a ReLU; other activations (``ReLU6``, ``LeakyReLU``,
    ``GELU``…) stay as they are. A model with no ``nn.ReLU`` module at all raises ``ValueError``.

    Args:
        model: any ``nn.Module`` containing ``nn.ReLU`` modules.
        beta: β > 0 (finite).
        threshold: passed to ``nn.Softplus`` (identity above ``β·z > threshold``); see
            :data:`SOFTPLUS_THRESHOLD`.

    Returns: a module of the same class as ``model`` (or an ``nn.Softplus`` if ``model`` is itself a ReLU).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not math.isfinite(beta):
        raise ValueError(f"beta={beta!r} must be a finite real number > 0")
    check_range("beta", float(beta), 0.0, math.inf, low_open=True)
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        raise ValueError(
            f"{type(model).__name__} has no nn.ReLU module to replace. smooth_copy swaps nn.ReLU modules only; "
            "a ReLU applied with torch.nn.functional.relu / torch.relu inside forward cannot be swapped — "
            "use nn.ReLU modules in the model definition.")

    copies: dict[int, nn.Module] = {}
    pairs: list[tuple[nn.Module, nn.Module]] = []

    def rebuild(module: nn.Module) -> nn.Module:
        if id(module) in copies:
            return copies[id(module)]
        if isinstance(module, nn.ReLU):
            new = nn.Softplus(beta=float(beta), threshold=float(threshold))
            copies[id(module)] = new
            return new
        new = copy.copy(module)  # shares __dict__ values: _parameters, _buffers, plain attributes
        copies[id(module)] = new
        pairs.append((new, module))
        for key, value in vars(module).items():
            if "hook" in key and isinstance(value, dict):  # own hook registries, same hooks
                new.__dict__[key] = type(value)(value)
        new.__dict__["_modules"] = {name: None if child is None else rebuild(child)
                                    for name, child in module._modules.items()}
        return new

    smooth = rebuild(model)
    if isinstance(model, nn.ReLU):
        return smooth
    smooth.register_forward_pre_hook(_FollowMode(pairs))
    return smooth
