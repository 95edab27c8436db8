"""Datasets: manifests, verification, fetching, loaders and phantoms.

``load(name, split, *, root=None, size=None, limit=None, **options)`` is the one entry point:
it finds the dataset under the data root (``$MEDTASK_DATA`` or ``root``), decodes the split once
into memory and returns a :class:`~medtask.data.io.Dataset` of the sample dicts of CONTRIBUTING.md.
Names are looked up case-insensitively (``"cvc-colondb"``, ``"CVC_ColonDB"`` and the folder name
all work). Phantoms (``phantom-polyp``, ``phantom-boxes``, ``phantom-vessels``,
``phantom-classes``) are generated, and only when named. Each loader registers itself where it is
defined (``@loader("CVC-ColonDB")``, :mod:`medtask.data.registry`). ``channels=1|3`` (grey or RGB)
works for every dataset: a loader that does not take it decodes as it does and the images are
converted after (:func:`medtask.data.io.with_channels`).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any

from medtask.data import manifests, phantoms, sources, user_manifests  # noqa: F401
from medtask.data import (  # noqa: F401  (importing a loader module registers its loader)
    arcade, camus, chestxdet, colon, covidct, isic, kodak, lizard, polyp, retina, voc,
)
from medtask.data.io import Dataset, Record, parse_size, with_channels
from medtask.data.manifests import DatasetNotFoundError, dataset_dir, fingerprint, load_manifest, status, verify
from medtask.data.registry import LOADERS, loader
from medtask.errors import InvalidParameterError


def available_loaders() -> list[str]:
    """Names ``load`` accepts: every dataset with a loader, then the phantoms."""
    return sorted(LOADERS) + sorted(phantoms.PHANTOMS)


def load(name: str, split: str, *, root: str | os.PathLike | None = None, size: Any = None,
         limit: int | None = None, **options: Any) -> Dataset:
    """Load ``split`` of dataset ``name`` into memory (``size=(H, W)`` resizes, ``limit=n`` keeps the first n).

    ``name`` may also be ``"folder:/abs/path"`` (a folder in one of the layouts of
    :mod:`medtask.data.folder`; ``task=`` optional) or a folder registered with ``medtask data add``.

    Raises :class:`~medtask.errors.DatasetNotFoundError` (with how to get it) when the dataset is
    absent, :class:`~medtask.errors.CorruptFileError` naming the file when one cannot be decoded
    or a mask does not fit its image, :class:`~medtask.errors.InvalidParameterError` for an
    unknown name, split or option.
    """
    size = parse_size(size)
    if phantoms.is_phantom(name):
        return phantoms.load_phantom(name, split, size=size, limit=limit, **options)
    if sources.is_own_data(name, root):  # folder:/path, or a folder registered with `medtask data add`
        return sources.load(name, split, root=root, size=size, limit=limit, **options)
    canon = manifests.resolve_name(name)
    if canon not in LOADERS:
        raise InvalidParameterError(f"dataset {canon!r} has a manifest but no loader; loaders exist for "
                                    f"{', '.join(available_loaders())}")
    registered = LOADERS[canon]
    channels = None
    if "channels" in options and "channels" not in inspect.signature(registered.function).parameters:
        channels = options.pop("channels")
        if channels not in (1, 3):
            raise InvalidParameterError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    copy, path = manifests.find_copy(canon, root)
    if registered.with_copy:
        ds = registered.function(path, copy, split, size=size, limit=limit, **options)
    else:
        ds = registered.function(path, split, size=size, limit=limit, **options)
    if channels is not None:
        ds.records = [dataclasses.replace(r, image=with_channels(r.image, channels)) for r in ds.records]
    return ds


__all__ = ["Dataset", "DatasetNotFoundError", "LOADERS", "Record", "available_loaders", "dataset_dir", "fingerprint",
           "load", "load_manifest", "loader", "manifests", "phantoms", "sources", "status", "user_manifests", "verify"]
