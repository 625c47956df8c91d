"""Online datasets: MNIST, CIFAR-10, SVHN, GTSRB, Flowers-102 (with masks), CUB-200-2011 and Tiny-ImageNet (boxes).

Every loader reads the dataset's official on-disk format itself (idx, pickle batches, ``.mat``, ppm/jpg + csv/txt
annotations) and downloads with torchvision's download helpers only when asked (``download=True``). The files of a
dataset live in ``root`` when given, else in ``rattr_home()/data/<name>``; inside that folder the layout is
torchvision's (``cifar-10-batches-py/``, ``train_32x32.mat``, ``gtsrb/GTSRB/...``, ``flowers-102/``,
``MNIST/raw/``), so a folder that torchvision already filled can be passed as ``root``; CUB and Tiny-ImageNet keep
their archives' layout (``CUB_200_2011/``, ``tiny-imagenet-200/``). No two datasets share a path, so one ``root``
can hold them all.

Loaders share one call shape, ``loader(split, root=None, download=False, limit=None, **params)``: ``split`` is
``'train'`` or ``'test'``, ``limit`` keeps the first ``limit`` images of the split in file order (for quick looks).
They return an :class:`ImageDataset` with float32 images in [0, 1] (N×C×H×W), int64 labels, and boxes
``(x0, y0, x1, y1)`` (x1/y1 exclusive, in the returned pixel grid) or bool masks where the dataset has them.
"""

from __future__ import annotations

import csv
import pickle
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from rattrlib.config import check_choice, rattr_home
from rattrlib.data.base import SPLITS, DatasetInfo, ImageDataset, MissingDataError, register
from rattrlib.data.offline import read_idx  # the same idx layout as Fashion-MNIST

FETCH_SCRIPT = "python data_scripts/download_data.py"

