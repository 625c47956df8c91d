"""Where the smoke book is (``make test`` builds it:
``python book/build.py --scale smoke --out build/smoke-book --jobs 2``) and what to do when it, or the browser, is
absent: skip with the reason, or fail under ``make test``, which sets RATTR_SMOKE_BOOK_REQUIRED=1 so that nothing it
must check is skipped."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE_BOOK = Path(os.environ.get("RATTR_SMOKE_BOOK", ROOT / "build" / "smoke-book"))
BUILD_COMMAND = "python book/build.py --scale smoke --out build/smoke-book --jobs 2"


def load_build():
    """book/build.py as a module."""
    spec = importlib.util.spec_from_file_location("book_build_smoke", ROOT / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def absent(reason: str) -> None:
    """Skip with ``reason``, or fail under ``make test`` (RATTR_SMOKE_BOOK_REQUIRED=1)."""
    if os.environ.get("RATTR_SMOKE_BOOK_REQUIRED") == "1":
        pytest.fail(f"{reason} (make test must provide it)")
    pytest.skip(f"{reason}; `make test` provides it (the book: {BUILD_COMMAND})")
