"""Build the book: execute every chapter in notebooks/ with papermill, then render HTML with jupyter-book.

    python book/build.py [--scale cpu] [--device auto] [--force] [--only 00_quickstart] [--no-render] [--out DIR]
                         [--jobs N]

A chapter is re-executed only when its notebook, the rattrlib sources or the parameters changed since its last
successful run (a stamp beside the executed notebook records the digest, the scale and the parameters);
otherwise the stored execution is reused. Expensive artefacts inside a chapter (trained models, evaluation tables)
are reused through the results cache.

Every chapter is attempted: one that fails becomes a page showing its error and the command that reruns it, the
rest still render, a summary is printed and the build exits non-zero. The book is never rendered from chapters
executed at different scales (e.g. after ``--only X --scale smoke`` while the others are at cpu).

``--out DIR`` builds a separate book in DIR (the book's sources copied there, chapters executed into DIR/chapters,
HTML in DIR/_build/html), leaving book/ alone: ``make test`` builds its smoke book in build/smoke-book this way.
The first page ends with the versions the book was built with (``_versions.md``, written at every render).

``--jobs N`` executes N chapters at once, each kernel with cores // N torch threads (``OMP_NUM_THREADS``); the
chapters share the results cache, whose per-key locks make a chapter wait for a model another one is training.
Floating-point sums depend on the thread count, so ``--jobs`` changes trained weights in their last bits: ``make
test`` uses it for the smoke book, ``make book`` does not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from rattrlib.run import execute

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
EXECUTED = BOOK / "chapters"
SCALES = ("smoke", "cpu", "paper")
MATHJAX = "mathjax@3.2.2"  # bundled from the npm registry so the book's equations render without a CDN
LOCKS = (ROOT / "requirements.lock", ROOT / "requirements-no-deps.lock")  # the locked environment `make env` installs
# The packages whose versions the first page prints (after Python), in this order.
VERSIONED = ("torch", "torchvision", "numpy", "scipy", "pandas", "matplotlib", "scikit-image", "scikit-learn",
             "torchattacks", "captum", "quantus", "plotly", "papermill", "ipykernel", "jupyter-book", "sphinx",
             "myst-nb", "sphinxcontrib-bibtex")


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


def read_stamp(stamp: Path) -> dict | None:
    """The stamp of an executed chapter (digest, scale, parameters, status), or None when it is absent or in the
    old plain-digest format (unknown scale: the chapter is re-executed)."""
    try:
        record = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and {"digest", "scale", "status"} <= set(record) else None


def write_stamp(stamp: Path, digest: str, parameters: dict, status: str) -> None:
    record = {"digest": digest, "scale": parameters["scale"], "parameters": parameters, "status": status}
    stamp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def rerun_command(name: str, parameters: dict) -> str:
    """The command that executes chapter ``name`` alone with ``parameters`` (into the same book folder)."""
    device = "" if parameters.get("device", "auto") == "auto" else f" --device {parameters['device']}"
    out = "" if BOOK == ROOT / "book" else f" --out {os.path.relpath(BOOK, ROOT)}"
    return f"python book/build.py --scale {parameters['scale']}{device}{out} --only {name}"


def use_output(folder: Path) -> None:
    """Build into ``folder`` instead of book/: copy the book's sources there (not its executed chapters, its HTML
    or this script) and point BOOK and EXECUTED at it."""
    global BOOK, EXECUTED
    folder = folder.resolve()
    if folder == BOOK.resolve():
        return
    folder.mkdir(parents=True, exist_ok=True)
    for path in BOOK.iterdir():
        if path.name in ("chapters", "_build", "build.py", "__pycache__"):
            continue
        if path.is_dir():
            shutil.copytree(path, folder / path.name, dirs_exist_ok=True)
        else:
            shutil.copy2(path, folder / path.name)
    BOOK, EXECUTED = folder, folder / "chapters"


def drop_widget_state(notebook: Path) -> None:
    """Remove the widget state nbclient saved in ``notebook``'s metadata: Jupyter Book would load the widget
    JavaScript for it from a CDN, and the book shows no live widget (the explorer page is precomputed). Executing
    with ``store_widget_state=False`` instead breaks nbclient's Output-widget handling (a KeyError)."""
    data = json.loads(notebook.read_text())
    if data.get("metadata", {}).pop("widgets", None) is not None:
        notebook.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def execute_chapter(notebook: Path, parameters: dict, force: bool) -> str:
    """Run ``notebook`` with papermill into book/chapters/ unless its stamp is current; return what was done.

    A failure propagates after the partial ``.running.ipynb`` is removed; :func:`attempt_chapter` handles it."""
    output = EXECUTED / notebook.name
    stamp = output.with_suffix(".stamp")
    digest = source_digest(notebook, parameters)
    record = read_stamp(stamp)
    if not force and output.exists() and record and record["status"] == "executed" and record["digest"] == digest:
        return "reused"
    tmp = output.with_suffix(".running.ipynb")
    start = time.perf_counter()
    try:
        execute(notebook, parameters, tmp)
        drop_widget_state(tmp)
    except BaseException:  # an error or Ctrl-C: no partial execution is left behind
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, output)
    write_stamp(stamp, digest, parameters, "executed")
    return f"executed in {time.perf_counter() - start:.0f} s"