# Official sources. URLs and md5 sums are torchvision's where torchvision has the dataset (MNIST, CIFAR-10, SVHN,
# GTSRB, Flowers-102 images/labels); the others are the datasets' own pages.
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
MNIST_FILES = {
    "train": (("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
              ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432")),
    "test": (("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
             ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c")),
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
SVHN_FILES = {
    "train": ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "test": ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
}
GTSRB_URL = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"
GTSRB_ARCHIVES = {
    "train": (("GTSRB-Training_fixed.zip", "513f3c79a4c5141765e10e952eaa2478"),),
    "test": (("GTSRB_Final_Test_Images.zip", "c7e4e6327067d32654124b0fe9e82185"),
             ("GTSRB_Final_Test_GT.zip", "fe31e9c9270bbcd7b84b7f21a9d9d9e5")),
}
FLOWERS_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
FLOWERS_FILES = {
    "images": ("102flowers.tgz", "52808999861908f626f3c1f4e79d11fa"),
    "labels": ("imagelabels.mat", "e0620be6f572b9609742df49c70aed4d"),
    "setid": ("setid.mat", "a5357ecc9cb78c4bef273ce3793fc85c"),
    "segmentations": ("102segmentations.tgz", "51375996b6c4f367a4b9f4492d7ecef5"),
}
CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
CUB_MD5 = "97eceeb196236b17998738112f37df78"
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"

DIGITS = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
GTSRB_CLASSES = (
    "Speed limit (20km/h)", "Speed limit (30km/h)", "Speed limit (50km/h)", "Speed limit (60km/h)",
    "Speed limit (70km/h)", "Speed limit (80km/h)", "End of speed limit (80km/h)", "Speed limit (100km/h)",
    "Speed limit (120km/h)", "No passing", "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection", "Priority road", "Yield", "Stop", "No vehicles",
    "Vehicles over 3.5 metric tons prohibited", "No entry", "General caution", "Dangerous curve to the left",
    "Dangerous curve to the right", "Double curve", "Bumpy road", "Slippery road", "Road narrows on the right",
    "Road work", "Traffic signals", "Pedestrians", "Children crossing", "Bicycles crossing", "Beware of ice/snow",
    "Wild animals crossing", "End of all speed and passing limits", "Turn right ahead", "Turn left ahead",
    "Ahead only", "Go straight or right", "Go straight or left", "Keep right", "Keep left", "Roundabout mandatory",
    "End of no passing", "End of no passing by vehicles over 3.5 metric tons",
)

# the category names in label order, as torchvision lists them
FLOWERS102_CLASSES = (
    'pink primrose', 'hard-leaved pocket orchid', 'canterbury bells', 'sweet pea', 'english marigold', 'tiger lily',
    'moon orchid', 'bird of paradise', 'monkshood', 'globe thistle', 'snapdragon', "colt's foot", 'king protea',
    'spear thistle', 'yellow iris', 'globe-flower', 'purple coneflower', 'peruvian lily', 'balloon flower',
    'giant white arum lily', 'fire lily', 'pincushion flower', 'fritillary', 'red ginger', 'grape hyacinth',
    'corn poppy', 'prince of wales feathers', 'stemless gentian', 'artichoke', 'sweet william', 'carnation',
    'garden phlox', 'love in the mist', 'mexican aster', 'alpine sea holly', 'ruby-lipped cattleya', 'cape flower',
    'great masterwort', 'siam tulip', 'lenten rose', 'barbeton daisy', 'daffodil', 'sword lily', 'poinsettia',
    'bolero deep blue', 'wallflower', 'marigold', 'buttercup', 'oxeye daisy', 'common dandelion', 'petunia',
    'wild pansy', 'primula', 'sunflower', 'pelargonium', 'bishop of llandaff', 'gaura', 'geranium', 'orange dahlia',
    'pink-yellow dahlia?', 'cautleya spicata', 'japanese anemone', 'black-eyed susan', 'silverbush',
    'californian poppy', 'osteospermum', 'spring crocus', 'bearded iris', 'windflower', 'tree poppy', 'gazania',
    'azalea', 'water lily', 'rose', 'thorn apple', 'morning glory', 'passion flower', 'lotus', 'toad lily',
    'anthurium', 'frangipani', 'clematis', 'hibiscus', 'columbine', 'desert-rose', 'tree mallow', 'magnolia',
    'cyclamen', 'watercress', 'canna lily', 'hippeastrum', 'bee balm', 'ball moss', 'foxglove', 'bougainvillea',
    'camellia', 'mallow', 'mexican petunia', 'bromelia', 'blanket flower', 'trumpet creeper', 'blackberry lily',
)
FLOWERS_BACKGROUND = (0, 0, 254)  # colour of the background in the official segmentation images


# --------------------------------------------------------------------------------------------------------------
# shared helpers: where the files are, what to say when they are not, downloads, image decoding
# --------------------------------------------------------------------------------------------------------------

def data_dir(name: str, root: str | Path | None = None) -> Path:
    """The folder that holds (or will hold) dataset ``name``: ``root`` if given, else ``rattr_home()/data/name``."""
    return Path(root).expanduser() if root is not None else rattr_home() / "data" / name


def fetch_command(name: str, root: str | Path | None = None) -> str:
    """The shell command that downloads dataset ``name`` (into ``root`` when one is given)."""
    return f"{FETCH_SCRIPT} {name}" + (f" --root {root}" if root is not None else "")


class DownloadFailed(Exception):
    """A download that did not complete: ``url`` (the address or addresses tried) and ``reason`` (one line)."""

    def __init__(self, url: str, error: BaseException):
        self.url = url
        self.reason = f"{type(error).__name__}: " + " ".join(str(error).split())
        super().__init__(f"{url}: {self.reason}")


def _ensure_files(name: str, root, needed: Sequence[Path], download: bool, fetch: Callable[[], None]) -> None:
    """Download (``download=True``) or fail with :class:`MissingDataError` when any ``needed`` path is absent.

    A failed download (no network, a mirror gone, a bad checksum) becomes a one-line :class:`MissingDataError`
    naming the dataset, the URL tried and the download script.
    """
    missing = [p for p in needed if not p.exists()]
    if missing and download:
        try:
            fetch()
        except DownloadFailed as error:
            raise MissingDataError(
                f"{name}: download of {error.url} failed ({error.reason}); without internet here, run "
                f"`{fetch_command(name, root)}` on a machine that has it and copy {data_dir(name, root)} "
                "over") from None
        missing = [p for p in needed if not p.exists()]
        if missing:
            raise ValueError(f"{name}: the download finished but {missing[0]} is still absent; "
                             "the archive's layout may have changed")
    if missing:
        raise MissingDataError(f"{name}: {missing[0]} not found (data folder {data_dir(name, root)}); "
                               f"download it with: {fetch_command(name, root)}")


def _download_and_extract(url: str, folder: Path, md5: Optional[str], filename: Optional[str] = None) -> None:
    """torchvision's download + extract of ``url`` into ``folder``; :class:`DownloadFailed` when it fails."""
    from torchvision.datasets import utils  # looked up at call time so tests can replace it

    try:
        utils.download_and_extract_archive(url, download_root=str(folder), filename=filename, md5=md5)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad md5 is a RuntimeError
        raise DownloadFailed(url, error) from error


def _download_file(url: str, folder: Path, md5: Optional[str]) -> None:
    """torchvision's download of ``url`` into ``folder``; :class:`DownloadFailed` when it fails."""
    from torchvision.datasets import utils

    try:
        utils.download_url(url, str(folder), md5=md5)
    except (OSError, RuntimeError) as error:
        raise DownloadFailed(url, error) from error


def _check_limit(limit: Optional[int]) -> Optional[int]:
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"limit={limit!r} must be a positive int or None")
    return limit


def _check_size(size: int) -> int:
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"size={size!r} must be a positive int")
    return size


def _first(items: list, limit: Optional[int]) -> list:
    return items if limit is None else items[:limit]


def _to_float_images(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) → float32 (N, C, H, W) in [0, 1]."""
    planar = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
    if not planar.flags.writeable:  # e.g. np.frombuffer over bytes; torch wants a writable array
        planar = planar.copy()
    return torch.from_numpy(planar).float().div_(255.0)


def _open_rgb(path: Path, draft_size: Optional[int] = None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode ``path`` as RGB; returns the image and its original (width, height).

    With ``draft_size``, a JPEG is decoded at the smallest power-of-two reduction that stays ≥ that size
    (libjpeg's DCT scaling), which makes big photos fast to load before the final resize.
    """
    try:
        image = Image.open(path)
        original = image.size
        if draft_size is not None:
            image.draft("RGB", (draft_size, draft_size))
        return image.convert("RGB"), original
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error


def _resized(image: Image.Image, size: Optional[int]) -> Image.Image:
    """Bilinear (antialiased) resize to size×size; the image itself when it already has that size or size is None."""
    if size is None or image.size == (size, size):
        return image
    return image.resize((size, size), Image.BILINEAR)


def _read_images(paths: Sequence[Path], size: Optional[int], source: Path,
                 draft: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize images: uint8 (N, size, size, 3) and their original (width, height) as int (N, 2).

    With ``size=None`` all images must already share one shape (raises ``ValueError`` naming the first that does
    not). ``source`` (the file or folder that listed the images) is named when the list is empty.
    """
    pixels, originals = None, np.zeros((len(paths), 2), dtype=np.int64)
    for i, path in enumerate(paths):
        image, originals[i] = _open_rgb(path, size if draft else None)
        array = np.asarray(_resized(image, size))
        if pixels is None:
            pixels = np.empty((len(paths), *array.shape), dtype=np.uint8)
        if array.shape != pixels.shape[1:]:
            raise ValueError(f"{path} is {array.shape[1]}×{array.shape[0]}, expected "
                             f"{pixels.shape[2]}×{pixels.shape[1]} like the images before it")
        pixels[i] = array
    if pixels is None:
        raise ValueError(f"no images listed for this split in {source}")
    return pixels, originals


def _read_lines(path: Path, fields: int, sep: Optional[str] = None) -> list[list[str]]:
    """Non-empty lines of a text annotation file split into at least ``fields`` fields (``ValueError`` otherwise)."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = line.rstrip("\n").split(sep)
            if len(row) < fields:
                raise ValueError(f"{path} line {number}: expected {fields} fields, got {line.strip()!r}")
            rows.append(row)
    return rows


def _as_number(text: str, path: Path, kind: type = float):
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{path}: {text!r} is not a number") from None


def _labels(values: Iterable[int]) -> torch.Tensor:
    return torch.as_tensor(np.asarray(list(values), dtype=np.int64))


# --------------------------------------------------------------------------------------------------------------
# MNIST (idx files)
# --------------------------------------------------------------------------------------------------------------

def _idx_path(folder: Path, stem: str) -> Path:
    """The extracted idx file if present, else its ``.gz``."""
    plain = folder / stem
    return plain if plain.exists() or not (folder / f"{stem}.gz").exists() else folder / f"{stem}.gz"


def _fetch_mnist(raw: Path, split: str) -> None:
    """Each idx file of ``split`` from the first mirror that serves it; :class:`DownloadFailed` when none does."""
    for stem, md5 in MNIST_FILES[split]:
        urls = [f"{mirror}{stem}.gz" for mirror in MNIST_MIRRORS]
        for url in urls:
            try:
                _download_and_extract(url, raw, md5, filename=f"{stem}.gz")
                break
            except DownloadFailed as error:
                last = error
        else:
            raise DownloadFailed(" and ".join(urls), last.__cause__)


def load_mnist(split: str = "train", root=None, download: bool = False, limit: Optional[int] = None) -> ImageDataset:
    """Official MNIST (LeCun et al. 1998): 60k train / 10k test digits, images (N, 1, 28, 28) in [0, 1]."""
    check_choice("split", split, SPLITS)
    limit = _check_limit(limit)
    raw = data_dir("mnist", root) / "MNIST" / "raw"
    (images_stem, _), (labels_stem, _) = MNIST_FILES[split]
    _ensure_files("mnist", root, [_idx_path(raw, images_stem), _idx_path(raw, labels_stem)], download,
                  lambda: _fetch_mnist(raw, split))
    images_path, labels_path = _idx_path(raw, images_stem), _idx_path(raw, labels_stem)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{images_path} (shape {images.shape}) and {labels_path} (shape {labels.shape}) "
                         "do not pair up as N×H×W images and N labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path} holds label {labels.max()}, MNIST labels are 0–9")
    images, labels = images[:limit], labels[:limit]
    return ImageDataset("mnist", split, _to_float_images(images[..., None]), _labels(labels), DIGITS)


# --------------------------------------------------------------------------------------------------------------
# CIFAR-10 (python pickle batches)
# --------------------------------------------------------------------------------------------------------------

def _unpickle(path: Path) -> dict:
    """A CIFAR pickle as a dict with str keys (the official files are Python 2 pickles)."""
    try:
        with open(path, "rb") as handle:
            content = pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError) as error:
        raise ValueError(f"cannot unpickle CIFAR file {path}: {error}") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} should hold a dict, found {type(content).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in content.items()}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: uint8 (N, 32, 32, 3) images and (N,) labels."""
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path} lacks 'data' or 'labels' (keys: {sorted(batch)})")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(f"{path}: expected uint8 data (N, 3072) and N labels, got {data.dtype} {data.shape} "
                         f"and {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path} holds labels outside 0–9")
    # each row is the red plane, then green, then blue, each 32 rows of 32 pixels
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10(split: str = "train", root=None, download: bool = False,
                 limit: Optional[int] = None) -> ImageDataset:
    """CIFAR-10 (Krizhevsky 2009): 50k train / 10k test, images (N, 3, 32, 32) in [0, 1], 10 classes."""
    check_choice("split", split, SPLITS)
    limit = _check_limit(limit)
    folder = data_dir("cifar10", root)
    batches = folder / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    _ensure_files("cifar10", root, [batches / n for n in names], download,
                  lambda: _download_and_extract(CIFAR10_URL, folder, CIFAR10_MD5))
    images, labels, count = [], [], 0
    for name in names:
        if limit is not None and count >= limit:
            break
        batch_images, batch_labels = _read_cifar_batch(batches / name)
        images.append(batch_images)
        labels.append(batch_labels)
        count += len(batch_labels)
    images, labels = np.concatenate(images)[:limit], np.concatenate(labels)[:limit]
    classes = CIFAR10_CLASSES
    if (batches / "batches.meta").exists():
        classes = tuple(_unpickle(batches / "batches.meta").get("label_names", CIFAR10_CLASSES))
    return ImageDataset("cifar10", split, _to_float_images(images), _labels(labels), classes)


# --------------------------------------------------------------------------------------------------------------
# SVHN (cropped digits, .mat)
# --------------------------------------------------------------------------------------------------------------

def _read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``train_32x32.mat``/``test_32x32.mat``: uint8 (N, 32, 32, 3) images and labels with 10 (digit 0) → 0."""
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except (ValueError, OSError, TypeError) as error:
        raise ValueError(f"cannot read SVHN file {path}: {error}") from error
    if "X" not in content or "y" not in content:
        raise ValueError(f"{path} lacks the variables 'X' and 'y'")
    images, labels = np.asarray(content["X"]), np.asarray(content["y"]).reshape(-1)
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.shape[3] != len(labels):
        raise ValueError(f"{path}: X should be 32×32×3×N with N = len(y) = {len(labels)}, got {images.shape}")
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise ValueError(f"{path}: SVHN labels are 1–10, found {labels.min()}–{labels.max()}")
    return images.transpose(3, 0, 1, 2).astype(np.uint8), (labels % 10).astype(np.int64)


def load_svhn(split: str = "train", root=None, download: bool = False, limit: Optional[int] = None) -> ImageDataset:
    """SVHN cropped digits (Netzer et al. 2011): 73,257 train / 26,032 test, (N, 3, 32, 32); label 10 means 0."""
    check_choice("split", split, SPLITS)
    limit = _check_limit(limit)
    folder = data_dir("svhn", root)
    url, md5 = SVHN_FILES[split]
    path = folder / url.rsplit("/", 1)[1]
    _ensure_files("svhn", root, [path], download, lambda: _download_file(url, folder, md5))
    images, labels = _read_svhn(path)
    return ImageDataset("svhn", split, _to_float_images(images[:limit]), _labels(labels[:limit]), DIGITS)


# --------------------------------------------------------------------------------------------------------------
# GTSRB (ppm images in class folders; test labels in a csv)
# --------------------------------------------------------------------------------------------------------------

def _gtsrb_train_samples(training: Path) -> list[tuple[Path, int]]:
    samples = []
    for class_folder in sorted(p for p in training.iterdir() if p.is_dir()):
        if not class_folder.name.isdigit() or int(class_folder.name) >= len(GTSRB_CLASSES):
            raise ValueError(f"{class_folder}: GTSRB class folders are 00000–00042")
        samples += [(path, int(class_folder.name)) for path in sorted(class_folder.glob("*.ppm"))]
    return samples


def _gtsrb_test_samples(images: Path, table: Path) -> list[tuple[Path, int]]:
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";", skipinitialspace=True))
    if rows and not {"Filename", "ClassId"} <= set(rows[0]):
        raise ValueError(f"{table} lacks the columns Filename and ClassId (has {sorted(rows[0])})")
    samples = [(images / row["Filename"], _as_number(row["ClassId"], table, int)) for row in rows]
    if any(not 0 <= label < len(GTSRB_CLASSES) for _, label in samples):
        raise ValueError(f"{table} holds a ClassId outside 0–42")
    return samples


