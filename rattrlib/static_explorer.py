"""A self-contained ε / β explorer of a precomputed :class:`~rattrlib.explorer.IFIAGrid`: one plotly figure (the
clean image, the attacked image, the clean and the attacked attribution map) with a slider for ε, a slider for
softplus β, a menu for the model and buttons for the image, working in a static page with no kernel and no
network.

>>> html = explorer_html(grid)          # a <div> with plotly.js inlined (≈ 4.7 MB) and the grid's data
>>> explorer(grid)                      # the same as an IPython HTML object, for a notebook cell

Why plotly and not ipywidgets: precomputed widget state can only link controls one to one (``jslink``); the
page needs four controls that select one cell together. Why a few lines of JavaScript: a plotly slider drives
frames or a restyle on its own; two sliders and two menus that must be read together cannot be expressed by
frames. The sliders and menus are plotly's own (their steps do nothing, ``method="skip"``); a handler on
plotly's ``plotly_sliderchange`` / ``plotly_buttonclicked`` events reads all four positions from the layout
and shows that cell (its maps are stored as base64 uint8 arrays, each map scaled to its own maximum).
"""

from __future__ import annotations

import base64
import json
from typing import Optional

import numpy as np
import plotly.graph_objects as go
from IPython.display import HTML
from plotly.offline import get_plotlyjs, get_plotlyjs_version as plotly_version
from plotly.subplots import make_subplots

from rattrlib.explorer import IFIAGrid

PANELS = ("clean image", "attacked image x′", "clean map", "attacked map")

#: the handler run by plotly after the figure is drawn; ``{plot_id}`` is the figure's div, ``__DATA__`` the grid
_SCRIPT = """
var gd = document.getElementById('{plot_id}');
var D = __DATA__;
function rows(s) {
  var b = atob(s), z = [];
  for (var r = 0; r < D.h; r++) {
    var row = new Array(D.w);
    for (var c = 0; c < D.w; c++) row[c] = b.charCodeAt(r * D.w + c);
    z.push(row);
  }
  return z;
}
function active(list, i) { return (list && list[i] && list[i].active) || 0; }
function show() {
  var L = gd.layout;
  var m = active(L.updatemenus, 0), i = active(L.updatemenus, 1), e = active(L.sliders, 0), b = active(L.sliders, 1);
  var cell = D.cells[((m * D.E + e) * D.B + b) * D.I + i], clean = D.clean[m * D.I + i];
  Plotly.update(gd, {z: [rows(clean[0]), rows(cell[0]), rows(clean[1]), rows(cell[1])]},
                {'title.text': cell[2]}, [0, 1, 2, 3]);
  gd.setAttribute('data-cell', [m, i, e, b].join(','));
}
gd.on('plotly_sliderchange', show);
gd.on('plotly_buttonclicked', show);
gd.explorerData = D;  // for tests and curious readers: the precomputed cells
gd.setAttribute('data-ready', '1');
"""


