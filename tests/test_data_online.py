"""Online datasets: each loader reads tiny files written here in the dataset's real on-disk format.

Downloads are never made: the torchvision download helpers are replaced by recorders, and the tests check the
official URL and md5 each loader asks for.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import re
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from rattrlib.data import DATASETS, MissingDataError, load_dataset
from rattrlib.data import online

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "data_scripts" / "download_data.py"
ONLINE = ("mnist", "cifar10", "svhn", "gtsrb", "flowers102", "cub200", "tiny_imagenet")
JPEG_TOLERANCE = 3 / 255  # solid colours survive JPEG (quality 95) within a few grey levels


# ---------------------------------------------------------------------------------------------------------------
# writers of tiny files in each dataset's official format
# ---------------------------------------------------------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """LeCun's idx format: 0, 0, type 0x08 (uint8), ndim; big-endian uint32 dims; raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if compress else open)(path, "wb").write(payload)


def write_mnist(folder: Path, compress_test: bool = False) -> dict:
    raw = folder / "MNIST" / "raw"
    rng = np.random.default_rng(0)
    data = {"train": (rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), np.array([5, 0, 9], dtype=np.uint8)),
            "test": (rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), np.array([7, 2], dtype=np.uint8))}
    for (images_stem, _), (labels_stem, _) in (online.MNIST_FILES["train"], online.MNIST_FILES["test"]):
        split = "train" if images_stem.startswith("train") else "test"
        compress = compress_test and split == "test"
        suffix = ".gz" if compress else ""
        write_idx(raw / (images_stem + suffix), data[split][0], compress)
        write_idx(raw / (labels_stem + suffix), data[split][1], compress)
    return data


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int], byte_keys: bool = False) -> None:
    content = {"batch_label": "tiny", "data": data, "labels": labels, "filenames": ["x.png"] * len(labels)}
    if byte_keys:
        content = {k.encode(): v for k, v in content.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(content, handle, protocol=2)


def write_cifar10(folder: Path) -> dict:
    """Five one-image train batches and a two-image test batch; rows are R plane, G plane, B plane."""
    batches = folder / "cifar-10-batches-py"
    rng = np.random.default_rng(1)
    written = {}
    for i in range(1, 6):
        data = rng.integers(0, 256, (1, 3072), dtype=np.uint8)
        write_cifar_batch(batches / f"data_batch_{i}", data, [i], byte_keys=(i == 2))
        written[f"data_batch_{i}"] = data
    test = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
    test[0, 1 * 1024 + 5 * 32 + 7] = 200  # green plane, row 5, column 7 of the first test image
    write_cifar_batch(batches / "test_batch", test, [3, 8])
    written["test_batch"] = test
    with open(batches / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": list(online.CIFAR10_CLASSES), "num_vis": 3072}, handle, protocol=2)
    return written


def write_svhn(folder: Path, split: str, labels: list[int]) -> np.ndarray:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    savemat(folder / f"{split}_32x32.mat", {"X": x, "y": np.array(labels, dtype=np.uint8).reshape(-1, 1)})
    return x


def solid(width: int, height: int, colour) -> Image.Image:
    return Image.new("RGB", (width, height), tuple(colour))


def write_gtsrb(folder: Path) -> None:
    base = folder / "gtsrb"
    training = base / "GTSRB" / "Training"
    for class_id, colours in ((0, [(255, 0, 0), (0, 255, 0)]), (2, [(0, 0, 255)])):
        class_folder = training / f"{class_id:05d}"
        class_folder.mkdir(parents=True)
        for j, colour in enumerate(colours):
            solid(40 + j, 30, colour).save(class_folder / f"00000_{j:05d}.ppm")
        (class_folder / f"GT-{class_id:05d}.csv").write_text("Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;"
                                                              "ClassId\n")
    images = base / "GTSRB" / "Final_Test" / "Images"
    images.mkdir(parents=True)
    solid(50, 45, (10, 20, 30)).save(images / "00000.ppm")
    solid(33, 35, (200, 100, 50)).save(images / "00001.ppm")
    (base / "GT-final_test.csv").write_text("Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
                                            "00000.ppm;50;45;5;5;45;40;42\n00001.ppm;33;35;5;5;28;30;7\n")


FLOWER_COLOURS = {1: (200, 40, 40), 2: (240, 220, 30), 3: (250, 250, 250), 4: (30, 160, 60)}


def write_flowers(folder: Path) -> None:
    """Four images (ids 1–4): id 1 train, id 3 val, ids 2 and 4 test; the flower fills the right half."""
    base = folder / "flowers-102"
    (base / "jpg").mkdir(parents=True)
    (base / "segmim").mkdir()
    for image_id, colour in FLOWER_COLOURS.items():
        solid(80, 60, colour).save(base / "jpg" / f"image_{image_id:05d}.jpg", quality=95)
        segmentation = np.zeros((60, 80, 3), dtype=np.uint8)
        segmentation[:] = online.FLOWERS_BACKGROUND
        segmentation[:, 40:] = colour
        Image.fromarray(segmentation).save(base / "segmim" / f"segmim_{image_id:05d}.jpg", quality=95)
    savemat(base / "imagelabels.mat", {"labels": np.array([[77, 1, 102, 5]], dtype=np.uint8)})
    savemat(base / "setid.mat", {"trnid": np.array([[1]], dtype=np.uint16), "valid": np.array([[3]], dtype=np.uint16),
                                 "tstid": np.array([[4, 2]], dtype=np.uint16)})


def write_cub(folder: Path) -> None:
    """Three birds: a white rectangle at the annotated box on black, two train images and one test image."""
    base = folder / "CUB_200_2011"
    specs = [  # id, folder, size (w, h), box (x, y, w, h), class id, is_train
        (1, "001.Black_footed_Albatross", (100, 50), (10, 5, 40, 20), 1, 1),
        (2, "002.Laysan_Albatross", (60, 80), (0, 20, 30, 60), 2, 0),
        (3, "002.Laysan_Albatross", (50, 50), (20, 10, 30, 40), 2, 1),  # the box runs to the right/bottom edge
    ]
    lines = {name: [] for name in ("images", "image_class_labels", "train_test_split", "bounding_boxes")}
    for image_id, class_folder, (w, h), (x, y, bw, bh), class_id, is_train in specs:
        pixels = np.zeros((h, w, 3), dtype=np.uint8)
        pixels[y:y + bh, x:x + bw] = 255
        (base / "images" / class_folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(base / "images" / class_folder / f"bird_{image_id}.jpg", quality=95)
        lines["images"].append(f"{image_id} {class_folder}/bird_{image_id}.jpg")
        lines["image_class_labels"].append(f"{image_id} {class_id}")
        lines["train_test_split"].append(f"{image_id} {is_train}")
        lines["bounding_boxes"].append(f"{image_id} {x}.0 {y}.0 {bw}.0 {bh}.0")
    for name, rows in lines.items():
        (base / f"{name}.txt").write_text("\n".join(rows) + "\n")
    (base / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")


def write_tiny_imagenet(folder: Path) -> None:
    """Two classes (wnids.txt deliberately unsorted), two train images each, three val images (one grey)."""
    base = folder / "tiny-imagenet-200"
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("n09999999\nn01443537\n")
    (base / "words.txt").write_text("n00001740\tentity\nn01443537\tgoldfish, Carassius auratus\n"
                                    "n09999999\tzebra test\n")
    colours = {"n01443537": [(255, 128, 0), (0, 128, 255)], "n09999999": [(10, 200, 10), (90, 90, 90)]}
    for wnid, pair in colours.items():
        (base / "train" / wnid / "images").mkdir(parents=True)
        rows = []
        for j, colour in enumerate(pair):
            solid(64, 64, colour).save(base / "train" / wnid / "images" / f"{wnid}_{j}.JPEG", quality=95)
            rows.append(f"{wnid}_{j}.JPEG\t{j}\t{2 * j}\t{40 + j}\t63")
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("\n".join(rows) + "\n")
    (base / "val" / "images").mkdir(parents=True)
    solid(64, 64, (255, 255, 0)).save(base / "val" / "images" / "val_0.JPEG", quality=95)
    Image.new("L", (64, 64), 128).save(base / "val" / "images" / "val_1.JPEG", quality=95)
    solid(64, 64, (0, 0, 0)).save(base / "val" / "images" / "val_2.JPEG", quality=95)
    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn09999999\t0\t10\t63\t58\n"
                                                      "val_1.JPEG\tn01443537\t5\t6\t7\t8\n"
                                                      "val_2.JPEG\tn01443537\t0\t0\t63\t63\n")


WRITERS = {"mnist": write_mnist, "cifar10": write_cifar10, "gtsrb": write_gtsrb, "flowers102": write_flowers,
           "cub200": write_cub, "tiny_imagenet": write_tiny_imagenet,
           "svhn": lambda folder: (write_svhn(folder, "train", [10, 3]), write_svhn(folder, "test", [1]))}


def check_common(data, name: str, split: str, n: int, shape: tuple[int, int, int]) -> None:
    assert (data.name, data.split, len(data), data.shape) == (name, split, n, shape)
    assert data.images.dtype == torch.float32 and data.labels.dtype == torch.int64
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0


# ---------------------------------------------------------------------------------------------------------------
# reading: values, labels, splits, boxes, masks
# ---------------------------------------------------------------------------------------------------------------

def test_mnist_reads_idx_files_plain_and_gzipped(tmp_path):
    written = write_mnist(tmp_path, compress_test=True)
    for split in ("train", "test"):
        data = load_dataset("mnist", split, root=tmp_path)
        images, labels = written[split]
        check_common(data, "mnist", split, len(labels), (1, 28, 28))
        assert torch.equal(data.images[:, 0] * 255, torch.from_numpy(images).float())
        assert data.labels.tolist() == labels.tolist()
    assert data.classes == tuple("0123456789")
    assert len(load_dataset("mnist", "train", root=tmp_path, limit=2)) == 2


def test_mnist_rejects_a_corrupt_or_mismatched_idx_file(tmp_path):
    write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + bytes(12))  # float type, not uint8
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", "train", root=tmp_path)
    truncated = (raw / "t10k-images-idx3-ubyte").read_bytes()[:-5]
    (raw / "t10k-images-idx3-ubyte").write_bytes(truncated)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*bytes"):
        load_dataset("mnist", "test", root=tmp_path)
    write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28)))  # 3 images, 2 labels
    with pytest.raises(ValueError, match="do not pair up"):
        load_dataset("mnist", "test", root=tmp_path)


