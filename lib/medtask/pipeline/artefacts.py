"""Keys of trained artefacts: a checkpoint's path names what produced it.

A checkpoint is reused on a rerun only when everything that produced it is unchanged. Its key is a
plain dict with four parts, each built by a helper here:

- ``params``: the training's own parameters (steps, learning rates, λ, widths, batch size, seed ...);
- ``inputs``: the checkpoints it starts from, by content hash (:func:`input_digests`);
- ``data``: the fingerprints of the actual bytes of the datasets it reads
  (:func:`medtask.data.manifests.fingerprint`);
- ``code``: a hash of the source of the functions, classes or modules that define it (:func:`source_digest`).

:meth:`medtask.pipeline.Chapter.checkpoint` puts :func:`key_digest` of the key (12 hex digits of
the sha256 of its canonical JSON) into the file name, ``<name>-<digest>.pt``, and writes the key and
the run that produced the file beside it (``<name>-<digest>.key.json``). A changed parameter
therefore gives another path, and the training runs again; an unchanged key finds the finished
file, and the chapter's provenance lists it as reused, with its key and where it came from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import inspect
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DIGEST_CHARS = 12


def _plain(obj: Any) -> Any:
    """JSON-able form of the values a key may hold (paths, tuples, sets, numpy and torch scalars)."""
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(_plain(v) for v in obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 0) == 0:
        return obj.item()  # numpy / torch scalars
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return obj.tolist()
    return str(obj)  # dtypes, devices, enums: their names


def canonical_json(key: Mapping[str, Any]) -> str:
    """The key as canonical JSON: sorted keys, no whitespace, tuples as lists, paths as strings."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"), default=_plain, allow_nan=True)


def key_digest(key: Mapping[str, Any]) -> str:
    """Short hash (12 hex digits) of the key's canonical JSON: what goes into the checkpoint's file name."""
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:DIGEST_CHARS]


def file_digest(path: str | os.PathLike) -> str:
    """Content sha256 of a file (cached by path, size and mtime, like the data fingerprints)."""
    from medtask.data.manifests import sha256_files

    p = Path(path)
    return sha256_files([p])[p]


def input_digests(inputs: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """Name -> content sha256 of each checkpoint a training starts from (it must exist: train it first)."""
    from medtask.errors import InvalidParameterError

    out = {}
    for name, path in inputs.items():
        if not Path(path).is_file():
            raise InvalidParameterError(f"input checkpoint {name!r} ({path}) does not exist yet; train it before the "
                                        "training that starts from it")
        out[name] = file_digest(path)
    return out


def source_digest(*objects: Any) -> str:
    """Hash of the source code of functions, classes or modules (``inspect.getsource``), in the given order."""
    h = hashlib.sha256()
    for obj in objects:
        try:
            src = inspect.getsource(obj)
        except (OSError, TypeError) as exc:
            from medtask.errors import InvalidParameterError

            raise InvalidParameterError(f"cannot read the source of {obj!r} for an artefact key ({exc}); pass the "
                                        "function, class or module that defines the training") from exc
        h.update(getattr(obj, "__qualname__", getattr(obj, "__name__", "")).encode() + b"\0" + src.encode() + b"\0")
    return h.hexdigest()[:16]


def build_key(*, params: Mapping[str, Any], inputs: Mapping[str, str | os.PathLike] | None = None,
              data: Mapping[str, str] | None = None, code: Iterable[Any] = ()) -> dict[str, Any]:
    """A key from its four parts (see the module docstring); ``code`` holds objects, hashed by source."""
    code = tuple(code)
    return {
        "params": dict(params),
        "inputs": input_digests(inputs or {}),
        "data": dict(data or {}),
        "code": source_digest(*code) if code else None,
    }


def keyed_path(folder: Path, name: str, key: Mapping[str, Any]) -> Path:
    """``<folder>/<name>-<key digest>.pt``."""
    return folder / f"{name}-{key_digest(key)}.pt"


def sidecar(path: Path) -> Path:
    """The record beside a keyed checkpoint: ``<name>-<digest>.key.json``."""
    return path.with_name(path.name[: -len(path.suffix)] + ".key.json") if path.suffix else path.with_name(
        path.name + ".key.json")


def register(path: Path, name: str, key: Mapping[str, Any], producer: Mapping[str, Any]) -> dict[str, Any]:
    """Record the use of a keyed artefact and return its entry for the provenance.

    A file already there is *reused* (finished, or partial and resumed): its entry says which run
    produced it, from the record written then. A new one gets that record now.
    """
    digest = key_digest(key)
    record_path = sidecar(path)
    reused = path.exists()
    record: dict[str, Any] = {}
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
        except ValueError:
            record = {}
    if not record:
        record = {"name": name, "digest": digest, "key": json.loads(canonical_json(key)),
                  "produced_by": {**producer, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(
                      timespec="seconds")}}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = record_path.with_name(f"{record_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, record_path)
    return {"name": name, "digest": digest, "path": str(path), "reused": reused,
            "key": record.get("key", json.loads(canonical_json(key))), "produced_by": record.get("produced_by")}
