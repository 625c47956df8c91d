"""``fmnist_scenes``: a composite localisation set with exact boxes and masks, built offline on a CPU.

It stands in for CUB-200 (boxes) and Flowers-102 (masks) when those cannot be downloaded. Each image is a crop of a
natural photograph (shipped with scikit-image or scikit-learn, no download) with one real Fashion-MNIST garment
pasted on it: the garment is resized (bilinear) to a random square side of 3/8..3/4 of the image (24..48 px at the
default 64 px), placed at a random position fully inside the image, and painted with a random colour
(pixel = garment intensity × colour, colour's brightest channel = 1). The mask is the garment's resized
intensity above :data:`OBJECT_THRESHOLD`; inside the mask the pixels are the painted garment, outside they are the
untouched photo crop, so the mask is exact by construction and the box is its tight bounding box. The label is the
garment's Fashion-MNIST class. Train scenes use train garments on :data:`TRAIN_PHOTOS`, test scenes use test
garments on :data:`TEST_PHOTOS`: the two photo sets are disjoint, so no background is shared across splits.

Generation is deterministic from ``seed`` and prefix-stable (the first k scenes of a larger ``n`` are the scenes of
``n = k``); the result is cached through :class:`~rattrlib.results.ResultsCache` as uint8.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rattrlib.config import check_choice, check_range
from rattrlib.data.base import SPLITS, DatasetInfo, ImageDataset, register
from rattrlib.data.offline import FASHION_MNIST_CLASSES, FETCH_COMMAND, load_fashion_mnist
from rattrlib.results import ResultsCache

#: Bumped whenever the generator's output changes, so stale cached sets are not reused.
GENERATOR_VERSION = 1

#: Background photos of the train scenes (``source:name``); never used for test scenes.
TRAIN_PHOTOS = ("skimage:astronaut", "skimage:rocket", "skimage:hubble_deep_field", "skimage:immunohistochemistry",
                "sklearn:china.jpg", "skimage:camera", "skimage:grass", "skimage:brick")
#: Background photos of the test scenes; disjoint from :data:`TRAIN_PHOTOS`.
TEST_PHOTOS = ("skimage:chelsea", "skimage:coffee", "sklearn:flower.jpg", "skimage:coins", "skimage:gravel",
               "skimage:moon")
PHOTOS = {"train": TRAIN_PHOTOS, "test": TEST_PHOTOS}

#: A background is a square crop whose side is one of these fractions of the photo's shorter side.
CROP_FRACTIONS = (1.0, 0.6, 0.35, 0.2)
#: Resized garment intensity (in [0, 1]) above which a pixel belongs to the object.
OBJECT_THRESHOLD = 0.1
#: Default number of scenes per split.
DEFAULT_N = {"train": 10_000, "test": 2_000}
#: Garments available per split (Fashion-MNIST's official split).
GARMENTS_PER_SPLIT = {"train": 60_000, "test": 10_000}

_SPLIT_STREAM = {"train": 0, "test": 1}
_RANDOM_FIELDS = ("garment", "photo", "crop_level", "crop_y", "crop_x", "flip", "colour", "scale", "y0", "x0")
_CHUNK = 1024


# ------------------------------------------------------------------------------------------------ photos

@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> torch.Tensor:
    """A background photo as uint8 (3, H, W); grey photos are repeated over the three channels.

    ``name`` is ``"skimage:<function of skimage.data>"`` or ``"sklearn:<file of load_sample_image>"``; all ship
    with the packages (no download). The returned tensor is shared: do not modify it.
    """
    source, _, item = name.partition(":")
    if source == "skimage":
        import skimage.data

        array = getattr(skimage.data, item)()
    elif source == "sklearn":
        array = _read_sklearn_sample_image(item)
    else:
        raise ValueError(f"photo {name!r}: source must be 'skimage' or 'sklearn'")
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return torch.from_numpy(np.array(array[:, :, :3], dtype=np.uint8)).permute(2, 0, 1).contiguous()


def _read_sklearn_sample_image(filename: str) -> np.ndarray:
    """A photo of ``sklearn.datasets.load_sample_images`` as uint8 (H, W, 3), read from the package's folder
    with Pillow (what ``load_sample_image`` does) without importing scikit-learn (seconds of import time)."""
    from PIL import Image

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ImportError("scikit-learn is not installed; its sample photos are backgrounds of fmnist_scenes")
    path = Path(spec.origin).parent / "datasets" / "images" / filename
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@functools.lru_cache(maxsize=None)
def photo_levels(name: str, size: int) -> tuple[torch.Tensor, ...]:
    """The photo resized (bilinear, antialiased) once per crop fraction, as uint8 (3, h, w) with
    ``min(h, w) = round(size / fraction)``: a size×size window of level k is a crop of fraction k of the photo."""
    photo = load_photo(name).float().unsqueeze(0)
    short = min(photo.shape[2:])
    levels = []
    for fraction in CROP_FRACTIONS:
        factor = size / (fraction * short)
        h, w = (max(size, round(d * factor)) for d in photo.shape[2:])
        resized = F.interpolate(photo, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        levels.append(resized.round().clamp(0, 255).to(torch.uint8)[0])
    return tuple(levels)


# ------------------------------------------------------------------------------------------------ layout

def object_side_range(size: int) -> tuple[int, int]:
    """Smallest and largest side (px) of a pasted garment: 3/8 and 3/4 of ``size`` (24 and 48 at 64)."""
    return round(3 * size / 8), round(3 * size / 4)


def _uniform_ints(rng: np.random.Generator, low: np.ndarray | int, high: np.ndarray | int, n: int) -> np.ndarray:
    """Integers uniform in [low, high] (inclusive, per element), drawn from n doubles so prefixes are stable."""
    low, high = np.broadcast_to(low, (n,)), np.broadcast_to(high, (n,))
    return (low + np.floor(rng.random(n) * (high - low + 1))).astype(np.int64)


def scene_layout(split: str, n: int, size: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """Every random choice of the scenes, as int64 arrays of length ``n`` (``colour`` float64 (n, 3)).

    Keys: ``garment`` (index into Fashion-MNIST ``split``), ``photo`` (index into ``PHOTOS[split]``),
    ``crop_level`` (index into :data:`CROP_FRACTIONS`), ``crop_y``/``crop_x`` (top-left of the window in that
    level), ``flip`` (0/1, horizontal flip of the crop), ``colour`` (RGB in [0, 1], max channel 1), ``scale``
    (garment side in px), ``y0``/``x0`` (garment top-left in the image). Each field has its own random stream
    seeded by (seed, split), so the layout of ``n = k`` is the first k rows of any larger layout.
    """
    _check_params(split, n, size, seed)
    streams = np.random.SeedSequence([seed, _SPLIT_STREAM[split]]).spawn(len(_RANDOM_FIELDS))
    rng = {field: np.random.default_rng(s) for field, s in zip(_RANDOM_FIELDS, streams)}
    photos = PHOTOS[split]
    layout = {
        "garment": rng["garment"].permutation(GARMENTS_PER_SPLIT[split])[:n].astype(np.int64),
        "photo": _uniform_ints(rng["photo"], 0, len(photos) - 1, n),
        "crop_level": _uniform_ints(rng["crop_level"], 0, len(CROP_FRACTIONS) - 1, n),
        "flip": _uniform_ints(rng["flip"], 0, 1, n),
    }
    level_h, level_w = _level_shapes(photos, size, layout["photo"], layout["crop_level"])
    layout["crop_y"] = _uniform_ints(rng["crop_y"], 0, level_h - size, n)
    layout["crop_x"] = _uniform_ints(rng["crop_x"], 0, level_w - size, n)
    colour = rng["colour"].random((n, 3))
    layout["colour"] = colour / colour.max(axis=1, keepdims=True)
    smallest, largest = object_side_range(size)
    layout["scale"] = _uniform_ints(rng["scale"], smallest, largest, n)
    layout["y0"] = _uniform_ints(rng["y0"], 0, size - layout["scale"], n)
    layout["x0"] = _uniform_ints(rng["x0"], 0, size - layout["scale"], n)
    return layout


def _level_shapes(photos, size, photo, level) -> tuple[np.ndarray, np.ndarray]:
    shapes = np.array([[tuple(lv.shape[1:]) for lv in photo_levels(name, size)] for name in photos])  # (P, L, 2)
    return shapes[photo, level, 0], shapes[photo, level, 1]


def _check_params(split: str, n: int, size: int, seed: int) -> None:
    check_choice("split", split, SPLITS)
    if not isinstance(n, int) or not 1 <= n <= GARMENTS_PER_SPLIT[split]:
        raise ValueError(f"n={n!r} must be an int in [1, {GARMENTS_PER_SPLIT[split]}] for split {split!r} "
                         f"(each scene uses a different garment)")
    if not isinstance(size, int):
        raise ValueError(f"size={size!r} must be an int")
    check_range("size", size, 32, 256)
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")


# ------------------------------------------------------------------------------------------------ rendering

def background_crops(layout: dict[str, np.ndarray], split: str, size: int,
                     index: slice | None = None) -> torch.Tensor:
    """The photo crops of ``layout`` (rows ``index``, default all) as uint8 (k, 3, size, size)."""
    rows = range(len(layout["photo"]))[index or slice(None)]
    photos = PHOTOS[split]
    crops = torch.empty((len(rows), 3, size, size), dtype=torch.uint8)
    for out, i in enumerate(rows):
        level = photo_levels(photos[layout["photo"][i]], size)[layout["crop_level"][i]]
        y, x = int(layout["crop_y"][i]), int(layout["crop_x"][i])
        window = level[:, y:y + size, x:x + size]
        crops[out] = window.flip(-1) if layout["flip"][i] else window
    return crops


def place_garments(garments: torch.Tensor, y0: torch.Tensor, x0: torch.Tensor, scale: torch.Tensor,
                   size: int) -> torch.Tensor:
    """Garments (k, 1, 28, 28) in [0, 1] resized bilinearly to ``scale`` px and placed at (y0, x0) on a blank
    size×size canvas: float (k, 1, size, size) in [0, 1].

    Matches ``F.interpolate(g, (s, s), mode="bilinear", align_corners=False)`` pasted at (y0, x0), done for the
    whole batch at once with ``grid_sample`` (border-clamped inside the square, zero outside it).
    """
    k, _, h, w = garments.shape
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    s = scale.float().view(k, 1)
    # pixel-centre coordinates of the canvas mapped into the garment, normalised to [-1, 1] (align_corners=False)
    u = 2 * (centres.view(1, size) - x0.float().view(k, 1)) / s - 1  # (k, size), along x
    v = 2 * (centres.view(1, size) - y0.float().view(k, 1)) / s - 1  # (k, size), along y
    grid = torch.stack(torch.broadcast_tensors(u.view(k, 1, size), v.view(k, size, 1)), dim=-1)
    placed = F.grid_sample(garments, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = (u.abs() < 1).view(k, 1, 1, size) & (v.abs() < 1).view(k, 1, size, 1)
    return placed * inside


def paint_scenes(backgrounds: torch.Tensor, intensity: torch.Tensor, colours: torch.Tensor,
                 threshold: float = OBJECT_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste coloured garments on backgrounds.

    ``backgrounds`` uint8 (k, 3, S, S); ``intensity`` float (k, 1, S, S) in [0, 1] (from :func:`place_garments`);
    ``colours`` float (k, 3) in [0, 1]. Returns uint8 images (k, 3, S, S) — ``round(255 · intensity · colour)``
    where ``intensity > threshold``, the background elsewhere — and the bool masks (k, S, S).
    """
    masks = intensity[:, 0] > threshold
    painted = (intensity * colours.float().view(-1, 3, 1, 1) * 255).round().clamp(0, 255).to(torch.uint8)
    return torch.where(masks.unsqueeze(1), painted, backgrounds), masks