def test_cifar10_reads_pickle_batches_in_channel_plane_order(tmp_path):
    written = write_cifar10(tmp_path)
    test = load_dataset("cifar10", "test", root=tmp_path)
    check_common(test, "cifar10", "test", 2, (3, 32, 32))
    assert test.images[0, 1, 5, 7] * 255 == 200  # the pixel written at green plane, row 5, column 7
    row = written["test_batch"][1]
    assert test.images[1, 2, 31, 0] * 255 == row[2 * 1024 + 31 * 32 + 0]
    assert torch.equal(test.images * 255, torch.from_numpy(written["test_batch"]).float().reshape(2, 3, 32, 32))
    assert test.labels.tolist() == [3, 8] and test.classes == online.CIFAR10_CLASSES
    train = load_dataset("cifar10", "train", root=tmp_path)  # batch 2 has bytes keys, the others str keys
    assert train.labels.tolist() == [1, 2, 3, 4, 5]
    assert torch.equal(train.images[3] * 255, torch.from_numpy(written["data_batch_4"]).float().reshape(3, 32, 32))
    assert load_dataset("cifar10", "train", root=tmp_path, limit=2).labels.tolist() == [1, 2]


def test_cifar10_names_a_corrupt_batch(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch"):
        load_dataset("cifar10", "test", root=tmp_path)
    write_cifar_batch(tmp_path / "cifar-10-batches-py" / "test_batch", np.zeros((2, 100), np.uint8), [0, 1])
    with pytest.raises(ValueError, match="test_batch.*3072"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_svhn_reads_mat_files_and_maps_label_10_to_0(tmp_path):
    x = write_svhn(tmp_path, "train", [10, 3, 1])
    write_svhn(tmp_path, "test", [10])
    data = load_dataset("svhn", "train", root=tmp_path)
    check_common(data, "svhn", "train", 3, (3, 32, 32))
    assert data.labels.tolist() == [0, 3, 1]
    assert data.images[2, 1, 4, 9] * 255 == x[4, 9, 1, 2]  # X is rows × columns × channels × N
    assert torch.equal(data.images * 255, torch.from_numpy(x).permute(3, 2, 0, 1).float())
    assert load_dataset("svhn", "test", root=tmp_path).labels.tolist() == [0]


def test_svhn_rejects_labels_outside_1_to_10(tmp_path):
    write_svhn(tmp_path, "train", [0, 3])
    with pytest.raises(ValueError, match="train_32x32.mat.*1–10"):
        load_dataset("svhn", "train", root=tmp_path)


def test_gtsrb_reads_class_folders_and_test_csv_and_resizes(tmp_path):
    write_gtsrb(tmp_path)
    train = load_dataset("gtsrb", "train", root=tmp_path)
    check_common(train, "gtsrb", "train", 3, (3, 32, 32))
    assert train.labels.tolist() == [0, 0, 2]
    expected = torch.tensor([(255, 0, 0), (0, 255, 0), (0, 0, 255)], dtype=torch.float32) / 255
    assert torch.allclose(train.images.mean(dim=(2, 3)), expected)
    assert train.images.amax(dim=(2, 3)).equal(train.images.amin(dim=(2, 3)))  # solid colours stay solid
    test = load_dataset("gtsrb", "test", root=tmp_path, size=16)
    check_common(test, "gtsrb", "test", 2, (3, 16, 16))
    assert test.labels.tolist() == [42, 7]
    assert torch.allclose(test.images[1, :, 8, 8] * 255, torch.tensor([200.0, 100.0, 50.0]))
    assert test.classes[42] == "End of no passing by vehicles over 3.5 metric tons" and len(test.classes) == 43


def test_gtsrb_with_no_images_names_the_folder(tmp_path):
    (tmp_path / "gtsrb" / "GTSRB" / "Training" / "00001").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images listed.*Training"):
        load_dataset("gtsrb", "train", root=tmp_path)


def test_flowers_split_labels_and_blue_background_masks(tmp_path):
    write_flowers(tmp_path)
    train = load_dataset("flowers102", "train", root=tmp_path, size=16)
    check_common(train, "flowers102", "train", 2, (3, 16, 16))
    assert train.labels.tolist() == [76, 101]  # ids 1 (trnid) and 3 (valid); labels are 1-based in the file
    test = load_dataset("flowers102", "test", root=tmp_path, size=16)
    assert test.labels.tolist() == [4, 0]  # tstid order: ids 4 then 2
    expected = torch.tensor([FLOWER_COLOURS[4], FLOWER_COLOURS[2]], dtype=torch.float32) / 255
    assert torch.allclose(test.images.mean(dim=(2, 3)), expected, atol=JPEG_TOLERANCE)
    for data in (train, test):
        assert data.masks.dtype == torch.bool and data.masks.shape == (2, 16, 16)
        assert not data.masks[:, :, :7].any()  # blue background (left half of each segmentation)
        assert data.masks[:, :, 9:].all()  # the flower (right half)
    assert test.classes[0] == "pink primrose" and len(test.classes) == 102
    plain = load_dataset("flowers102", "test", root=tmp_path, size=8, with_masks=False, limit=1)
    assert plain.masks is None and plain.shape == (3, 8, 8) and plain.labels.tolist() == [4]


def test_segmentation_to_mask_treats_near_blue_as_background():
    pixels = np.array([[[0, 0, 254], [3, 2, 250], [0, 0, 120], [200, 0, 254]]], dtype=np.uint8)
    assert online.segmentation_to_mask(pixels).tolist() == [[False, False, True, True]]


def test_cub_reads_split_labels_and_scales_boxes_to_the_resized_grid(tmp_path):
    write_cub(tmp_path)
    train = load_dataset("cub200", "train", root=tmp_path, size=20)
    check_common(train, "cub200", "train", 2, (3, 20, 20))
    assert train.labels.tolist() == [0, 1]
    assert train.classes == ("Black footed Albatross", "Laysan Albatross")
    # image 1 is 100×50, box x=10 y=5 w=40 h=20 → (10, 5, 50, 25) → ×(20/100, 20/50) → (2, 2, 10, 10)
    # image 3 is 50×50, box x=20 y=10 w=30 h=40 → (20, 10, 50, 50) → ×0.4 → (8, 4, 20, 20)
    assert torch.allclose(train.boxes, torch.tensor([[2.0, 2, 10, 10], [8, 4, 20, 20]]))
    # the white rectangle drawn at the annotated box lies inside the scaled box, black outside it
    grey = train.images[0].mean(0)
    assert grey[3:9, 3:9].min() > 0.9 and grey[12:, :].max() < 0.1 and grey[:, 12:].max() < 0.1
    test = load_dataset("cub200", "test", root=tmp_path, size=20)
    assert test.labels.tolist() == [1] and len(test) == 1
    assert torch.allclose(test.boxes, torch.tensor([[0.0, 5, 10, 20]]))  # 60×80: ×(1/3, 1/4)


def test_cub_rejects_an_image_without_a_box(tmp_path):
    write_cub(tmp_path)
    boxes = tmp_path / "CUB_200_2011" / "bounding_boxes.txt"
    boxes.write_text(boxes.read_text().splitlines()[0] + "\n")
    with pytest.raises(ValueError, match="bounding_boxes.txt has no row for image id 2"):
        load_dataset("cub200", "train", root=tmp_path)


def test_tiny_imagenet_labels_follow_sorted_wnids_and_boxes_become_exclusive(tmp_path):
    write_tiny_imagenet(tmp_path)
    train = load_dataset("tiny_imagenet", "train", root=tmp_path)
    check_common(train, "tiny_imagenet", "train", 4, (3, 64, 64))
    assert train.labels.tolist() == [0, 0, 1, 1]  # n01443537 sorts before n09999999
    assert train.classes == ("goldfish, Carassius auratus", "zebra test")
    assert torch.allclose(train.images[1].mean(dim=(1, 2)), torch.tensor([0, 128, 255]) / 255, atol=JPEG_TOLERANCE)
    assert torch.equal(train.boxes[1], torch.tensor([1.0, 2, 42, 64]))  # inclusive (1, 2, 41, 63) + 1
    test = load_dataset("tiny_imagenet", "test", root=tmp_path)
    assert test.labels.tolist() == [1, 0, 0]
    assert torch.equal(test.boxes, torch.tensor([[0.0, 10, 64, 59], [5, 6, 8, 9], [0, 0, 64, 64]]))
    grey = test.images[1]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])  # a grey JPEG becomes 3 equal channels
    assert abs(grey.mean().item() - 128 / 255) < JPEG_TOLERANCE
    assert len(load_dataset("tiny_imagenet", "test", root=tmp_path, limit=1)) == 1


