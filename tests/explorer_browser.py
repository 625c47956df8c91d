"""Browser checks of the static ε / β explorer (rattrlib.static_explorer), for any page that holds it: a file
written by a test or the rendered book's explorer chapter. Not a test module itself (no ``test_`` prefix).

>>> with offline_page("book/_build/html/chapters/08_explorer.html") as (page, problems):
...     seen = check_static_explorer(page)
...     assert not problems
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

#: Debian's chromium (playwright's own browser download is not reachable); RATTR_CHROMIUM overrides it
CHROMIUM = os.environ.get("RATTR_CHROMIUM", "/usr/bin/chromium")


def watch_offline(page, allowed: tuple) -> list[str]:
    """Abort every request of ``page`` whose URL does not start with one of ``allowed`` (no network) and return
    the list that collects, from then on, those requests, the console errors and the page errors."""
    problems: list[str] = []

    def route(r):
        if r.request.url.startswith(allowed):
            r.continue_()
        else:
            problems.append(f"request off the machine: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: problems.append(f"console error: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return problems


def open_offline(browser, path, width: int = 1100, height: int = 1000):
    """A new page of ``browser`` (a playwright chromium) showing the local file ``path`` with every non-``file:``
    request aborted (:func:`watch_offline`); returns ``(page, problems)``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    problems = watch_offline(page, ("file:", "data:", "blob:"))
    page.goto(Path(path).resolve().as_uri())
    return page, problems


@contextlib.contextmanager
def offline_page(path, width: int = 1100, height: int = 1000):
    """:func:`open_offline` in a chromium of its own (for a test that has no browser yet); yields
    ``(page, problems)``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield open_offline(browser, path, width, height)
        finally:
            browser.close()


def _state(page, div: str) -> dict:
    """The explorer's rendered state: its title text, the data URLs of its four heatmap images, its cell, and the
    page data's entries for that cell (so that a panel is expected to change exactly when its data does)."""
    return page.evaluate("""(div) => {
        const gd = document.getElementById(div), D = gd.explorerData;
        const cell = (gd.getAttribute('data-cell') || '').split(',').map(Number);
        let data = null;
        if (cell.length === 4) {
            const [m, i, e, b] = cell, c = D.cells[((m * D.E + e) * D.B + b) * D.I + i], k = D.clean[m * D.I + i];
            data = [k[0], c[0], k[1], c[1]];
        }
        return {title: gd.querySelector('.gtitle').textContent,
                images: Array.from(gd.querySelectorAll('.hm image')).map(i => i.getAttribute('href')),
                cell: gd.getAttribute('data-cell'), data: data};
    }""", div)


def _click_slider(page, div: str, index: int, fraction: float) -> None:
    rail = page.locator(f"#{div} .slider-group").nth(index).locator(".slider-rail-touch-rect")
    box = rail.bounding_box()
    page.mouse.click(box["x"] + fraction * box["width"], box["y"] + box["height"] / 2)


def check_static_explorer(page, div: str = "ifia-explorer", timeout_ms: int = 30_000) -> list[dict]:
    """On a loaded page holding the explorer ``div`` (the figure starts at the largest ε): wait until it is ready,
    then move the β slider to its first value, the ε slider to its first value, pick the last model in the menu
    and the second image. After each control, assert that the title (which holds the metrics) changed, that
    every heatmap whose precomputed data changed was redrawn (and no other), and that moving ε changed the
    attacked map. Returns the states seen (title, heatmap data URLs, cell "model,image,ε,β", cell data)."""
    page.wait_for_selector(f"#{div}[data-ready='1'] .hm image", state="attached", timeout=timeout_ms)
    page.locator(f"#{div}").scroll_into_view_if_needed()
    states = [_state(page, div)]
    assert len(states[0]["images"]) == 4, states[0]["images"]

    def changed(what: str) -> dict:
        page.wait_for_function("([div, cell]) => document.getElementById(div).getAttribute('data-cell') !== cell",
                               arg=[div, states[-1]["cell"]], timeout=timeout_ms)
        now, before = _state(page, div), states[-1]
        assert now["title"] != before["title"], f"{what}: the title (metrics) did not change: {now['title']}"
        if before["data"] is not None:
            for panel in range(4):
                data_changed = now["data"][panel] != before["data"][panel]
                image_changed = now["images"][panel] != before["images"][panel]
                assert data_changed == image_changed, f"{what}: panel {panel} redrawn {image_changed}, data " \
                                                      f"changed {data_changed}"
        states.append(now)
        return now

    _click_slider(page, div, 1, 0.0)          # β: the first value (the figure starts at the β nearest 10)
    changed("β slider")
    before = states[-1]["images"][3]
    _click_slider(page, div, 0, 0.0)          # ε: from the largest value to the smallest
    assert changed("ε slider")["images"][3] != before, "moving ε did not change the attacked map"
    page.locator(f"#{div} .updatemenu-header-group").first.click()
    page.locator(f"#{div} .updatemenu-dropdown-button").last.click()
    changed("model menu")
    page.locator(f"#{div} .updatemenu-button").nth(1).click()
    changed("image buttons")
    return states


__all__ = ["CHROMIUM", "check_static_explorer", "offline_page", "open_offline", "watch_offline"]
