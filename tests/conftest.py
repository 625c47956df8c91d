"""Shared test settings: two CPU threads (the project's machine), deterministic torch."""

import pytest
import torch

from rattrlib.data import DATASETS, DatasetInfo, ImageDataset
from rattrlib.zoo import ZOO_DATASETS, ZooDataset

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)


def tiny_dataset(split="train", n=48):
    """Two classes a CNN separates at once: a bright left or right half on a dark background, plus noise."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    labels = torch.arange(n) % 2
    images = 0.1 * torch.rand(n, 1, 8, 8, generator=g)
    images[labels == 0, :, :, :4] += 0.8
    images[labels == 1, :, :, 4:] += 0.8
    return ImageDataset("tiny", split, images.clamp(0, 1), labels, ("left", "right"))


@pytest.fixture
def tiny_zoo(monkeypatch, tmp_path):
    """'tiny' registered as a dataset and as a zoo entry (Fashion-MNIST threat, mnist_cnn); results cached
    under a temporary RATTR_HOME."""
    info = DatasetInfo("tiny", "test data", (1, 8, 8), ("left", "right"), True, "none",
                       lambda split, **kw: tiny_dataset(split))
    monkeypatch.setitem(DATASETS, "tiny", info)
    paper = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "optimiser": "adam"}
    monkeypatch.setitem(ZOO_DATASETS, "tiny", ZooDataset("fmnist", "mnist_small", "mnist_cnn", "mnist_cnn", paper,
                                                         "threshold", (1.0, 0.1), 100.0))
    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    return tmp_path
