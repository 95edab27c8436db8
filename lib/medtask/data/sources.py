"""What a dataset name stands for, and how provenance names it and fingerprints its content.

A name given to :func:`medtask.data.load` (and to a chapter's ``dataset``/``test_dataset``) is one of:

- a **phantom** (``phantom-polyp`` ...): generated; fingerprint = the generator version;
- a **one-off folder** ``folder:/abs/path``: label ``unregistered folder /abs/path``, fingerprint
  ``folder:sha256:<16 hex>`` = digest of every file's bytes (computed each time);
- a **registered folder** (``medtask data add NAME PATH``): label ``NAME (registered folder PATH)``,
  fingerprint ``NAME:sha256:<16 hex>`` = digest of the checksum list recorded at ``add``
  (equal to the ``folder:`` digest of the same, unchanged folder);
- a **shipped dataset** (``data_manifests/NAME.yml``): label = its canonical name, fingerprint
  from :func:`medtask.data.manifests.fingerprint`.

A chapter checks its ``dataset`` with :func:`check_task`, loads it with :func:`medtask.data.load`
and prints :func:`describe` (label and fingerprint); provenance records the same through
:func:`medtask.provenance.dataset_fingerprints`.
"""

from __future__ import annotations

import os
from typing import Any

from medtask.data import folder, manifests, phantoms, user_manifests
from medtask.data.io import Dataset
from medtask.errors import InvalidParameterError

KINDS = ("phantom", "folder", "registered", "shipped")


def kind(name: str, root: str | os.PathLike | None = None) -> str:
    """``"phantom"``, ``"folder"`` (``folder:/path``), ``"registered"`` (``medtask data add``) or ``"shipped"``."""
    if folder.is_folder_name(name):
        return "folder"
    if phantoms.is_phantom(name):
        return "phantom"
    if user_manifests.find_user_manifest(name, root) is not None:
        return "registered"
    return "shipped"


def is_own_data(name: str, root: str | os.PathLike | None = None) -> bool:
    """True for a ``folder:`` name or a folder registered with ``medtask data add``."""
    return kind(name, root) in ("folder", "registered")


def load(name: str, split: str, *, root: str | os.PathLike | None = None, size: Any = None,
         limit: int | None = None, **options: Any) -> Dataset:
    """Load ``split`` of a ``folder:`` path or a registered folder (``task=`` optional for ``folder:``)."""
    if folder.is_folder_name(name):
        path = folder.folder_path(name)
        ds = folder.load_folder(path, split, name=f"{folder.FOLDER_PREFIX}{path}", size=size, limit=limit, **options)
        ds.info["source"] = f"unregistered folder {path}"
        return ds
    return user_manifests.load(name, split, root=root, size=size, limit=limit, **options)


def label(name: str, root: str | os.PathLike | None = None) -> str:
    """How pages and provenance name the data: the dataset name, ``NAME (registered folder PATH)`` or
    ``unregistered folder PATH``."""
    k = kind(name, root)
    if k == "folder":
        return f"unregistered folder {folder.folder_path(name)}"
    if k == "registered":
        return user_manifests.label(user_manifests.find_user_manifest(name, root))
    if k == "phantom":
        return name
    return manifests.resolve_name(name)


def fingerprint(name: str, root: str | os.PathLike | None = None, *, strict: bool = True) -> str:
    """The content digest of any dataset name (see the module doc for each kind); ``strict=False``
    fingerprints a shipped copy whose layout differs from its manifest instead of refusing it."""
    k = kind(name, root)
    if k == "folder":
        return folder.folder_fingerprint(folder.folder_path(name))
    if k == "registered":
        return user_manifests.fingerprint(name, root)
    return manifests.fingerprint(name, root, strict=strict)


def verify(name: str, root: str | os.PathLike | None = None, checksums: bool = True) -> Any:
    """Verify any dataset: a registered folder against its checksums, a ``folder:`` path by its layout,
    a shipped dataset by :func:`medtask.data.manifests.verify`. The report has ``ok`` and ``summary()``."""
    k = kind(name, root)
    if k == "folder":
        path = folder.folder_path(name)
        rep = user_manifests.FolderReport(name, path, registered=False)
        rep.layout_problems = user_manifests.verify_folder(path, name)
        return rep
    if k == "registered":
        return user_manifests.verify(name, root, checksums=checksums)
    return manifests.verify(name, root, checksums=checksums)


def tasks(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The tasks dataset ``name`` serves (a ``folder:`` path's from its layout)."""
    k = kind(name, root)
    if k == "folder":
        return [folder.detect_task(folder.folder_path(name))]
    if k == "registered":
        return [user_manifests.find_user_manifest(name, root)["task"]]
    if k == "phantom":
        return [phantoms.PHANTOMS[name.lower().replace("_", "-").strip()][0]]
    return list(manifests.load_manifest(name)["tasks"])


def check_task(name: str, task: str, root: str | os.PathLike | None = None) -> str:
    """``name`` when it serves ``task``; else :class:`InvalidParameterError` saying what it is and what to give.

    What a chapter calls on its ``dataset``/``test_dataset`` parameter instead of a list of names.
    """
    have = tasks(name, root)
    if task not in have:
        raise InvalidParameterError(f"dataset {name!r} is a {' and '.join(have)} dataset; this needs a {task} dataset: "
                                    f"one of `medtask data list` with task {task}, a folder registered with "
                                    f"`medtask data add NAME PATH --task {task}`, or folder:/path in a {task} layout")
    return name


def describe(name: str, root: str | os.PathLike | None = None) -> dict[str, str]:
    """``{name, kind, label, fingerprint}`` of a dataset name: what a page prints about the data it used."""
    return {"name": name, "kind": kind(name, root), "label": label(name, root), "fingerprint": fingerprint(name, root)}
