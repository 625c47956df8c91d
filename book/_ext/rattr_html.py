"""Two fixes to the HTML that Jupyter Book 1 writes, found by the browser tests (tests/test_book_browser.py).

- Every page listed some inline scripts twice (sphinx-thebe's ``const THEBE_JS_URL = …``, sphinx-togglebutton's
  settings): the second ``const`` threw "Identifier 'THEBE_JS_URL' has already been declared" on every page.
  Each script is now kept once per page.
- The theme's ``default_mode`` (read from html_context) was empty, so a reader's first page logged "Got invalid
  theme mode" before falling back to ``auto``; it is now ``auto`` from the start.
"""

from __future__ import annotations


def _default_mode(app, config) -> None:
    config.html_context.setdefault("default_mode", "auto")  # pydata-sphinx-theme reads it from html_context


def _unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("config-inited", _default_mode)
    app.connect("html-page-context", _unique_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