def attempt_chapter(notebook: Path, parameters: dict, force: bool) -> str:
    """:func:`execute_chapter`, turning an exception into the chapter's failure page; returns what was done."""
    try:
        return execute_chapter(notebook, parameters, force)
    except Exception as error:  # a failing chapter must not stop the others
        write_failure_page(notebook, parameters, error)
        return f"FAILED ({_error_line(error)})"


def attempt_chapters(notebooks: list[Path], parameters: dict, force: bool, jobs: int) -> dict[str, str]:
    """:func:`attempt_chapter` for each notebook, ``jobs`` at a time (forked workers, each chapter's kernel with
    cores // ``jobs`` torch threads); prints each outcome as it comes and returns them in book order."""
    if jobs == 1:
        results = {}
        for notebook in notebooks:
            print(f"[book] {notebook.name}: ", end="", flush=True)
            results[notebook.stem] = attempt_chapter(notebook, parameters, force)
            print(results[notebook.stem], flush=True)
        return results
    threads = max(1, (os.cpu_count() or 1) // jobs)
    results = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"), initializer=_limit_threads,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(attempt_chapter, notebook, parameters, force): notebook for notebook in notebooks}
        for future in as_completed(futures):
            notebook = futures[future]
            results[notebook.stem] = future.result()
            print(f"[book] {notebook.name}: {results[notebook.stem]}", flush=True)
    return {notebook.stem: results[notebook.stem] for notebook in notebooks}


def _limit_threads(threads: int) -> None:
    """In a worker: the kernels it starts inherit ``threads`` as their torch (OpenMP) thread count."""
    os.environ["OMP_NUM_THREADS"] = str(threads)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _error_line(error: Exception) -> str:
    """``Type: message`` on one line, from a PapermillExecutionError or any exception."""
    ename, evalue = getattr(error, "ename", type(error).__name__), getattr(error, "evalue", str(error))
    return f"{ename}: " + " ".join(_ANSI.sub("", str(evalue)).split())


def _fenced(text: str, language: str = "") -> str:
    """``text`` as a markdown code block, fenced with more backticks than it contains."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _notebook_json(notebook: Path) -> dict:
    """The notebook's JSON, or {} when it cannot be read (a failure page must still be written)."""
    try:
        return json.loads(notebook.read_text())
    except (OSError, ValueError):
        return {}


def notebook_title(notebook: Path) -> str:
    """The first ``# `` heading of the notebook's markdown, else its stem."""
    for cell in _notebook_json(notebook).get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def failure_markdown(notebook: Path, parameters: dict, error: Exception) -> str:
    """The text of a failed chapter's page: the error, the failing cell, the traceback and the rerun command."""
    parts = [f"# {notebook_title(notebook)} (build failed)",
             f"This chapter failed while `book/build.py` executed it at scale **{parameters['scale']}**; the "
             "other chapters were still built. The error:",
             _fenced(_error_line(error))]
    source = getattr(error, "source", None)
    if source:
        parts += [f"in this cell (execution count {getattr(error, 'exec_count', '?')}):", _fenced(source, "python")]
    traceback = getattr(error, "traceback", None)
    if traceback:
        parts += ["Traceback:", _fenced(_ANSI.sub("", "\n".join(traceback)))]
    parts += ["Rerun this chapter alone with:", _fenced(rerun_command(notebook.stem, parameters), "bash")]
    return "\n\n".join(parts) + "\n"


def write_failure_page(notebook: Path, parameters: dict, error: Exception) -> Path:
    """book/chapters/<name>.ipynb as a one-cell notebook showing the failure; its stamp says ``failed`` so the
    next build re-executes it and its stale outputs of any earlier run are never shown."""
    output = EXECUTED / notebook.name
    page = {"cells": [{"cell_type": "markdown", "id": "build-failed", "metadata": {},
                       "source": failure_markdown(notebook, parameters, error)}],
            "metadata": _notebook_json(notebook).get("metadata", {}), "nbformat": 4, "nbformat_minor": 5}
    output.write_text(json.dumps(page, indent=1) + "\n")
    write_stamp(output.with_suffix(".stamp"), source_digest(notebook, parameters), parameters, "failed")
    return output


def chapter_states(names: list[str]) -> dict[str, str]:
    """Per chapter of the toc: its scale when executed, ``failed``, ``unknown`` (no or old stamp) or ``missing``."""
    states = {}
    for name in names:
        record = read_stamp(EXECUTED / f"{name}.stamp")
        if not (EXECUTED / f"{name}.ipynb").exists():
            states[name] = "missing"
        elif record is None:
            states[name] = "unknown"
        else:
            states[name] = "failed" if record["status"] == "failed" else record["scale"]
    return states


def mixed_scales_error(states: dict[str, str], scale: str) -> str | None:
    """Why the executed chapters cannot make one book at ``scale`` (some executed at another or an unknown
    scale), or None when they can. Failed and missing chapters are not counted."""
    by_scale: dict[str, list[str]] = {}
    for name, state in states.items():
        if state not in ("failed", "missing"):
            by_scale.setdefault(state, []).append(name)
    stray = [name for s, names in sorted(by_scale.items()) if s != scale for name in names]
    if not stray:
        return None
    listing = "; ".join(f"{s}: {', '.join(names)}" for s, names in sorted(by_scale.items()))
    return (f"refusing to render a book at scale {scale} from chapters executed at different scales ({listing}; "
            f"'unknown' = no stamp, or one from before scales were recorded); re-execute them at one scale: "
            f"python book/build.py --scale {scale} --only {' '.join(stray)}")


def ensure_mathjax() -> None:
    """Unpack MathJax's browser build into book/_mathjax/mathjax once (``npm pack``), for offline rendering.

    Not under _static: Jupyter Book adds every .js file found under _static to every page, and MathJax's ~90
    components loaded at once break each other (some twenty page errors on every page, and a 404). _config.yml
    copies _mathjax to the site's root (html_extra_path) and loads only tex-chtml.js, which fetches what it needs."""
    target = BOOK / "_mathjax" / "mathjax"
    old = BOOK / "_static" / "mathjax"  # where earlier builds put it
    if old.is_dir():
        if (target / "tex-chtml.js").exists():
            shutil.rmtree(old)
        else:
            target.parent.mkdir(exist_ok=True)
            os.replace(old, target)
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


def git_commit() -> str:
    """The checkout's commit, ``+ uncommitted changes`` when the library, chapters or book differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rattrlib", "notebooks", "book", "pyproject.toml",
                                *(lock.name for lock in LOCKS)], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"`{head.stdout.strip()}`" + (" + uncommitted changes" if dirty.stdout.strip() else "")


def locked_versions(lock: Path) -> dict[str, str]:
    """``name: version`` of every ``name==version`` line of a requirements lock file (names normalised)."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", lock.read_text(), flags=re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in pins}


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions_markdown(scale: str) -> str:
    """The first page's last section: when, at which scale and commit, with which Python and packages the book
    was built, and whether the installed packages are the locked ones."""
    rows = [("Python", platform.python_version())]
    rows += [(name, installed_version(name) or "not installed") for name in VERSIONED]
    present = [lock for lock in LOCKS if lock.exists()]
    names = " and ".join(f"`{lock.name}`" for lock in present)
    if present:
        pins = {name: version for lock in present for name, version in locked_versions(lock).items()}
        differ = sorted(f"{name} {installed_version(name) or 'absent'} (locked {version})"
                        for name, version in pins.items() if installed_version(name) != version)
        lock = (f"All {len(pins)} packages of {names} were installed at their locked versions." if not differ
                else f"{len(differ)} of the {len(pins)} packages of {names} differ from the lock: "
                     + ", ".join(differ) + ".")
    else:
        lock = "No lock file was found: the environment is not the locked one."
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = "\n".join(["| package | version |", "|---|---|"] + [f"| {n} | {v} |" for n, v in rows])
    return (f"## Built with\n\nThis book was rendered by `book/build.py` on {when} at scale **{scale}**, from "
            f"rattrlib commit {git_commit()}, on {platform.system()} {platform.machine()} with:\n\n{table}\n\n"
            f"{lock} A chapter is re-executed whenever its notebook, the rattrlib sources or its parameters "
            f"change; an unchanged chapter keeps the outputs of its last execution.\n")


