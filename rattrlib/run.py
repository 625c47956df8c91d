"""Run one chapter with your own parameters, every one checked by name and value before any compute.

    python -m rattrlib.run 02_rar -p scale smoke -p eps 0.2 -p seeds "[0, 1]" [--output PATH] [--check]

CHAPTER is a notebook stem (``02_rar``), its short name (``rar``) or a path to a notebook. Each ``-p NAME VALUE``
must be a parameter of the notebook's parameters cell (read with ``papermill.inspect_notebook``); a misspelt name
is refused with the closest valid one. VALUE is typed as papermill's ``-p`` types it (``True``, ``None``, ``3``,
``0.1``, else a string), and a value in brackets or braces is read as YAML (``[0, 1]``). A value must fit the
type of its default in the parameters cell; a parameter whose default is ``None`` (the scale's preset) is checked
by the chapter's settings class (``<Chapter>Settings.resolve``), exactly as the notebook will check it. Only then
is the chapter executed with papermill, into ``build/run/<chapter>.ipynb`` unless ``--output`` is given;
``--check`` stops after the checks.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import importlib
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUTPUT_DIR = ROOT / "build" / "run"
TYPES = {"bool": bool, "int": int, "float": float, "str": str, "list": list, "dict": dict}


class ParameterError(ValueError):
    """A chapter parameter refused before execution; the message names the parameter."""


# ------------------------------------------------------------------------------------------------ the notebook

def find_notebook(chapter: str) -> Path:
    """The notebook of ``chapter``: a path, a stem in notebooks/ (``02_rar``) or a short name (``rar``)."""
    path = Path(chapter)
    if path.suffix == ".ipynb" and path.is_file():
        return path
    stems = sorted(nb.stem for nb in NOTEBOOKS.glob("*.ipynb"))
    matches = [s for s in stems if chapter in (s, s.split("_", 1)[-1])]
    if len(matches) == 1:
        return NOTEBOOKS / f"{matches[0]}.ipynb"
    raise ParameterError(f"chapter={chapter!r} is neither a notebook file nor a chapter of {NOTEBOOKS}"
                         f"{_suggestion(chapter, stems)}; "
                         f"valid: {', '.join(stems)}")


def notebook_parameters(notebook: Path) -> dict[str, dict]:
    """The parameters cell of ``notebook``: name → papermill's description (``inferred_type_name``, ``default``)."""
    import papermill

    return dict(papermill.inspect_notebook(str(notebook)))


def settings_class(notebook: Path):
    """The settings class the notebook validates its parameters with (``XSettings.resolve(...)``), or None."""
    import nbformat

    from rattrlib.settings import ChapterSettings

    code = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    names = re.findall(r"(\w+)\.resolve\(", code)
    for module_name in _chapter_modules(notebook):
        module = importlib.import_module(f"rattrlib.chapters.{module_name}")
        for name in names:
            cls = getattr(module, name, None)
            if isinstance(cls, type) and issubclass(cls, ChapterSettings):
                return cls
    return None


def _chapter_modules(notebook: Path) -> list[str]:
    """Names of the rattrlib.chapters modules, the notebook's own (``02_rar`` → ``rar``) first."""
    import pkgutil

    import rattrlib.chapters as chapters

    names = [m.name for m in pkgutil.iter_modules(chapters.__path__)]
    short = notebook.stem.split("_", 1)[-1]
    return ([short] if short in names else []) + [n for n in names if n != short]


# ------------------------------------------------------------------------------------------------ values

def _scalar(text: str) -> Any:
    """papermill's ``-p`` typing: True / False / None, an int, a float, else the string itself."""
    literals = {"True": True, "true": True, "False": False, "false": False, "None": None, "null": None}
    if text.strip() in literals:
        return literals[text.strip()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _retyped(value: Any) -> Any:
    """YAML's strings inside lists / dicts typed like ``-p`` values (PyYAML reads ``1e-3`` as a string)."""
    if isinstance(value, list):
        return [_retyped(v) for v in value]
    if isinstance(value, dict):
        return {k: _retyped(v) for k, v in value.items()}
    return _scalar(value) if isinstance(value, str) else value


def parse_value(name: str, text: str) -> Any:
    """The value of ``-p name text``: a scalar as papermill types it, ``[...]`` / ``{...}`` read as YAML."""
    if not text.lstrip().startswith(("[", "{")):
        return _scalar(text)
    import yaml

    try:
        return _retyped(yaml.safe_load(text))
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise ParameterError(f"{name}={text!r} is not a valid YAML list or mapping ({reason})") from None


def expected_type(spec: dict) -> type | None:
    """The type a parameter's values must have: its annotation, else its default's; None when the default is
    None (the scale's preset: the settings class checks it) or not a literal."""
    annotated = TYPES.get(spec.get("inferred_type_name", "None"))
    if annotated is not None:
        return annotated
    try:
        default = ast.literal_eval(spec.get("default", "None"))
    except (ValueError, SyntaxError):
        return None
    return None if default is None else type(default)


def _fits(value: Any, kind: type | None) -> bool:
    if kind is None or value is None:
        return True
    if kind is float:  # an int is a fine float; a bool is neither
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, kind)


