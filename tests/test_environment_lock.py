"""The locked environment: requirements.lock (``make lock``, uv) pins every requirement of pyproject.toml and its
book and test extras at an allowed version with hashes; torchattacks is locked apart (installed with --no-deps);
environment.yml installs the same lock for the same Python; ``make env`` installs from the locks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
NODEPS = ROOT / "requirements-no-deps.lock"


def pins(lock: Path) -> dict[str, tuple[str, list[str]]]:
    """``name: (version, hashes)`` of every ``name==version`` entry of a hashed requirements file."""
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", block)
        if match:
            entries[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["book"] + extras["test"]]


def test_every_project_requirement_is_locked_at_an_allowed_version():
    locked = pins(LOCK)
    for requirement in project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside pyproject's {requirement}: run `make lock`")


def test_every_pin_has_a_hash_and_torchattacks_is_locked_apart():
    locked, apart = pins(LOCK), pins(NODEPS)
    assert len(locked) > 100 and all(hashes for _, hashes in locked.values())
    assert apart == {"torchattacks": ("3.5.1", apart["torchattacks"][1])} and apart["torchattacks"][1]
    assert "torchattacks" not in locked
    assert locked["torch"][0] == "2.14.1" and locked["torchvision"][0] == "0.29.1"


def test_the_locks_are_resolved_for_the_python_of_environment_yml():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-r requirements.lock"]
    for lock in (LOCK, NODEPS):
        header = lock.read_text().split("\n", 3)[:3]
        assert f"--python-version {python.removeprefix('python=')} " in " ".join(header), lock.name


def test_make_env_installs_from_the_locks():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("$(VENV)/.installed:"):].split("\n\n")[0]
    assert "$(LOCK) $(NODEPS)" in recipe.splitlines()[0]
    assert "pip install --quiet -r $(LOCK)" in recipe and "--no-deps -r $(NODEPS)" in recipe
    assert "--no-deps -e ." in recipe and '".[book,test]"' not in recipe
