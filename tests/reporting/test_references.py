"""The bibliography: every {cite} key in the book resolves, datasets are cited from their manifests once."""

from __future__ import annotations

import re
from pathlib import Path

from medtask.config import repo_root
from medtask.data.manifests import all_manifests
from medtask.reporting.references import bib_keys, dataset_bibtex, write_dataset_bib

BOOK = repo_root() / "book"
CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def _known() -> set[str]:
    return set(bib_keys((BOOK / "references.bib").read_text())) | set(bib_keys(dataset_bibtex()))


def test_every_cited_key_is_in_the_bibliography():
    sources = list(BOOK.glob("*.md")) + list((repo_root() / "notebooks").glob("*.md"))
    cited = {k.strip() for p in sources for group in CITE.findall(p.read_text()) for k in group.split(",")}
    assert cited, "the book cites nothing"
    assert not sorted(cited - _known())


def test_each_dataset_with_a_citation_appears_once(tmp_path: Path):
    keys = bib_keys(write_dataset_bib(tmp_path).read_text())
    assert len(keys) == len(set(keys))
    for m in all_manifests():
        own = bib_keys(m.get("citation") or "")
        assert set(own) <= set(keys), m["name"]
    assert not set(keys) & set(bib_keys((BOOK / "references.bib").read_text())), "a dataset is cited twice"


def test_the_three_papers_are_cited_on_the_front_page():
    front = (BOOK / "intro.md").read_text()
    for key in ("yao2026mvmicnet", "huang2025angioqa", "zhang2025gradprom"):
        assert f"{{cite}}`{key}`" in front
