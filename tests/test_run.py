"""The chapter runner `python -m rattrlib.run`: parameters checked by name, type and settings before any compute.

Nothing here executes a chapter: the checks are called directly, and the command line's execution is replaced.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rattrlib import run
from rattrlib.run import ParameterError, parse_value, validate


def test_a_misspelt_name_is_refused_with_the_closest_valid_one():
    with pytest.raises(ParameterError, match=r"unknown parameter 'epz' \(did you mean 'eps'\?\); valid: scale, seeds"):
        validate("02_rar", {"epz": 0.1})


def test_a_short_name_suggests_the_names_it_begins():
    with pytest.raises(ParameterError, match="'k'.*'k_fashion_mnist' or 'k_mnist'"):
        validate("03_gali", {"k": 5})


def test_a_value_of_the_wrong_kind_is_refused_naming_the_parameter():
    with pytest.raises(ParameterError, match="eps='abc'"):
        validate("02_rar", {"eps": parse_value("eps", "abc")})
    with pytest.raises(ParameterError, match="eps=nan"):
        validate("rar", {"eps": parse_value("eps", "nan")})
    with pytest.raises(ParameterError, match="n_show=2.5"):
        validate("00_quickstart", {"n_show": 2.5})


def test_a_value_that_does_not_fit_a_typed_default_is_refused():
    with pytest.raises(ParameterError, match=r'scale=3 must be of type str, like its default "cpu"'):
        validate("01_fragility", {"scale": 3})


def test_valid_parameters_pass_and_resolve_the_chapters_settings():
    notebook, settings = validate("02_rar", {"scale": "smoke", "eps": 0.2, "seeds": [0, 1],
                                             "datasets": ["fashion_mnist"]})
    assert notebook == run.NOTEBOOKS / "02_rar.ipynb"
    assert type(settings).__name__ == "RARSettings"
    assert (settings.scale, settings.eps, settings.seeds) == ("smoke", 0.2, (0, 1))


@pytest.mark.parametrize("notebook", sorted(run.NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_chapter_has_a_settings_class_the_runner_finds(notebook):
    _, settings = validate(notebook.stem, {"scale": "smoke"})
    assert settings is not None and settings.scale == "smoke"


def test_values_are_typed_like_papermills_p_with_yaml_lists():
    assert [parse_value("x", t) for t in ("True", "None", "3", "0.1", "1e-3", "abc")] == [
        True, None, 3, 0.1, 0.001, "abc"]
    assert math.isnan(parse_value("x", "nan"))
    assert parse_value("x", "[0, 1e-3, fashion_mnist]") == [0, 0.001, "fashion_mnist"]
    assert parse_value("x", "{a: 1}") == {"a": 1}
    with pytest.raises(ParameterError, match=r"seeds='\[0, 1' is not a valid YAML"):
        parse_value("seeds", "[0, 1")


def test_an_unknown_chapter_lists_the_chapters():
    with pytest.raises(ParameterError, match=r"chapter='02-rar'.*did you mean '02_rar'.*00_quickstart"):
        validate("02-rar", {})


def test_command_line_refuses_before_executing(monkeypatch, capsys):
    monkeypatch.setattr(run, "execute", lambda *a: pytest.fail("executed despite a bad parameter"))
    assert run.main(["02_rar", "-p", "epz", "0.1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "'epz'" in err and "'eps'" in err
    assert run.main(["02_rar", "-p", "eps", "abc"]) == 2
    assert "eps='abc'" in capsys.readouterr().err
    assert run.main(["02_rar", "-p", "eps", "0.1", "-p", "eps", "0.2"]) == 2
    assert "'eps' given twice" in capsys.readouterr().err
    assert run.main(["02_rar", "-p", "scale", "smoke", "--check"]) == 0


def test_command_line_executes_into_build_run_by_default(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(run, "execute", lambda notebook, params, output: calls.append((notebook, params, output)))
    assert run.main(["rar", "-p", "scale", "smoke", "-p", "seeds", "[0, 1]"]) == 0
    assert calls == [(run.NOTEBOOKS / "02_rar.ipynb", {"scale": "smoke", "seeds": [0, 1]},
                      run.ROOT / "build" / "run" / "02_rar.ipynb")]
    assert run.main(["02_rar", "--output", str(tmp_path / "x.ipynb")]) == 0
    assert calls[-1][2] == Path(tmp_path / "x.ipynb")


def test_a_notebook_path_runs_with_its_parameters(tmp_path, capsys):
    import nbformat

    notebook = tmp_path / "tiny.ipynb"
    parameters = nbformat.v4.new_code_cell("x = 1\nname = 'a'")
    parameters.metadata["tags"] = ["parameters"]
    cells = [parameters, nbformat.v4.new_code_cell("assert x == 3 and name == 'b'")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), notebook)
    with pytest.raises(ParameterError, match="x=2.5 must be of type int"):
        validate(str(notebook), {"x": 2.5})
    output = tmp_path / "out.ipynb"
    assert run.main([str(notebook), "-p", "x", "3", "-p", "name", "b", "--output", str(output)]) == 0
    assert output.exists()
    assert run.main([str(notebook), "-p", "x", "4", "--output", str(output)]) == 1
    assert "tiny failed in cell 3: AssertionError" in capsys.readouterr().err


def test_chapters_execute_with_kernels_on_ipc_sockets(tmp_path, monkeypatch):
    # no TCP port, so ipykernel has no "running over TCP without encryption" warning to print
    import papermill

    seen = {}
    monkeypatch.setattr(papermill, "execute_notebook", lambda *args, **kwargs: seen.update(kwargs))
    run.execute(tmp_path / "ch.ipynb", {"scale": "smoke"}, tmp_path / "out" / "ch.ipynb")
    assert seen["kernel_manager_class"]().transport == "ipc"
    assert seen["parameters"] == {"scale": "smoke"} and seen["cwd"] == str(tmp_path)