def _fetch_gtsrb(base: Path, split: str) -> None:
    for archive, md5 in GTSRB_ARCHIVES[split]:
        _download_and_extract(GTSRB_URL + archive, base, md5)


def load_gtsrb(split: str = "train", root=None, download: bool = False, limit: Optional[int] = None,
               size: int = 32) -> ImageDataset:
    """GTSRB (Stallkamp et al. 2012): 39,209 train / 12,630 test signs, 43 classes, resized to (N, 3, size, size).

    The whole image is resized (bilinear, antialiased), not cropped to the sign's ROI, as in torchvision.
    """
    check_choice("split", split, SPLITS)
    limit, size = _check_limit(limit), _check_size(size)
    base = data_dir("gtsrb", root) / "gtsrb"
    if split == "train":
        needed = [base / "GTSRB" / "Training"]
    else:
        needed = [base / "GTSRB" / "Final_Test" / "Images", base / "GT-final_test.csv"]
    _ensure_files("gtsrb", root, needed, download, lambda: _fetch_gtsrb(base, split))
    samples = _gtsrb_train_samples(needed[0]) if split == "train" else _gtsrb_test_samples(*needed)
    samples = _first(samples, limit)
    pixels, _ = _read_images([path for path, _ in samples], size, needed[-1])
    return ImageDataset("gtsrb", split, _to_float_images(pixels), _labels(label for _, label in samples),
                        GTSRB_CLASSES)


