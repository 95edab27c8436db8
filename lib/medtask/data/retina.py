"""Fundus vessel segmentation: DRIVE, CHASE_DB1, HRF (official file layouts).

Every sample has ``mask`` (1 = vessel) and ``fov`` (the field of view; evaluate inside it).
DRIVE and HRF ship FOV masks; CHASE_DB1 does not, so its ``fov`` is derived from the image
(pixels brighter than 20/255 in the red channel, holes filled, small specks removed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from medtask.data import splits as _splits
from medtask.data.io import Dataset, Record, check_same_size, load_records, read_image, read_mask
from medtask.data.registry import loader
from medtask.errors import CorruptFileError, DatasetNotFoundError, InvalidParameterError

CLASSES = ("background", "vessel")


def _pair(name: str, ip: Path, mp: Path, fp: Path | None, rid: str, fov: np.ndarray | None = None) -> Record:
    img = read_image(ip)
    for p in (mp,) + ((fp,) if fp is not None else ()):
        if not p.is_file():
            raise CorruptFileError(f"{name}: image {ip} lacks its annotation {p}; run `medtask data verify {name}`.")
    mask = read_mask(mp)
    check_same_size(img, mask, ip, mp)
    if fp is not None:
        fov = read_mask(fp)
        check_same_size(img, fov, ip, fp)
    return Record(id=rid, image=img, mask=mask, extra={"fov": fov})


# --------------------------------------------------------------------------------------------
# DRIVE
# --------------------------------------------------------------------------------------------
@loader("DRIVE")
def load_drive(path: Path, split: str, *, size=None, limit=None, observer: int = 1, val_count: int = 0,
               **unknown: Any) -> Dataset:
    """DRIVE: official ``train`` (21-40) and ``test`` (01-20); ``observer=2`` uses the test set's 2nd_manual.

    No official validation set exists: ``val_count=k`` moves the last ``k`` training ids (by number)
    to a ``val`` split. Masks are GIFs (``*_manual1.gif``, ``*_mask.gif``); images are TIFF.
    The official zip names the test folder ``test/``; ``testing/`` is accepted too.
    """
    if unknown:
        raise InvalidParameterError(f"DRIVE: unknown options {sorted(unknown)}")
    if observer not in (1, 2):
        raise InvalidParameterError(f"DRIVE observer must be 1 or 2, got {observer}")

    def folder(kind: str) -> Path:
        if kind == "training":
            return path / "training"
        for cand in ("test", "testing"):
            if (path / cand).is_dir():
                return path / cand
        raise DatasetNotFoundError("DRIVE", path / "test", "the test folder is missing; run `medtask data verify DRIVE`.")

    def items(kind: str) -> list[tuple[str, str]]:
        d = folder(kind)
        nums = sorted(m.group(1) for p in (d / "images").glob("*.tif")
                      if (m := re.match(r"(\d+)_(training|test)\.tif$", p.name)))
        return [(kind, n) for n in nums]

    if split == "val" and val_count <= 0:
        raise InvalidParameterError("DRIVE has no official validation split; pass val_count=k to hold out the last "
                                    "k training images (e.g. load('DRIVE', 'val', val_count=4)).")
    if observer == 2 and split != "test":
        raise InvalidParameterError("DRIVE's second observer exists for the test split only.")
    train = items("training")
    if val_count >= len(train):
        raise InvalidParameterError(f"DRIVE val_count={val_count} leaves no training images")
    table = {"train": train[: len(train) - val_count] if val_count else train,
             "val": train[len(train) - val_count:] if val_count else [],
             "test": items("test")}
    if split == "all":
        chosen = table["train"] + table["val"] + table["test"]
    elif split == "trainval":
        chosen = train
    elif split in table:
        chosen = table[split]
    else:
        raise InvalidParameterError(f"DRIVE has no split {split!r}; choose train, test, val (with val_count), all")

    def one(item: tuple[str, str]) -> Record:
        kind, n = item
        d = folder(kind)
        tag = "training" if kind == "training" else "test"
        man = "1st_manual" if observer == 1 else "2nd_manual"
        return _pair("DRIVE", d / "images" / f"{n}_{tag}.tif", d / man / f"{n}_manual{observer}.gif",
                     d / "mask" / f"{n}_{tag}_mask.gif", f"{n}_{tag}")

    return Dataset("DRIVE", split, "segmentation", CLASSES, load_records(chosen, one, limit, size),
                   info={"observer": observer, "val_count": val_count})


# --------------------------------------------------------------------------------------------
# CHASE_DB1
# --------------------------------------------------------------------------------------------
def derive_fov(img: np.ndarray, threshold: int = 20) -> np.ndarray:
    """A field-of-view mask from a fundus image: red channel > ``threshold``, holes filled, specks removed."""
    fov = img[..., 0] > threshold
    fov = ndimage.binary_opening(fov, iterations=2)
    fov = ndimage.binary_fill_holes(fov)
    return fov.astype(np.uint8)


def chase_splits(ids: list[str], seed: int = 0, n_val_children: int = 2, n_test_children: int = 4
                 ) -> dict[str, list[str]]:
    """Seeded split of CHASE_DB1's 14 children (both eyes of a child on the same side)."""
    return _splits.group_split(sorted(ids), lambda i: i[6:8], n_val_children, n_test_children, seed)


