"""Fixtures of the pipeline tests: a tiny dataset with a manifest and a checksum list."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from medtask.data import manifests

FILES = {"images/1.png": b"first image", "images/2.png": b"second image"}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A dataset ``Toy`` with a checksum list, installed under ``tmp_path/data``."""
    mdir = tmp_path / "manifests"
    (mdir / "checksums").mkdir(parents=True)
    (mdir / "checksums" / "Toy.sha256").write_text(
        "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(FILES.items())))
    manifest = {
        "name": "Toy", "title": "Toy", "description": "two files", "homepage": "https://example.org/toy",
        "citation": "@misc{toy}", "licence": {"name": "CC0", "terms": "none", "verified": True},
        "tasks": ["segmentation"], "classes": ["a"], "studies": [{"study": "all", "role": "tests"}],
        "copies": [{"folder": "Toy", "kind": "complete", "complete": True, "description": "d",
                    "checksums": "checksums/Toy.sha256", "layout": [{"glob": "images/*.png", "count": 2}]}],
        "download": {"requires_registration": True, "manual_steps": ["Ask the authors"], "files": []},
        "splits": {"official": True, "rule": "one", "seed": None, "counts": {"all": 2}},
    }
    (mdir / "Toy.yml").write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv("MEDTASK_MANIFESTS", str(mdir))
    manifests._load_all.cache_clear()
    root = tmp_path / "data"
    for name, data in FILES.items():
        (root / "Toy" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "Toy" / name).write_bytes(data)
    yield root
    manifests._load_all.cache_clear()
