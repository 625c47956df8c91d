"""Build the book: execute every chapter in notebooks/ with papermill, then render HTML with jupyter-book.

    python book/build.py [--scale cpu] [--device auto] [--force] [--only 00_quickstart]

A chapter is re-executed only when its notebook, the rattrlib sources or the parameters changed since its last
successful run (a stamp beside the executed notebook records that); otherwise the stored execution is reused.
Expensive artefacts inside a chapter (trained models, evaluation tables) are reused through the results cache.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import papermill
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
EXECUTED = BOOK / "chapters"
SCALES = ("smoke", "cpu", "paper")
MATHJAX = "mathjax@3.2.2"  # bundled from the npm registry so the book's equations render without a CDN


class IPCKernelManager(AsyncKernelManager):
    """Kernels on local IPC sockets instead of TCP: nothing leaves the machine, and ipykernel no longer warns
    that it "is running over TCP without encryption" at every chapter."""

    @default("transport")
    def _default_transport(self):
        return "ipc"


def source_digest(notebook: Path, parameters: dict) -> str:
    """Hash of the notebook, every rattrlib source file and the parameters: what a chapter's outputs depend on."""
    digest = hashlib.sha256()
    digest.update(notebook.read_bytes())
    for path in sorted((ROOT / "rattrlib").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    return digest.hexdigest()


def chapters_in_toc() -> list[str]:
    """Chapter names (``chapters/<name>``) listed in _toc.yml, in order."""
    names = []
    for line in (BOOK / "_toc.yml").read_text().splitlines():
        line = line.strip()
        if line.startswith("- file: chapters/"):
            names.append(line.removeprefix("- file: chapters/"))
    return names


def execute_chapter(notebook: Path, parameters: dict, force: bool) -> str:
    """Run ``notebook`` with papermill into book/chapters/ unless its stamp is current; return what was done."""
    output = EXECUTED / notebook.name
    stamp = output.with_suffix(".stamp")
    digest = source_digest(notebook, parameters)
    if not force and output.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return "reused"
    tmp = output.with_suffix(".running.ipynb")
    start = time.perf_counter()
    papermill.execute_notebook(str(notebook), str(tmp), parameters=parameters, cwd=str(NOTEBOOKS),
                               progress_bar=False, log_output=False, kernel_manager_class=IPCKernelManager)
    os.replace(tmp, output)  # a failed run leaves the last good execution in place
    stamp.write_text(digest + "\n")
    return f"executed in {time.perf_counter() - start:.0f} s"


def ensure_mathjax() -> None:
    """Unpack MathJax's browser build into book/_static/mathjax once (``npm pack``), for offline rendering."""
    target = BOOK / "_static" / "mathjax"
    if (target / "tex-chtml.js").exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", MATHJAX], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        archive = next(Path(tmp).glob("mathjax-*.tgz"))
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(Path(tmp) / "package" / "es5", target)


def write_verdicts_page(scale: str, chapters: list[str]) -> Path:
    """book/verdicts.md: the front page of verdicts, from the verdicts the chapters saved at ``scale``."""
    from rattrlib.chapters._common import verdicts_path
    from rattrlib.claims import load_verdicts, verdicts_frontpage

    paths = [verdicts_path(name, scale) for name in chapters if verdicts_path(name, scale).exists()]
    page = BOOK / "verdicts.md"
    page.write_text(verdicts_frontpage(load_verdicts(paths), scale))
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu", choices=SCALES)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--force", action="store_true", help="re-execute every chapter")
    parser.add_argument("--only", nargs="*", help="chapter names to execute (default: all)")
    args = parser.parse_args(argv)

    listed = chapters_in_toc()
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    unlisted = [nb.stem for nb in notebooks if nb.stem not in listed]
    if unlisted:
        parser.error(f"notebooks missing from book/_toc.yml: {unlisted}")
    if args.only:
        unknown = sorted(set(args.only) - {nb.stem for nb in notebooks})
        if unknown:
            parser.error(f"unknown chapters {unknown}; valid: {[nb.stem for nb in notebooks]}")
        notebooks = [nb for nb in notebooks if nb.stem in args.only]

    EXECUTED.mkdir(exist_ok=True)
    parameters = {"scale": args.scale, "device": args.device}
    total = time.perf_counter()
    for notebook in notebooks:
        print(f"[book] {notebook.name}: ", end="", flush=True)
        print(execute_chapter(notebook, parameters, args.force), flush=True)
    missing = [name for name in listed if not (EXECUTED / f"{name}.ipynb").exists()]
    if missing:
        print(f"[book] chapters never executed: {missing}", file=sys.stderr)
        return 1
    write_verdicts_page(args.scale, listed)
    ensure_mathjax()
    print("[book] rendering HTML with jupyter-book", flush=True)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(BOOK)], check=True)
    print(f"[book] done in {time.perf_counter() - total:.0f} s: {BOOK / '_build' / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
