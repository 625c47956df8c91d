"""The ε / β explorer page (chapter 08): the IFIA attack precomputed over a grid of ε × softplus β for a few test
images and one model of each chapter, shown by :mod:`rattrlib.static_explorer` as a page that needs no kernel.

>>> s = ExplorerSettings.resolve("cpu")
>>> grid = compute_grid(s)                 # cached per model (results kind "explorer_grid")
>>> explorer_html(grid)                    # the self-contained plotly explorer
>>> live_explorer(s).widget                # the same models and images in the live IFIAExplorer (a kernel)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from rattrlib.chapters._common import METHOD_NAMES, TOPK
from rattrlib.chapters.quickstart import DATASETS
from rattrlib.config import resolve_device
from rattrlib.data import ImageDataset, load_dataset
from rattrlib.evaluation import ifia_protocol
from rattrlib.explorer import IFIAExplorer, IFIAGrid, check_betas, check_eps_grid, ifia_grid
from rattrlib.results import ResultsCache
from rattrlib.settings import ChapterSettings, choice, int_check, optional, sequence_of, setting
from rattrlib.zoo import get_model, zoo_config

#: zoo method → the label the page shows: the Natural / PGD-AT / ART rows and one attributional method of each
#: other chapter (RAR's IG-NORM, GALI's AT-start + regulariser, SSR, SAT). On Fashion-MNIST chapters 01–05 train
#: all but SAT at their scale; SAT's is the zoo's (black-background weak saliency), as chapter 06 uses the scenes.
MODELS = {m: METHOD_NAMES[m] for m in ("natural", "pgd_at", "art", "ig_norm", "teacher_aligned", "ssr", "sat")}

#: bump when the grid's computation changes, so cached grids are recomputed
GRID_VERSION = 2

_EPS = (0.01, 0.02, 0.04, 0.06, 0.1, 0.15)  # Fashion-MNIST's threat ε is 0.1 (RAR/GALI); one step beyond it


def _distinct_grid(check: Callable) -> Callable:
    """A settings check from an explorer grid check (``check_eps_grid``, ``check_betas``) that also refuses a
    repeated value."""

    def run(name: str, value) -> tuple:
        values = check(value, name)
        if len(set(values)) != len(values):
            raise ValueError(f"{name}={value!r} repeats a value")
        return values

    return run


@dataclasses.dataclass(frozen=True)
class ExplorerSettings(ChapterSettings):
    """The explorer page's parameters (None = the scale's preset). ``seeds[0]`` is the zoo seed of every model
    and the seed of the image subset and of the random-sign baseline."""

    dataset: str = setting(choice(*DATASETS), "fashion_mnist (the chapters' data at cpu), mnist10k or mnist")
    models: tuple = setting(sequence_of(choice(*MODELS), distinct="model"), f"zoo methods shown: {list(MODELS)}")
    n_images: int = setting(int_check(1, 12), "test images (a class-stratified subset)")
    eps_grid: tuple = setting(_distinct_grid(check_eps_grid), "ℓ∞ budgets ε of the ε slider (on the [0, 1] scale)")
    betas: tuple = setting(_distinct_grid(check_betas), "softplus β of the attack's smooth surrogate (the β slider)")
    attack_steps: int = setting(int_check(1), "IFIA steps (α = 2.5·ε/steps)")
    ig_steps: Optional[int] = setting(optional(int_check(1)), "IG points of the maps and the attack; None: the "
                                                              "scale's RAR/GALI protocol")
    k: Optional[int] = setting(optional(int_check(1)), "top-k of the attack and of the intersection; None: "
                                                            "the dataset's (RAR/GALI)")

    # β: 1 (a very smooth surrogate), 10 (the RAR/GALI protocol's), 50 (ART's training β); cpu: 7 models × 6 ε × 4 β
    # = 168 attacks of 3 images, ≈ 1 s each on 2 idle cores
    _COMMON = {"seeds": (0,), "dataset": "fashion_mnist", "models": tuple(MODELS), "eps_grid": _EPS,
               "betas": (1.0, 3.0, 10.0, 50.0), "ig_steps": None, "k": None}
    PRESETS = {
        # smoke: three models (the grid and page code paths; the cpu page shows all seven)
        "smoke": {**_COMMON, "models": ("natural", "pgd_at", "art"), "n_images": 2, "attack_steps": 2},
        "cpu": {**_COMMON, "n_images": 3, "attack_steps": 30},
        "paper": {**_COMMON, "n_images": 4, "betas": (1.0, 3.0, 10.0, 30.0, 50.0, 100.0), "attack_steps": 100},
    }

    @property
    def seed(self) -> int:
        return self.seeds[0]

    @property
    def topk(self) -> int:
        return self.k or TOPK[self.dataset]

    def resolved(self) -> dict:
        attack = self.attack()
        return {"ig_steps": str(attack["attribution_kwargs"]["n_steps"]), "k": str(attack["k"])}

    def attack(self) -> dict:
        """IG points, top-k and precision of the attack: the RAR/GALI protocol's at this scale unless set."""
        protocol = ifia_protocol(self.dataset, self.scale, ig_steps=self.ig_steps, k=self.topk)
        return {"attribution_kwargs": {"n_steps": protocol.ig_steps}, "k": protocol.k,
                "precision": protocol.precision, "steps": self.attack_steps}


