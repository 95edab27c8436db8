"""Profiles, parameter checking and the command line's error paths."""

from __future__ import annotations

import json

import pytest
import yaml

from medtask import cli
from medtask.errors import InvalidParameterError
from medtask.pipeline import profiles, schema
from medtask.pipeline.notebooks import has_outputs, read_chapter


def test_every_chapter_has_a_notebook_profiles_and_a_clean_parameters_cell():
    stems = profiles.chapters()
    assert "00_data" in stems and len(stems) == len(set(stems))
    for stem in stems:
        nb = profiles.resolve_notebook(stem)
        params = profiles.parameter_cell(nb)
        for required in ("profile", "data_root", "results_dir", "seed", "device"):
            assert required in params, f"{stem} lacks parameter {required}"
        for prof in profiles.PROFILES:
            profiles.check_names(nb, profiles.load_profile(stem, prof))
        assert nb.suffix == ".md", f"{stem}'s source must be the MyST text notebook notebooks/{stem}.md"
        assert not has_outputs(nb), f"{nb} is committed with outputs: run `medtask clean-notebooks`"
        first_code = next(c for c in read_chapter(nb).cells if c.cell_type == "code")
        assert "parameters" in first_code.metadata.get("tags", []), f"{stem}: the first code cell must be tagged parameters"


def test_unknown_parameter_is_an_error():
    nb = profiles.resolve_notebook("00_data")
    with pytest.raises(InvalidParameterError, match="no_such_parameter"):
        profiles.check_names(nb, {"no_such_parameter": 1})


def test_unknown_profile_and_notebook():
    with pytest.raises(InvalidParameterError, match="unknown profile"):
        profiles.load_profile("00_data", "gpu-huge")
    with pytest.raises(InvalidParameterError, match="no chapter notebook"):
        profiles.resolve_notebook("99_nothing")


def test_overrides_are_typed():
    assert profiles.parse_overrides(["steps=10", "sigmas=[0.1, 0.2]", "name=BCCD", "flag=true"]) == {
        "steps": 10, "sigmas": [0.1, 0.2], "name": "BCCD", "flag": True}
    with pytest.raises(InvalidParameterError):
        profiles.parse_overrides(["novalue"])


def test_cli_run_rejects_unknown_parameter(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTASK_OUTPUT", str(tmp_path))
    code = cli.main(["run", "00_data", "--profile", "smoke", "-p", "bogus=1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown parameter(s) bogus" in err and "its parameters are" in err
    assert not (tmp_path / "book" / "generated" / "00_data.ipynb").exists()


def test_cli_profiles_lists_chapters(capsys):
    assert cli.main(["profiles", "00_data"]) == 0
    out = capsys.readouterr().out
    assert "smoke:" in out and "paper:" in out


def test_profile_files_have_the_three_profiles():
    for path in (profiles.notebooks_dir() / "profiles").glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        assert set(profiles.PROFILES) <= set(data), path
        assert (profiles.notebooks_dir() / f"{path.stem}.md").is_file(), f"{path} has no chapter notebook"


def test_strip_outputs(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "1", "metadata": {}, "outputs": [{"output_type": "stream",
           "name": "stdout", "text": "1"}], "execution_count": 3}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "x.ipynb"
    p.write_text(json.dumps(nb))
    from medtask.pipeline.notebooks import strip_outputs

    assert has_outputs(p) and strip_outputs(p) and not has_outputs(p) and not strip_outputs(p)


def test_clean_notebooks_folds_a_saved_ipynb_back_into_text(tmp_path):
    """An .ipynb saved beside the chapters becomes notebooks/<stem>.md without outputs, parameters tag kept."""
    from medtask.pipeline.notebooks import sync_text_sources, write_ipynb

    md = tmp_path / "x.md"
    write_ipynb(profiles.resolve_notebook("00_data"), tmp_path / "x.ipynb")
    nb = json.loads((tmp_path / "x.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "run output"}]
    code[1]["execution_count"] = 2
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert sync_text_sources(tmp_path) == ["x"] and md.is_file()
    assert "run output" not in md.read_text() and not has_outputs(md)
    assert profiles.parameter_cell(md) == profiles.parameter_cell(profiles.resolve_notebook("00_data"))
    assert sync_text_sources(tmp_path) == [], "an .ipynb older than its text source is left alone"


def test_documented_rerun_commands_use_real_parameter_names():
    """Every `medtask run CHAPTER ... -p name=value` in the README and the book names a parameter of that chapter."""
    import re

    from medtask.config import repo_root
    from medtask.pipeline.profiles import parameter_cell, resolve_notebook

    docs = [repo_root() / "README.md", *sorted((repo_root() / "book").glob("*.md"))]
    checked = 0
    for doc in docs:
        for line in doc.read_text().splitlines():
            m = re.search(r"medtask run (\w+)(.*)", line)
            if not m or m.group(1) == "CHAPTER":
                continue
            names = set(parameter_cell(resolve_notebook(m.group(1))))
            for name in re.findall(r"-p (\w+)=", m.group(2)):
                assert name in names, f"{doc.name}: `{line.strip()}` sets {name!r}, not a parameter of {m.group(1)}"
                checked += 1
            values = profiles.parse_overrides(re.findall(r"-p (\w+=\S+)", m.group(2)))
            schema.validate(resolve_notebook(m.group(1)), values)  # and a value the schema allows
    assert checked >= 3


def test_chapter_parameters_are_read_from_the_run_not_relisted():
    from medtask.pipeline.parameters import chapter_parameters, parameter_names

    nb = profiles.resolve_notebook("00_data")
    names = parameter_names(nb)
    assert names == list(profiles.parameter_cell(nb))
    run = {n: f"value of {n}" for n in names}
    params = chapter_parameters("00_data", run)
    assert set(params) == set(names) - set(profiles.PIPELINE_PARAMETERS) and params["seed"] == "value of seed"
    with pytest.raises(InvalidParameterError, match="not defined"):
        chapter_parameters("00_data", {})


def test_schema_checks_the_data_parameters():
    from medtask.errors import InvalidParameterError
    from medtask.pipeline import schema
    from medtask.pipeline.profiles import resolve_notebook

    for stem in ("a1_compression_segmentation", "a3_lambda2_ablation", "c1_gradprom_diagnosis", "c2_gradprom_segmentation"):
        nb = resolve_notebook(stem)
        schema.validate(nb, {"dataset": "folder:/data/mine", "test_dataset": None})
        schema.validate(nb, {"dataset": "Kvasir-SEG", "test_dataset": "my-polyps"})
        with pytest.raises(InvalidParameterError, match="test_dataset=3 is not allowed"):
            schema.validate(nb, {"test_dataset": 3})
    nb = resolve_notebook("b1_angio_quality")
    schema.validate(nb, {"datasets": ["folder:/data/vessels"], "test_dataset": "DRIVE"})
    with pytest.raises(InvalidParameterError, match="at least 1 element"):
        schema.validate(nb, {"datasets": []})
