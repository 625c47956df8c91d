"""The smoke book ``make test`` builds: every chapter of the toc was executed by book/build.py at scale smoke without
error, from the current notebook and library (one test per chapter, so a failing chapter is named with its error).
This replaces running the chapters under nbval: each chapter is executed once, and the same execution is rendered
and checked in a browser (test_book_browser.py)."""

from __future__ import annotations

import json

import pytest

from smoke_book import ROOT, SMOKE_BOOK, absent, load_build

build = load_build()
CHAPTERS = build.chapters_in_toc()


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_executed_without_error_at_smoke(name):
    if not (SMOKE_BOOK / "chapters").is_dir():
        absent(f"the smoke book's executed chapters ({SMOKE_BOOK / 'chapters'}) are absent")
    record = build.read_stamp(SMOKE_BOOK / "chapters" / f"{name}.stamp")
    assert record is not None, f"{name} was never executed into the smoke book"
    if record["status"] == "failed":
        page = json.loads((SMOKE_BOOK / "chapters" / f"{name}.ipynb").read_text())["cells"][0]["source"]
        pytest.fail(f"chapter {name} failed at scale smoke; its error page:\n{page}", pytrace=False)
    assert record["scale"] == "smoke" and record["status"] == "executed"
    notebook = ROOT / "notebooks" / f"{name}.ipynb"
    assert record["digest"] == build.source_digest(notebook, record["parameters"]), (
        f"{name} was executed from another version of its notebook or of rattrlib: rebuild the smoke book")