def test_tiny_imagenet_names_an_unknown_wnid_and_an_unreadable_image(tmp_path):
    write_tiny_imagenet(tmp_path)
    val = tmp_path / "tiny-imagenet-200" / "val"
    (val / "images" / "val_2.JPEG").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="val_2.JPEG"):
        load_dataset("tiny_imagenet", "test", root=tmp_path)
    (val / "val_annotations.txt").write_text("val_0.JPEG\tn00000000\t0\t10\t63\t58\n")
    with pytest.raises(ValueError, match="val_annotations.txt.*n00000000"):
        load_dataset("tiny_imagenet", "test", root=tmp_path)


@pytest.mark.parametrize("name,kwargs", [("gtsrb", {"size": 0}), ("cifar10", {"limit": 0}),
                                         ("cub200", {"size": 2.5})])
def test_bad_parameters_are_rejected(tmp_path, name, kwargs):
    WRITERS[name](tmp_path)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        load_dataset(name, "train", root=tmp_path, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# missing files and downloads
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ONLINE)
def test_missing_files_name_the_download_command(tmp_path, monkeypatch, name):
    root = tmp_path / "empty"
    command = f"python data_scripts/download_data.py {name} --root {root}"
    with pytest.raises(MissingDataError, match=re.escape(command) + "$"):
        load_dataset(name, "test", root=root)
    monkeypatch.setenv("RATTR_HOME", str(tmp_path / "home"))
    with pytest.raises(MissingDataError) as error:
        load_dataset(name, "train")
    assert str(tmp_path / "home" / "data" / name) in str(error.value)
    assert str(error.value).endswith(f"download it with: python data_scripts/download_data.py {name}")
    assert DATASETS[name].fetch_command == f"python data_scripts/download_data.py {name}"


