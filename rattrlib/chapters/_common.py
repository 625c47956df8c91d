"""Pieces every chapter shares: the training-budget sentence a verdict rests on, and where verdicts are saved for
the book's front page."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from rattrlib.claims import Claim, Verdict, save_verdicts
from rattrlib.config import SCALES, check_choice, rattr_home
from rattrlib.data import load_dataset
from rattrlib.train import TrainConfig


def images_seen(config: TrainConfig) -> int:
    """Training images a model saw: epochs × training images, plus those of the model it fine-tunes."""
    n = config.n_train or len(load_dataset(config.dataset, "train"))
    own = config.epochs * n
    return own + (images_seen(TrainConfig(**config.init)) if config.init else 0)


def _count(n: float) -> str:
    return f"{n / 1e6:.2g}M" if n >= 1e6 else f"{n / 1e3:.3g}k" if n >= 1e3 else f"{n:g}"


def budget_sentence(configs: Mapping[str, TrainConfig], paper_images: int, paper: str,
                    seeds: Sequence[int] = (0,)) -> str:
    """"Training budget (images seen): <row> <epochs> ep. × <images> = <images seen with its own objective>
    (<fraction> of <paper>'s <paper_images>), fine-tuning <start> (<its images>) …; n seeds." — the budget each
    verdict rests on."""
    if paper_images <= 0:
        raise ValueError(f"paper_images={paper_images!r} must be positive")
    parts = []
    for row, config in configs.items():
        own = images_seen(config) - (images_seen(TrainConfig(**config.init)) if config.init else 0)
        text = (f"{row} {config.epochs} ep. × {_count(own // config.epochs)} = {_count(own)} images with its own "
                f"objective ({100 * own / paper_images:.2g} % of {paper}'s {_count(paper_images)})")
        if config.init:
            text += f", fine-tuning {config.init['method']} ({_count(images_seen(TrainConfig(**config.init)))})"
        parts.append(text)
    return (f"Training budget (images seen): {'; '.join(parts)}; {len(seeds)} seed{'s' if len(seeds) > 1 else ''} "
            f"({', '.join(map(str, seeds))}).")


def verdicts_path(chapter: str, scale: str) -> Path:
    """Where a chapter's verdicts at ``scale`` are saved: ``$RATTR_HOME/verdicts/<scale>/<chapter>.json``."""
    check_choice("scale", scale, SCALES)
    return rattr_home() / "verdicts" / scale / f"{chapter}.json"


def publish_verdicts(verdicts: Sequence[Verdict], chapter: str, scale: str, declared: Sequence[Claim] = ()) -> Path:
    """Save ``verdicts`` for the book's front page of verdicts (``book/build.py`` collects them), with the
    ``declared`` claims of the chapter that were not judged (listed there as not judged at this scale)."""
    return save_verdicts(verdicts, verdicts_path(chapter, scale), chapter=chapter, scale=scale, declared=declared)


__all__ = ["budget_sentence", "images_seen", "publish_verdicts", "verdicts_path"]
