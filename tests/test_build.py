"""book/build.py on throwaway books: tiny notebooks (python3 kernel), a temporary book folder, no HTML rendering.

Every chapter is attempted, a failing one becomes a page with its error and rerun command, no ``.running.ipynb`` is
left, the build exits non-zero; stamps record the scale, mixed scales are refused, an old plain-digest stamp makes
its chapter re-execute.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

BUILD = Path(__file__).resolve().parents[1] / "book" / "build.py"
spec = importlib.util.spec_from_file_location("book_build", BUILD)
build = importlib.util.module_from_spec(spec)
sys.modules["book_build"] = build  # importable by name, so --jobs' worker processes can be sent its functions
spec.loader.exec_module(build)


def write_notebook(path: Path, title: str, code: str) -> Path:
    """A chapter: a title, a parameters cell (scale, device) and one code cell."""
    parameters = nbformat.v4.new_code_cell('scale = "cpu"\ndevice = "auto"')
    parameters.metadata["tags"] = ["parameters"]
    cells = [nbformat.v4.new_markdown_cell(f"# {title}"), parameters, nbformat.v4.new_code_cell(code)]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=kernel), path)
    return path


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A book of two chapters, ``bad`` (raises) and ``good`` (``1 + 1``); rendering replaced by a recorder."""
    notebooks, folder = tmp_path / "notebooks", tmp_path / "book"
    notebooks.mkdir()
    folder.mkdir()
    (tmp_path / "rattrlib").mkdir()  # source_digest hashes ROOT/rattrlib: empty here, so others' edits can't matter
    write_notebook(notebooks / "bad.ipynb", "A bad chapter", 'raise ValueError("boom at " + scale)')
    write_notebook(notebooks / "good.ipynb", "A good chapter", "1 + 1")
    (folder / "_toc.yml").write_text("root: intro\nchapters:\n  - file: chapters/bad\n  - file: chapters/good\n")
    for name, value in (("ROOT", tmp_path), ("NOTEBOOKS", notebooks), ("BOOK", folder),
                        ("EXECUTED", folder / "chapters")):
        monkeypatch.setattr(build, name, value)
    rendered = []
    monkeypatch.setattr(build, "render", lambda scale, chapters: rendered.append((scale, chapters)))
    return folder / "chapters", rendered


def stamp(executed: Path, name: str) -> dict:
    return json.loads((executed / f"{name}.stamp").read_text())


def test_a_failing_chapter_becomes_an_error_page_and_the_build_goes_on(book, capsys):
    executed, rendered = book
    assert build.main(["--scale", "smoke"]) == 1
    out, err = capsys.readouterr()

    good = nbformat.read(executed / "good.ipynb", as_version=4)
    assert good.cells[-1].outputs[0]["data"]["text/plain"] == "2"
    assert stamp(executed, "good")["scale"] == "smoke" and stamp(executed, "good")["status"] == "executed"

    page = nbformat.read(executed / "bad.ipynb", as_version=4)
    nbformat.validate(page)
    text = page.cells[0].source
    assert text.startswith("# A bad chapter (build failed)")
    assert "ValueError: boom at smoke" in text and 'raise ValueError("boom at " + scale)' in text
    assert "python book/build.py --scale smoke --only bad" in text
    assert stamp(executed, "bad")["status"] == "failed"
    assert not list(executed.glob("*.running.ipynb"))

    assert rendered == [("smoke", ["good"])]  # the rest is rendered, the failure only as its page
    summary = out[out.index("summary"):]
    assert "bad   FAILED (ValueError: boom at smoke)" in summary and "good  executed in" in summary
    assert "FAILED" in err and "bad" in err

    assert build.main(["--scale", "smoke"]) == 1  # the good chapter is reused, the failed one attempted again
    summary = capsys.readouterr().out
    assert "good  reused" in summary and "bad   FAILED" in summary


def test_jobs_run_chapters_at_once_each_kernel_with_its_share_of_the_cores(book, monkeypatch, capsys):
    executed, rendered = book
    write_notebook(build.NOTEBOOKS / "threads.ipynb", "Threads", 'import os\nos.environ.get("OMP_NUM_THREADS")')
    (build.BOOK / "_toc.yml").write_text("root: intro\nchapters:\n  - file: chapters/bad\n"
                                         "  - file: chapters/good\n  - file: chapters/threads\n")
    monkeypatch.setattr(build.os, "cpu_count", lambda: 4)
    before = build.os.environ.get("OMP_NUM_THREADS")
    assert build.main(["--scale", "smoke", "--jobs", "2"]) == 1  # ``bad`` fails, the others are still executed
    summary = capsys.readouterr().out.split("summary")[-1]
    assert summary.index("bad ") < summary.index("good ") < summary.index("threads ")  # in book order
    threads = nbformat.read(executed / "threads.ipynb", as_version=4)
    assert threads.cells[-1].outputs[0]["data"]["text/plain"] == "'2'"  # 4 cores // 2 jobs
    assert stamp(executed, "bad")["status"] == "failed" and stamp(executed, "good")["status"] == "executed"
    assert rendered == [("smoke", ["good", "threads"])]
    assert build.os.environ.get("OMP_NUM_THREADS") == before  # only the workers' kernels were limited


def test_jobs_below_one_are_refused_before_any_chapter_runs(book, capsys):
    executed, rendered = book
    with pytest.raises(SystemExit):
        build.main(["--scale", "smoke", "--jobs", "0"])
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
    assert not executed.exists() and rendered == []