# --------------------------------------------------------------------------------------------------------------
# Oxford Flowers-102 (jpg + .mat labels/splits + segmentation images → masks)
# --------------------------------------------------------------------------------------------------------------

def _read_mat_vector(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except (ValueError, OSError, TypeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    if key not in content:
        raise ValueError(f"{path} lacks the variable {key!r}")
    return np.asarray(content[key]).reshape(-1).astype(np.int64)


def _flowers_split_ids(setid: Path, split: str) -> np.ndarray:
    """1-based image ids: train = ``trnid`` + ``valid`` (2,040), test = ``tstid`` (6,149)."""
    keys = ("trnid", "valid") if split == "train" else ("tstid",)
    return np.concatenate([_read_mat_vector(setid, key) for key in keys])


def segmentation_to_mask(segmentation: np.ndarray, tolerance: int = 40) -> np.ndarray:
    """Object mask from a Flowers-102 segmentation image: uint8 (H, W, 3) → bool (H, W), False on background.

    The background is painted pure blue (0, 0, 254); a pixel within ``tolerance`` of it in every channel (JPEG
    noise) is background.
    """
    distance = np.abs(segmentation.astype(np.int16) - np.array(FLOWERS_BACKGROUND, dtype=np.int16)).max(axis=-1)
    return distance > tolerance


def _read_flowers_masks(paths: Sequence[Path], size: int, tolerance: int) -> np.ndarray:
    """bool (N, size, size): each segmentation decoded to a mask, resized by area averaging, kept where ≥ half."""
    masks = np.empty((len(paths), size, size), dtype=bool)
    for i, path in enumerate(paths):
        image, _ = _open_rgb(path, size)
        full = segmentation_to_mask(np.asarray(image), tolerance)
        coverage = Image.fromarray(full.astype(np.float32)).resize((size, size), Image.BOX)
        masks[i] = np.asarray(coverage) >= 0.5
    return masks


def _fetch_flowers(folder: Path, with_masks: bool) -> None:
    if not (folder / "jpg").exists():
        _download_and_extract(FLOWERS_URL + FLOWERS_FILES["images"][0], folder, FLOWERS_FILES["images"][1])
    for key in ("labels", "setid"):
        name, md5 = FLOWERS_FILES[key]
        if not (folder / name).exists():
            _download_file(FLOWERS_URL + name, folder, md5)
    if with_masks and not (folder / "segmim").exists():
        name, md5 = FLOWERS_FILES["segmentations"]
        _download_and_extract(FLOWERS_URL + name, folder, md5)


def load_flowers102(split: str = "train", root=None, download: bool = False, limit: Optional[int] = None,
                    size: int = 64, with_masks: bool = True, mask_tolerance: int = 40) -> ImageDataset:
    """Oxford Flowers-102 (Nilsback & Zisserman 2008) with its segmentations as object masks.

    Train = the official train + validation ids (2,040 images), test = the test ids (6,149). Images are resized to
    (N, 3, size, size) (bilinear, aspect not kept), masks to bool (N, size, size) (True on the flower; see
    :func:`segmentation_to_mask`). ``with_masks=False`` skips the segmentations (masks=None).
    """
    check_choice("split", split, SPLITS)
    limit, size = _check_limit(limit), _check_size(size)
    folder = data_dir("flowers102", root) / "flowers-102"
    needed = [folder / "jpg", folder / FLOWERS_FILES["labels"][0], folder / FLOWERS_FILES["setid"][0]]
    needed += [folder / "segmim"] if with_masks else []
    _ensure_files("flowers102", root, needed, download, lambda: _fetch_flowers(folder, with_masks))
    ids = _first(list(_flowers_split_ids(folder / "setid.mat", split)), limit)
    all_labels = _read_mat_vector(folder / "imagelabels.mat", "labels")
    if any(not 1 <= i <= len(all_labels) for i in ids):
        raise ValueError(f"{folder / 'setid.mat'} names image ids outside 1–{len(all_labels)} "
                         f"(the number of labels in imagelabels.mat)")
    labels = all_labels[np.asarray(ids, dtype=np.int64) - 1] - 1
    if labels.size and (labels.min() < 0 or labels.max() > 101):
        raise ValueError(f"{folder / 'imagelabels.mat'} holds labels outside 1–102")
    pixels, _ = _read_images([folder / "jpg" / f"image_{i:05d}.jpg" for i in ids], size, folder / "setid.mat",
                             draft=True)
    masks = None
    if with_masks:
        segmentations = [folder / "segmim" / f"segmim_{i:05d}.jpg" for i in ids]
        masks = torch.from_numpy(_read_flowers_masks(segmentations, size, mask_tolerance))
    return ImageDataset("flowers102", split, _to_float_images(pixels), _labels(labels), FLOWERS102_CLASSES,
                        masks=masks)


# --------------------------------------------------------------------------------------------------------------
# CUB-200-2011 (jpg + txt annotations with boxes)
# --------------------------------------------------------------------------------------------------------------

def _read_id_table(path: Path, fields: int) -> dict[int, list[str]]:
    """A CUB ``<image_id> <field> ...`` table as {id: fields}."""
    table = {}
    for row in _read_lines(path, fields + 1):
        table[_as_number(row[0], path, int)] = row[1:]
    return table


def _cub_box(values: list[str], path: Path, width: int, height: int, size: int) -> list[float]:
    """CUB's (x, y, width, height) in original pixels → (x0, y0, x1, y1) in the size×size grid, x1/y1 exclusive."""
    x, y, w, h = (_as_number(v, path) for v in values[:4])
    sx, sy = size / width, size / height
    return [max(0.0, x * sx), max(0.0, y * sy), min(float(size), (x + w) * sx), min(float(size), (y + h) * sy)]


def _cub_class_name(folder_name: str) -> str:
    """``'001.Black_footed_Albatross'`` → ``'Black footed Albatross'``."""
    return folder_name.split(".", 1)[-1].replace("_", " ")


def load_cub200(split: str = "train", root=None, download: bool = False, limit: Optional[int] = None,
                size: int = 64) -> ImageDataset:
    """CUB-200-2011 birds (Wah et al. 2011): 5,994 train / 5,794 test, 200 classes, with one box per image.

    Images resized to (N, 3, size, size) (bilinear, aspect not kept); boxes (N, 4) as (x0, y0, x1, y1) in that grid,
    x1/y1 exclusive, from the official (x, y, width, height) scaled by size/width and size/height.
    """
    check_choice("split", split, SPLITS)
    limit, size = _check_limit(limit), _check_size(size)
    folder = data_dir("cub200", root)
    base = folder / "CUB_200_2011"
    tables = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt", "classes.txt")
    _ensure_files("cub200", root, [base / t for t in tables] + [base / "images"], download,
                  lambda: _download_and_extract(CUB_URL, folder, CUB_MD5))
    files = _read_id_table(base / "images.txt", 1)
    labels = _read_id_table(base / "image_class_labels.txt", 1)
    is_train = _read_id_table(base / "train_test_split.txt", 1)
    boxes = _read_id_table(base / "bounding_boxes.txt", 4)
    classes = tuple(_cub_class_name(row[0]) for _, row in sorted(_read_id_table(base / "classes.txt", 1).items()))
    for table, name in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt"),
                        (boxes, "bounding_boxes.txt")):
        absent = sorted(set(files) - set(table))
        if absent:
            raise ValueError(f"{base / name} has no row for image id {absent[0]} of images.txt")
    wanted = "1" if split == "train" else "0"
    ids = _first([i for i in sorted(files) if is_train[i][0] == wanted], limit)
    label_values = [_as_number(labels[i][0], base / "image_class_labels.txt", int) - 1 for i in ids]
    if any(not 0 <= v < len(classes) for v in label_values):
        raise ValueError(f"{base / 'image_class_labels.txt'} holds a class id outside 1–{len(classes)}")
    pixels, originals = _read_images([base / "images" / files[i][0] for i in ids], size,
                                     base / "train_test_split.txt", draft=True)
    box_values = [_cub_box(boxes[i], base / "bounding_boxes.txt", w, h, size) for i, (w, h) in zip(ids, originals)]
    return ImageDataset("cub200", split, _to_float_images(pixels), _labels(label_values), classes,
                        boxes=torch.tensor(box_values, dtype=torch.float32).reshape(-1, 4))


# --------------------------------------------------------------------------------------------------------------
# Tiny-ImageNet (64×64 JPEGs, wnid folders, inclusive boxes)
# --------------------------------------------------------------------------------------------------------------

def _inclusive_to_exclusive(values: Sequence[str], path: Path) -> list[float]:
    """Tiny-ImageNet's inclusive pixel box (x0, y0, x1, y1) → rattr's (x0, y0, x1 + 1, y1 + 1)."""
    x0, y0, x1, y1 = (_as_number(v, path) for v in values)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"{path}: box {values} has x1 < x0 or y1 < y0")
    return [x0, y0, x1 + 1, y1 + 1]


