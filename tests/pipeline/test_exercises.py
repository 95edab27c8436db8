"""Every chapter says what the reader will learn and ends with exercises whose commands the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from medtask.pipeline import schema
from medtask.pipeline.profiles import check_names, load_profile, parse_overrides, resolve_notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: chapters that reproduce a paper: 3-4 exercises each (the data and zoo chapters may have fewer)
STUDY_CHAPTERS = sorted(p.stem for p in NOTEBOOKS.glob("*.md") if p.stem[:1].isalpha())


def try_it(text: str) -> str:
    """The chapter's closing *Try it* section."""
    head = text.find("## Try it")
    assert head >= 0, "the chapter has no '## Try it' section"
    return text[head:]


def run_commands(section: str) -> list[list[str]]:
    """The ``medtask run`` commands of a section, split as a shell would."""
    return [shlex.split(line.strip())[2:] for line in section.splitlines() if line.strip().startswith("medtask run ")]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.md")), ids=lambda p: p.stem)
def test_chapter_teaches(path):
    text = path.read_text()
    assert "What you will learn" in text[:text.find("```{code-cell}")], "learning goals come before the first code cell"
    section = try_it(text)
    exercises = re.findall(r"^\d+\. \*\*", section, flags=re.M)
    if path.stem in STUDY_CHAPTERS:
        assert 3 <= len(exercises) <= 4, f"{path.stem}: {len(exercises)} exercises"
    assert section.count("*Time:*") == section.count("*Look for:*") == len(exercises) >= 1


@pytest.mark.parametrize("stem", STUDY_CHAPTERS)
def test_exercise_commands_name_real_parameters_with_allowed_values(stem):
    commands = run_commands(try_it((NOTEBOOKS / f"{stem}.md").read_text()))
    assert len(commands) >= 3
    for argv in commands:
        assert argv[0] == stem, f"an exercise of {stem} runs {argv[0]}"
        profile = argv[argv.index("--profile") + 1] if "--profile" in argv else "cpu"
        pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-p"]
        nb = resolve_notebook(stem)
        params = {**load_profile(stem, profile), **parse_overrides(pairs)}
        check_names(nb, params)
        schema.validate(nb, params)