def write_versions_page(scale: str) -> Path:
    """BOOK/_versions.md, included at the end of the first page (intro.md)."""
    page = BOOK / "_versions.md"
    page.write_text(versions_markdown(scale))
    return page


def render(scale: str, chapters: list[str]) -> None:
    """The verdicts page, the versions section, MathJax and the HTML of the book (jupyter-book)."""
    write_verdicts_page(scale, chapters)
    write_versions_page(scale)
    ensure_mathjax()
    print("[book] rendering HTML with jupyter-book", flush=True)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(BOOK)], check=True)


def print_summary(results: dict[str, str], states: dict[str, str], parameters: dict) -> list[str]:
    """Per chapter of the toc: executed / reused / FAILED (with its rerun command); returns the failed ones."""
    print(f"[book] summary at scale {parameters['scale']}:")
    width = max(map(len, states), default=0)
    failed = []
    for name, state in states.items():
        earlier = {"failed": "FAILED in an earlier build", "missing": "never executed",
                   "unknown": "not run now (executed at an unknown scale)"}
        result = results.get(name, earlier.get(state, f"not run now (executed at scale {state})"))
        if result.startswith("FAILED"):
            failed.append(name)
            result += f"; rerun: {rerun_command(name, parameters)}"
        print(f"  {name.ljust(width)}  {result}")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu", choices=SCALES)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--force", action="store_true", help="re-execute every chapter")
    parser.add_argument("--only", nargs="*", help="chapter names to execute (default: all)")
    parser.add_argument("--no-render", action="store_true",
                        help="execute the chapters only: no HTML, no scale or completeness check of the book")
    parser.add_argument("--out", type=Path, help="build a separate book in this folder (default: book/ itself)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="chapters executed at once, each with cores // jobs torch threads (default 1)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.out:
        use_output(args.out)

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
    results = attempt_chapters(notebooks, parameters, args.force, args.jobs)
    states = chapter_states(listed)
    failed = print_summary(results, states, parameters)
    if args.no_render:
        return 1 if any(name in failed for name in results) else 0
    missing = [name for name, state in states.items() if state == "missing"]
    if missing:
        print(f"[book] chapters never executed: {missing}", file=sys.stderr)
        return 1
    mixed = mixed_scales_error(states, args.scale)
    if mixed:
        print(f"[book] {mixed}", file=sys.stderr)
        return 1
    render(args.scale, [name for name in listed if name not in failed])
    print(f"[book] done in {time.perf_counter() - total:.0f} s: {BOOK / '_build' / 'html' / 'index.html'}")
    if failed:
        print(f"[book] {len(failed)} chapter(s) FAILED, shown as error pages: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