# ------------------------------------------------------------------------------------------------ checks

def check_names(chapter: str, params: dict, specs: dict) -> None:
    """Refuse names absent from the parameters cell, suggesting the closest valid name."""
    unknown = [name for name in params if name not in specs]
    if not unknown:
        return
    problems = []
    for name in unknown:
        problems.append(f"unknown parameter '{name}'{_suggestion(name, list(specs))}")
    raise ParameterError(f"{chapter}: {'; '.join(problems)}; valid: {', '.join(specs)}")


def _suggestion(name: str, valid: list[str]) -> str:
    """`` (did you mean 'x'?)`` with the closest valid name, or the valid names starting with ``name``."""
    close = difflib.get_close_matches(name, valid, n=1) or [v for v in valid if v.startswith(name)]
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


def check_types(chapter: str, params: dict, specs: dict) -> None:
    """Refuse a value whose type does not fit its parameter's default (or annotation)."""
    for name, value in params.items():
        kind = expected_type(specs[name])
        if not _fits(value, kind):
            raise ParameterError(f"{chapter}: {name}={value!r} must be of type {kind.__name__}, like its default "
                                 f"{specs[name]['default']} in the parameters cell")


def check_settings(chapter: str, notebook: Path, params: dict, specs: dict):
    """Resolve the chapter's settings class with ``params`` as the notebook will; returns the settings (None when
    the notebook has no settings class). ``ParameterError`` names the parameter a bad value belongs to."""
    cls = settings_class(notebook)
    if cls is None:
        return None
    fields = {f.name for f in dataclasses.fields(cls)}
    values = {name: _default(spec) for name, spec in specs.items() if name in fields}
    values.update((name, value) for name, value in params.items() if name in fields)
    scale = values.pop("scale", "cpu")
    try:
        return cls.resolve(scale, **values)
    except (ValueError, TypeError) as error:
        raise ParameterError(f"{chapter}: {error}") from None


def _default(spec: dict) -> Any:
    try:
        return ast.literal_eval(spec.get("default", "None"))
    except (ValueError, SyntaxError):
        return None


def validate(chapter: str, params: dict) -> tuple[Path, Any]:
    """Every check, no compute: returns the notebook and its resolved settings (None when it has no settings
    class); raises :class:`ParameterError` naming the first bad parameter."""
    notebook = find_notebook(chapter)
    specs = notebook_parameters(notebook)
    if not specs:
        raise ParameterError(f"{notebook} has no cell tagged 'parameters'")
    check_names(notebook.stem, params, specs)
    check_types(notebook.stem, params, specs)
    return notebook, check_settings(notebook.stem, notebook, params, specs)


# ------------------------------------------------------------------------------------------------ command line

def parse_parameters(pairs: list[list[str]]) -> dict:
    """``-p NAME VALUE`` pairs as a dict of typed values; a name given twice is refused."""
    params = {}
    for name, text in pairs:
        if name in params:
            raise ParameterError(f"parameter '{name}' given twice")
        params[name] = parse_value(name, text)
    return params


def ipc_kernel_manager() -> type:
    """A kernel manager class whose kernels talk over local IPC sockets instead of TCP: nothing leaves the machine,
    and ipykernel no longer warns that it "is running over TCP without encryption" at every chapter. Each kernel's
    socket files get a unique prefix in the temporary folder: jupyter_client's default (``kernel-ipc-1`` … in the
    working directory) is shared by kernels started at once, e.g. by ``book/build.py --jobs 2``."""
    import tempfile
    import uuid

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self):
            return "ipc"

        @default("ip")
        def _default_ip(self):
            return str(Path(tempfile.gettempdir()) / f"rattr-kernel-{uuid.uuid4().hex}")

    return IPCKernelManager


def execute(notebook: Path, params: dict, output: Path) -> None:
    """Execute ``notebook`` with ``params`` into ``output`` (papermill, the notebook's folder as cwd, the kernel on
    IPC sockets)."""
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(notebook), str(output), parameters=params, cwd=str(notebook.parent),
                               progress_bar=False, log_output=False, kernel_manager_class=ipc_kernel_manager())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rattrlib.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="notebook stem (02_rar), short name (rar) or path")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--output", type=Path, default=None, help="executed notebook (default build/run/CHAPTER.ipynb)")
    parser.add_argument("--check", action="store_true", help="check the parameters and stop")
    args = parser.parse_args(argv)
    try:
        params = parse_parameters(args.parameter)
        notebook, _ = validate(args.chapter, params)
    except ParameterError as error:
        print(f"rattrlib.run: {error}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{notebook.stem}: parameters OK {params}")
        return 0
    output = args.output or OUTPUT_DIR / notebook.name
    from papermill.exceptions import PapermillExecutionError

    try:
        execute(notebook, params, output)
    except PapermillExecutionError as error:
        print(f"rattrlib.run: {notebook.stem} failed in cell {error.exec_count}: {error.ename}: {error.evalue}; "
              f"the traceback is in {output}", file=sys.stderr)
        return 1
    print(f"{notebook.stem}: executed into {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
