"""The execution cache: a chapter re-runs only when its notebook, parameters, ``lib/`` code or data change.

jupyter-cache keys on the notebook alone and misses imported code (jupyter-book #705), so the
key here hashes all four.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from medtask.config import data_root as _data_root
from medtask.config import output_root, repo_root
from medtask.pipeline.notebooks import read_chapter
from medtask.zoo.store import zoo_dir


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str:
    return _sha(Path(path).read_bytes())


def notebook_digest(path: Path) -> str:
    """Hash of a notebook's cell sources and types (outputs and metadata noise excluded)."""
    nb = read_chapter(Path(path))
    cells = [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
              sorted(c.get("metadata", {}).get("tags", []))) for c in nb["cells"]]
    return _sha(json.dumps(cells).encode())


def lib_digest() -> str:
    """Hash of every source/data file of the ``medtask`` package."""
    pkg = repo_root() / "lib" / "medtask"
    h = hashlib.sha256()
    for p in sorted(pkg.rglob("*")):
        if p.is_file() and p.suffix in {".py", ".json", ".yml", ".yaml"} and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(pkg)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def zoo_digest() -> str:
    """Hash of the zoo's cards (each names its weights' sha256): a newly trained entry re-runs the chapters."""
    folder = zoo_dir()
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def data_digest(root: str | os.PathLike | None = None, params: dict[str, Any] | None = None) -> dict[str, str]:
    """Fingerprint of the bytes of every dataset present under the data root (conservative: any change re-runs),
    and of each user's dataset named in ``params`` (:func:`own_data_names`), so that a rerun on an edited
    folder never reuses a result.

    A copy whose layout differs from its manifest enters the key too (marked), so editing it re-runs.
    """
    from medtask.data import manifests, sources

    root = _data_root(root)
    out: dict[str, str] = {}
    for m in manifests.all_manifests():
        name = m["name"]
        try:
            out[name] = manifests.fingerprint(name, root, strict=False)
        except Exception:  # absent datasets do not enter the key
            continue
    for name in own_data_names(params or {}, root):
        try:
            out[name] = sources.fingerprint(name, root)
        except Exception as exc:  # a changed registered folder or a broken one: keyed by the error, the chapter says it
            out[name] = f"unavailable: {exc.__class__.__name__}: {exc}"
    return out


def own_data_names(params: dict[str, Any], root: str | os.PathLike | None = None) -> list[str]:
    """The ``folder:`` paths and folders registered with ``medtask data add`` among a chapter's dataset
    parameters (``dataset``, ``test_dataset``, any ``*_dataset``, and the elements of ``*datasets`` lists)."""
    from medtask.data import sources

    names: list[str] = []
    for key, value in params.items():
        if not (key == "dataset" or key.endswith("_dataset") or key.endswith("datasets")):
            continue
        for name in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(name, str) and name not in names and sources.is_own_data(name, root):
                names.append(name)
    return names


def cache_key(notebook: Path, params: dict[str, Any], data_root: str | os.PathLike | None = None,
              data: dict[str, str] | None = None) -> dict[str, Any]:
    """The parts of the key (notebook, parameters, lib, zoo cards, data) and their combined digest under ``"key"``.

    ``data`` is :func:`data_digest` of the data root (and of the own data ``params`` name) when the caller has it already.
    """
    parts = {
        "notebook": notebook_digest(notebook),
        "parameters": _sha(json.dumps(params, sort_keys=True, default=str).encode()),
        "lib": lib_digest(),
        "zoo": zoo_digest(),
        "data": _sha(json.dumps(data if data is not None else data_digest(data_root, params), sort_keys=True).encode()),
    }
    parts["key"] = _sha(json.dumps(parts, sort_keys=True).encode())
    return parts


def entry_path(stem: str, root: str | os.PathLike | None = None) -> Path:
    return output_root(root) / ".medtask-cache" / f"{stem}.json"


def lookup(stem: str, key: dict[str, Any], executed: Path, root: str | os.PathLike | None = None) -> bool:
    """True when the recorded run has the same key and its executed notebook is unchanged on disk."""
    p = entry_path(stem, root)
    if not (p.is_file() and executed.is_file()):
        return False
    entry = json.loads(p.read_text())
    return entry.get("key") == key["key"] and entry.get("output_sha256") == file_sha(executed)


def store(stem: str, key: dict[str, Any], executed: Path, extra: dict[str, Any],
          root: str | os.PathLike | None = None) -> None:
    p = entry_path(stem, root)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps({**key, "output_sha256": file_sha(executed), **extra}, indent=1, default=str))
    os.replace(tmp, p)