def boxes_of_masks(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes (x0, y0, x1, y1), x1/y1 exclusive, of nonempty bool masks (k, H, W): int64 (k, 4)."""
    rows, cols = masks.any(dim=2), masks.any(dim=1)  # (k, H), (k, W)
    if not bool(rows.any(dim=1).all()):
        raise ValueError("boxes_of_masks: an empty mask has no box")

    def first_and_end(hits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = hits.shape[1]
        first = hits.int().argmax(dim=1)
        end = length - hits.flip(1).int().argmax(dim=1)
        return first, end

    x0, x1 = first_and_end(cols)
    y0, y1 = first_and_end(rows)
    return torch.stack([x0, y0, x1, y1], dim=1).long()


def generate_scenes(split: str = "train", n: int | None = None, size: int = 64, seed: int = 0) -> dict:
    """Build the scenes (no cache): a dict of uint8 ``images`` (n, 3, size, size), int64 ``labels`` (n,),
    int16 ``boxes`` (n, 4), bool ``masks`` (n, size, size), and the ``layout`` of :func:`scene_layout`."""
    n = DEFAULT_N.get(split) if n is None else n
    _check_params(split, n, size, seed)
    garments = load_fashion_mnist(split)  # first, so missing data fails before any other work
    layout = scene_layout(split, n, size, seed)
    if len(garments) != GARMENTS_PER_SPLIT[split]:
        raise ValueError(f"Fashion-MNIST {split} has {len(garments)} images, expected {GARMENTS_PER_SPLIT[split]}")
    picked = torch.from_numpy(layout["garment"])
    as_tensor = {key: torch.from_numpy(value) for key, value in layout.items()}
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    masks = torch.empty((n, size, size), dtype=torch.bool)
    for start in range(0, n, _CHUNK):
        part = slice(start, min(n, start + _CHUNK))
        intensity = place_garments(garments.images[picked[part]], as_tensor["y0"][part], as_tensor["x0"][part],
                                   as_tensor["scale"][part], size)
        images[part], masks[part] = paint_scenes(background_crops(layout, split, size, part), intensity,
                                                 as_tensor["colour"][part])
    return {"images": images, "labels": garments.labels[picked].clone(), "boxes": boxes_of_masks(masks).short(),
            "masks": masks, "layout": layout}


def scenes_config(split: str, n: int, size: int) -> dict:
    """Everything that determines the generated set (besides the seed): the cache key's config."""
    return {"generator_version": GENERATOR_VERSION, "split": split, "n": n, "size": size,
            "photos": list(PHOTOS[split]), "crop_fractions": list(CROP_FRACTIONS),
            "object_side_px": list(object_side_range(size)), "threshold": OBJECT_THRESHOLD}


def load_fmnist_scenes(split: str = "train", n: int | None = None, size: int = 64, seed: int = 0,
                       recompute: bool = False) -> ImageDataset:
    """The composite localisation set: images float32 (n, 3, size, size) in [0, 1], Fashion-MNIST labels (n,),
    boxes float32 (n, 4) (x0, y0, x1, y1; x1/y1 exclusive) and bool masks (n, size, size).

    ``n`` defaults to 10,000 (train) / 2,000 (test). Generated once per (split, n, size, seed) and cached under
    ``$RATTR_HOME/results/dataset``; ``recompute=True`` regenerates. Needs Fashion-MNIST
    (``MissingDataError`` naming the fetch command otherwise). The registered names are ``fmnist_scenes``
    (64 px) and ``fmnist_scenes32`` (32 px, the cpu-scale localisation set: a quarter of the compute).
    """
    n = DEFAULT_N.get(split) if n is None else n
    _check_params(split, n, size, seed)
    stored = ResultsCache().get_or_compute(
        "dataset", scenes_config(split, n, size), lambda: generate_scenes(split, n, size, seed),
        seed=seed, dataset="fmnist_scenes", recompute=recompute)
    return ImageDataset(
        name=SCENE_NAMES[size] if size in SCENE_NAMES else f"fmnist_scenes@{size}px",
        split=split,
        images=stored["images"].float().div_(255),
        labels=stored["labels"],
        classes=FASHION_MNIST_CLASSES,
        boxes=stored["boxes"].float(),
        masks=stored["masks"],
    )


def load_fmnist_scenes32(split: str = "train", n: int | None = None, seed: int = 0,
                         recompute: bool = False) -> ImageDataset:
    """:func:`load_fmnist_scenes` at 32×32 (garments 12–24 px)."""
    return load_fmnist_scenes(split, n, 32, seed, recompute)


#: registered dataset name of each image size
SCENE_NAMES = {64: "fmnist_scenes", 32: "fmnist_scenes32"}


def _description(size: int) -> str:
    small, large = object_side_range(size)
    return ("Composite localisation set (offline stand-in for CUB boxes and Flowers masks): a real Fashion-MNIST "
            f"garment, randomly coloured and resized to {small}-{large} px, pasted at a random place on a "
            f"{size}×{size} crop of a natural photo from scikit-image/scikit-learn; exact box and mask by "
            "construction; label = garment class; train and test use disjoint garments and disjoint photos. "
            "10,000 train / 2,000 test by default, deterministic from a seed.")


for _size, _loader in ((64, load_fmnist_scenes), (32, load_fmnist_scenes32)):
    register(DatasetInfo(
        name=SCENE_NAMES[_size],
        description=_description(_size),
        shape=(3, _size, _size),
        classes=FASHION_MNIST_CLASSES,
        offline=True,
        fetch_command=FETCH_COMMAND,
        loader=_loader,
        has_boxes=True,
        has_masks=True,
    ))
