"""The book's bibliography: methods and papers in ``book/references.bib``; datasets from their manifests.

Each dataset's citation lives once, in its ``data_manifests/<name>.yml``; :func:`write_dataset_bib`
gathers them (one entry per key) into ``book/datasets.build.bib`` when the book is built, so the
references page and ``{cite}`` roles in the chapters see every dataset without a copy to keep in step.
"""

from __future__ import annotations

import re
from pathlib import Path

from medtask.data.manifests import all_manifests

_KEY = re.compile(r"@\w+\s*\{\s*([^,\s]+)\s*,")


def bib_keys(text: str) -> list[str]:
    """The citation keys of every entry in a BibTeX text, in order."""
    return _KEY.findall(text)


def dataset_bibtex() -> str:
    """Every manifest's citation(s), each key once, with a comment naming its dataset."""
    seen: set[str] = set()
    parts = ["% Generated from data_manifests/*.yml by medtask.reporting.references; do not edit.\n"]
    for manifest in sorted(all_manifests(), key=lambda m: m["name"]):
        text = (manifest.get("citation") or "").strip()
        for entry in re.split(r"\n(?=@)", text):
            keys = bib_keys(entry)
            if not keys or keys[0] in seen:
                continue
            seen.add(keys[0])
            parts.append(f"\n% dataset: {manifest['name']}\n{entry.strip()}\n")
    return "".join(parts)


def write_dataset_bib(book_dir: Path) -> Path:
    """Write ``datasets.build.bib`` beside the book's pages (git-ignored; rebuilt with the book)."""
    path = book_dir / "datasets.build.bib"
    path.write_text(dataset_bibtex())
    return path