def _tiny_class_names(base: Path, wnids: Sequence[str]) -> tuple[str, ...]:
    words = {}
    if (base / "words.txt").exists():
        words = {row[0]: row[1] for row in _read_lines(base / "words.txt", 2, sep="\t")}
    return tuple(words.get(wnid, wnid) for wnid in wnids)


def _tiny_train_samples(base: Path, wnids: Sequence[str]) -> list[tuple[Path, int, list[float]]]:
    samples = []
    for label, wnid in enumerate(wnids):
        box_file = base / "train" / wnid / f"{wnid}_boxes.txt"
        boxes = {row[0]: _inclusive_to_exclusive(row[1:5], box_file) for row in _read_lines(box_file, 5)}
        for path in sorted((base / "train" / wnid / "images").glob("*.JPEG")):
            if path.name not in boxes:
                raise ValueError(f"{box_file} has no box for {path.name}")
            samples.append((path, label, boxes[path.name]))
    return samples


def _tiny_val_samples(base: Path, wnids: Sequence[str]) -> list[tuple[Path, int, list[float]]]:
    table = base / "val" / "val_annotations.txt"
    index = {wnid: i for i, wnid in enumerate(wnids)}
    samples = []
    for row in _read_lines(table, 6):
        if row[1] not in index:
            raise ValueError(f"{table}: {row[1]} (for {row[0]}) is not in wnids.txt")
        samples.append((base / "val" / "images" / row[0], index[row[1]], _inclusive_to_exclusive(row[2:6], table)))
    return samples


