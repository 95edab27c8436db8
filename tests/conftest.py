"""Shared test settings: small thread counts, the shared data root, a scratch output root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


def shared_data_root() -> Path | None:
    """The real datasets (``MEDTASK_DATA``), or None when unset/absent."""
    env = os.environ.get("MEDTASK_DATA")
    return Path(env) if env and Path(env).is_dir() else None


@pytest.fixture(autouse=True)
def _output_under_tmp(tmp_path_factory, monkeypatch):
    """Every test writes checkpoints, caches and results under its own temporary folder, never into the
    checkout (``MEDTASK_OUTPUT``; a test that needs a particular output root sets it again)."""
    monkeypatch.setenv("MEDTASK_OUTPUT", str(tmp_path_factory.mktemp("output")))
    yield


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("MEDTASK_DATA is not set to the real datasets (CI sets it to ../shared/datasets)")
    return root
