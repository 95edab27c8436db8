"""The papers' published numbers: one loader for every method's tables."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from medtask.config import repo_root


def published_dir() -> Path:
    """Where the published tables are kept: ``shared/papers/published`` beside the checkout."""
    return repo_root().parent / "shared" / "papers" / "published"


def published_table(filename: str, embedded: str) -> pd.DataFrame:
    """The published table ``filename`` (CSV) with a ``source`` column saying where it was read (shown as
    ``shared/papers/published/<filename>``, the folder beside the checkout, never the machine's absolute path).

    The file in :func:`published_dir` wins; without it, ``embedded`` (the same CSV, kept in the
    method's ``report`` module) is used, so a checkout without ``shared/`` still builds.
    """
    path = published_dir() / filename
    if path.is_file():
        return pd.read_csv(path).assign(source=f"shared/papers/published/{filename}")
    return pd.read_csv(io.StringIO(embedded)).assign(source=f"embedded copy of {filename}")