def load_tiny_imagenet(split: str = "train", root=None, download: bool = False,
                       limit: Optional[int] = None) -> ImageDataset:
    """Tiny-ImageNet-200 (cs231n): 100k train / 10k labelled val (used as test), (N, 3, 64, 64), 200 classes.

    Class indices follow the sorted wnids (torchvision ImageFolder order); class names come from ``words.txt``.
    Boxes (N, 4) are (x0, y0, x1, y1) with x1/y1 exclusive (the files' inclusive corners + 1). Grayscale JPEGs
    are replicated to three channels.
    """
    check_choice("split", split, SPLITS)
    limit = _check_limit(limit)
    folder = data_dir("tiny_imagenet", root)
    base = folder / "tiny-imagenet-200"
    needed = [base / "wnids.txt"] + ([base / "train"] if split == "train" else
                                     [base / "val" / "val_annotations.txt", base / "val" / "images"])
    _ensure_files("tiny_imagenet", root, needed, download,
                  lambda: _download_and_extract(TINY_IMAGENET_URL, folder, TINY_IMAGENET_MD5))
    wnids = sorted(row[0] for row in _read_lines(base / "wnids.txt", 1))
    samples = _tiny_train_samples(base, wnids) if split == "train" else _tiny_val_samples(base, wnids)
    samples = _first(samples, limit)
    pixels, _ = _read_images([path for path, _, _ in samples], None, needed[1])
    if pixels.shape[1:3] != (64, 64):
        raise ValueError(f"Tiny-ImageNet images are 64×64, {samples[0][0]} is {pixels.shape[2]}×{pixels.shape[1]}")
    return ImageDataset("tiny_imagenet", split, _to_float_images(pixels), _labels(s[1] for s in samples),
                        _tiny_class_names(base, wnids),
                        boxes=torch.tensor([s[2] for s in samples], dtype=torch.float32).reshape(-1, 4))


