"""Chapter-level checks beside executing them (make test's smoke book): parameters cells, fail-fast validation, the
book's build stamps."""

import ast
import importlib.util
import json
from pathlib import Path

import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REQUIRED_PARAMETERS = ("scale", "seeds", "device")


def load_build_module():
    spec = importlib.util.spec_from_file_location("book_build", ROOT / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_parameters_cell(notebook):
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    first = cells[0]
    assert "parameters" in first["metadata"].get("tags", [])
    source = "".join(first["source"])
    for name in REQUIRED_PARAMETERS:
        assert f"{name} = " in source, f"{notebook.name}: parameters cell lacks {name}"
    assert 'scale = "cpu"' in source, "the stored default must be the book's scale"


def code_cells(notebook: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_define_no_function_or_class_and_stay_thin(notebook):
    # narrative, parameters, library calls and plots only: definitions belong in rattrlib
    lines = 0
    for source in code_cells(notebook):
        tree = ast.parse(source)
        defined = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                                               ast.Lambda))]
        assert not defined, f"{notebook.name}: a code cell defines {type(defined[0]).__name__} at line {defined[0].lineno}"
        lines += sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))
    assert lines <= 120, f"{notebook.name}: {lines} code lines (the chapters aim for at most 120)"


def test_the_thin_chapter_check_catches_a_definition(tmp_path):
    notebook = tmp_path / "x.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["f = lambda x: x\n"]}]}))
    with pytest.raises(AssertionError, match="defines Lambda"):
        test_code_cells_define_no_function_or_class_and_stay_thin(notebook)
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": ["x = 1\n# a comment\n\n"] * 121}]}))
    with pytest.raises(AssertionError, match="121 code lines"):
        test_code_cells_define_no_function_or_class_and_stay_thin(notebook)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_are_listed_in_the_toc(notebook):
    assert notebook.stem in load_build_module().chapters_in_toc()


def test_build_stamp_changes_with_notebook_and_parameters(tmp_path):
    build = load_build_module()
    notebook = tmp_path / "ch.ipynb"
    notebook.write_text("{}")
    base = build.source_digest(notebook, {"scale": "cpu"})
    assert build.source_digest(notebook, {"scale": "cpu"}) == base
    assert build.source_digest(notebook, {"scale": "smoke"}) != base
    notebook.write_text('{"x": 1}')
    assert build.source_digest(notebook, {"scale": "cpu"}) != base


def assert_rejected_before(tmp_path, chapter, bad, message, markers):
    """``chapter`` at smoke scale with the ``bad`` parameters raises with ``message``, and no cell whose source holds
    one of ``markers`` (import cells aside) has run: bad input fails before compute."""
    out = tmp_path / f"{chapter}.ipynb"
    with pytest.raises(papermill.PapermillExecutionError) as err:
        papermill.execute_notebook(str(ROOT / "notebooks" / f"{chapter}.ipynb"), str(out),
                                   parameters={"scale": "smoke", **bad}, progress_bar=False,
                                   cwd=str(ROOT / "notebooks"))
    assert message in str(err.value)
    executed = json.loads(out.read_text())
    sources = ["".join(c["source"]) for c in executed["cells"]]
    guarded = [c for c, src in zip(executed["cells"], sources)
               if any(m in src for m in markers) and "import" not in src]
    assert guarded and all(c.get("execution_count") is None for c in guarded)


# Each chapter's settings class, the cells that compute, and bad parameters with the message naming them. The
# settings dataclass judges every case (fast); the first case of each also runs through the executed notebook,
# which shows that the chapter fails before any compute cell.
REJECTED = {
    "00_quickstart": ("quickstart", "QuickstartSettings", ["get_model("], [
        ({"dataset": "nope"}, "dataset='nope' is not valid; choose one of: 'fashion_mnist'")]),
    "02_rar": ("rar", "RARSettings", ["rar.evaluate("], [
        ({"datasets": ["fashion_mnist", "nope"]}, "datasets[1]='nope' is not valid"), ({"eps": 2.0}, "eps"),
        ({"datasets": "fashion_mnist"}, "datasets='fashion_mnist' must be a list"), ({"k": 1000}, "k=1000"),
        ({"seeds": [0, 0]}, "repeats a seed")]),
    "03_gali": ("gali", "GALISettings", ["gali.evaluate("], [
        ({"datasets": ["fashion_mnist", "nope"]}, "datasets[1]='nope' is not valid"), ({"eps": 2.0}, "eps=2.0"),
        ({"datasets": "fashion_mnist"}, "datasets='fashion_mnist' must be a list"), ({"k_mnist": 1000}, "k_mnist=1000"),
        ({"lams": [0.0, -1.0]}, "lams[1]=-1.0"), ({"sweep_dataset": "nope"}, "sweep_dataset='nope' is not valid"),
        ({"seeds": [0, 0]}, "repeats a seed")]),
    "04_art": ("art", "ARTSettings", ["chapter.table1("], [
        ({"dataset": "nope"}, "dataset='nope' is not valid"), ({"eps": 2.0}, "eps"),
        ({"betas": [10.0, -1.0]}, "betas[1]=-1.0"), ({"loc_dataset": "mnist"}, "loc_dataset='mnist'"),
        ({"seeds": [0, 0]}, "repeats a seed"), ({"lams": 0.5}, "lams=0.5 must be a list")]),
    "05_ssr": ("ssr", "SSRSettings", ["ssr.evaluate("], [
        ({"datasets": ["fashion_mnist", "nope"]}, "datasets[1]='nope' is not valid"),
        ({"exp2_dataset": "nope"}, "exp2_dataset='nope' is not valid"),
        ({"eps_list": [2 / 255, 2.0]}, "eps_list[1]"), ({"eps_list": [8 / 255]}, "at least 2 budgets"),
        ({"datasets": "fashion_mnist"}, "datasets='fashion_mnist' must be a list"),
        ({"scale_s_grid": [-1.0]}, "scale_s_grid[0]"), ({"seeds": [0, 0]}, "repeats a seed")]),
    "06_sat": ("sat", "SATSettings", ["sat.evaluate(", "sat.plot_"], [
        ({"dataset": "nope"}, "dataset='nope' is not valid"),
        ({"eps_table": [1, 2, 40]}, "eps_table[2] (in /255)=40"),
        ({"sources": ["box", "outline"]}, "sources[1]='outline' is not valid"),
        ({"attributions": ["saliency"]}, "attributions[0]='saliency' is not valid"),
        ({"combine": "both"}, "combine='both' is not valid"),
        ({"seeds": [0, 0]}, "repeats a seed"),
        ({"train_steps": 3}, "give train_steps and train_alpha together"),
        ({"train_steps": 3, "train_alpha": 20}, "train_alpha (in /255)=20")]),
}


