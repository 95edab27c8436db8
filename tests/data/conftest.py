"""Fixtures of the data-layer tests: the shared data root, and a skip helper for absent datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ["MEDTASK_DATA"]) if os.environ.get("MEDTASK_DATA") else None


def shared_dir(folder: str) -> Path:
    """The shared copy of ``folder``; skip the test (with the reason) when it is absent."""
    if SHARED is None:
        pytest.skip("MEDTASK_DATA is not set (point it at the real datasets, e.g. /work/shared/datasets)")
    p = SHARED / folder
    if not p.is_dir():
        pytest.skip(f"{folder} not under MEDTASK_DATA={SHARED} (set MEDTASK_DATA to the shared datasets folder)")
    return p


@pytest.fixture
def shared_root() -> Path:
    if SHARED is None or not SHARED.is_dir():
        pytest.skip(f"MEDTASK_DATA={SHARED} is not set or does not exist (point it at the real datasets)")
    return SHARED


@pytest.fixture
def need():
    """``need(folder)``: the shared copy of a dataset folder, or skip the test saying which is missing."""
    return shared_dir