def test_chapters_of_mixed_scales_are_not_rendered(book, capsys):
    executed, rendered = book
    executed.mkdir()
    (executed / "bad.ipynb").write_text("{}")  # as if executed at cpu earlier
    build.write_stamp(executed / "bad.stamp", "0" * 64, {"scale": "cpu", "device": "auto"}, "executed")
    assert build.main(["--scale", "smoke", "--only", "good"]) == 1
    err = capsys.readouterr().err
    assert "different scales (cpu: bad; smoke: good" in err
    assert "python book/build.py --scale smoke --only bad" in err
    assert rendered == []
    assert build.main(["--scale", "smoke", "--only", "good", "--no-render"]) == 0  # executing alone is fine


def test_an_old_plain_digest_stamp_means_unknown_scale_and_re_execution(book, capsys):
    executed, rendered = book
    executed.mkdir()
    notebook = build.NOTEBOOKS / "good.ipynb"
    (executed / "good.ipynb").write_text(notebook.read_text())
    digest = build.source_digest(notebook, {"scale": "smoke", "device": "auto"})
    (executed / "good.stamp").write_text(digest + "\n")  # the format before scales were recorded
    assert build.chapter_states(["good"]) == {"good": "unknown"}
    assert build.main(["--scale", "smoke", "--only", "good", "--no-render"]) == 0
    assert "good  executed in" in capsys.readouterr().out
    assert stamp(executed, "good") == {"digest": digest, "scale": "smoke", "status": "executed",
                                       "parameters": {"scale": "smoke", "device": "auto"}}


def test_an_interrupted_chapter_leaves_no_running_notebook(book, monkeypatch):
    executed, _ = book
    executed.mkdir()

    def interrupted(source, output, **kwargs):
        Path(output).write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build.execute_chapter(build.NOTEBOOKS / "good.ipynb", {"scale": "cpu", "device": "auto"}, force=True)
    assert not list(executed.glob("*.running.ipynb"))


def test_a_failure_outside_a_cell_still_gets_a_page(book, monkeypatch):
    executed, _ = book
    executed.mkdir()
    (executed / "good.ipynb").write_text('{"a good": "execution at cpu"}')

    def dead_kernel(*args, **kwargs):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(papermill, "execute_notebook", dead_kernel)
    result = build.attempt_chapter(build.NOTEBOOKS / "good.ipynb", {"scale": "paper", "device": "cuda"}, True)
    assert result == "FAILED (RuntimeError: Kernel died before replying to kernel_info)"
    text = nbformat.read(executed / "good.ipynb", as_version=4).cells[0].source
    assert "a good" not in text and "RuntimeError: Kernel died" in text  # the old execution is not shown
    assert "python book/build.py --scale paper --device cuda --only good" in text


def test_out_builds_a_separate_book_and_leaves_book_alone(book, tmp_path, capsys):
    executed, rendered = book
    (build.BOOK / "intro.md").write_text("# Intro\n")
    out = tmp_path / "build" / "smoke-book"
    assert build.main(["--scale", "smoke", "--out", str(out)]) == 1  # ``bad`` fails, as in book/
    assert not executed.exists()  # nothing executed into the source book
    assert (out / "intro.md").read_text() == "# Intro\n" and (out / "_toc.yml").exists()
    assert stamp(out / "chapters", "good")["status"] == "executed"
    assert rendered == [("smoke", ["good"])] and build.BOOK == out.resolve()
    page = nbformat.read(out / "chapters" / "bad.ipynb", as_version=4).cells[0].source
    assert "python book/build.py --scale smoke --out build/smoke-book --only bad" in page


def test_the_versions_section_names_python_packages_commit_and_lock(book, tmp_path, monkeypatch):
    import platform
    from importlib.metadata import version

    torch = version("torch")
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"torch=={torch} \\\n    --hash=sha256:00\nnot-a-real-package==1.0\n")
    monkeypatch.setattr(build, "LOCKS", (lock, tmp_path / "absent.lock"))
    monkeypatch.setattr(build, "git_commit", lambda: "`0123abc`")
    text = build.write_versions_page("smoke").read_text()
    assert text.startswith("## Built with") and "at scale **smoke**" in text and "commit `0123abc`" in text
    assert f"| Python | {platform.python_version()} |" in text and f"| torch | {torch} |" in text
    assert ("1 of the 2 packages of `requirements.lock` differ from the lock: not-a-real-package absent (locked 1.0)"
            in text)
    lock.write_text(f"torch=={torch}\n")
    assert "All 1 packages of `requirements.lock` were installed at their locked" in build.versions_markdown("cpu")


def test_a_chapter_that_makes_widgets_keeps_its_outputs_but_no_widget_state(book, monkeypatch):
    """ipywidgets inside a chapter (an Output widget, as IFIAExplorer holds): the execution succeeds, its output
    stays, and the saved widget state — which would make Jupyter Book fetch the widget JavaScript from a CDN — is
    gone from the executed notebook."""
    pytest.importorskip("ipywidgets")
    executed, _ = book
    notebooks = executed.parent.parent / "notebooks"
    code = "import ipywidgets as w\nout = w.Output()\nslider = w.IntSlider(3)\nwith out:\n    print('inside')\nprint(slider.value)"
    widget = write_notebook(notebooks / "widgets.ipynb", "Widgets", code)
    executed.mkdir(parents=True, exist_ok=True)
    build.execute_chapter(widget, {"scale": "smoke"}, force=True)
    data = json.loads((executed / "widgets.ipynb").read_text())
    assert "widgets" not in data["metadata"]
    assert "3" in "".join("".join(o.get("text", "")) for o in data["cells"][-1]["outputs"])
    # without the clean-up nbclient would have saved the state: the check above is not vacuous
    monkeypatch.setattr(build, "drop_widget_state", lambda notebook: None)
    build.execute_chapter(widget, {"scale": "smoke"}, force=True)
    assert "widgets" in json.loads((executed / "widgets.ipynb").read_text())["metadata"]
