"""Shared test settings: small thread counts, the shared data root, a scratch output root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from medtask import zoo

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


@pytest.fixture()
def scratch_zoo(monkeypatch, tmp_path) -> Path:
    """An empty zoo (``MEDTASK_ZOO``) and run folder (``MEDTASK_ZOO_RUNS``) under ``tmp_path``; torch on one thread."""
    monkeypatch.setenv("MEDTASK_ZOO", str(tmp_path / "zoo"))
    monkeypatch.setenv("MEDTASK_ZOO_RUNS", str(tmp_path / "zoo-runs"))
    torch.set_num_threads(1)
    return tmp_path


@pytest.fixture()
def check_smoke_twins():
    """``check(real_names, smoke_name, study)``: every real entry is listed, has an unlisted smoke twin of the same
    type, study and metric; returns ``{name: (real, twin)}`` for the study's own checks."""
    def check(real_names, smoke_name, study: str) -> dict:
        listed, every = zoo.entries(), zoo.entries(smoke=True)
        smoke = {smoke_name(n) for n in real_names}
        assert set(real_names) <= set(listed) and not smoke & set(listed)
        pairs = {}
        for name in real_names:
            real, twin = every[name], every[smoke_name(name)]
            assert real.study == study and not real.smoke and twin.smoke and type(real) is type(twin)
            assert real.metric == twin.metric
            pairs[name] = (real, twin)
        return pairs

    return check