def _u8_image(x) -> np.ndarray:
    """C×H×W in [0, 1] → H×W uint8 (the channel mean)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float32).mean(0) * 255), 0, 255).astype(np.uint8)


def _u8_map(a) -> np.ndarray:
    """A map ≥ 0 → H×W uint8 scaled to its own maximum (an all-zero map stays 0)."""
    a = np.asarray(a, dtype=np.float32)
    top = float(a.max())
    return np.zeros(a.shape, np.uint8) if top <= 0 else np.clip(np.rint(a / top * 255), 0, 255).astype(np.uint8)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _image_label(grid: IFIAGrid, i: int) -> str:
    label = int(grid.labels[i])
    name = grid.classes[label] if 0 <= label < len(grid.classes) else str(label)
    return f"#{i} {name}"


def cell_title(grid: IFIAGrid, m: int, e: int, b: int, i: int) -> str:
    """The figure's title for cell (model m, ε e, β b, image i): the setting and its metrics beside the random
    baseline of the same ε."""
    topk, tau = 100 * float(grid.topk[m, e, b, i]), float(grid.kendall[m, e, b, i])
    rand_topk, rand_tau = 100 * float(grid.random_topk[m, e, i]), float(grid.random_kendall[m, e, i])
    kept = "" if bool(grid.success[m, e, b, i]) else " (no label-preserving step: clean image kept)"
    k = grid.settings["k"]
    return (f"{grid.models[m]} · image {_image_label(grid, i)} · ε = {grid.eps[e]:g}, β = {grid.betas[b]:g}<br>"
            f"IFIA: top-{k} ∩ {topk:.0f} %, Kendall τ {tau:.2f}{kept} · random sign: top-{k} ∩ {rand_topk:.0f} %, "
            f"τ {rand_tau:.2f}")


def grid_data(grid: IFIAGrid) -> dict:
    """The page's data: per (model, image) the clean image and map, per cell (model, ε, β, image; row-major in
    that order) the attacked image, the attacked map (base64 uint8, H×W) and the title."""
    n_m, n_e, n_b, n_i = grid.shape
    h, w = grid.images.shape[-2:]
    clean = [[_b64(_u8_image(grid.images[i])), _b64(_u8_map(grid.clean_map[m, i]))]
             for m in range(n_m) for i in range(n_i)]
    cells = [[_b64(_u8_image(grid.x_adv[m, e, b, i].float())), _b64(_u8_map(grid.adv_map[m, e, b, i].float())),
              cell_title(grid, m, e, b, i)]
             for m in range(n_m) for e in range(n_e) for b in range(n_b) for i in range(n_i)]
    return {"M": n_m, "E": n_e, "B": n_b, "I": n_i, "h": int(h), "w": int(w), "clean": clean, "cells": cells}


def _index(values: tuple, value: Optional[float], default: int) -> int:
    if value is None:
        return default
    if value not in values:
        raise ValueError(f"{value!r} is not one of the grid's values {list(values)}")
    return values.index(value)


def explorer_figure(grid: IFIAGrid, *, model: int = 0, image: int = 0, eps: Optional[float] = None,
                    beta: Optional[float] = None) -> go.Figure:
    """The explorer's plotly figure, showing the cell (``model``, ``image`` index; ``eps``, ``beta`` values of the
    grid, default: the largest ε and the β closest to 10, the RAR/GALI protocol's): four heatmaps, an ε slider, a
    β slider (their steps do nothing by themselves: :func:`explorer_html` adds the handler), a model menu and
    image buttons."""
    n_m, n_e, n_b, n_i = grid.shape
    if not (0 <= model < n_m and 0 <= image < n_i):
        raise ValueError(f"model={model}, image={image} must index the grid's {n_m} models and {n_i} images")
    e = _index(grid.eps, eps, n_e - 1)
    b = _index(grid.betas, beta, grid.nearest_beta())
    fig = make_subplots(rows=1, cols=4, subplot_titles=PANELS, horizontal_spacing=0.02)
    panels = [(_u8_image(grid.images[image]), "gray"), (_u8_image(grid.x_adv[model, e, b, image].float()), "gray"),
              (_u8_map(grid.clean_map[model, image]), "inferno"), (_u8_map(grid.adv_map[model, e, b, image].float()),
                                                                  "inferno")]
    for col, (z, colours) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(z=z, colorscale=colours, zmin=0, zmax=255, showscale=False, hoverinfo="skip"),
                      row=1, col=col)
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                         scaleanchor="x" if col == 1 else f"x{col}", row=1, col=col)

    # pixel layout (height 530): menus on top, the title with the metrics, the panels (paper y 0..1 = 170 px from
    # 150 px down), then the two sliders
    def slider(name: str, prefix: str, values: tuple, active: int, y: float) -> dict:
        return {"name": name, "active": active, "y": y, "yanchor": "top", "x": 0.04, "len": 0.92, "pad": {"t": 0},
                "currentvalue": {"prefix": prefix, "font": {"size": 13}},
                "steps": [{"label": f"{v:g}", "method": "skip", "args": [None]} for v in values]}

    def menu(name: str, labels: list, active: int, x: float, kind: str) -> dict:
        return {"name": name, "type": kind, "direction": "right" if kind == "buttons" else "down",
                "active": active, "x": x, "y": 1.82, "xanchor": "left", "yanchor": "top", "showactive": True,
                "pad": {"t": 0, "l": 0}, "buttons": [{"label": label, "method": "skip", "args": [None]}
                                                     for label in labels]}

    fig.update_layout(
        title={"text": cell_title(grid, model, e, b, image), "x": 0.01, "xanchor": "left", "y": 0.87,
               "yanchor": "top", "font": {"size": 13}},
        height=530, margin={"t": 150, "b": 210, "l": 10, "r": 10}, plot_bgcolor="white",
        sliders=[slider("eps", "ε (ℓ∞ budget) = ", grid.eps, e, -0.12),
                 slider("beta", "softplus β = ", grid.betas, b, -0.62)],
        updatemenus=[menu("model", list(grid.models), model, 0.0, "dropdown"),
                     menu("image", [_image_label(grid, i) for i in range(n_i)], image, 0.36, "buttons")])
    return fig


def explorer_html(grid: IFIAGrid, div_id: str = "ifia-explorer", **figure_kwargs) -> str:
    """:func:`explorer_figure` as an HTML ``<div>`` that works offline with no kernel: plotly.js inlined (not a
    CDN link; no require.js needed), the grid's data and the handler that shows the selected cell."""
    data = json.dumps(grid_data(grid), separators=(",", ":")).replace("</", "<\\/")
    return explorer_figure(grid, **figure_kwargs).to_html(
        include_plotlyjs=True, full_html=False, div_id=div_id, config={"displayModeBar": False, "responsive": True},
        post_script=_SCRIPT.replace("__DATA__", data))


def size_note(grid: IFIAGrid, html: str) -> str:
    """A sentence on what the explorer holds and weighs: cells, and the size of its HTML (plotly.js included)."""
    n_m, n_e, n_b, n_i = grid.shape
    plotlyjs = len(get_plotlyjs())
    return (f"{n_m * n_e * n_b * n_i} precomputed attacks ({n_m} models × {n_e} ε × {n_b} β × {n_i} images); the "
            f"figure's HTML weighs {len(html) / 1e6:.1f} MB, of which {plotlyjs / 1e6:.1f} MB is plotly.js "
            f"{plotly_version()} and {(len(html) - plotlyjs) / 1e6:.1f} MB the maps, images, titles and handler.")


def explorer(grid: IFIAGrid, **kwargs) -> HTML:
    """:func:`explorer_html` for a notebook cell's output (``text/html``, rendered as is by Jupyter Book)."""
    return HTML(explorer_html(grid, **kwargs))


__all__ = ["PANELS", "cell_title", "explorer", "explorer_figure", "explorer_html", "grid_data", "size_note"]
