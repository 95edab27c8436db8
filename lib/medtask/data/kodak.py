"""Kodak Lossless True Color Image Suite: 24 photographs (768x512 or 512x768 PNG), the codec benchmark.

Layout: ``<data root>/Kodak/kodim01.png`` .. ``kodim24.png``. Task ``quality`` (no labels): a sample is
``{"image", "id"}``. Its one split is ``test`` (``all`` is the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medtask.data.io import Dataset, Record, load_records, read_image
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, InvalidParameterError

NAME = "Kodak"


@loader("Kodak")
def load_kodak(path: Path, split: str = "test", *, size=None, limit=None, **unknown: Any) -> Dataset:
    """The 24 Kodak images in name order (``size`` resizes every image, portrait ones included)."""
    if unknown:
        raise InvalidParameterError(f"{NAME}: unknown options {sorted(unknown)}")
    if split not in ("test", "all"):
        raise InvalidParameterError(f"{NAME} has one split, 'test' (or 'all'); got {split!r}")
    files = sorted(path.glob("kodim[0-9][0-9].png"))
    if not files:
        raise CorruptFileError(f"{NAME}: no kodimNN.png under {path}; run `medtask data fetch Kodak`.")
    return Dataset(NAME, split, "quality", (), load_records(files, lambda f: Record(id=f.stem, image=read_image(f)),
                                                          limit, size))
