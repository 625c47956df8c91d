"""The rendered smoke book (build/smoke-book/_build/html, built by ``make test``) in a real browser: Debian's chromium
driven by playwright, the HTML served by a local http server. Every page of the toc loads with no console error, no
failed request and no request off the machine; MathJax has typeset every equation (no MathJax error, no raw TeX such
as ``$x$`` or ``\\beta`` left in the visible text); every image has loaded; every table has rows; every internal link
resolves (page and anchor). A full-page screenshot of each page is saved under build/screenshots/.

test_the_checks_fail_on_a_broken_page shows each check failing on a copy of a rendered chapter broken on purpose.
Outside ``make test`` the tests skip when chromium, playwright or the smoke book is absent; under it they fail.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag

import pytest
import yaml

from smoke_book import ROOT, SMOKE_BOOK, absent

from explorer_browser import CHROMIUM, watch_offline  # noqa: E402 - one place names the browser
HTML = SMOKE_BOOK / "_build" / "html"
SCREENSHOTS = ROOT / "build" / "screenshots"


def toc_pages(toc: Path) -> list[str]:
    """The HTML path of every page of a Jupyter Book toc (root first), e.g. ``chapters/02_rar.html``."""
    def files(entries):
        for entry in entries or []:
            if "file" in entry:
                yield entry["file"]
            yield from files(entry.get("sections"))
            yield from files(entry.get("chapters"))

    data = yaml.safe_load(toc.read_text())
    return [f"{name}.html" for name in [data["root"], *files(data.get("chapters")),
                                        *files(data.get("parts"))]]


PAGES = toc_pages(ROOT / "book" / "_toc.yml")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """An http server on 127.0.0.1 serving ``directory``, in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