@loader("CHASE_DB1")
def load_chase(path: Path, split: str, *, size=None, limit=None, observer: int = 1, seed: int = 0,
               n_val_children: int = 2, n_test_children: int = 4, **unknown: Any) -> Dataset:
    """CHASE_DB1 (``Image_NNL.jpg`` / ``Image_NNL_1stHO.png``): 1st observer by default; seeded child-level split
    (default seed 0: 8 children train, 2 val, 4 test = 16 / 4 / 8 images)."""
    if unknown:
        raise InvalidParameterError(f"CHASE_DB1: unknown options {sorted(unknown)}")
    if observer not in (1, 2):
        raise InvalidParameterError(f"CHASE_DB1 observer must be 1 or 2, got {observer}")
    ids = [p.stem for p in path.glob("Image_*.jpg") if re.match(r"Image_\d\d[LR]$", p.stem)]
    if not ids:
        raise CorruptFileError(f"CHASE_DB1: no Image_NN[LR].jpg under {path}; run `medtask data verify CHASE_DB1`.")
    chosen = _splits.select(chase_splits(ids, seed, n_val_children, n_test_children), split, "CHASE_DB1")
    tag = "1stHO" if observer == 1 else "2ndHO"

    def one(i: str) -> Record:
        ip = path / f"{i}.jpg"
        img = read_image(ip)
        return _pair("CHASE_DB1", ip, path / f"{i}_{tag}.png", None, i, fov=derive_fov(img))

    return Dataset("CHASE_DB1", split, "segmentation", CLASSES, load_records(chosen, one, limit, size),
                   info={"observer": observer, "seed": seed})


# --------------------------------------------------------------------------------------------
# HRF
# --------------------------------------------------------------------------------------------
HRF_CATEGORIES = ("h", "dr", "g")


def hrf_splits(ids: list[str]) -> dict[str, list[str]]:
    """Per category (healthy ``h``, diabetic retinopathy ``dr``, glaucoma ``g``), numbers sorted: the first
    60% train, the next 15% val, the rest test (15 per category -> 9 / 2 / 4)."""
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cat in HRF_CATEGORIES:
        mine = sorted((i for i in ids if i.split("_", 1)[1] == cat), key=lambda s: int(s.split("_")[0]))
        n_tr, n_va = int(round(len(mine) * 0.6)), int(round(len(mine) * 0.15))
        out["train"] += mine[:n_tr]
        out["val"] += mine[n_tr:n_tr + n_va]
        out["test"] += mine[n_tr + n_va:]
    return out


@loader("HRF")
def load_hrf(path: Path, split: str, *, size=None, limit=None, **unknown: Any) -> Dataset:
    """HRF (``images/NN_c.jpg|JPG``, ``manual1/NN_c.tif``, ``mask/NN_c_mask.tif``; 45 images 3504x2336).

    No official split; the rule of :func:`hrf_splits` is used. Use ``size`` - the images are large.
    """
    if unknown:
        raise InvalidParameterError(f"HRF: unknown options {sorted(unknown)}")
    imgs = {p.stem: p for p in (path / "images").iterdir()
            if p.suffix.lower() == ".jpg" and re.match(r"\d+_(h|dr|g)$", p.stem)} if (path / "images").is_dir() else {}
    if not imgs:
        raise CorruptFileError(f"HRF: no images/NN_(h|dr|g).jpg under {path}; run `medtask data verify HRF`.")
    chosen = _splits.select(hrf_splits(list(imgs)), split, "HRF")

    def one(i: str) -> Record:
        return _pair("HRF", imgs[i], path / "manual1" / f"{i}.tif", path / "mask" / f"{i}_mask.tif", i)

    return Dataset("HRF", split, "segmentation", CLASSES, load_records(chosen, one, limit, size))
