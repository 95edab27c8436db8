"""A chapter's full parameter set, read from the run itself: chapters never re-list their parameters by hand."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medtask.errors import InvalidParameterError
from medtask.pipeline.notebooks import read_chapter
from medtask.pipeline.profiles import PIPELINE_PARAMETERS, resolve_notebook


def parameter_names(notebook: Path) -> list[str]:
    """The names the chapter's ``parameters`` cell assigns, in order."""
    cells = [c for c in read_chapter(notebook).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise InvalidParameterError(f"{notebook} must have exactly one cell tagged 'parameters' (found {len(cells)})")
    names: list[str] = []
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))


def chapter_parameters(stem: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of chapter ``stem`` as this run set it (``namespace`` is the chapter's ``globals()``:
    the cell's defaults overridden by the runner's injected values), less the pipeline's own
    (``profile``, ``results_dir``, ``data_root``, which :class:`~medtask.pipeline.Chapter` takes apart)."""
    names = [n for n in parameter_names(resolve_notebook(stem)) if n not in PIPELINE_PARAMETERS]
    missing = [n for n in names if n not in namespace]
    if missing:
        raise InvalidParameterError(f"chapter {stem!r}: parameters {missing} are not defined; run the parameters cell first")
    return {n: namespace[n] for n in names}