def images(settings: ExplorerSettings) -> ImageDataset:
    """The explored test images: a class-stratified subset of ``n_images``, drawn with the seed."""
    return load_dataset(settings.dataset, "test").subset(settings.n_images, seed=settings.seed)


def _model(settings: ExplorerSettings, method: str, progress: bool):
    model, _ = get_model(settings.dataset, method, settings.scale, seed=settings.seed,
                         device=resolve_device(settings.device), progress=progress)
    return model


def compute_grid(settings: ExplorerSettings, progress: bool = True, cache: Optional[ResultsCache] = None) -> IFIAGrid:
    """:func:`~rattrlib.explorer.ifia_grid` of every model of ``settings`` on :func:`images`, cached per model
    (its zoo config, the images, the grid and the attack settings); models are trained or loaded by
    :func:`rattrlib.zoo.get_model` only when their grid is not cached."""
    cache = cache or ResultsCache()
    test = images(settings)
    attack = settings.attack()
    grids = []
    for method in settings.models:
        key = {"model": zoo_config(settings.dataset, method, settings.scale, seed=settings.seed),
               "n_images": settings.n_images, "eps": settings.eps_grid, "betas": settings.betas, **attack,
               "version": GRID_VERSION}
        grids.append(cache.get_or_compute(
            "explorer_grid", key,
            lambda method=method: ifia_grid({MODELS[method]: _model(settings, method, progress)}, test.images,
                                            test.labels, eps=settings.eps_grid, betas=settings.betas,
                                            classes=test.classes, seed=settings.seed, progress=progress, **attack),
            seed=settings.seed, dataset=settings.dataset))
    return IFIAGrid.concat(grids)


def live_explorer(settings: ExplorerSettings, progress: bool = False) -> IFIAExplorer:
    """The live :class:`~rattrlib.explorer.IFIAExplorer` on the same models and images (for a Jupyter kernel)."""
    test = images(settings)
    attack = settings.attack()
    return IFIAExplorer({MODELS[m]: _model(settings, m, progress) for m in settings.models}, test.images,
                        test.labels, class_names=test.classes, eps=max(settings.eps_grid),
                        eps_max=max(settings.eps_grid), beta=min(max(10.0, min(settings.betas)), max(settings.betas)),
                        beta_range=(min(settings.betas), max(settings.betas)),
                        attribution_kwargs=attack["attribution_kwargs"], steps=settings.attack_steps, k=attack["k"])


__all__ = ["ExplorerSettings", "GRID_VERSION", "MODELS", "compute_grid", "images", "live_explorer"]