class DownloadRecorder:
    """Stands in for torchvision's download helpers: records each call, optionally writes files, never networks."""

    def __init__(self, monkeypatch, write=None, fail_urls=()):
        from torchvision.datasets import utils

        self.calls, self.write, self.fail_urls = [], write, fail_urls
        monkeypatch.setattr(utils, "download_and_extract_archive", self.archive)
        monkeypatch.setattr(utils, "download_url", self.file)

    def archive(self, url, download_root, extract_root=None, filename=None, md5=None, remove_finished=False):
        self.calls.append(("archive", url, Path(download_root), md5))
        if url in self.fail_urls:
            raise urllib.error.URLError("no network in tests")
        if self.write:
            self.write(Path(download_root))

    def file(self, url, root, filename=None, md5=None, max_redirect_hops=3):
        self.calls.append(("file", url, Path(root), md5))


def expected_downloads(name: str, folder: Path) -> list[tuple]:
    """What each loader must ask torchvision to fetch, from the official sources."""
    flowers = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
    gtsrb = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
    return {
        "mnist": [("archive", "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
                   folder / "MNIST" / "raw", "9fb629c4189551a2d022fa330f9573f3"),
                  ("archive", "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
                   folder / "MNIST" / "raw", "ec29112dd5afa0611ce80d1b7f02629c")],
        "cifar10": [("archive", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", folder,
                     "c58f30108f718f92721af3b95e74349a")],
        "svhn": [("file", "http://ufldl.stanford.edu/housenumbers/test_32x32.mat", folder,
                  "eb5a983be6a315427106f1b164d9cef3")],
        "gtsrb": [("archive", gtsrb + "GTSRB_Final_Test_Images.zip", folder / "gtsrb",
                   "c7e4e6327067d32654124b0fe9e82185"),
                  ("archive", gtsrb + "GTSRB_Final_Test_GT.zip", folder / "gtsrb", "fe31e9c9270bbcd7b84b7f21a9d9d9e5")],
        "flowers102": [("archive", flowers + "102flowers.tgz", folder / "flowers-102",
                        "52808999861908f626f3c1f4e79d11fa"),
                       ("file", flowers + "imagelabels.mat", folder / "flowers-102",
                        "e0620be6f572b9609742df49c70aed4d"),
                       ("file", flowers + "setid.mat", folder / "flowers-102", "a5357ecc9cb78c4bef273ce3793fc85c"),
                       ("archive", flowers + "102segmentations.tgz", folder / "flowers-102",
                        "51375996b6c4f367a4b9f4492d7ecef5")],
        "cub200": [("archive", "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz", folder,
                    "97eceeb196236b17998738112f37df78")],
        "tiny_imagenet": [("archive", "http://cs231n.stanford.edu/tiny-imagenet-200.zip", folder,
                           "90528d7ca1a48142e341f4ef8d21d0de")],
    }[name]


