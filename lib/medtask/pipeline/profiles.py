"""Chapters, their parameter cells, and their profiles (``smoke``, ``cpu``, ``paper``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from medtask.config import repo_root
from medtask.errors import InvalidParameterError
from medtask.pipeline.notebooks import read_chapter, write_ipynb

PROFILES = ("smoke", "cpu", "paper")
#: parameters the pipeline itself sets in every chapter
PIPELINE_PARAMETERS = ("profile", "results_dir", "data_root")


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def resolve_notebook(name: str | Path) -> Path:
    """Accept a stem (``00_data``), a file name or a path; return the chapter's source ``notebooks/<stem>.md``."""
    p = Path(name)
    candidates = [p, notebooks_dir() / p, notebooks_dir() / f"{p.name}.md", notebooks_dir() / p.name]
    for c in candidates:
        if c.suffix == ".md" and c.is_file():
            return c.resolve()
    known = ", ".join(sorted(q.stem for q in notebooks_dir().glob("*.md")))
    raise InvalidParameterError(f"no chapter notebook {str(name)!r}; known chapters: {known}")


def chapters() -> list[str]:
    """Chapter stems in book order: the ``generated/<stem>`` entries of ``book/_toc.yml``."""
    toc = yaml.safe_load((repo_root() / "book" / "_toc.yml").read_text())
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("generated/"):
                out.append(f.split("/", 1)[1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return out


def parameter_cell(notebook: Path) -> dict[str, Any]:
    """Name -> default value source of the chapter's ``parameters``-tagged cell (papermill's reading)."""
    nb = read_chapter(notebook)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise InvalidParameterError(f"{notebook} must have exactly one cell tagged 'parameters' (found {len(tagged)})")
    import papermill  # seconds to import: only the commands that read a parameters cell pay

    with tempfile.TemporaryDirectory() as tmp:
        ipynb = write_ipynb(Path(notebook), Path(tmp) / "chapter.ipynb")
        return {name: info["default"] for name, info in papermill.inspect_notebook(str(ipynb)).items()}


def load_profile(stem: str, profile: str) -> dict[str, Any]:
    """The parameter set of ``profile`` for chapter ``stem`` (from ``notebooks/profiles/<stem>.yml``)."""
    if profile not in PROFILES:
        raise InvalidParameterError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    path = notebooks_dir() / "profiles" / f"{stem}.yml"
    if not path.is_file():
        raise InvalidParameterError(f"chapter {stem!r} has no profile file {path}; create it with keys {PROFILES}")
    data = yaml.safe_load(path.read_text()) or {}
    missing = [p for p in PROFILES if p not in data]
    if missing:
        raise InvalidParameterError(f"{path} lacks the profile(s) {missing}")
    return dict(data[profile] or {})


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["steps=10", "sigma=[0.1, 0.2]"]`` -> typed dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidParameterError(f"parameter {pair!r} is not of the form key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def check_names(notebook: Path, params: dict[str, Any]) -> None:
    """Unknown parameter names are an error (papermill only warns)."""
    known = parameter_cell(notebook)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InvalidParameterError(
            f"unknown parameter(s) {', '.join(unknown)} for {notebook.name}; "
            f"its parameters are: {', '.join(known)}")
    missing = [p for p in PIPELINE_PARAMETERS if p not in known]
    if missing:
        raise InvalidParameterError(f"{notebook.name}'s parameters cell must define {', '.join(missing)}")
