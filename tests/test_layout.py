"""The package's house rules: one folder per method, methods never import each other, the engine knows no method."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import medtask

PKG = Path(medtask.__file__).parent
MODULES = sorted(PKG.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``medtask...`` module or symbol ``path`` imports (at any depth of the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("medtask")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("medtask"):
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _owner(name: str, depth: int) -> str:
    return ".".join(name.split(".")[:depth])


def test_no_study_module_at_the_package_top():
    assert not sorted(p.name for p in PKG.glob("*_study.py"))


def test_methods_never_import_each_other():
    for path in MODULES:
        mod = _module_name(path)
        if not mod.startswith("medtask.methods."):
            continue
        mine = _owner(mod, 3)
        foreign = {i for i in _imports(path) if i.startswith("medtask.methods.") and _owner(i, 3) != mine}
        assert not foreign, f"{mod} imports another method: {sorted(foreign)}"


@pytest.mark.parametrize("layer", ["medtask.engine", "medtask.nn", "medtask.metrics", "medtask.data",
                                   "medtask.reporting", "medtask.pipeline"])
def test_shared_layers_know_no_method(layer):
    for path in MODULES:
        mod = _module_name(path)
        if mod == layer or mod.startswith(layer + "."):
            bad = {i for i in _imports(path) if i.startswith("medtask.methods")}
            assert not bad, f"{mod} imports a method: {sorted(bad)}"


def _top_level_edges() -> dict[str, set[str]]:
    """Module -> the medtask modules it imports when it is imported (module-level statements only)."""
    names = {_module_name(p) for p in MODULES}
    edges: dict[str, set[str]] = {}
    for path in MODULES:
        mod, targets = _module_name(path), set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name in names}
            elif isinstance(node, ast.ImportFrom) and node.module in names:
                subs = {f"{node.module}.{a.name}" for a in node.names} & names
                targets |= subs or {node.module}
        edges[mod] = targets - {mod}
    return edges


def test_no_circular_imports():
    edges = _top_level_edges()
    state: dict[str, int] = {}

    def visit(mod: str, path: list[str]) -> None:
        state[mod] = 1
        for nxt in sorted(edges.get(mod, ())):
            if state.get(nxt) == 1:
                raise AssertionError("circular import: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[mod] = 2

    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [mod])


def test_every_module_imports():
    for path in MODULES:
        importlib.import_module(_module_name(path))


#: the most lines of code a chapter may hold (non-blank, non-comment lines inside code cells)
MAX_CHAPTER_CODE_LINES = 80
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def chapter_code_lines(text: str) -> int:
    """Non-blank lines of a MyST notebook's code cells that are neither comments nor cell options."""
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, flags=re.S)
    return sum(1 for c in cells for line in c.splitlines()
               if line.strip() and not line.strip().startswith("#") and not line.strip().startswith(":tags:"))


def test_chapter_code_lines_counts_only_code():
    text = "# title\n\n```{code-cell}\n:tags: [parameters]\n\nx = 1  # a\n# note\n\ny = 2\n```\nprose\n```{code-cell}\nz = 3\n```\n"
    assert chapter_code_lines(text) == 3


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.md")), ids=lambda p: p.stem)
def test_chapters_are_thin(path):
    n = chapter_code_lines(path.read_text())
    assert n <= MAX_CHAPTER_CODE_LINES, (
        f"{path.name} has {n} lines of code (at most {MAX_CHAPTER_CODE_LINES}): move tables, figure inputs and "
        f"sentences into the method's report.py / plots.py")


@pytest.mark.parametrize("path", [p for p in sorted(NOTEBOOKS.glob("*.md")) if "\ntest_dataset = " in p.read_text()],
                         ids=lambda p: p.stem)
def test_chapters_with_a_test_dataset_pass_test_only_to_their_chapter(path):
    """A chapter that can test on another dataset tells its Chapter so (``test_only=``), which leaves it out of
    the training keys; that a rerun tested elsewhere then reuses the trained networks is tested by running
    chapters in tests/pipeline/test_own_data_chapter.py."""
    assert re.search(r"test_only=\w+\.test_only\(datasets?, test_dataset\)", path.read_text()), (
        f"{path.name} has a test_dataset parameter but passes no test_only=sources.test_only(..., test_dataset) "
        "to its Chapter: give it, if its training samples do not depend on test_dataset")
