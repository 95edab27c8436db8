"""The standard polyp segmentation sets beside CVC-ColonDB: Kvasir-SEG and CVC-ClinicDB.

- **Kvasir-SEG** (Simula's ``kvasir-seg.zip``): ``images/<id>.jpg`` and ``masks/<id>.jpg``, 1000
  pairs of varying size. No official split: a seeded random split 60/20/20 (``seed`` 0); the
  frames come from many videos and their ids are hashes, so there is no frame order to block on.
- **CVC-ClinicDB**: 612 frames (384x288) from 29 colonoscopy sequences, in the original TIFF
  release (``Original/N.tif``, ``Ground Truth/N.tif``) or the PNG layout (``images/N.png``,
  ``masks/N.png``). No official split: contiguous blocks of frame numbers 60/20/20 (frames of
  one sequence are numbered consecutively and are near-duplicates), as for CVC-ColonDB.

Masks of both are read as binary: grey value >= 128 is polyp (Kvasir-SEG's masks are JPEGs, so
their edges hold intermediate values). The pairing, size and decoding checks are those of
:mod:`medtask.data.folder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medtask.data import folder
from medtask.data import splits as _splits
from medtask.data.io import Dataset, Record, check_same_size, load_records, parse_size
from medtask.data.registry import loader
from medtask.errors import FolderLayoutError, InvalidParameterError

CLASSES = ("background", "polyp")


def _pairs(name: str, image_dir: Path, mask_dir: Path) -> dict[str, tuple[Path, Path]]:
    images = folder.image_files(image_dir, f"{name} images")
    masks = folder.image_files(mask_dir, f"{name} masks")
    unpaired = sorted(set(images) ^ set(masks))
    if unpaired:
        raise FolderLayoutError(f"{name}: {len(unpaired)} file(s) without their partner in {image_dir.name}/ and "
                                f"{mask_dir.name}/ ({', '.join(unpaired[:5])}); run `medtask data verify {name}` and "
                                "restore the copy from the official download.")
    return {i: (images[i], masks[i]) for i in sorted(images, key=lambda s: (0, int(s)) if s.isdigit() else (1, s))}


def _load_pairs(name: str, pairs: dict[str, tuple[Path, Path]], sp: dict[str, list[str]], split: str, *,
                size: Any, limit: int | None, info: dict[str, Any]) -> Dataset:
    chosen = _splits.select(sp, split, name)

    def one(i: str) -> Record:
        ip, mp = pairs[i]
        img = folder.decode_image(ip, name)
        mask = folder.read_seg_mask(mp, name, mask_mode="binary")
        check_same_size(img, mask, ip, mp)
        return Record(id=i, image=img, mask=mask)

    size = parse_size(size)
    records = load_records(chosen, one, limit, size, desc=f"decoding {name}")
    return Dataset(name, split, "segmentation", CLASSES, records, size=size, info=info)


def kvasir_splits(ids: list[str], split_rule: str = "random", fractions=(0.6, 0.2, 0.2), seed: int = 0,
                  path: Path | None = None) -> dict[str, list[str]]:
    """Kvasir-SEG's train/val/test ids: seeded random (default) or, with ``split_rule="file"``, the folder's
    ``splits.csv``/``splits.json`` (e.g. a published 880/120 split)."""
    if split_rule == "random":
        return _splits.random_split(sorted(ids), fractions, seed=seed)
    if split_rule == "file" and path is not None:
        return folder.auto_split(sorted(ids), path, split_rule="file")[0]
    raise InvalidParameterError(f"Kvasir-SEG: split_rule must be 'random' or 'file', got {split_rule!r}")


@loader("Kvasir-SEG")
def load_kvasir_seg(path: Path, split: str, *, size=None, limit=None, split_rule: str = "random",
                    fractions=(0.6, 0.2, 0.2), seed: int = 0, **unknown: Any) -> Dataset:
    """Load a split of Kvasir-SEG from ``path`` (``images/*.jpg``, ``masks/*.jpg``)."""
    if unknown:
        raise InvalidParameterError(f"Kvasir-SEG: unknown options {sorted(unknown)}")
    pairs = _pairs("Kvasir-SEG", path / "images", path / "masks")
    sp = kvasir_splits(list(pairs), split_rule, fractions, seed, path)
    return _load_pairs("Kvasir-SEG", pairs, sp, split, size=size, limit=limit,
                       info={"split_rule": split_rule, "fractions": tuple(fractions), "seed": seed})


def clinicdb_layout(path: Path) -> tuple[str, Path, Path]:
    """``("tiff", Original/, Ground Truth/)`` or ``("png", images/, masks/)``: the layout of a CVC-ClinicDB copy."""
    if (path / "Original").is_dir():
        return "tiff", path / "Original", path / "Ground Truth"
    if (path / "images").is_dir():
        return "png", path / "images", path / "masks"
    raise FolderLayoutError(f"CVC-ClinicDB: {path} has neither Original/ + 'Ground Truth'/ (the TIFF release) nor "
                            "images/ + masks/ (the PNG layout); see data_manifests/CVC-ClinicDB.yml.")


@loader("CVC-ClinicDB")
def load_clinicdb(path: Path, split: str, *, size=None, limit=None, split_rule: str = "blocks",
                  fractions=(0.6, 0.2, 0.2), gap: int = 0, seed: int = 0, **unknown: Any) -> Dataset:
    """Load a split of CVC-ClinicDB from ``path`` in its TIFF or PNG layout (block split by frame number)."""
    if unknown:
        raise InvalidParameterError(f"CVC-ClinicDB: unknown options {sorted(unknown)}")
    layout, image_dir, mask_dir = clinicdb_layout(path)
    pairs = _pairs("CVC-ClinicDB", image_dir, mask_dir)
    ids = list(pairs)  # sorted numerically
    if split_rule == "blocks":
        sp = _splits.block_split(ids, fractions, gap=gap)
    elif split_rule == "random":
        sp = _splits.random_split(ids, fractions, seed=seed)
    else:
        raise InvalidParameterError(f"CVC-ClinicDB: split_rule must be 'blocks' or 'random', got {split_rule!r}")
    return _load_pairs("CVC-ClinicDB", pairs, sp, split, size=size, limit=limit,
                       info={"layout": layout, "split_rule": split_rule, "fractions": tuple(fractions), "gap": gap})