@pytest.mark.parametrize("name", ONLINE)
def test_download_asks_torchvision_for_the_official_files(tmp_path, monkeypatch, name):
    recorder = DownloadRecorder(monkeypatch)  # writes nothing, so the loader reports the absent files
    with pytest.raises(ValueError, match="still absent"):
        load_dataset(name, "test", root=tmp_path, download=True)
    assert recorder.calls == expected_downloads(name, tmp_path)


def test_gtsrb_train_download_fetches_only_the_training_archive(tmp_path, monkeypatch):
    recorder = DownloadRecorder(monkeypatch)
    with pytest.raises(ValueError, match="still absent"):
        load_dataset("gtsrb", "train", root=tmp_path, download=True)
    assert [call[1].rsplit("/", 1)[1] for call in recorder.calls] == ["GTSRB-Training_fixed.zip"]


def test_mnist_download_falls_back_to_the_second_mirror(tmp_path, monkeypatch):
    first = "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    recorder = DownloadRecorder(monkeypatch, fail_urls=(first,))
    with pytest.raises(ValueError, match="still absent"):
        load_dataset("mnist", "train", root=tmp_path, download=True)
    assert [call[1] for call in recorder.calls[:2]] == [first,
                                                       "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz"]


def test_download_then_read_and_no_second_download(tmp_path, monkeypatch):
    recorder = DownloadRecorder(monkeypatch, write=write_cifar10)
    data = load_dataset("cifar10", "test", root=tmp_path, download=True)
    assert data.labels.tolist() == [3, 8] and len(recorder.calls) == 1
    load_dataset("cifar10", "train", root=tmp_path, download=True)  # files present: nothing fetched
    assert len(recorder.calls) == 1


