"""Chapter sources are MyST Markdown notebooks (jupytext); papermill and the book get ``.ipynb`` made from them.

A chapter is ``notebooks/<stem>.md``: text cells are Markdown, code cells are ``{code-cell}``
blocks, the first one tagged ``parameters``. The text form carries no outputs, so a committed
chapter is always clean. JupyterLab opens it as a notebook (jupytext's extension) and saves it
back as text; an ``.ipynb`` saved next to it by a tool without the extension is folded back into
the text form by ``medtask clean-notebooks`` (:func:`sync_text_sources`).
"""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat

#: the jupytext format of the chapter sources
TEXT_FORMAT = "md:myst"


def read_chapter(path: Path) -> nbformat.NotebookNode:
    """A chapter (``.md`` text notebook or ``.ipynb``) as a notebook object."""
    return jupytext.read(Path(path))


def write_ipynb(source: Path, dest: Path) -> Path:
    """Write the chapter ``source`` as an ``.ipynb`` notebook at ``dest`` (what papermill executes)."""
    nb = read_chapter(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))
    return dest


def has_outputs(path: Path) -> bool:
    """Whether a chapter holds outputs or execution counts (a text notebook never does)."""
    nb = read_chapter(path)
    return any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def strip_outputs(path: Path) -> bool:
    """Remove outputs and execution counts from an ``.ipynb`` in place; return whether anything changed."""
    nb = json.loads(Path(path).read_text())
    changed = False
    for c in nb["cells"]:
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            c["outputs"], c["execution_count"] = [], None
            changed = True
    if nb.get("metadata", {}).pop("papermill", None) is not None:
        changed = True
    if changed:
        Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed


def sync_text_sources(folder: Path) -> list[str]:
    """Fold every ``<stem>.ipynb`` in ``folder`` that is newer than its ``<stem>.md`` (or has none) into the
    text source, without outputs; return the stems written. The ``.ipynb`` files are left in place
    (git ignores them)."""
    written = []
    for ipynb in sorted(Path(folder).glob("*.ipynb")):
        text = ipynb.with_suffix(".md")
        if text.exists() and text.stat().st_mtime >= ipynb.stat().st_mtime:
            continue
        nb = jupytext.read(ipynb)
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
        jupytext.write(nb, text, fmt=TEXT_FORMAT)
        written.append(ipynb.stem)
    return written