@pytest.mark.parametrize("chapter, bad, message", [(chapter, bad, message) for chapter, (*_, cases) in REJECTED.items()
                                                   for bad, message in cases])
def test_chapter_settings_reject_bad_parameters_naming_them(chapter, bad, message):
    module, settings, *_ = REJECTED[chapter]
    cls = getattr(importlib.import_module(f"rattrlib.chapters.{module}"), settings)
    with pytest.raises(ValueError) as err:
        cls.resolve("smoke", **bad)
    assert message in str(err.value)


SETTINGS = {"01_fragility": "FragilitySettings", "07_leaderboard": "LeaderboardSettings",
            "08_explorer": "ExplorerSettings", **{chapter: settings for chapter, (_, settings, *_) in REJECTED.items()}}


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_every_parameter_reaches_the_chapter_settings(notebook):
    # what the settings reject, the chapter rejects: each name of the parameters cell goes, untouched, to the
    # chapter's own Settings.resolve as `name=name`
    cells = code_cells(notebook)
    parameters = [t.id for node in ast.parse(cells[0]).body if isinstance(node, ast.Assign)
                  for t in node.targets if isinstance(t, ast.Name)]
    settings = SETTINGS.get(notebook.stem, "")
    calls, before = [], []    # the resolve calls, and the statements before the first one
    for source in cells[1:]:
        for statement in ast.parse(source).body:
            calls += [n for n in ast.walk(statement) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                      and n.func.attr == "resolve" and ast.unparse(n.func.value).split(".")[-1] == settings]
            before += [] if calls else [statement]
    assert len(calls) == 1, f"{notebook.name}: expected one {settings or 'Settings'}.resolve call, found {len(calls)}"
    reassigned = sorted({t.id for statement in before for n in ast.walk(statement) if isinstance(n, ast.Assign)
                         for t in n.targets if isinstance(t, ast.Name) and t.id in parameters})
    assert not reassigned, f"{notebook.name}: parameters {reassigned} are reassigned before {settings}.resolve"
    passed = {k.arg: k.value.id for k in calls[0].keywords if isinstance(k.value, ast.Name)}
    passed.update({"scale": a.id for a in calls[0].args[:1] if isinstance(a, ast.Name)})
    missing = [name for name in parameters if passed.get(name) != name]
    assert not missing, f"{notebook.name}: parameters {missing} are not passed to {settings}.resolve as name=name"


@pytest.mark.parametrize("chapter", sorted(REJECTED))
def test_chapter_fails_on_a_bad_parameter_before_any_compute(tmp_path, chapter):
    *_, markers, cases = REJECTED[chapter]
    bad, message = cases[0]
    assert_rejected_before(tmp_path, chapter, bad, message, markers)


def test_the_wiring_check_catches_a_parameter_left_out_renamed_or_reassigned(tmp_path, monkeypatch):
    notebook = tmp_path / "x.ipynb"
    monkeypatch.setitem(SETTINGS, "x", "S")
    parameters = ["scale = \"cpu\"\n", "eps = None\n", "k = None\n"]
    for body, problem in ((["s = S.resolve(scale, eps=eps, k=10)\n"], r"\['k'\] are not passed"),
                          (["s = S.resolve(scale, eps=eps, k=k2)\n"], r"\['k'\] are not passed"),
                          (["s = S.resolve(eps=eps, k=k)\n"], r"\['scale'\] are not passed"),
                          (["s = T.resolve(scale, eps=eps, k=k)\n"], "found 0"),
                          (["k = k or 3\n", "s = S.resolve(scale, eps=eps, k=k)\n"], r"\['k'\] are reassigned")):
        cells = [parameters] + [[line] for line in body]
        notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": c} for c in cells]}))
        with pytest.raises(AssertionError, match=problem):
            test_every_parameter_reaches_the_chapter_settings(notebook)
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": c} for c in
                                              [parameters, ["s = S.resolve(scale, eps=eps, k=k)\n"]]]}))
    test_every_parameter_reaches_the_chapter_settings(notebook)
