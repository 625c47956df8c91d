"""The static ε / β explorer: the precomputed IFIA grid (shape, clean maps = a direct IG computation, ε = 0 leaves
the map unchanged), its per-model cache, the page's settings checked before any compute, and the plotly page
(one data entry per cell, one slider step per ε / β, plotly.js inlined, and in chromium with the network blocked:
moving a slider changes the image and the metrics)."""

import base64
import re

import numpy as np
from pathlib import Path

import pytest
import torch
from torch import nn

from rattrlib.attributions import IntegratedGradients, attribution_map
from rattrlib.chapters import explorer as chapter
from rattrlib.data import ImageDataset
from rattrlib.explorer import IFIAGrid, ifia_grid
from rattrlib.results import ResultsCache
from rattrlib.static_explorer import explorer_figure, explorer_html, grid_data, size_note

EPS, BETAS = (0.0, 0.05, 0.2), (1.0, 10.0)
SETTINGS = {"eps": EPS, "betas": BETAS, "steps": 2, "k": 10, "attribution_kwargs": {"n_steps": 3}}


def tiny_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()


def tiny_images(n: int = 3):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % 3


class Untouchable(nn.Module):
    """A model that fails if anything runs it: bad arguments must be refused before any compute."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        raise AssertionError("the model ran")


@pytest.fixture(scope="module")
def grid() -> IFIAGrid:
    images, labels = tiny_images()
    return ifia_grid({"a": tiny_model(0), "b": tiny_model(1)}, images, labels, classes=("x", "y", "z"),
                     progress=False, **SETTINGS)


def test_grid_shape(grid):
    m, e, b, i = 2, len(EPS), len(BETAS), 3
    assert grid.shape == (m, e, b, i)
    assert grid.models == ("a", "b") and grid.eps == EPS and grid.betas == BETAS
    assert grid.clean_map.shape == (m, i, 8, 8) and grid.predicted.shape == (m, i)
    assert grid.adv_map.shape == (m, e, b, i, 8, 8) and grid.adv_map.dtype == torch.float16
    assert grid.x_adv.shape == (m, e, b, i, 1, 8, 8) and grid.x_adv.dtype == torch.float16
    for name in ("topk", "kendall", "success"):
        assert getattr(grid, name).shape == (m, e, b, i)
    for name in ("random_topk", "random_kendall", "random_success"):
        assert getattr(grid, name).shape == (m, e, i)
    assert len(grid.table()) == m * e * b * i
    assert list(grid.summary().columns) == [f"ε = {x:g}" for x in EPS]


def test_clean_maps_are_the_direct_ig_maps_and_eps_zero_changes_nothing(grid):
    images, _ = tiny_images()
    for m, seed in enumerate((0, 1)):
        model = tiny_model(seed)
        predicted = model(images).argmax(1)
        direct = attribution_map(IntegratedGradients(model, n_steps=3).attribute(images, predicted)).detach()
        assert torch.equal(grid.predicted[m], predicted)
        torch.testing.assert_close(grid.clean_map[m], direct, rtol=1e-5, atol=1e-6)
        # ε = 0: the kept image is the clean one, its map the clean map, both metrics 1 (IFIA and random)
        assert torch.equal(grid.x_adv[m, 0], images.half().expand_as(grid.x_adv[m, 0]))
        torch.testing.assert_close(grid.adv_map[m, 0].float(), direct.expand_as(grid.adv_map[m, 0]), rtol=1e-3,
                                   atol=1e-3)
        assert (grid.topk[m, 0] == 1).all() and torch.allclose(grid.kendall[m, 0], torch.ones(1))
        assert (grid.random_topk[m, 0] == 1).all()
    # inside every ball, and the attack at ε = 0.2 moves the maps
    assert ((grid.x_adv.float() - images.half().float()).abs().amax(dim=(-3, -2, -1))
            <= torch.tensor(EPS)[None, :, None, None] + 2e-3).all()
    assert (grid.topk[:, -1] < 1).any()


def test_bad_arguments_are_refused_before_any_compute():
    images, labels = tiny_images()
    model = {"m": Untouchable()}
    for bad, message in [({"eps": []}, "eps=\\[\\] must be a non-empty list"),
                         ({"eps": [0.1, -0.1]}, "eps\\[1\\]=-0.1"), ({"eps": [1.5]}, "eps\\[0\\]=1.5"),
                         ({"betas": [1.0, 0.0]}, "betas\\[1\\]=0.0"), ({"betas": [-1.0]}, "betas\\[0\\]=-1.0"),
                         ({"betas": []}, "betas=\\[\\]"), ({"steps": 0}, "steps=0"), ({"k": 65}, "k=65")]:
        with pytest.raises(ValueError, match=message):
            ifia_grid(model, images, labels, **{**SETTINGS, **bad})
    with pytest.raises(ValueError, match="models"):
        ifia_grid({}, images, labels, **SETTINGS)
    with pytest.raises(ValueError, match="labels"):
        ifia_grid(model, images, labels[:2], **SETTINGS)


def test_page_settings_name_the_bad_parameter():
    s = chapter.ExplorerSettings.resolve("cpu")
    assert len(s.eps_grid) >= 6 and len(s.betas) >= 4 and s.models == tuple(chapter.MODELS)
    for name, bad, message in [("models", ["natural", "nope"], "models\\[1\\]='nope' is not valid"),
                               ("models", "natural", "models='natural' must be a list"),
                               ("eps_grid", [], "eps_grid=\\[\\] must be a non-empty list"),
                               ("eps_grid", [0.1, -0.1], "eps_grid\\[1\\]=-0.1"),
                               ("eps_grid", [0.1, 0.1], "eps_grid=.* repeats"),
                               ("betas", [10.0, 0.0], "betas\\[1\\]=0.0"), ("betas", [], "betas=\\[\\]"),
                               ("n_images", 0, "n_images=0"), ("dataset", "cifar", "dataset='cifar'"),
                               ("attack_steps", 0, "attack_steps=0")]:
        with pytest.raises(ValueError, match=message):
            chapter.ExplorerSettings.resolve("smoke", **{name: bad})
    with pytest.raises(ValueError, match="unknown parameter"):
        chapter.ExplorerSettings.resolve("smoke", beta=10.0)


def test_compute_grid_caches_each_model(monkeypatch, tmp_path):
    images, labels = tiny_images(2)
    monkeypatch.setattr(chapter, "load_dataset", lambda name, split: ImageDataset(name, split, images, labels,
                                                                                 ("x", "y", "z")))
    loaded = []

    def get_model(dataset, method, scale, seed, device, progress):
        loaded.append(method)
        return tiny_model(len(loaded)), []

    monkeypatch.setattr(chapter, "get_model", get_model)
    cache = ResultsCache(tmp_path)
    s = chapter.ExplorerSettings.resolve("smoke", models=["natural", "pgd_at"], eps_grid=[0.0, 0.1],
                                         betas=[10.0], k=10)
    first = chapter.compute_grid(s, progress=False, cache=cache)
    assert first.shape == (2, 2, 1, 2) and first.models == (chapter.MODELS["natural"], chapter.MODELS["pgd_at"])
    assert loaded == ["natural", "pgd_at"]
    again = chapter.compute_grid(s, progress=False, cache=cache)
    assert loaded == ["natural", "pgd_at"] and torch.equal(again.topk, first.topk)  # both from the cache
    wider = chapter.ExplorerSettings.resolve("smoke", models=["natural", "pgd_at"], eps_grid=[0.0, 0.1],
                                             betas=[1.0, 10.0], k=10)
    assert chapter.compute_grid(wider, progress=False, cache=cache).shape == (2, 2, 2, 2)
    assert loaded == ["natural", "pgd_at"] * 2  # another grid: recomputed


def test_live_explorer_opens_on_the_pages_models_and_images(monkeypatch):
    images, labels = tiny_images(2)
    monkeypatch.setattr(chapter, "load_dataset", lambda name, split: ImageDataset(name, split, images, labels,
                                                                                 ("x", "y", "z")))
    monkeypatch.setattr(chapter, "get_model", lambda dataset, method, scale, seed, device, progress:
                        (tiny_model(0), []))
    s = chapter.ExplorerSettings.resolve("smoke", models=["natural", "art"], k=10)
    live = chapter.live_explorer(s)
    assert live.model.options == (chapter.MODELS["natural"], chapter.MODELS["art"])
    assert live.eps.value == max(s.eps_grid) and live.beta.value == pytest.approx(10.0)
    assert 0 <= live.run()["top-k ∩ (%)"] <= 100


def _decode(s: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.uint8).reshape(shape)


def test_figure_has_a_step_per_value_and_a_data_entry_per_cell(grid):
    fig = explorer_figure(grid)
    assert [t.type for t in fig.data] == ["heatmap"] * 4
    eps_slider, beta_slider = fig.layout.sliders
    assert [s.label for s in eps_slider.steps] == [f"{e:g}" for e in EPS]
    assert [s.label for s in beta_slider.steps] == [f"{b:g}" for b in BETAS]
    assert eps_slider.active == len(EPS) - 1 and beta_slider.active == BETAS.index(10.0)
    models, images = fig.layout.updatemenus
    assert [b.label for b in models.buttons] == ["a", "b"] and len(images.buttons) == 3
    data = grid_data(grid)
    m, e, b, i = grid.shape
    assert (data["M"], data["E"], data["B"], data["I"]) == grid.shape
    assert len(data["cells"]) == m * e * b * i and len(data["clean"]) == m * i
    # row-major (model, ε, β, image): the entry of cell (1, 2, 0, 1) is that cell's attacked map and metrics
    index = ((1 * e + 2) * b + 0) * i + 1
    x_adv, adv_map, title = data["cells"][index]
    expected = grid.adv_map[1, 2, 0, 1].float().numpy()
    np.testing.assert_array_equal(_decode(adv_map, (8, 8)), np.rint(expected / expected.max() * 255))
    assert f"{100 * float(grid.topk[1, 2, 0, 1]):.0f} %" in title and "ε = 0.2, β = 1" in title
    assert f"random sign: top-10 ∩ {100 * float(grid.random_topk[1, 2, 1]):.0f} %" in title
    with pytest.raises(ValueError, match="0.3"):
        explorer_figure(grid, eps=0.3)


def test_html_inlines_plotly_and_loads_nothing_from_the_network(grid):
    html = explorer_html(grid)
    assert not re.findall(r"<script[^>]*\bsrc=|<link\b", html)          # no script or style file, CDN or local
    from plotly.offline import get_plotlyjs
    assert get_plotlyjs()[:2000] in html                                   # the bundle itself is inlined
    assert "plotly_sliderchange" in html and "ifia-explorer" in html
    assert "MB" in size_note(grid, html)


def test_sliders_change_the_image_and_the_metrics_offline_in_chromium(grid, tmp_path):
    from explorer_browser import CHROMIUM, check_static_explorer, offline_page
    from smoke_book import absent

    try:
        import playwright  # noqa: F401
    except ImportError:
        absent("playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        absent(f"chromium is not at {CHROMIUM} (apt-get install chromium)")

    page_file = tmp_path / "explorer.html"
    page_file.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{explorer_html(grid)}"
                         "</body></html>")
    with offline_page(page_file) as (page, problems):
        states = check_static_explorer(page)
    assert problems == []
    assert [s["cell"] for s in states[1:]] == ["0,0,2,0", "0,0,0,0", "1,0,0,0", "1,1,0,0"]