# --------------------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------------------

def _register_online(name: str, description: str, shape: tuple[int, int, int], classes: tuple[str, ...],
                     loader: Callable[..., ImageDataset], **flags) -> None:
    register(DatasetInfo(name=name, description=description, shape=shape, classes=classes, offline=False,
                         fetch_command=fetch_command(name), loader=loader, **flags))


_register_online("mnist", "Official MNIST handwritten digits, 60,000 train / 10,000 test, 28×28 grey (idx files).",
                 (1, 28, 28), DIGITS, load_mnist)
_register_online("cifar10", "CIFAR-10, 50,000 train / 10,000 test, 32×32 colour, 10 object classes.",
                 (3, 32, 32), CIFAR10_CLASSES, load_cifar10)
_register_online("svhn", "SVHN cropped house-number digits, 73,257 train / 26,032 test, 32×32 colour.",
                 (3, 32, 32), DIGITS, load_svhn)
_register_online("gtsrb", "GTSRB German traffic signs, 39,209 train / 12,630 test, 43 classes, resized to "
                 "size×size (default 32).", (3, 32, 32), GTSRB_CLASSES, load_gtsrb)
_register_online("flowers102", "Oxford Flowers-102, train+val 2,040 / test 6,149, 102 classes, resized to "
                 "size×size (default 64), with segmentation masks.", (3, 64, 64), FLOWERS102_CLASSES,
                 load_flowers102, has_masks=True)
_register_online("cub200", "CUB-200-2011 birds, 5,994 train / 5,794 test, 200 classes, resized to size×size "
                 "(default 64), one box per image; class names read from classes.txt.", (3, 64, 64), (),
                 load_cub200, has_boxes=True)
_register_online("tiny_imagenet", "Tiny-ImageNet-200, 100,000 train / 10,000 labelled val as test, 64×64, 200 "
                 "classes, one box per image; class names read from words.txt.", (3, 64, 64), (),
                 load_tiny_imagenet, has_boxes=True)
