"""The dataset object every loader returns, the registry of loaders, and the missing-data error."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader, TensorDataset

from rattrlib.config import check_choice

SPLITS = ("train", "test")


class MissingDataError(FileNotFoundError):
    """The files of a dataset are not on this machine; the message names the command that fetches them."""


@dataclasses.dataclass
class ImageDataset:
    """Images in [0, 1] (float32, N×C×H×W), integer labels (N,), and for localisation sets boxes and masks.

    ``boxes`` are float (N, 4) as ``(x0, y0, x1, y1)`` in pixel coordinates, ``x1``/``y1`` exclusive, so the box
    covers columns ``x0 ≤ col < x1`` and rows ``y0 ≤ row < y1``. ``masks`` are bool (N, H, W), True on the object.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    boxes: Optional[torch.Tensor] = None
    masks: Optional[torch.Tensor] = None

    def __post_init__(self):
        n = len(self.images)
        if self.images.ndim != 4:
            raise ValueError(f"images must be N×C×H×W, got shape {tuple(self.images.shape)}")
        if len(self.labels) != n:
            raise ValueError(f"{n} images but {len(self.labels)} labels")
        if self.boxes is not None and tuple(self.boxes.shape) != (n, 4):
            raise ValueError(f"boxes must be ({n}, 4), got {tuple(self.boxes.shape)}")
        if self.masks is not None and tuple(self.masks.shape) != (n, *self.images.shape[2:]):
            raise ValueError(f"masks must be ({n}, H, W), got {tuple(self.masks.shape)}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, n: int | None, seed: int = 0) -> "ImageDataset":
        """A class-stratified random subset of ``n`` images (all of them when ``n`` is None or ≥ len)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise ValueError(f"subset size must be positive, got {n}")
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=g)
        # round-robin over classes in random order keeps every class's share within one image of n / C
        by_class = [order[self.labels[order] == c] for c in self.labels.unique()]
        picked = _round_robin(by_class, n)
        return self.select(picked.sort().values)

    def select(self, index: torch.Tensor) -> "ImageDataset":
        """The images at ``index`` (with their labels, boxes and masks)."""
        return dataclasses.replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            boxes=None if self.boxes is None else self.boxes[index],
            masks=None if self.masks is None else self.masks[index],
        )

    def loader(self, batch_size: int = 128, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """A DataLoader of ``(images, labels)`` batches; shuffling is seeded."""
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(TensorDataset(self.images, self.labels), batch_size=batch_size, shuffle=shuffle,
                          generator=generator)


def _round_robin(groups: list[torch.Tensor], n: int) -> torch.Tensor:
    longest = max(len(g) for g in groups)
    interleaved = [g[i] for i in range(longest) for g in groups if i < len(g)]
    return torch.stack(interleaved[:n])


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset is and how to get it."""

    name: str
    description: str
    shape: tuple[int, int, int]
    classes: tuple[str, ...]
    offline: bool
    fetch_command: str
    loader: Callable[..., ImageDataset]
    has_boxes: bool = False
    has_masks: bool = False


DATASETS: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to :data:`DATASETS`."""
    if info.name in DATASETS:
        raise ValueError(f"dataset {info.name!r} registered twice")
    DATASETS[info.name] = info
    return info


def load_dataset(name: str, split: str = "train", **kwargs) -> ImageDataset:
    """Load a registered dataset: images in [0, 1] N×C×H×W, labels, and boxes/masks where it has them.

    Raises ``ValueError`` for an unknown name or split (listing the valid ones) and :class:`MissingDataError`,
    naming the command that fetches the files, when the data is not on this machine.
    """
    check_choice("dataset", name, sorted(DATASETS))
    check_choice("split", split, SPLITS)
    return DATASETS[name].loader(split=split, **kwargs)
