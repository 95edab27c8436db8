"""Notebook hygiene: committed chapters carry no outputs."""

from __future__ import annotations

import json
from pathlib import Path


def has_outputs(path: Path) -> bool:
    nb = json.loads(Path(path).read_text())
    return any(c.get("outputs") or c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code")


def strip_outputs(path: Path) -> bool:
    """Remove outputs and execution counts in place; return whether anything changed."""
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