# Run in the page once it has loaded: typeset math, images, tables, raw TeX, links. Returns what it found.
INSPECT = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
    const images = Array.from(document.images);
    images.forEach(img => { img.loading = "eager"; });
    await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
        img.addEventListener("load", done); img.addEventListener("error", done); setTimeout(done, 10000); })));
    const report = {untypeset: [], mathErrors: [], rawTex: [], images: [], emptyTables: [], links: []};
    for (const el of document.querySelectorAll(".math"))
        if (!el.querySelector("mjx-container")) report.untypeset.push(el.textContent.trim().slice(0, 80));
    for (const el of document.querySelectorAll("mjx-merror"))
        report.mathErrors.push(el.getAttribute("data-mjx-error") || el.textContent);
    for (const img of images)
        if (!img.complete || img.naturalWidth === 0) report.images.push(img.getAttribute("src"));
    for (const table of document.querySelectorAll("table"))
        if (!table.querySelector("td")) report.emptyTables.push(table.textContent.trim().slice(0, 80));
    const skip = "pre, code, script, style, textarea, noscript, mjx-container, .highlight";
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const tex = /\\$[^$\\n]+\\$|\\\\[A-Za-z]+|\\\\[()\\[\\]]/;
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!parent || parent.closest(skip) || !parent.checkVisibility()) continue;
        const match = node.textContent.match(tex);
        if (match) report.rawTex.push(node.textContent.trim().slice(0, 120));
    }
    for (const a of document.querySelectorAll("a[href]"))
        if (a.href.startsWith(location.origin)) report.links.push(a.href);
    return report;
}"""


def check_page(context, url: str, screenshot: Path | None = None, seen: dict | None = None) -> list[str]:
    """Open ``url`` in a new page of the playwright ``context``; return every problem found (empty: the page is
    fine). ``seen`` caches link targets (URL without anchor -> status and HTML) across pages."""
    origin = re.match(r"https?://[^/]+", url)[0]
    seen = {} if seen is None else seen
    page = context.new_page()
    problems = watch_offline(page, (origin, "data:", "blob:"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})")
            if r.url.startswith(origin) else None)
    try:
        page.goto(url, wait_until="load")
        report = page.evaluate(INSPECT)
        problems += [f"equation not typeset by MathJax: {t!r}" for t in report["untypeset"]]
        problems += [f"MathJax error: {e!r}" for e in report["mathErrors"]]
        problems += [f"raw TeX in the text: {t!r}" for t in report["rawTex"]]
        problems += [f"image not loaded: {src}" for src in report["images"]]
        problems += [f"table without rows: {t!r}" for t in report["emptyTables"]]
        for link in sorted(set(report["links"])):
            problems += check_link(context, link, seen)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    return problems


def check_link(context, link: str, seen: dict) -> list[str]:
    """The problems of an internal link: its page is not served (HTTP status), or its anchor is not on it."""
    target, anchor = urldefrag(link)
    if target not in seen:
        response = context.request.get(target)
        seen[target] = (response.status, response.text() if response.ok else "")
    status, html = seen[target]
    if status >= 400:
        return [f"broken link (HTTP {status}): {link}"]
    if anchor and target.endswith(".html") and f'id="{unquote(anchor)}"' not in html:
        return [f"broken link (no anchor #{anchor}): {link}"]
    return []


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, launched by playwright (its own browser download is not used)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        absent("playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        absent(f"chromium is not at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def book_url():
    if not (HTML / "index.html").exists():
        absent(f"the rendered smoke book ({HTML}) is absent")
    with serve(HTML) as url:
        yield url


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


LINKS_SEEN: dict = {}


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_completely(context, book_url, path):
    screenshot = SCREENSHOTS / (path.removesuffix(".html").replace("/", "_") + ".png")
    problems = check_page(context, book_url + path, screenshot, LINKS_SEEN)
    assert not problems, f"{path}:\n" + "\n".join(problems)


def test_equations_are_there_to_check(context, book_url):
    page = context.new_page()
    page.goto(book_url + "chapters/01_fragility.html", wait_until="load")
    page.evaluate("async () => { await MathJax.startup.promise; }")
    assert page.locator("mjx-container").count() > 0  # the check above is not vacuous: equations were typeset


def test_the_explorer_page_works_offline_without_a_kernel(browser, book_url):
    """The rendered explorer chapter, opened from disk with every non-local request aborted: moving the ε and β
    sliders, the model menu and the image buttons redraws the maps and changes the metrics in the title
    (tests/explorer_browser.py)."""
    from explorer_browser import check_static_explorer, open_offline

    path = HTML / "chapters" / "08_explorer.html"
    if not path.exists():
        absent(f"the rendered explorer page ({path}) is absent")
    page, problems = open_offline(browser, path)
    states = check_static_explorer(page)
    assert len({s["cell"] for s in states}) == len(states) >= 5   # every control moved to a new cell
    assert not problems, "\n".join(problems)
    page.close()


BREAKAGES = {
    "broken equation": (r'<span class="math notranslate nohighlight">\(\beta^{2}^{3}\)</span>', "MathJax error"),
    "unbalanced equation": (r'<span class="math notranslate nohighlight">\(\frac{1}{\)</span>',
                            "equation not typeset by MathJax"),
    "raw TeX": (r"<p>a bound on $\beta$ that MathJax never saw</p>", "raw TeX in the text"),
    "missing image": ('<img src="../_images/no-such-figure.png" alt="gone">', "image not loaded"),
    "empty table": ("<table><thead><tr><th>model</th></tr></thead><tbody></tbody></table>", "table without rows"),
    "broken link": ('<a href="no_such_chapter.html">next</a>', "broken link (HTTP 404)"),
    "broken anchor": ('<a href="01_fragility.html#no-such-section">there</a>', "broken link (no anchor"),
    "missing asset": ('<link rel="stylesheet" href="../_static/no-such.css">', "HTTP 404"),
    "console error": ('<script>console.error("boom")</script>', "console error: boom"),
    "request off the machine": ('<img src="https://example.org/x.png" alt="remote">', "request off the machine"),
}


@pytest.fixture(scope="module")
def broken_book(tmp_path_factory):
    """A copy of the rendered book (links to its files) with, in chapters/, one copy of 01_fragility per breakage
    (and one intact), each with one defect inserted at the end of its article."""
    if not (HTML / "chapters" / "01_fragility.html").exists():
        absent(f"the rendered smoke book ({HTML}) is absent")
    folder = tmp_path_factory.mktemp("broken-book")
    for entry in HTML.iterdir():
        if entry.name != "chapters":
            (folder / entry.name).symlink_to(entry)
    (folder / "chapters").mkdir()
    for entry in (HTML / "chapters").iterdir():
        (folder / "chapters" / entry.name).symlink_to(entry)
    html = (HTML / "chapters" / "01_fragility.html").read_text()
    assert html.count("</article>") == 1
    (folder / "chapters" / "intact.html").write_text(html)
    for i, (snippet, _) in enumerate(BREAKAGES.values()):
        (folder / "chapters" / f"broken{i}.html").write_text(html.replace("</article>", snippet + "</article>"))
    with serve(folder) as url:
        yield url


def test_the_checks_pass_on_an_intact_copy(context, broken_book):
    assert check_page(context, broken_book + "chapters/intact.html") == []


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_checks_fail_on_a_broken_page(context, broken_book, breakage):
    index, (_, expected) = list(BREAKAGES).index(breakage), BREAKAGES[breakage]
    problems = check_page(context, broken_book + f"chapters/broken{index}.html")
    assert any(expected in problem for problem in problems), problems
