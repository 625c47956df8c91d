"""Stochastically smoothed gradients: SmoothGrad (Gaussian noise) and Uniform Gradient (uniform noise)."""

from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor

from rattrlib.attributions._core import (GradientAttribution, check_batch_size, check_generator, check_int,
                                         check_nonnegative, draw, gradient_sum)


class _NoisyGradient(GradientAttribution):
    """Monte-Carlo mean of ``∇f_c(x + noise)`` over ``n_samples`` draws; subclasses set the noise."""

    def __init__(self, model: Callable[[Tensor], Tensor], n_samples: int,
                 internal_batch_size: Optional[int], generator: Optional[object]):
        super().__init__(model)
        self.n_samples = check_int("n_samples", n_samples, 1)
        self.internal_batch_size = check_batch_size(internal_batch_size)
        self.generator = check_generator(generator)

    def _noise(self, x: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _attribute(self, x: Tensor, target: Tensor, create_graph: bool) -> Tensor:
        weight = 1.0 / self.n_samples

        def term(k: int):
            return x + self._noise(x), weight

        return gradient_sum(self.model, target, self.n_samples, term, create_graph=create_graph,
                            internal_batch_size=self.internal_batch_size)


class SmoothGrad(_NoisyGradient):
    """SmoothGrad, Smilkov et al. 2017 ("SmoothGrad: removing noise by adding noise", §2; SSR Def. 3):
    ``SG(x) = E_{z ~ N(x, σ² I)} ∇_z f_c(z) ≈ (1/n) Σ_{k=1..n} ∇f_c(x + σ ε_k)``, ε_k ~ N(0, I).

    The averaged (signed) gradient, not its square (SmoothGrad-Squared). ``sigma`` is the **absolute** noise
    standard deviation on the [0, 1] image scale: Smilkov et al. recommend 10–20 % of the input range, so the
    default 0.15 is 15 % of [0, 1]. (The SSR authors' code used 0.1 × (max − min) of each image.) Noisy points
    are not clamped to [0, 1]. ``sigma=0`` gives the saliency map.

    Args:
        model: maps N×C×H×W images to N×K logits.
        sigma: noise std σ ≥ 0 (absolute, [0, 1] scale).
        n_samples: n ≥ 1 noise draws per image.
        internal_batch_size: at most this many images×samples per forward (None: all N·n in one); the
            random draws and the result do not depend on it.
        generator: a seeded ``torch.Generator`` makes the result deterministic (noise is drawn on the
            generator's device, one N×C×H×W draw per sample in order); None uses torch's global RNG.

    Output: N×C×H×W, same dtype as x. With ``create_graph=True`` the noise is a constant and the result is
    differentiable w.r.t. x and the parameters.
    """

    def __init__(self, model: Callable[[Tensor], Tensor], sigma: float = 0.15, n_samples: int = 50,
                 internal_batch_size: Optional[int] = None, generator: Optional[object] = None):
        super().__init__(model, n_samples, internal_batch_size, generator)
        self.sigma = check_nonnegative("sigma", sigma)

    def _hyperparameters(self) -> dict:
        return {"sigma": self.sigma, "n_samples": self.n_samples, "internal_batch_size": self.internal_batch_size}

    def _noise(self, x: Tensor) -> Tensor:
        return self.sigma * draw("normal", x.shape, x, self.generator)


class UniformGradient(_NoisyGradient):
    """Uniform Gradient, Wang et al. 2020 ("Smoothed Geometry for Robust Attribution", NeurIPS, Def. 8):
    ``UG(x) = E_{z ~ U(x − r, x + r)} ∇_z f_c(z) ≈ (1/n) Σ_{k=1..n} ∇f_c(x + r u_k)``, u_k ~ U(−1, 1)^d
    (independent per entry: the ℓ∞ box of radius r).

    ``radius`` r is absolute on the [0, 1] scale; the default 4/255 is the SSR authors' code default
    (``radii=4`` on 0–255). Noisy points are not clamped. ``radius=0`` gives the saliency map.

    Args:
        model: maps N×C×H×W images to N×K logits.
        radius: r ≥ 0.
        n_samples: n ≥ 1 draws per image.
        internal_batch_size: at most this many images×samples per forward (None: all in one).
        generator: a seeded ``torch.Generator`` for deterministic draws; None uses torch's global RNG.

    Output: N×C×H×W, same dtype as x.
    """

    def __init__(self, model: Callable[[Tensor], Tensor], radius: float = 4 / 255, n_samples: int = 50,
                 internal_batch_size: Optional[int] = None, generator: Optional[object] = None):
        super().__init__(model, n_samples, internal_batch_size, generator)
        self.radius = check_nonnegative("radius", radius)

    def _hyperparameters(self) -> dict:
        return {"radius": self.radius, "n_samples": self.n_samples, "internal_batch_size": self.internal_batch_size}

    def _noise(self, x: Tensor) -> Tensor:
        return self.radius * (2.0 * draw("uniform", x.shape, x, self.generator) - 1.0)
