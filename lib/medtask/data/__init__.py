"""Datasets: manifests, verification, fetching, loaders and phantoms.

``load(name, split, *, root=None, size=None, limit=None, **options)`` is the one entry point:
it finds the dataset under the data root (``$MEDTASK_DATA`` or ``root``), decodes the split once
into memory and returns a :class:`~medtask.data.io.Dataset` of the sample dicts of CONTRIBUTING.md.
Names are looked up case-insensitively (``"cvc-colondb"``, ``"CVC_ColonDB"`` and the folder name
all work). Phantoms (``phantom-polyp``, ``phantom-boxes``, ``phantom-vessels``,
``phantom-classes``) are generated, and only when named.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from medtask.data import manifests, phantoms
from medtask.data.io import Dataset, Record, parse_size
from medtask.data.manifests import DatasetNotFoundError, dataset_dir, fingerprint, load_manifest, status, verify
from medtask.errors import InvalidParameterError

# canonical name -> "module:function"; each function is ``fn(path, split, **options) -> Dataset``
# (functions whose name ends in ``_copy`` also receive the manifest copy they were found in).
LOADERS: dict[str, str] = {
    "CVC-ColonDB": "colon:load_colondb",
    "BCCD": "voc:load_bccd",
    "COVID-CT": "covidct:load_covidct",
    "DRIVE": "retina:load_drive",
    "CHASE_DB1": "retina:load_chase",
    "HRF": "retina:load_hrf",
    "ChestX-Det": "chestxdet:load_chestxdet",
    "ChestX-Det10": "chestxdet:load_chestxdet10",
    "ISIC2018": "isic:load_isic",
    "Lizard": "lizard:load_lizard",
    "CAMUS": "camus:load_camus",
    "Kodak": "kodak:load_kodak",
    "ARCADE": "arcade:load_arcade_copy",
}


def _loader(name: str) -> Callable[..., Dataset]:
    mod, fn = LOADERS[name].split(":")
    return getattr(importlib.import_module(f"medtask.data.{mod}"), fn)


def available_loaders() -> list[str]:
    """Names ``load`` accepts: every dataset with a loader, then the phantoms."""
    return sorted(LOADERS) + sorted(phantoms.PHANTOMS)


def load(name: str, split: str, *, root: str | os.PathLike | None = None, size: Any = None,
         limit: int | None = None, **options: Any) -> Dataset:
    """Load ``split`` of dataset ``name`` into memory (``size=(H, W)`` resizes, ``limit=n`` keeps the first n).

    Raises :class:`~medtask.errors.DatasetNotFoundError` (with how to get it) when the dataset is
    absent, :class:`~medtask.errors.CorruptFileError` naming the file when one cannot be decoded
    or a mask does not fit its image, :class:`~medtask.errors.InvalidParameterError` for an
    unknown name, split or option.
    """
    size = parse_size(size)
    if phantoms.is_phantom(name):
        return phantoms.load_phantom(name, split, size=size, limit=limit, **options)
    canon = manifests.resolve_name(name)
    if canon not in LOADERS:
        raise InvalidParameterError(f"dataset {canon!r} has a manifest but no loader; loaders exist for "
                                    f"{', '.join(available_loaders())}")
    fn = _loader(canon)
    copy, path = manifests.find_copy(canon, root)
    if fn.__name__.endswith("_copy"):
        return fn(path, copy, split, size=size, limit=limit, **options)
    return fn(path, split, size=size, limit=limit, **options)


__all__ = ["Dataset", "DatasetNotFoundError", "LOADERS", "Record", "available_loaders", "dataset_dir", "fingerprint",
           "load", "load_manifest", "manifests", "phantoms", "status", "verify"]
