"""CVC-ColonDB: 380 colonoscopy frames (574x500 RGB) with binary polyp masks, PraNet PNG layout.

There is no official split. The frames are consecutive frames of about 15 video sequences and
neighbouring ids are near-duplicates, so the default split is by **contiguous id blocks**:
ids are sorted numerically and cut 60/20/20 -> train ``1..228``, val ``229..304``, test ``305..380``.
A frame-level random split (``split_rule="random"``) is available only to demonstrate the leak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medtask.data import splits as _splits
from medtask.data.io import Dataset, Record, load_records, read_pair
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, InvalidParameterError

NAME = "CVC-ColonDB"
CLASSES = ("background", "polyp")


def colondb_splits(ids: list[str], split_rule: str = "blocks", fractions=(0.6, 0.2, 0.2), gap: int = 0,
                   seed: int = 0) -> dict[str, list[str]]:
    """The id lists of train/val/test under ``split_rule`` ``"blocks"`` (default) or ``"random"``.

    ``ids`` must be the frame numbers ``1..N`` (checked by :func:`medtask.data.splits.numbered_ids`).
    """
    ids = _splits.numbered_ids(ids, NAME, "images/", ".png")
    if split_rule == "blocks":
        return _splits.block_split(ids, fractions, gap=gap)
    if split_rule == "random":
        return _splits.random_split(ids, fractions, seed=seed)
    raise InvalidParameterError(f"split_rule must be 'blocks' or 'random', got {split_rule!r}")


def split_boundaries(ids: list[str], **split_options: Any) -> list[tuple[float, str]]:
    """Where the split changes along the frame ids: ``(id halfway between the two frames, "train | val")``, ...

    ``split_options`` are those of :func:`colondb_splits` (default: the block split the chapters use).
    """
    parts = colondb_splits(ids, **split_options)
    order = [name for name in ("train", "val", "test") if parts.get(name)]
    return [((int(parts[a][-1]) + int(parts[b][0])) / 2, f"{a} | {b}") for a, b in zip(order, order[1:])]


@loader("CVC-ColonDB")
def load_colondb(path: Path, split: str, *, size=None, limit=None, split_rule: str = "blocks",
                 fractions=(0.6, 0.2, 0.2), gap: int = 0, seed: int = 0, **unknown: Any) -> Dataset:
    """Load a split of CVC-ColonDB from ``path`` (``images/N.png``, ``masks/N.png``)."""
    if unknown:
        raise InvalidParameterError(f"{NAME}: unknown options {sorted(unknown)}")
    img_dir, mask_dir = path / "images", path / "masks"
    ids = [p.stem for p in img_dir.glob("*.png")]
    if not ids:
        raise CorruptFileError(f"{NAME}: no images/*.png under {path}; run `medtask data verify {NAME}`.")
    ids = _splits.numbered_ids(ids, NAME, img_dir, ".png")
    chosen = _splits.select(colondb_splits(ids, split_rule, fractions, gap, seed), split, NAME)

    def one(i: str) -> Record:
        return read_pair(NAME, i, img_dir / f"{i}.png", mask_dir / f"{i}.png",
                         fix=f"run `medtask data verify {NAME}`")

    return Dataset(NAME, split, "segmentation", CLASSES, load_records(chosen, one, limit, size),
                   info={"split_rule": split_rule, "fractions": tuple(fractions), "gap": gap})