def test_flowers_download_fetches_only_the_missing_segmentations(tmp_path, monkeypatch):
    write_flowers(tmp_path)
    for path in (tmp_path / "flowers-102" / "segmim").iterdir():
        path.unlink()
    (tmp_path / "flowers-102" / "segmim").rmdir()  # a torchvision Flowers102 folder: images, no segmentations
    recorder = DownloadRecorder(monkeypatch)
    with pytest.raises(ValueError, match="segmim is still absent"):
        load_dataset("flowers102", "train", root=tmp_path, download=True)
    assert [call[1].rsplit("/", 1)[1] for call in recorder.calls] == ["102segmentations.tgz"]


def offline_network(monkeypatch) -> list[str]:
    """Every torchvision download raises URLError, as with no network; returns the URLs asked for."""
    from torchvision.datasets import utils

    asked = []

    def unreachable(url, *args, **kwargs):
        asked.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(utils, "download_and_extract_archive", unreachable)
    monkeypatch.setattr(utils, "download_url", unreachable)
    return asked


@pytest.mark.parametrize("name", ONLINE)
def test_offline_download_fails_in_one_line_naming_dataset_url_and_script(tmp_path, monkeypatch, name):
    asked = offline_network(monkeypatch)
    with pytest.raises(MissingDataError) as error:
        load_dataset(name, "test", root=tmp_path, download=True)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{name}: download of ")
    assert asked[0] in message and "URLError" in message
    assert f"python data_scripts/download_data.py {name} --root {tmp_path}" in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_offline_mnist_names_both_mirrors(tmp_path, monkeypatch):
    asked = offline_network(monkeypatch)
    with pytest.raises(MissingDataError) as error:
        load_dataset("mnist", "test", root=tmp_path, download=True)
    assert len(asked) == 2 and f"{asked[0]} and {asked[1]}" in str(error.value)


