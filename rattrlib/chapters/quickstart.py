"""The quickstart (chapter 00): one natural model of the zoo, its saliency and Integrated Gradients maps, and
IG's completeness check (Sundararajan et al., ICML 2017, Prop. 1).

>>> s = QuickstartSettings.resolve("cpu")
>>> model, logs = get_model(s.dataset, "natural", s.scale, seed=s.seed, device=s.device)
>>> completeness_table(model, x, predicted, ig)
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch
from torch import Tensor, nn

from rattrlib.data import load_dataset
from rattrlib.settings import ChapterSettings, choice, int_check, is_int, setting

DATASETS = ("fashion_mnist", "mnist10k", "mnist")


def count_or_all(name: str, value) -> object:
    """A number of images ≥ 1, or the string ``"all"``."""
    return value if value == "all" else is_int(name, value, 1)


@dataclasses.dataclass(frozen=True)
class QuickstartSettings(ChapterSettings):
    """The quickstart's parameters (None = the scale's preset); the chapter explains one model: the first seed's."""

    dataset: str = setting(choice(*DATASETS), "fashion_mnist, mnist10k (offline) or mnist (download)")
    n_show: int = setting(int_check(1, 32), "test images explained in the figure and the completeness table")
    ig_steps: int = setting(int_check(1, 10_000), "Integrated Gradients points m (right Riemann sum)")
    n_test: object = setting(count_or_all, "test images scored for the clean accuracy: a number or 'all'")

    PRESETS = {
        "smoke": {"seeds": (0,), "dataset": "fashion_mnist", "n_show": 6, "ig_steps": 50, "n_test": 500},
        "cpu": {"seeds": (0,), "dataset": "fashion_mnist", "n_show": 6, "ig_steps": 50, "n_test": "all"},
        "paper": {"seeds": (0,), "dataset": "fashion_mnist", "n_show": 6, "ig_steps": 50, "n_test": "all"},
    }

    @property
    def seed(self) -> int:
        """The seed of the one model the chapter explains."""
        return self.seeds[0]


def scored_images(settings: QuickstartSettings):
    """The test images scored for the clean accuracy (a seeded subset of ``n_test``, or all of them)."""
    n = None if settings.n_test == "all" else settings.n_test
    return load_dataset(settings.dataset, "test").subset(n, seed=settings.seed)


@torch.no_grad()
def completeness_table(model: nn.Module, x: Tensor, predicted: Tensor, ig: Tensor) -> pd.DataFrame:
    """IG's completeness per image (Sundararajan et al., Prop. 1): the sum of the attributions ``ig`` of class
    ``predicted`` beside f_c(x) − f_c(0) (black baseline), and their relative gap |Σ IG − Δf| / |Δf|."""
    logit_gap = (model(x) - model(torch.zeros_like(x))).gather(1, predicted[:, None]).squeeze(1)
    ig_sum = ig.flatten(1).sum(1)
    return pd.DataFrame({"sum of IG": ig_sum.cpu(), "f(x) − f(0)": logit_gap.cpu(),
                         "relative gap": ((ig_sum - logit_gap).abs() / logit_gap.abs()).cpu()}).round(4)


__all__ = ["DATASETS", "QuickstartSettings", "completeness_table", "count_or_all", "scored_images"]
