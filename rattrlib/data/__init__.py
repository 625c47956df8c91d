"""Datasets, offline and online, behind one registry: ``load_dataset(name, split)``.

Offline (no internet needed): ``fashion_mnist`` (full official split), ``mnist10k`` (10k-digit subset),
``fmnist_scenes`` (composite localisation set, 64 px) and ``fmnist_scenes32`` (the same at 32 px). Online (real download code): ``mnist``, ``cifar10``, ``svhn``,
``gtsrb``, ``flowers102``, ``cub200``, ``tiny_imagenet``.
"""

from rattrlib.data.base import DATASETS, DatasetInfo, ImageDataset, MissingDataError, load_dataset, register
from rattrlib.data import offline, scenes, online  # noqa: F401  (each module registers its datasets)

__all__ = ["DATASETS", "DatasetInfo", "ImageDataset", "MissingDataError", "load_dataset", "register"]