def test_sources_agree_with_torchvision():
    from torchvision import datasets

    assert online.MNIST_MIRRORS == tuple(datasets.MNIST.mirrors)
    assert {(f"{stem}.gz", md5) for pair in online.MNIST_FILES.values() for stem, md5 in pair} == set(
        datasets.MNIST.resources)
    assert (online.CIFAR10_URL, online.CIFAR10_MD5) == (datasets.CIFAR10.url, datasets.CIFAR10.tgz_md5)
    for split, (url, md5) in online.SVHN_FILES.items():
        assert datasets.SVHN.split_list[split][0::2] == [url, md5]
    assert online.FLOWERS_URL == datasets.Flowers102._download_url_prefix
    for key in ("image", "label", "setid"):
        assert datasets.Flowers102._file_dict[key] == online.FLOWERS_FILES[{"image": "images", "label": "labels"}
                                                                           .get(key, key)]
    assert online.FLOWERS102_CLASSES == tuple(datasets.Flowers102.classes)


def test_every_online_dataset_is_registered_as_online():
    for name in ONLINE:
        info = DATASETS[name]
        assert info.offline is False and info.description
    assert [n for n in ONLINE if DATASETS[n].has_boxes] == ["cub200", "tiny_imagenet"]
    assert [n for n in ONLINE if DATASETS[n].has_masks] == ["flowers102"]


# ---------------------------------------------------------------------------------------------------------------
# the command-line script
# ---------------------------------------------------------------------------------------------------------------

def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_script_lists_the_registry_and_rejects_unknown_names():
    listing = run_script("--list")
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    for name in ONLINE:
        assert "online" in lines[name] and lines[name].endswith(f"python data_scripts/download_data.py {name}")
    assert "boxes" in lines["cub200"] and "masks" in lines["flowers102"] and "3×64×64" in lines["tiny_imagenet"]
    unknown = run_script("imagenet21k")
    assert unknown.returncode != 0
    assert "imagenet21k" in unknown.stderr and all(name in unknown.stderr for name in ONLINE)


def test_script_downloads_both_splits_into_root(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("download_data", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    recorder = DownloadRecorder(monkeypatch, write=write_cifar10)
    assert script.main(["cifar10", "--root", str(tmp_path)]) == 0
    assert len(recorder.calls) == 1 and f"cifar10: files in {tmp_path}" in capsys.readouterr().out


def test_script_offline_prints_one_line_and_exits_1(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("download_data", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    offline_network(monkeypatch)
    assert script.main(["cifar10", "--root", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("download_data.py: cifar10: download of " + online.CIFAR10_URL)
    assert "data_scripts/download_data.py cifar10" in err
